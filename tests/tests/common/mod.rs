//! What every end-to-end scenario shares: the tools run through their
//! command lines (as users and CI scripts run them), private container
//! storage holding the stand-in agent image, and the workload whose output
//! shows where and how it ran.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use openshell_contract::build_result::BuildResult;
use openshell_contract::{INSTALLED_BINARY_PATH, MOUNT_PATH};
pub use openshell_testsupport::podman::output_text;
use openshell_testsupport::{Containers, static_supervisor_binary, workspace_binary};

/// The stand-in agent image: busybox, nothing of OpenShell.
pub const AGENT_IMAGE: &str = "localhost/agent:e2e";

/// Exit code the workload ends with, so a test sees it came back through
/// the supervisor rather than a default 0 or 1.
pub const WORKLOAD_EXIT: i32 = 7;

/// The workload: prints a marker, who runs as PID 1 (the supervisor), its
/// user and directory, and whether the supervisor mount can be written.
pub fn workload() -> Vec<String> {
    let script = format!(
        "echo workload-output; \
         echo pid1=$(readlink /proc/1/exe); \
         echo uid=$(id -u) pwd=$(pwd); \
         if touch {MOUNT_PATH}/probe 2>/dev/null; then echo mount=writable; else echo mount=read-only; fi; \
         exit {WORKLOAD_EXIT}"
    );
    vec!["sh".into(), "-c".into(), script]
}

/// Asserts the workload's output shows it ran under the supervisor, in the
/// sandbox workdir, as root, with the supervisor mount read-only.
pub fn assert_workload_ran(output: &str) {
    assert!(
        output.contains("workload-output"),
        "no workload output:\n{output}"
    );
    assert!(
        output.contains(&format!("pid1={INSTALLED_BINARY_PATH}")),
        "PID 1 is not the supervisor from the mount:\n{output}"
    );
    assert!(output.contains("uid=0 pwd=/sandbox"), "{output}");
    assert!(output.contains("mount=read-only"), "{output}");
}

/// `build-image`, built from this workspace.
pub fn build_image() -> Command {
    let mut command = Command::new(workspace_binary("build-image", "build-image"));
    command.env_remove("SOURCE_DATE_EPOCH").stdin(Stdio::null());
    command
}

/// The driver's binary, built from this workspace.
pub fn driver() -> Command {
    let mut command = Command::new(workspace_binary(
        "openshell-driver-kubernetes",
        "openshell-driver-kubernetes",
    ));
    // The driver reads its settings from the environment too; a developer's
    // own settings must not leak into a test.
    for (name, _) in std::env::vars() {
        if name.starts_with("OPENSHELL_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `command`, asserting success; returns stdout.
pub fn run_ok(command: Command) -> String {
    openshell_testsupport::podman::run_ok(command)
}

/// Runs `command`, asserting failure; returns stderr.
pub fn run_fails(command: Command) -> String {
    let description = format!("{command:?}");
    let output = openshell_testsupport::podman::run(command);
    assert!(
        !output.status.success(),
        "expected {description} to fail\n{}",
        output_text(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Builds the supervisor image with `build-image` from the static release
/// binary into the OCI layout `layout` with `tag`, plus `extra` options;
/// returns the build result it reports.
pub fn build_supervisor_image(layout: &Path, tag: &str, extra: &[&str]) -> BuildResult {
    let mut command = build_image();
    command
        .arg("--binary")
        .arg(static_supervisor_binary())
        .arg("--output")
        .arg(layout)
        .args(["--tag", tag, "--json", "--quiet"])
        .args(extra);
    serde_json::from_str(&run_ok(command)).unwrap()
}

/// Renders a sandbox pod with the driver: `args` are the driver's options;
/// the workload follows `--`.
pub fn render(args: &[&str]) -> String {
    let mut command = driver();
    command.arg("render").args(args).arg("--").args(workload());
    run_ok(command)
}

/// Private storage with the agent image in it, or `None` when the tools are
/// missing outside CI (the fixture says so).
pub fn storage_with_agent(test: &str) -> Option<Containers> {
    let containers = Containers::new(test)?;
    containers.build_agent_image(test, AGENT_IMAGE)?;
    Some(containers)
}

/// Runs the agent container of `pod` (JSON) with podman the way a kubelet
/// would with image volumes; returns the output (stdout then stderr) and the
/// exit code.
pub fn run_pod_agent(containers: &Containers, pod: &str) -> (String, Option<i32>) {
    let pod: serde_json::Value = serde_json::from_str(pod).unwrap();
    // Each emptyDir (the driver's /sandbox) is a fresh podman volume, as
    // each new pod gets fresh emptyDirs.
    let volumes: std::collections::BTreeMap<String, String> =
        openshell_e2e::empty_dir_volumes(&pod)
            .into_iter()
            .map(|name| {
                let volume = containers
                    .podman_ok(["volume", "create"])
                    .trim()
                    .to_string();
                (name, volume)
            })
            .collect();
    let args = openshell_e2e::podman_run_args_with_volumes(&pod, &volumes).unwrap();
    let output = containers.podman_output(
        ["run", "--rm", "--network", "none", "--pull", "never"]
            .into_iter()
            .map(String::from)
            .chain(args),
    );
    let combined = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (combined, output.status.code())
}
