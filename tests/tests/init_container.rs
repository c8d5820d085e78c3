//! The init-container method on a real container runtime: `podman kube play`
//! runs exactly the YAML the driver renders, hardened as it is by default.
//! The init container's copy-self fills the emptyDir from the FROM-scratch
//! supervisor image (no shell, no cp) as UID 65532, and the agent runs the
//! supervisor from the read-only mount with no capabilities but those it
//! needs to start the workload as another user.
//!
//! The one translation, for the rerun test only: podman gives every played
//! pod a fresh emptyDir, so to run a pod twice on the *same* volume the
//! emptyDir is swapped for a claim on a named podman volume, which is how a
//! restarted pod on the same node keeps its emptyDir in Kubernetes.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    AGENT_IMAGE, WORKLOAD_EXIT, assert_workload_ran, build_supervisor_image, render,
    storage_with_agent,
};
use openshell_contract::{BINARY_NAME, INIT_CONTAINER_NAME, VOLUME_NAME};
use openshell_driver_kubernetes::yaml::to_yaml;
use openshell_driver_kubernetes::yaml_read::read_document;
use openshell_testsupport::Containers;

const SUPERVISOR: &str = "localhost/openshell/supervisor:e2e";

/// Renders the init-container pod `name` as YAML.
fn render_init_pod(name: &str) -> String {
    render(&[
        "--sandbox-image",
        AGENT_IMAGE,
        "--supervisor-image",
        SUPERVISOR,
        "--supervisor-sideload-method",
        "init-container",
        "--name",
        name,
        "--format",
        "yaml",
    ])
}

/// Plays `yaml` as pod `name`, waits for its agent, and returns the agent's
/// exit code and logs.
fn play(containers: &Containers, name: &str, yaml: &str) -> (String, String) {
    let file = containers.dir().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    containers.podman_ok(["kube".as_ref(), "play".as_ref(), file.as_os_str()]);
    let agent = format!("{name}-agent");
    let code = containers.podman_ok(["wait", &agent]);
    let logs = containers.podman_ok(["logs", &agent]);
    (code.trim().to_string(), logs)
}

fn storage_with_images(test: &str) -> Option<Containers> {
    let containers = storage_with_agent(test)?;
    let layout = containers.dir().join("layout");
    build_supervisor_image(&layout, "e2e", &[]);
    containers.load_oci_layout(&layout, "e2e", SUPERVISOR);
    Some(containers)
}

#[test]
fn init_container_pod_plays_as_rendered() {
    let test = "init_container_pod_plays_as_rendered";
    let Some(containers) = storage_with_images(test) else {
        return;
    };
    let yaml = render_init_pod("e2e-init");
    let pod = read_document(&yaml).unwrap();
    assert_eq!(
        pod["spec"]["initContainers"][0]["name"].as_str(),
        Some(INIT_CONTAINER_NAME)
    );
    assert!(pod["spec"]["volumes"][0]["emptyDir"].is_object(), "{yaml}");

    let (code, logs) = play(&containers, "e2e-init", &yaml);
    assert_workload_ran(&logs);
    assert_eq!(code, WORKLOAD_EXIT.to_string(), "{logs}");
}

