//! The image built the docker/podman/buildah way, from Dockerfile.scratch
//! with buildah, passes `build-image verify` and starts a sandbox when
//! mounted as the driver renders it.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    AGENT_IMAGE, WORKLOAD_EXIT, assert_workload_ran, build_image, render, run_ok, run_pod_agent,
    storage_with_agent,
};
use openshell_contract::BINARY_NAME;
use openshell_testsupport::supervisor::workspace_root;
use openshell_testsupport::{require, static_supervisor_binary};

const SUPERVISOR: &str = "localhost/openshell/supervisor:dockerfile";

#[test]
fn dockerfile_scratch_image_verifies_and_starts_a_sandbox() {
    let test = "dockerfile_scratch_image_verifies_and_starts_a_sandbox";
    let Some(containers) = storage_with_agent(test) else {
        return;
    };
    if !require(test, &["buildah"], "apt-get install buildah") {
        return;
    }
    let context = containers.dir().join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(static_supervisor_binary(), context.join(BINARY_NAME)).unwrap();
    let dockerfile = workspace_root().join("Dockerfile.scratch");
    containers.buildah_bud(Some(&dockerfile), &context, SUPERVISOR);
    let layout = containers.dir().join("buildah-layout");
    containers.buildah_ok([
        "push",
        "--quiet",
        SUPERVISOR,
        &format!("oci:{}:latest", layout.display()),
    ]);

    let mut verify = build_image();
    verify
        .arg("verify")
        .arg(format!("oci:{}:latest", layout.display()))
        .args(["--run", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&run_ok(verify)).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");

    let pod = render(&[
        "--sandbox-image",
        AGENT_IMAGE,
        "--supervisor-image",
        SUPERVISOR,
    ]);
    let (output, code) = run_pod_agent(&containers, &pod);
    assert_workload_ran(&output);
    assert_eq!(code, Some(WORKLOAD_EXIT), "{output}");
}
