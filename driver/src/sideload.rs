//! Applying the supervisor sideload to a pod spec.
//!
//! The spec is handled as JSON rather than as k8s-openapi's typed `PodSpec`:
//! an operator's template may carry fields of a newer Kubernetes than the
//! typed bindings know, and a typed round trip would drop them silently.
//! (The tests round-trip every rendered pod through the typed `Pod` to check
//! that everything the driver writes is spelled as Kubernetes expects.)
//!
//! Applying is idempotent: a spec that already carries exactly what the
//! driver would add is left as it is. Anything at the driver's names or paths
//! that differs is an error naming both sides, never overwritten.

use openshell_contract::supervise::{
    FLAG_GROUPS, FLAG_KILL_GRACE, FLAG_NO_NEW_PRIVS, FLAG_RUN_AS, FLAG_SIGNAL_TARGET, FLAG_WORKDIR,
};
use openshell_contract::{
    AGENT_CONTAINER_NAME, DEFAULT_WORKDIR, FLAG_TERMINATION_LOG, INIT_CONTAINER_COMMAND,
    INIT_CONTAINER_NAME, INSTALLED_BINARY_PATH, MOUNT_PATH, VOLUME_NAME, WORKDIR_VOLUME_NAME,
};
use serde_json::{Map, Value, json};

use crate::image::{PullPolicy, SupervisorImage};
use crate::method::SupervisorSideloadMethod;
use crate::security::{
    INIT_CONTAINER_UID, INIT_CPU_REQUEST, INIT_MEMORY_LIMIT, INIT_MEMORY_REQUEST,
    RUN_AS_CAPABILITIES, SecurityProfile,
};

/// Fields of the driver's init container a template may set: the
/// template's value replaces the driver's as a whole, so a cluster policy
/// that needs another user (or none: OpenShift assigns one) or other
/// resources can have them, and rendering the rendered pod again changes
/// nothing. Any other field of the driver's that differs is a conflict.
pub const INIT_CONTAINER_TEMPLATE_FIELDS: [&str; 2] = ["securityContext", "resources"];

/// `terminationMessagePolicy` of the agent container: when the supervisor
/// fails before writing a termination message, the tail of its log becomes
/// the message, so the reason shows in the pod status.
pub const TERMINATION_MESSAGE_POLICY: &str = "FallbackToLogsOnError";

/// Everything the driver adds to a sandbox pod for the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sideload {
    /// How the binary reaches the pod.
    pub method: SupervisorSideloadMethod,
    /// The supervisor image.
    pub image: SupervisorImage,
    /// Pull policy of the image volume or the init container.
    pub pull_policy: PullPolicy,
    /// Pull secrets added to the pod (image volumes are pulled with the
    /// pod's pull secrets, so a private supervisor image needs them).
    pub image_pull_secrets: Vec<String>,
    /// How much hardening the pod gets.
    pub security: SecurityProfile,
}