#[test]
fn init_container_rerun_on_the_same_volume_is_harmless() {
    let test = "init_container_rerun_on_the_same_volume_is_harmless";
    let Some(containers) = storage_with_images(test) else {
        return;
    };
    let volume = "e2e-supervisor-bin";
    containers.podman_ok(["volume", "create", volume]);
    let claim = |name: &str| {
        let yaml = render_init_pod(name);
        let mut pod = read_document(&yaml).unwrap();
        let volumes = pod["spec"]["volumes"].as_array_mut().unwrap();
        let supervisor = volumes
            .iter_mut()
            .find(|v| v["name"].as_str() == Some(VOLUME_NAME))
            .unwrap();
        *supervisor = read_document(&format!(
            "name: {VOLUME_NAME}\npersistentVolumeClaim:\n  claimName: {volume}\n"
        ))
        .unwrap();
        to_yaml(&pod)
    };
    let mountpoint =
        containers.podman_ok(["volume", "inspect", volume, "--format", "{{.Mountpoint}}"]);
    let installed = std::path::Path::new(mountpoint.trim()).join(BINARY_NAME);

    let (code, logs) = play(&containers, "e2e-first", &claim("e2e-first"));
    assert_workload_ran(&logs);
    assert_eq!(code, WORKLOAD_EXIT.to_string(), "{logs}");
    use std::os::unix::fs::MetadataExt;
    let first = std::fs::metadata(&installed).unwrap();
    assert_eq!(first.mode() & 0o777, 0o755);

    // Second pod, same volume: copy-self finds an identical binary and
    // leaves it alone; the sandbox starts the same way.
    let (code, logs) = play(&containers, "e2e-second", &claim("e2e-second"));
    assert_workload_ran(&logs);
    assert_eq!(code, WORKLOAD_EXIT.to_string(), "{logs}");
    let second = std::fs::metadata(&installed).unwrap();
    assert_eq!(
        (second.ino(), second.mtime_nsec()),
        (first.ino(), first.mtime_nsec())
    );
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(openshell_testsupport::static_supervisor_binary()).unwrap()
    );
}

#[test]
fn template_user_runs_the_workload_while_the_supervisor_starts_as_root() {
    let test = "template_user_runs_the_workload_while_the_supervisor_starts_as_root";
    let Some(containers) = storage_with_images(test) else {
        return;
    };
    // The operator's template asks for user 1000: the driver keeps the
    // supervisor at UID 0 and has it drop to 1000 for the workload.
    let template = containers.dir().join("template.yaml");
    std::fs::write(
        &template,
        format!(
            "metadata:\n  name: e2e-template\nspec:\n  restartPolicy: Never\n  securityContext:\n    runAsUser: 1000\n  containers:\n  - name: agent\n    image: {AGENT_IMAGE}\n    imagePullPolicy: Never\n"
        ),
    )
    .unwrap();
    let mut render = common::driver();
    render
        .arg("render")
        .arg("--template")
        .arg(&template)
        .args(["--supervisor-sideload-method", "init-container"])
        .args(["--supervisor-image", SUPERVISOR, "--format", "yaml", "--"])
        .args([
            "sh",
            "-c",
            "echo uid=$(id -u) gid=$(id -g) pwd=$(pwd) supervisor-uid=$(stat -c %u /proc/1)",
        ]);
    let yaml = common::run_ok(render);

    let (code, logs) = play(&containers, "e2e-template", &yaml);
    assert_eq!(code, "0", "{logs}\n{yaml}");
    // The workload runs as 1000 in the workdir; PID 1, the supervisor,
    // stays root (a non-root workload cannot even read where its binary is).
    assert!(
        logs.contains("uid=1000 gid=1000 pwd=/sandbox supervisor-uid=0"),
        "{logs}"
    );
}

/// The workload of the hardening scenarios: who installed the binary, and
/// the process state of the workload and of PID 1 (the supervisor).
const PROBE: &str = "echo installed-by=$(stat -c %u:%g /opt/openshell/bin/openshell-sandbox); \
     echo uid=$(id -u); \
     while read key value rest; do echo workload-$key$value; done < /proc/self/status; \
     while read key value rest; do echo supervisor-$key$value; done < /proc/1/status";

/// The value of `KEY:` in the probe's output for `who` (workload or
/// supervisor).
fn status<'a>(logs: &'a str, who: &str, key: &str) -> &'a str {
    let prefix = format!("{who}-{key}:");
    logs.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{logs}"))
        .trim()
}

