//! The supervisor's own command-line surface: flags and environment
//! variables that the driver and operators set on `openshell-sandbox`.

/// Flag choosing who receives forwarded signals: the workload's whole process
/// group ([`SIGNAL_TARGET_GROUP`], the default) or its main process only
/// ([`SIGNAL_TARGET_CHILD`]).
pub const FLAG_SIGNAL_TARGET: &str = "signal-target";
/// Environment variable for [`FLAG_SIGNAL_TARGET`].
pub const ENV_SIGNAL_TARGET: &str = "OPENSHELL_SIGNAL_TARGET";
/// Value of [`FLAG_SIGNAL_TARGET`]: every process of the workload's group.
pub const SIGNAL_TARGET_GROUP: &str = "group";
/// Value of [`FLAG_SIGNAL_TARGET`]: the workload's main process only.
pub const SIGNAL_TARGET_CHILD: &str = "child";

/// Flag setting how long the rest of the workload's process group has, after
/// SIGTERM, to end once the main process has exited, before SIGKILL.
pub const FLAG_KILL_GRACE: &str = "kill-grace";
/// Environment variable for [`FLAG_KILL_GRACE`].
pub const ENV_KILL_GRACE: &str = "OPENSHELL_KILL_GRACE";
/// Default of [`FLAG_KILL_GRACE`], in seconds.
pub const DEFAULT_KILL_GRACE_SECONDS: u64 = 5;

/// Flag setting no_new_privs for the workload also without `--run-as`
/// (with `--run-as` it is always set).
pub const FLAG_NO_NEW_PRIVS: &str = "no-new-privs";
/// Environment variable for [`FLAG_NO_NEW_PRIVS`] (`true`/`false`).
pub const ENV_NO_NEW_PRIVS: &str = "OPENSHELL_NO_NEW_PRIVS";

/// Flag naming the workload's identity, `USER[:GROUP]` (numeric ids or
/// names from the agent image's /etc/passwd and /etc/group).
pub const FLAG_RUN_AS: &str = "run-as";

/// Flag naming the workload's working directory.
pub const FLAG_WORKDIR: &str = "workdir";

/// Flag adding supplementary groups to the workload, `GID[,GID...]`,
/// repeatable (numeric ids only): the pod's `fsGroup` and
/// `supplementalGroups`. Under `--run-as` they join the primary group and
/// the image's /etc/group memberships, as containerd merges them.
pub const FLAG_GROUPS: &str = "groups";

/// Longest accepted `--kill-grace`, in seconds: anything longer cannot be
/// added to a clock reading on every platform, and no pod waits that long.
pub const MAX_KILL_GRACE_SECONDS: u64 = u32::MAX as u64;
