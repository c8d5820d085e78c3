//! podman and buildah with storage and settings of their own.
//!
//! Each [`Containers`] fixture keeps images and containers in its own
//! temporary `--root`/`--runroot` (vfs driver), and points `CONTAINERS_CONF`
//! and `CONTAINERS_REGISTRIES_CONF` at the project's files, so tests never see
//! or touch a user's images or settings. Dropping the fixture removes every
//! pod and container it started, then the storage.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use wait_timeout::ChildExt;

use crate::tools::require;

/// apt-get line that installs what this fixture needs.
pub const INSTALL_HINT: &str = "apt-get install podman runc buildah skopeo umoci";

/// The project's containers.conf (runc, cgroupfs, explicit ulimits).
pub fn containers_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("containers.conf")
}

/// The project's registries.conf (no short-name search).
pub fn registries_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("registries.conf")
}

/// Private container storage for one test, used by podman and buildah.
pub struct Containers {
    dir: TempDir,
}

impl Containers {
    /// Storage for `test`, or `None` (after printing why) when podman or runc
    /// is missing outside CI. In CI a missing tool fails the test.
    pub fn new(test: &str) -> Option<Self> {
        if !require(test, &["podman", "runc"], INSTALL_HINT) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("openshell-podman-")
            .tempdir()
            .unwrap_or_else(|err| panic!("could not create podman storage for {test}: {err}"));
        Some(Self { dir })
    }

    /// Folder the fixture owns (storage lives below it); tests may put
    /// their own files here too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn storage_args(&self) -> [String; 6] {
        let root = self.dir.path().join("root");
        let runroot = self.dir.path().join("runroot");
        [
            "--root".into(),
            root.display().to_string(),
            "--runroot".into(),
            runroot.display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
        ]
    }

    fn tool(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("CONTAINERS_CONF", containers_conf())
            .env("CONTAINERS_REGISTRIES_CONF", registries_conf())
            .env("TMPDIR", self.dir.path())
            .args(self.storage_args());
        command
    }

    /// `podman` with this fixture's storage and settings.
    pub fn podman(&self) -> Command {
        self.tool("podman")
    }

    /// `buildah` with this fixture's storage and settings.
    pub fn buildah(&self) -> Command {
        self.tool("buildah")
    }

    /// `skopeo` with this fixture's settings (it needs no storage flags:
    /// name the storage with [`Containers::storage_reference`]).
    pub fn skopeo(&self) -> Command {
        let mut command = Command::new("skopeo");
        command
            .env("CONTAINERS_CONF", containers_conf())
            .env("CONTAINERS_REGISTRIES_CONF", registries_conf())
            .env("TMPDIR", self.dir.path());
        command
    }

    /// The skopeo/containers-image name of `image` in this fixture's
    /// storage: `containers-storage:[vfs@ROOT+RUNROOT]IMAGE`.
    pub fn storage_reference(&self, image: &str) -> String {
        format!(
            "containers-storage:[vfs@{}+{}]{image}",
            self.dir.path().join("root").display(),
            self.dir.path().join("runroot").display()
        )
    }

    /// Copies the image tagged `tag` in the OCI layout `layout` into this
    /// fixture's storage as `image` (e.g. `localhost/openshell/supervisor:t`).
    pub fn load_oci_layout(&self, layout: &Path, tag: &str, image: &str) {
        let mut command = self.skopeo();
        command
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(self.storage_reference(image));
        run_ok(command);
    }

    /// Builds `context` into the image `tag` with `buildah bud` (from
    /// `containerfile`, else the context's own Containerfile/Dockerfile),
    /// in this fixture's storage.
    pub fn buildah_bud(&self, containerfile: Option<&Path>, context: &Path, tag: &str) {
        let mut command = self.buildah();
        command.args(["bud", "--quiet", "--layers=false"]);
        if let Some(file) = containerfile {
            command.arg("-f").arg(file);
        }
        command.args(["-t", tag]).arg(context);
        run_ok(command);
    }

    /// Runs podman with `args`, returning its output whatever the status.
    pub fn podman_output<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.podman();
        command.args(args);
        run(command)
    }

    /// Runs podman with `args`, asserting success; returns its stdout.
    pub fn podman_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.podman();
        command.args(args);
        run_ok(command)
    }

    /// Runs buildah with `args`, asserting success; returns its stdout.
    pub fn buildah_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.buildah();
        command.args(args);
        run_ok(command)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        // Containers must go before their storage: a running container keeps
        // mounts under runroot that would make the folder removal fail.
        // Plain `output()`: a panic here, while a failed test unwinds, would
        // abort the whole test binary.
        for args in [
            &["pod", "rm", "--all", "--force", "--time", "0"][..],
            &["rm", "--all", "--force", "--time", "0"],
        ] {
            let mut podman = self.podman();
            podman.args(args);
            let _ = podman.output();
        }
        let mut buildah = self.buildah();
        buildah.args(["rm", "--all"]);
        let _ = buildah.output();
    }
}