#[test]
fn hardened_pod_copies_as_65532_and_runs_the_workload_without_capabilities() {
    let test = "hardened_pod_copies_as_65532_and_runs_the_workload_without_capabilities";
    let Some(containers) = storage_with_images(test) else {
        return;
    };
    let mut render = common::driver();
    render
        .arg("render")
        .args([
            "--sandbox-image",
            AGENT_IMAGE,
            "--supervisor-image",
            SUPERVISOR,
        ])
        .args(["--supervisor-sideload-method", "init-container"])
        .args(["--name", "e2e-hardened", "--format", "yaml", "--"])
        .args(["sh", "-c", PROBE]);
    let yaml = common::run_ok(render);
    let pod = read_document(&yaml).unwrap();
    assert_eq!(
        pod["spec"]["initContainers"][0]["securityContext"]["runAsUser"].as_i64(),
        Some(65532),
        "{yaml}"
    );

    let (code, logs) = play(&containers, "e2e-hardened", &yaml);
    assert_eq!(code, "0", "{logs}\n{yaml}");
    // copy-self ran as 65532 and could write the emptyDir (podman hands a
    // new emptyDir to the first container's user; Kubernetes creates it
    // with mode 0777): no fsGroup needed.
    assert!(logs.contains("installed-by=65532:65532"), "{logs}");
    assert!(logs.contains("uid=0"), "{logs}");
    // No capabilities at all, no privilege gain, the runtime's seccomp
    // filter (mode 2), for the supervisor and the workload alike.
    for who in ["workload", "supervisor"] {
        assert_eq!(
            status(&logs, who, "CapEff"),
            "0000000000000000",
            "{who}: {logs}"
        );
        assert_eq!(
            status(&logs, who, "CapBnd"),
            "0000000000000000",
            "{who}: {logs}"
        );
        assert_eq!(status(&logs, who, "NoNewPrivs"), "1", "{who}: {logs}");
        assert_eq!(status(&logs, who, "Seccomp"), "2", "{who}: {logs}");
    }
}

#[test]
fn hardened_pod_keeps_what_the_supervisor_needs_for_another_user_and_forwards_sigterm() {
    let test = "hardened_pod_keeps_what_the_supervisor_needs_for_another_user_and_forwards_sigterm";
    let Some(containers) = storage_with_images(test) else {
        return;
    };
    let template = containers.dir().join("template.yaml");
    std::fs::write(
        &template,
        format!(
            "metadata:\n  name: e2e-run-as\nspec:\n  restartPolicy: Never\n  securityContext:\n    runAsUser: 1000\n  containers:\n  - name: agent\n    image: {AGENT_IMAGE}\n    imagePullPolicy: Never\n"
        ),
    )
    .unwrap();
    // The workload reports, then waits for SIGTERM: only a supervisor that
    // kept KILL can forward it to a process of another user.
    let script = format!(
        "{PROBE}; trap 'echo got-term; exit 9' TERM; echo ready; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 7"
    );
    let mut render = common::driver();
    render
        .arg("render")
        .arg("--template")
        .arg(&template)
        .args(["--supervisor-image", SUPERVISOR])
        .args(["--supervisor-sideload-method", "init-container"])
        .args(["--format", "yaml", "--", "sh", "-c", &script]);
    let yaml = common::run_ok(render);
    let file = containers.dir().join("e2e-run-as.yaml");
    std::fs::write(&file, &yaml).unwrap();
    containers.podman_ok(["kube".as_ref(), "play".as_ref(), file.as_os_str()]);

    let agent = "e2e-run-as-agent";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let logs = loop {
        let logs = containers.podman_ok(["logs", agent]);
        if logs.contains("ready") {
            break logs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the workload did not start within 60 s:\n{logs}\n{yaml}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // The init container took the pod's user.
    assert!(logs.contains("installed-by=1000:1000"), "{logs}");
    assert!(logs.contains("uid=1000"), "{logs}");
    // SETUID (7), SETGID (6) and KILL (5) for the supervisor, nothing for
    // the workload it started as 1000.
    assert_eq!(
        status(&logs, "supervisor", "CapEff"),
        "00000000000000e0",
        "{logs}"
    );
    assert_eq!(
        status(&logs, "workload", "CapEff"),
        "0000000000000000",
        "{logs}"
    );
    assert_eq!(status(&logs, "workload", "NoNewPrivs"), "1", "{logs}");

    containers.podman_ok(["stop", "--time", "20", agent]);
    let code = containers.podman_ok(["wait", agent]);
    let logs = containers.podman_ok(["logs", agent]);
    assert!(logs.contains("got-term"), "{logs}");
    assert_eq!(code.trim(), "9", "{logs}");
}