/// Why the sideload could not be applied to a pod spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SideloadError {
    /// The spec has no container to run the supervisor in.
    #[error(
        "the pod template has no containers (spec.containers is missing or empty): the sandbox needs an agent container"
    )]
    NoContainers,
    /// A field has the wrong JSON type.
    #[error("{path} is {found} (expected {expected})")]
    WrongType {
        /// Where, like `spec.containers[0].volumeMounts`.
        path: String,
        /// The JSON type found.
        found: &'static str,
        /// What Kubernetes expects there.
        expected: &'static str,
    },
    /// A volume of the driver's name that is not the one it would add.
    #[error(
        "{path}: a volume named {VOLUME_NAME} is already there and differs from the one the {method} method needs: found {found}, expected {expected}; remove it from the template (or render with the method it was made for)"
    )]
    VolumeConflict {
        /// Where the volume is.
        path: String,
        /// The method being applied.
        method: SupervisorSideloadMethod,
        /// The volume found, as JSON.
        found: String,
        /// The volume expected, as JSON.
        expected: String,
    },
    /// An init container of the driver's name that is not the one it would
    /// add.
    #[error(
        "{path}: an init container named {INIT_CONTAINER_NAME} is already there and differs from the one the init-container method needs: found {found}, expected {expected}; remove it from the template"
    )]
    InitContainerConflict {
        /// Where the init container is.
        path: String,
        /// The init container found, as JSON.
        found: String,
        /// The init container expected, as JSON.
        expected: String,
    },
    /// The driver's init container in a spec for the image-volume method.
    #[error(
        "{path}: init container {INIT_CONTAINER_NAME} is there, but the image-volume method uses no init container (was the template rendered with init-container?); remove it from the template"
    )]
    UnexpectedInitContainer {
        /// Where the init container is.
        path: String,
    },
    /// Another mount at or below the supervisor's mount path.
    #[error(
        "{path}: container {container:?} already mounts {found} at {mount_path}, which would mask or be masked by the supervisor's volume {VOLUME_NAME} (read-only at {MOUNT_PATH}); mount it elsewhere"
    )]
    MountConflict {
        /// Where the mount is.
        path: String,
        /// The container's name.
        container: String,
        /// What is mounted, like `volume "data"`.
        found: String,
        /// Where it is mounted.
        mount_path: String,
    },
    /// Arguments without a command: the image's entrypoint is unknown here.
    #[error(
        "{path}: container {container:?} has args but no command; the supervisor replaces the image's entrypoint, which the driver cannot see, so give the whole command in the template (command: [...])"
    )]
    ArgsWithoutCommand {
        /// The container's path.
        path: String,
        /// The container's name.
        container: String,
    },
    /// The template drops a capability the supervisor needs.
    #[error(
        "{path} drops {capability}, which the supervisor needs to start the workload as UID {uid} (--run-as); add {capability} to {add_path} (the supervisor needs {needed}), or drop runAsUser from the template"
    )]
    CapabilityDropped {
        /// Where the drop list is.
        path: String,
        /// Where the add list goes.
        add_path: String,
        /// The capability.
        capability: String,
        /// The workload's user.
        uid: i64,
        /// All the supervisor needs.
        needed: String,
    },
    /// The template's fields for the init container contradict each other
    /// or what `copy-self` needs.
    #[error("{path}: {problem}")]
    InitContainerSecurity {
        /// The field at fault.
        path: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// `runAsNonRoot: true` forbids the supervisor's UID 0.
    #[error(
        "{path} is true, but the supervisor must start as UID 0 (it starts the workload as the template's runAsUser itself, with --run-as); remove runAsNonRoot from the template"
    )]
    RunAsNonRoot {
        /// Where, like `spec.securityContext.runAsNonRoot`.
        path: String,
    },
    /// A non-root user with no workload to run as that user.
    #[error(
        "{path}: container {container:?} runs as UID {uid} but has no command: the supervisor starts as UID 0 and its idle mode starts no workload to run as UID {uid}; give the command to run, or drop runAsUser"
    )]
    IdleRunAs {
        /// The container's path.
        path: String,
        /// The container's name.
        container: String,
        /// The user id asked for.
        uid: i64,
    },
    /// An already wrapped command whose supervisor options cannot be read.
    #[error("{path}: the command already runs {INSTALLED_BINARY_PATH}, but {problem}")]
    WrappedCommand {
        /// Where the command is.
        path: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// A volume of the workdir volume's name that is not the driver's.
    #[error(
        "{path}: a volume named {WORKDIR_VOLUME_NAME} is already there and differs from the emptyDir the driver mounts at {DEFAULT_WORKDIR}: found {found}, expected {expected}; rename it, or mount your own volume at {DEFAULT_WORKDIR}"
    )]
    WorkdirVolumeConflict {
        /// Where the volume is.
        path: String,
        /// The volume found, as JSON.
        found: String,
        /// The volume expected, as JSON.
        expected: String,
    },
    /// `ephemeralContainers` in a template for a new pod.
    #[error(
        "spec.ephemeralContainers is set, but the API server refuses ephemeral containers when a pod is created (they are added to a running pod with kubectl debug); remove it from the template"
    )]
    EphemeralContainers,
    /// The supervisor is already the command, but not as root.
    #[error(
        "{path}: container {container:?} already runs {INSTALLED_BINARY_PATH} but as UID {uid}; the supervisor must start as UID 0 (set runAsUser: 0, and --run-as for the workload)"
    )]
    WrappedNotRoot {
        /// The container's path.
        path: String,
        /// The container's name.
        container: String,
        /// The user id found.
        uid: i64,
    },
}

impl Sideload {
    /// The pod volume that carries the supervisor: the image volume exactly
    /// as DESIGN.md shows it, or an empty `emptyDir`.
    pub fn volume(&self) -> Value {
        match self.method {
            SupervisorSideloadMethod::ImageVolume => json!({
                "name": VOLUME_NAME,
                "image": {
                    "reference": self.image.as_str(),
                    "pullPolicy": self.pull_policy.as_str(),
                },
            }),
            SupervisorSideloadMethod::InitContainer => json!({
                "name": VOLUME_NAME,
                "emptyDir": {},
            }),
        }
    }