/// How long any one tool run may take before the test fails: a hung
/// container must fail its test, not hang the whole run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `command` (stdin closed), returning its output whatever the status.
/// Panics, after killing it and everything it started, when it runs longer
/// than [`COMMAND_TIMEOUT`].
pub fn run(command: Command) -> Output {
    run_bounded(command, None, COMMAND_TIMEOUT)
}

/// `Command::output` with [`run`]'s deadline, for a command built in place
/// (`Command::new(..).args(..).bounded_output()`).
pub trait BoundedOutput {
    /// Runs the command as [`run`] does (stdin closed, killed with
    /// everything it started and the test failed after
    /// [`COMMAND_TIMEOUT`]), returning its output whatever the status. The
    /// command is used up: what is left in its place runs nothing.
    fn bounded_output(&mut self) -> Output;
}

impl BoundedOutput for Command {
    fn bounded_output(&mut self) -> Output {
        run(std::mem::replace(self, Command::new("true")))
    }
}

/// [`run`] with a deadline of its own instead of [`COMMAND_TIMEOUT`]: a
/// test that asserts how long a command takes kills it (and fails) at
/// `deadline` rather than minutes later.
pub fn run_within(command: Command, deadline: Duration) -> Output {
    run_bounded(command, None, deadline)
}

/// [`run`] with `stdin` written to the command's standard input, which is
/// then closed.
pub fn run_with_stdin(command: Command, stdin: &[u8]) -> Output {
    run_bounded(command, Some(stdin.to_vec()), COMMAND_TIMEOUT)
}

fn run_bounded(mut command: Command, stdin: Option<Vec<u8>>, deadline: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    let description = format!("{command:?}");
    // Its own process group, so a timeout kills the helpers it started too
    // (podman's storage-applyLayer blocked on a fifo outlived its parent
    // otherwise).
    command.process_group(0);
    let (mut child, stdout, stderr) = spawn_fed(command, &description, stdin);
    let status = match child.wait_timeout(deadline) {
        Ok(Some(status)) => status,
        Ok(None) => {
            if let Ok(group) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) with a negative pid signals the process
                // group this function created; no memory is involved.
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "{description} did not finish within {deadline:?}; killed it\nstderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        Err(err) => panic!("could not wait for {description}: {err}"),
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Output of a child still being read: joined, it gives the bytes.
pub type Drained = std::thread::JoinHandle<Vec<u8>>;

/// Starts `command` with stdin closed and both outputs read on threads while
/// the caller waits, so a chatty child never blocks on a full pipe.
pub fn spawn_drained(
    command: Command,
    description: &str,
) -> (std::process::Child, Drained, Drained) {
    spawn_fed(command, description, None)
}

/// [`spawn_drained`], with `stdin` (when given) written to the child on a
/// thread of its own and then closed, so a child that reads slowly or not
/// at all cannot block the caller.
fn spawn_fed(
    mut command: Command,
    description: &str,
    stdin: Option<Vec<u8>>,
) -> (std::process::Child, Drained, Drained) {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {description}: {err}"));
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::Write as _;
            // A child that exits without reading closes the pipe: fine.
            let _ = pipe.write_all(&bytes);
        });
    }
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    (child, stdout, stderr)
}

/// Status, stdout and stderr of a finished command, for assertion messages.
pub fn output_text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `command`, asserting it succeeds; returns its stdout as text.
pub fn run_ok(command: Command) -> String {
    let description = format!("{command:?}");
    let output = run(command);
    assert!(
        output.status.success(),
        "{description} failed: {}",
        output_text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
