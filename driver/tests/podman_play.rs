//! Rendered pods run as they are: the init-container pod with
//! `podman kube play`, and the image-volume pod's agent command with the
//! supervisor image mounted the way a Kubernetes image volume mounts it
//! (`podman run --mount type=image`; podman 4.3's kube play refuses image
//! volumes). Real images: the static supervisor in the FROM-scratch image of
//! Dockerfile.scratch, and a busybox agent image with no OpenShell in it.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::run_ok;
use openshell_contract::{BINARY_NAME, MOUNT_PATH};
use openshell_testsupport::supervisor::workspace_root;
use openshell_testsupport::{Containers, static_supervisor_binary};
use serde_json::Value;

const SUPERVISOR_IMAGE: &str = "localhost/openshell/supervisor:play";
const AGENT_IMAGE: &str = "localhost/agent:play";

/// The workload: who it runs as, where, and whether the supervisor is in
/// place.
const WORKLOAD: &str = "echo uid=$(id -u) gid=$(id -g) pwd=$(pwd); test -x /opt/openshell/bin/openshell-sandbox && echo supervisor-installed";

/// Private storage holding the supervisor and agent images.
fn containers_with_images(test: &str) -> Option<Containers> {
    let containers = Containers::new(test)?;
    let context = containers.dir().join("supervisor-context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(static_supervisor_binary(), context.join(BINARY_NAME)).unwrap();
    containers.buildah_ok([
        "bud".as_ref(),
        "--quiet".as_ref(),
        "--layers=false".as_ref(),
        "-f".as_ref(),
        workspace_root().join("Dockerfile.scratch").as_os_str(),
        "-t".as_ref(),
        SUPERVISOR_IMAGE.as_ref(),
        context.as_os_str(),
    ]);
    containers.build_agent_image(test, AGENT_IMAGE)?;
    Some(containers)
}

#[test]
fn the_init_container_pod_plays_as_rendered() {
    let test = "the_init_container_pod_plays_as_rendered";
    let Some(containers) = containers_with_images(test) else {
        return;
    };
    // A template whose workload user is 1000: the supervisor starts as root
    // and runs the workload as 1000.
    let template = containers.dir().join("template.yaml");
    std::fs::write(
        &template,
        format!(
            "metadata:\n  name: play-init\nspec:\n  restartPolicy: Never\n  securityContext:\n    runAsUser: 1000\n  containers:\n  - name: agent\n    image: {AGENT_IMAGE}\n    imagePullPolicy: Never\n"
        ),
    )
    .unwrap();
    let template = template.display().to_string();
    let (yaml, _) = run_ok(
        &[
            "render",
            "--template",
            &template,
            "--supervisor-sideload-method",
            "init-container",
            "--supervisor-image",
            SUPERVISOR_IMAGE,
            "--supervisor-image-pull-policy",
            "Never",
            "--format",
            "yaml",
            "--",
            "sh",
            "-c",
            WORKLOAD,
        ],
        &[],
    );
    let pod_file = containers.dir().join("pod.yaml");
    std::fs::write(&pod_file, &yaml).unwrap();

    containers.podman_ok(["kube".as_ref(), "play".as_ref(), pod_file.as_os_str()]);
    let exit = containers.podman_ok(["wait", "play-init-agent"]);
    let logs = containers.podman_ok(["logs", "play-init-agent"]);
    assert_eq!(
        exit.trim(),
        "0",
        "agent exit code; logs:\n{logs}\npod:\n{yaml}"
    );
    assert!(logs.contains("uid=1000 gid=1000 pwd=/sandbox"), "{logs}");
    assert!(logs.contains("supervisor-installed"), "{logs}");
}

#[test]
fn the_image_volume_agent_command_runs_with_the_image_mounted() {
    let test = "the_image_volume_agent_command_runs_with_the_image_mounted";
    let Some(containers) = containers_with_images(test) else {
        return;
    };
    let (json, _) = run_ok(
        &[
            "render",
            "--sandbox-image",
            AGENT_IMAGE,
            "--supervisor-image",
            SUPERVISOR_IMAGE,
            "--",
            "sh",
            "-c",
            WORKLOAD,
        ],
        &[],
    );
    let pod: Value = serde_json::from_str(&json).unwrap();
    let volume = &pod["spec"]["volumes"][0]["image"];
    let agent = &pod["spec"]["containers"][0];
    assert_eq!(agent["volumeMounts"][0]["mountPath"], MOUNT_PATH);
    let uid = agent["securityContext"]["runAsUser"].to_string();
    let mount = format!(
        "type=image,source={},destination={MOUNT_PATH}",
        volume["reference"].as_str().unwrap()
    );
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "--pull=never",
        "--user",
        &uid,
        "--mount",
        &mount,
        "--entrypoint",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let command: Vec<String> = agent["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap().to_string())
        .collect();
    // podman takes the entrypoint as one JSON array.
    args.push(serde_json::to_string(&command).unwrap());
    args.push(agent["image"].as_str().unwrap().to_string());
    let logs = containers.podman_ok(&args);
    assert!(logs.contains("uid=0 gid=0 pwd=/sandbox"), "{logs}");
    assert!(logs.contains("supervisor-installed"), "{logs}");
}