    /// The init container of the init-container method: `copy-self` from the
    /// supervisor image into the volume. Hardened, it runs as `pod_user`
    /// (the pod's non-root `runAsUser` and `runAsGroup`) or else
    /// [`INIT_CONTAINER_UID`], and meets Pod Security "restricted"; with
    /// no hardening it runs as UID 0.
    pub fn init_container(&self, pod_user: Option<(i64, Option<i64>)>) -> Option<Value> {
        match self.method {
            SupervisorSideloadMethod::ImageVolume => return None,
            SupervisorSideloadMethod::InitContainer => {}
        }
        let (security_context, resources) = match self.security {
            SecurityProfile::Hardened => {
                let (uid, gid) = pod_user.unwrap_or((INIT_CONTAINER_UID, None));
                let gid = gid.filter(|&gid| gid != 0).unwrap_or(uid);
                (
                    json!({
                        "runAsUser": uid,
                        "runAsGroup": gid,
                        "runAsNonRoot": true,
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": { "drop": ["ALL"] },
                    }),
                    Some(json!({
                        "requests": { "cpu": INIT_CPU_REQUEST, "memory": INIT_MEMORY_REQUEST },
                        "limits": { "memory": INIT_MEMORY_LIMIT },
                    })),
                )
            }
            SecurityProfile::None => (json!({ "runAsUser": 0 }), None),
        };
        let mut container = json!({
            "name": INIT_CONTAINER_NAME,
            "image": self.image.as_str(),
            "imagePullPolicy": self.pull_policy.as_str(),
            "command": INIT_CONTAINER_COMMAND,
            "securityContext": security_context,
        });
        if let (Some(resources), Value::Object(map)) = (resources, &mut container) {
            map.insert("resources".to_string(), resources);
        }
        if let Value::Object(map) = &mut container {
            map.insert(
                "terminationMessagePolicy".to_string(),
                json!(TERMINATION_MESSAGE_POLICY),
            );
            map.insert(
                "volumeMounts".to_string(),
                json!([{ "name": VOLUME_NAME, "mountPath": MOUNT_PATH }]),
            );
        }
        Some(container)
    }

    /// The agent container's mount of the volume: read-only, for both
    /// methods.
    pub fn agent_mount() -> Value {
        json!({ "name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": true })
    }

    /// Applies the sideload to a pod spec (`Pod.spec` or
    /// `PodTemplateSpec.spec`). On error the spec is left as it was.
    pub fn apply(&self, spec: &mut Value) -> Result<(), SideloadError> {
        let mut work = spec.clone();
        let map = as_object_mut(&mut work, "spec")?;
        self.apply_to(map)?;
        *spec = work;
        Ok(())
    }

    fn apply_to(&self, spec: &mut Map<String, Value>) -> Result<(), SideloadError> {
        if array_field(spec, "ephemeralContainers", "spec.ephemeralContainers")?
            .is_some_and(|list| !list.is_empty())
        {
            return Err(SideloadError::EphemeralContainers);
        }
        let pod_user = pod_security(spec)?;

        let containers = array_field(spec, "containers", "spec.containers")?;
        if containers.as_ref().is_none_or(|list| list.is_empty()) {
            return Err(SideloadError::NoContainers);
        }
        let agent_index = agent_index(spec)?;

        self.add_volume(spec)?;
        let init_user = pod_user
            .run_as_user
            .filter(|&uid| uid != 0)
            .map(|uid| (uid, pod_user.run_as_group));
        self.add_init_container(spec, init_user)?;
        if self.security == SecurityProfile::Hardened {
            harden_pod(spec)?;
        }

        let path = format!("spec.containers[{agent_index}]");
        let agent = spec
            .get_mut("containers")
            .and_then(Value::as_array_mut)
            .and_then(|list| list.get_mut(agent_index))
            .ok_or(SideloadError::NoContainers)?;
        let agent = as_object_mut(agent, &path)?;
        let default_workdir = prepare_agent(agent, &path, &pod_user, self.security)?;
        if default_workdir {
            add_workdir_volume(spec, agent_index, &path)?;
        }

        self.add_pull_secrets(spec)
    }

    fn add_volume(&self, spec: &mut Map<String, Value>) -> Result<(), SideloadError> {
        let expected = self.volume();
        let volumes = array_field_or_insert(spec, "volumes", "spec.volumes")?;
        match find_named(volumes, VOLUME_NAME, "spec.volumes")? {
            Some(index) if volumes[index] == expected => Ok(()),
            Some(index) => Err(SideloadError::VolumeConflict {
                path: format!("spec.volumes[{index}]"),
                method: self.method,
                found: volumes[index].to_string(),
                expected: expected.to_string(),
            }),
            None => {
                volumes.push(expected);
                Ok(())
            }
        }
    }

