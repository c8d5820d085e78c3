//! The image-volume method on a real container runtime: build-image's
//! output, mounted where and how the driver's rendered pod says, starts the
//! supervisor and the workload in an agent image that knows nothing of
//! OpenShell.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    AGENT_IMAGE, WORKLOAD_EXIT, assert_workload_ran, build_supervisor_image, render, run_pod_agent,
    storage_with_agent,
};
use openshell_contract::VOLUME_NAME;

const SUPERVISOR: &str = "localhost/openshell/supervisor:e2e";

#[test]
fn image_volume_sandbox_runs_the_workload_through_the_supervisor() {
    let test = "image_volume_sandbox_runs_the_workload_through_the_supervisor";
    let Some(containers) = storage_with_agent(test) else {
        return;
    };
    let layout = containers.dir().join("layout");
    build_supervisor_image(&layout, "e2e", &[]);
    containers.load_oci_layout(&layout, "e2e", SUPERVISOR);

    let pod = render(&[
        "--sandbox-image",
        AGENT_IMAGE,
        "--supervisor-image",
        SUPERVISOR,
        "--supervisor-sideload-method",
        "image-volume",
    ]);
    let parsed: serde_json::Value = serde_json::from_str(&pod).unwrap();
    assert_eq!(parsed["spec"]["volumes"][0]["name"], VOLUME_NAME);
    assert_eq!(
        parsed["spec"]["volumes"][0]["image"]["reference"],
        SUPERVISOR
    );
    assert!(parsed["spec"].get("initContainers").is_none(), "{pod}");

    let (output, code) = run_pod_agent(&containers, &pod);
    assert_workload_ran(&output);
    assert_eq!(
        code,
        Some(WORKLOAD_EXIT),
        "exit code through the supervisor:\n{output}"
    );
}

#[test]
fn image_volume_sandbox_passes_a_signal_death_on_as_128_plus_n() {
    let test = "image_volume_sandbox_passes_a_signal_death_on_as_128_plus_n";
    let Some(containers) = storage_with_agent(test) else {
        return;
    };
    let layout = containers.dir().join("layout");
    build_supervisor_image(&layout, "e2e", &[]);
    containers.load_oci_layout(&layout, "e2e", SUPERVISOR);
    // The workload kills itself with SIGTERM (15): the container exits 143.
    let mut command = common::driver();
    command.args([
        "render",
        "--sandbox-image",
        AGENT_IMAGE,
        "--supervisor-image",
        SUPERVISOR,
        "--",
        "sh",
        "-c",
        "echo before-signal; kill -TERM $$",
    ]);
    let pod = common::run_ok(command);
    let (output, code) = run_pod_agent(&containers, &pod);
    assert!(output.contains("before-signal"), "{output}");
    assert_eq!(code, Some(128 + 15), "{output}");
}