    fn add_init_container(
        &self,
        spec: &mut Map<String, Value>,
        pod_user: Option<(i64, Option<i64>)>,
    ) -> Result<(), SideloadError> {
        let Some(expected) = self.init_container(pod_user) else {
            if let Some(list) = array_field(spec, "initContainers", "spec.initContainers")?
                && let Some(index) = find_named(list, INIT_CONTAINER_NAME, "spec.initContainers")?
            {
                return Err(SideloadError::UnexpectedInitContainer {
                    path: format!("spec.initContainers[{index}]"),
                });
            }
            return Ok(());
        };
        let list = array_field_or_insert(spec, "initContainers", "spec.initContainers")?;
        match find_named(list, INIT_CONTAINER_NAME, "spec.initContainers")? {
            Some(index) => {
                let path = format!("spec.initContainers[{index}]");
                let merged = merge_init_container(&list[index], &expected, &path)?;
                check_init_security(&merged, &path)?;
                list[index] = merged;
                Ok(())
            }
            None => {
                // First, so that any other init container already finds the
                // supervisor in place.
                list.insert(0, expected);
                Ok(())
            }
        }
    }

    fn add_pull_secrets(&self, spec: &mut Map<String, Value>) -> Result<(), SideloadError> {
        if self.image_pull_secrets.is_empty() {
            return Ok(());
        }
        let secrets = array_field_or_insert(spec, "imagePullSecrets", "spec.imagePullSecrets")?;
        for name in &self.image_pull_secrets {
            if find_named(secrets, name, "spec.imagePullSecrets")?.is_none() {
                secrets.push(json!({ "name": name }));
            }
        }
        Ok(())
    }
}

/// The template's init container of the driver's name, merged with the one
/// the driver needs: the template's [`INIT_CONTAINER_TEMPLATE_FIELDS`] win,
/// fields the driver does not write are kept, and any other field the
/// driver writes that differs is a conflict.
fn merge_init_container(
    found: &Value,
    expected: &Value,
    path: &str,
) -> Result<Value, SideloadError> {
    let conflict = || SideloadError::InitContainerConflict {
        path: path.to_string(),
        found: found.to_string(),
        expected: expected.to_string(),
    };
    let (Some(found_map), Some(expected_map)) = (found.as_object(), expected.as_object()) else {
        return Err(conflict());
    };
    let mut merged = expected_map.clone();
    for (key, value) in found_map {
        match key.as_str() {
            field if INIT_CONTAINER_TEMPLATE_FIELDS.contains(&field) => {
                if !value.is_object() {
                    return Err(wrong_type(&format!("{path}.{field}"), value, "an object"));
                }
                merged.insert(key.clone(), value.clone());
            }
            _ => match expected_map.get(key) {
                Some(mine) if mine == value => {}
                Some(_) => return Err(conflict()),
                None => {
                    merged.insert(key.clone(), value.clone());
                }
            },
        }
    }
    Ok(Value::Object(merged))
}

/// What `copy-self` cannot run with, or what Kubernetes refuses outright:
/// a non-root rule contradicted by UID 0.
fn check_init_security(container: &Value, path: &str) -> Result<(), SideloadError> {
    let context = container.get("securityContext");
    let field = |name: &str| context.and_then(|context| context.get(name));
    if field("runAsNonRoot") == Some(&json!(true)) && field("runAsUser") == Some(&json!(0)) {
        return Err(SideloadError::InitContainerSecurity {
            path: format!("{path}.securityContext.runAsUser"),
            problem: "is 0 while runAsNonRoot is true, which Kubernetes refuses to start; set a non-root runAsUser, or leave runAsNonRoot out to run copy-self as root".to_string(),
        });
    }
    Ok(())
}

/// Pod-level hardening: the runtime's default seccomp filter, unless the
/// template chose a profile.
fn harden_pod(spec: &mut Map<String, Value>) -> Result<(), SideloadError> {
    let context = object_field_or_insert(spec, "securityContext", "spec.securityContext")?;
    if context.get("seccompProfile").is_none_or(Value::is_null) {
        context.insert(
            "seccompProfile".to_string(),
            json!({ "type": "RuntimeDefault" }),
        );
    }
    Ok(())
}

/// Agent hardening: no privilege escalation and no capabilities beyond
/// those the supervisor needs (`needed`), unless the template set them; a
/// template that drops what the supervisor needs is refused.
fn harden_agent(
    context: &mut Map<String, Value>,
    context_path: &str,
    workload_user: Option<i64>,
) -> Result<(), SideloadError> {
    let needed: &[&str] = if workload_user.is_some() {
        &RUN_AS_CAPABILITIES
    } else {
        &[]
    };
    if context
        .get("allowPrivilegeEscalation")
        .is_none_or(Value::is_null)
    {
        context.insert("allowPrivilegeEscalation".to_string(), json!(false));
    }
    let capabilities_path = format!("{context_path}.capabilities");
    match object_field(context, "capabilities", &capabilities_path)? {
        None => {
            let mut capabilities = Map::new();
            capabilities.insert("drop".to_string(), json!(["ALL"]));
            if !needed.is_empty() {
                capabilities.insert("add".to_string(), json!(needed));
            }
            context.insert("capabilities".to_string(), Value::Object(capabilities));
        }
        Some(capabilities) => {
            let drop_path = format!("{capabilities_path}.drop");
            let add_path = format!("{capabilities_path}.add");
            let drop = string_list(capabilities, "drop", &drop_path)?.unwrap_or_default();
            let add = string_list(capabilities, "add", &add_path)?.unwrap_or_default();
            let normal = |name: &str| name.trim_start_matches("CAP_").to_ascii_uppercase();
            let drops_all = drop.iter().any(|name| normal(name) == "ALL");
            for capability in needed {
                let dropped = drops_all || drop.iter().any(|name| normal(name) == *capability);
                let added = add.iter().any(|name| normal(name) == *capability);
                if let (true, false, Some(uid)) = (dropped, added, workload_user) {
                    return Err(SideloadError::CapabilityDropped {
                        path: drop_path,
                        add_path,
                        capability: (*capability).to_string(),
                        uid,
                        needed: needed.join(", "),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The pod-level user settings that matter to the agent container.
struct PodUser {
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    run_as_non_root: bool,
    /// fsGroup, then supplementalGroups, each once.
    groups: Vec<i64>,
}

fn pod_security(spec: &Map<String, Value>) -> Result<PodUser, SideloadError> {
    let Some(context) = object_field(spec, "securityContext", "spec.securityContext")? else {
        return Ok(PodUser {
            run_as_user: None,
            run_as_group: None,
            run_as_non_root: false,
            groups: Vec::new(),
        });
    };
    let mut groups: Vec<i64> = int_field(context, "fsGroup", "spec.securityContext.fsGroup")?
        .into_iter()
        .collect();
    let supplemental_path = "spec.securityContext.supplementalGroups";
    if let Some(list) = array_field(context, "supplementalGroups", supplemental_path)? {
        for (index, item) in list.iter().enumerate() {
            let gid = item.as_i64().ok_or_else(|| {
                wrong_type(&format!("{supplemental_path}[{index}]"), item, "an integer")
            })?;
            if !groups.contains(&gid) {
                groups.push(gid);
            }
        }
    }
    for (index, gid) in groups.iter().enumerate() {
        if !(0..=i64::from(u32::MAX - 1)).contains(gid) {
            let path = if index == 0 && context.contains_key("fsGroup") {
                "spec.securityContext.fsGroup".to_string()
            } else {
                supplemental_path.to_string()
            };
            return Err(SideloadError::WrongType {
                path,
                found: "out of range",
                expected: "a group id from 0 to 4294967294",
            });
        }
    }
    Ok(PodUser {
        run_as_user: int_field(context, "runAsUser", "spec.securityContext.runAsUser")?,
        run_as_group: int_field(context, "runAsGroup", "spec.securityContext.runAsGroup")?,
        run_as_non_root: bool_field(context, "runAsNonRoot", "spec.securityContext.runAsNonRoot")?
            .unwrap_or(false),
        groups,
    })
}

/// Whether the container sets a non-empty `workingDir`.
fn has_working_dir(agent: &Map<String, Value>, path: &str) -> Result<bool, SideloadError> {
    Ok(
        str_field(agent, "workingDir", &format!("{path}.workingDir"))?
            .is_some_and(|dir| !dir.is_empty()),
    )
}

/// The container named `agent`, else the first.
fn agent_index(spec: &Map<String, Value>) -> Result<usize, SideloadError> {
    let containers =
        array_field(spec, "containers", "spec.containers")?.ok_or(SideloadError::NoContainers)?;
    Ok(find_named(containers, AGENT_CONTAINER_NAME, "spec.containers")?.unwrap_or(0))
}

/// Makes the agent container start the supervisor as UID 0 with its original
/// command, mount the volume read-only, and report start-up failures.
///
/// Returns whether it rendered the default `--workdir` (the template names
/// no workingDir), which then gets a volume of its own.
fn prepare_agent(
    agent: &mut Map<String, Value>,
    path: &str,
    pod_user: &PodUser,
    security: SecurityProfile,
) -> Result<bool, SideloadError> {
    let mut default_workdir = false;
    let name = agent
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    check_agent_mounts(agent, path, &name)?;

    let context_path = format!("{path}.securityContext");
    let (user, group, non_root) = match object_field(agent, "securityContext", &context_path)? {
        Some(context) => (
            int_field(context, "runAsUser", &format!("{context_path}.runAsUser"))?,
            int_field(context, "runAsGroup", &format!("{context_path}.runAsGroup"))?,
            bool_field(
                context,
                "runAsNonRoot",
                &format!("{context_path}.runAsNonRoot"),
            )?,
        ),
        None => (None, None, None),
    };
    // The container's own setting overrides the pod's, as in Kubernetes.
    match non_root {
        Some(true) => {
            return Err(SideloadError::RunAsNonRoot {
                path: format!("{context_path}.runAsNonRoot"),
            });
        }
        None if pod_user.run_as_non_root => {
            return Err(SideloadError::RunAsNonRoot {
                path: "spec.securityContext.runAsNonRoot".to_string(),
            });
        }
        _ => {}
    }
    let workload_user = user.or(pod_user.run_as_user).filter(|&uid| uid != 0);
    let workload_group = group.or(pod_user.run_as_group);

    let command = string_list(agent, "command", &format!("{path}.command"))?;
    let args = string_list(agent, "args", &format!("{path}.args"))?;
    let already_wrapped = command
        .as_ref()
        .and_then(|command| command.first())
        .is_some_and(|first| first == INSTALLED_BINARY_PATH);

    let wrapped_run_as_user = match (&command, already_wrapped) {
        (Some(command), true) => wrapped_run_as(&wrapped_options(command, path)?),
        _ => None,
    };
    if already_wrapped {
        if let Some(uid) = user.filter(|&uid| uid != 0) {
            return Err(SideloadError::WrappedNotRoot {
                path: path.to_string(),
                container: name,
                uid,
            });
        }
    } else {
        let new_command = match (command, args) {
            (None, Some(_)) => {
                return Err(SideloadError::ArgsWithoutCommand {
                    path: path.to_string(),
                    container: name,
                });
            }
            (None, None) => {
                if let Some(uid) = workload_user {
                    return Err(SideloadError::IdleRunAs {
                        path: path.to_string(),
                        container: name,
                        uid,
                    });
                }
                // The supervisor's idle mode: no workload, so no --workdir
                // (the supervisor accepts it only with a command).
                vec![INSTALLED_BINARY_PATH.to_string()]
            }
            (Some(command), args) => {
                let mut wrapped = vec![INSTALLED_BINARY_PATH.to_string()];
                // A template's workingDir is where the runtime starts the
                // supervisor, and the workload inherits it, as it would
                // start there without the sideload; only without one does
                // the sandbox default apply (the supervisor creates it when
                // the image lacks it).
                if !has_working_dir(agent, path)? {
                    wrapped.extend([format!("--{FLAG_WORKDIR}"), DEFAULT_WORKDIR.to_string()]);
                    default_workdir = true;
                }
                if let Some(uid) = workload_user {
                    // Without runAsGroup the supervisor uses the UID as GID.
                    let run_as = match workload_group {
                        Some(gid) => format!("{uid}:{gid}"),
                        None => uid.to_string(),
                    };
                    wrapped.extend([format!("--{FLAG_RUN_AS}"), run_as]);
                    // The runtime gives the supervisor fsGroup and
                    // supplementalGroups; the privilege drop would lose
                    // them, so the supervisor is told to keep them.
                    if !pod_user.groups.is_empty() {
                        let groups: Vec<String> =
                            pod_user.groups.iter().map(i64::to_string).collect();
                        wrapped.extend([format!("--{FLAG_GROUPS}"), groups.join(",")]);
                    }
                }
                wrapped.push("--".to_string());
                wrapped.extend(command);
                wrapped.extend(args.unwrap_or_default());
                wrapped
            }
        };
        agent.insert("command".to_string(), json!(new_command));
        agent.remove("args");
    }

    let context = object_field_or_insert(agent, "securityContext", &context_path)?;
    context.insert("runAsUser".to_string(), json!(0));
    if security == SecurityProfile::Hardened {
        // An agent already wrapped carries its --run-as in its command.
        let run_as = if already_wrapped {
            wrapped_run_as_user
        } else {
            workload_user
        };
        let context = object_field_or_insert(agent, "securityContext", &context_path)?;
        harden_agent(context, &context_path, run_as)?;
    }
    agent.insert(
        "terminationMessagePolicy".to_string(),
        json!(TERMINATION_MESSAGE_POLICY),
    );

    let expected = Sideload::agent_mount();
    let mounts = array_field_or_insert(agent, "volumeMounts", &format!("{path}.volumeMounts"))?;
    if !mounts.contains(&expected) {
        mounts.push(expected);
    }
    Ok(default_workdir)
}

/// Gives the default workdir an `emptyDir` of its own, unless the agent
/// already mounts something there.
///
/// Why a volume and not only the supervisor's `--workdir` creation: the
/// runtime makes a mount point with all its privileges, whatever the
/// image's root looks like, while the hardened supervisor holds no
/// capability to write into a root-owned `/` of mode 0555 (Fedora and UBI
/// images, and every podman container on containers/storage) nor, under
/// `--run-as`, to give the folder to the workload's user. Kubernetes makes
/// an emptyDir writable by every user (and by fsGroup's group), so the
/// workload can write where it starts. The cost: whatever an image keeps at
/// `/sandbox` is hidden; such an image should name its folder as the
/// template's workingDir.
fn add_workdir_volume(
    spec: &mut Map<String, Value>,
    agent_index: usize,
    path: &str,
) -> Result<(), SideloadError> {
    let mount = json!({ "name": WORKDIR_VOLUME_NAME, "mountPath": DEFAULT_WORKDIR });
    let volume = json!({ "name": WORKDIR_VOLUME_NAME, "emptyDir": {} });
    let agent = spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .and_then(|list| list.get_mut(agent_index))
        .ok_or(SideloadError::NoContainers)?;
    let agent = as_object_mut(agent, path)?;
    let mounts_path = format!("{path}.volumeMounts");
    let mounts = array_field_or_insert(agent, "volumeMounts", &mounts_path)?;
    for (index, existing) in mounts.iter().enumerate() {
        let item_path = format!("{mounts_path}[{index}]");
        let map = as_object(existing, &item_path)?;
        if let Some(target) = str_field(map, "mountPath", &format!("{item_path}.mountPath"))?
            && clean_path(target) == DEFAULT_WORKDIR
        {
            // The template's own volume there (a workspace) is kept.
            return Ok(());
        }
    }
    mounts.push(mount);
    let volumes = array_field_or_insert(spec, "volumes", "spec.volumes")?;
    match find_named(volumes, WORKDIR_VOLUME_NAME, "spec.volumes")? {
        Some(index) if volumes[index] == volume => Ok(()),
        Some(index) => Err(SideloadError::WorkdirVolumeConflict {
            path: format!("spec.volumes[{index}]"),
            found: volumes[index].to_string(),
            expected: volume.to_string(),
        }),
        None => {
            volumes.push(volume);
            Ok(())
        }
    }
}

/// The supervisor's flags that take a value, as `--flag VALUE` or
/// `--flag=VALUE` (clap accepts both).
const VALUE_FLAGS: [&str; 6] = [
    FLAG_WORKDIR,
    FLAG_RUN_AS,
    FLAG_GROUPS,
    FLAG_SIGNAL_TARGET,
    FLAG_KILL_GRACE,
    FLAG_TERMINATION_LOG,
];

/// The supervisor's flags without a value.
const SWITCH_FLAGS: [&str; 1] = [FLAG_NO_NEW_PRIVS];

/// The supervisor's options in an already wrapped command (the words
/// between the binary and `--`), each flag with its value, in either form.
fn wrapped_options(
    command: &[String],
    path: &str,
) -> Result<Vec<(&'static str, Option<String>)>, SideloadError> {
    let bad = |problem: String| SideloadError::WrappedCommand {
        path: format!("{path}.command"),
        problem,
    };
    let mut options = Vec::new();
    let mut words = command.iter().skip(1);
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        let Some(flag) = word.strip_prefix("--") else {
            return Err(bad(format!(
                "{word:?} is not a supervisor option (expected --FLAG, --FLAG=VALUE, or -- before the workload)"
            )));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        if let Some(known) = VALUE_FLAGS.iter().find(|known| **known == name) {
            let value = match inline {
                Some(value) => value,
                None => words.next().cloned().ok_or_else(|| {
                    bad(format!(
                        "--{name} has no value (expected --{name} VALUE or --{name}=VALUE)"
                    ))
                })?,
            };
            options.push((*known, Some(value)));
        } else if let Some(known) = SWITCH_FLAGS.iter().find(|known| **known == name) {
            options.push((*known, inline));
        } else {
            return Err(bad(format!(
                "--{name} is not an option of the supervisor (expected one of --{}, --{})",
                VALUE_FLAGS.join(", --"),
                SWITCH_FLAGS.join(", --")
            )));
        }
    }
    Ok(options)
}

/// The user of `--run-as UID[:GID]` (or `--run-as=UID[:GID]`) among a
/// wrapped command's options; a name the driver cannot resolve counts as
/// non-root (the hardening keeps what the drop needs).
fn wrapped_run_as(options: &[(&'static str, Option<String>)]) -> Option<i64> {
    let value = options
        .iter()
        .rev()
        .find(|(flag, _)| *flag == FLAG_RUN_AS)?
        .1
        .as_deref()?;
    let user = value.split(':').next().unwrap_or(value);
    match user.parse::<i64>() {
        Ok(uid) => Some(uid).filter(|&uid| uid != 0),
        Err(_) if user == "root" => None,
        Err(_) => Some(i64::from(u32::MAX)),
    }
}

/// Refuses any mount at the supervisor's mount path (other than exactly the
/// driver's own) or below it. A mount *above* it (say at `/opt`) is left
/// alone: the supervisor's mount only hides `openshell/bin` inside it, a
/// path the contract reserves.
fn check_agent_mounts(
    agent: &Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<(), SideloadError> {
    let mounts_path = format!("{path}.volumeMounts");
    let Some(mounts) = array_field(agent, "volumeMounts", &mounts_path)? else {
        return Ok(());
    };
    let expected = Sideload::agent_mount();
    for (index, mount) in mounts.iter().enumerate() {
        let mount_path = format!("{mounts_path}[{index}]");
        let map = as_object(mount, &mount_path)?;
        let Some(target) = str_field(map, "mountPath", &format!("{mount_path}.mountPath"))? else {
            continue;
        };
        // Runtimes clean mount paths (containerd and CRI-O alike), so
        // `/opt/./openshell//bin/x/..` is the supervisor's mount path, and
        // a mount below it (a file over the binary) lands on top of it.
        let normalised = clean_path(target);
        let overlaps =
            normalised == MOUNT_PATH || normalised.starts_with(&format!("{MOUNT_PATH}/"));
        if overlaps && *mount != expected {
            let volume = str_field(map, "name", &format!("{mount_path}.name"))?.unwrap_or("");
            let found = if volume == VOLUME_NAME {
                format!("volume {volume:?} differently ({mount})")
            } else {
                format!("volume {volume:?}")
            };
            return Err(SideloadError::MountConflict {
                path: mount_path,
                container: name.to_string(),
                found,
                mount_path: target.to_string(),
            });
        }
    }
    Ok(())
}

/// `path` cleaned as Go's `path.Clean` cleans an absolute path (a relative
/// one is taken from the root): no empty or `.` segments, `..` removes the
/// segment before it (and stays at the root), no trailing slash.
pub fn clean_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(path: &str, value: &Value, expected: &'static str) -> SideloadError {
    SideloadError::WrongType {
        path: path.to_string(),
        found: type_name(value),
        expected,
    }
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, SideloadError> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(path, value, "an object"))
}

fn as_object_mut<'a>(
    value: &'a mut Value,
    path: &str,
) -> Result<&'a mut Map<String, Value>, SideloadError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(wrong_type(path, other, "an object")),
    }
}

/// A field that must be an array when present (`null` counts as absent, as
/// in Kubernetes, which serialises empty lists and nulls alike as absent).
fn array_field<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, SideloadError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list)),
        Some(other) => Err(wrong_type(path, other, "an array")),
    }
}

fn array_field_or_insert<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a mut Vec<Value>, SideloadError> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(list) => Ok(list),
        other => Err(wrong_type(path, other, "an array")),
    }
}

fn object_field<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, SideloadError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(wrong_type(path, other, "an object")),
    }
}

fn object_field_or_insert<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a mut Map<String, Value>, SideloadError> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(object) => Ok(object),
        other => Err(wrong_type(path, other, "an object")),
    }
}

fn int_field(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<i64>, SideloadError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(path, value, "an integer")),
    }
}

fn bool_field(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<bool>, SideloadError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(wrong_type(path, other, "a boolean")),
    }
}

fn str_field<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, SideloadError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(path, other, "a string")),
    }
}

fn string_list(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Vec<String>>, SideloadError> {
    // An empty `command` or `args` means "not set" to Kubernetes.
    let Some(list) = array_field(map, key, path)?.filter(|list| !list.is_empty()) else {
        return Ok(None);
    };
    list.iter()
        .enumerate()
        .map(|(index, item)| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| wrong_type(&format!("{path}[{index}]"), item, "a string"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Index of the entry whose `name` is `name`, in a list of named objects.
fn find_named(list: &[Value], name: &str, path: &str) -> Result<Option<usize>, SideloadError> {
    for (index, item) in list.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let map = as_object(item, &item_path)?;
        if str_field(map, "name", &format!("{item_path}.name"))? == Some(name) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}
