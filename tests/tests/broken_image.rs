//! A broken supervisor image, with the binary under /usr/local/bin as a
//! Dockerfile written from habit would put it: `build-image verify` refuses
//! it and says where the mount would put the binary; mounted anyway, the
//! sandbox fails to start exactly as that message predicts.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{AGENT_IMAGE, build_image, output_text, render, run_pod_agent, storage_with_agent};
use openshell_contract::{BINARY_NAME, INSTALLED_BINARY_PATH, MOUNT_PATH, path_under_mount};
use openshell_testsupport::{require, static_supervisor_binary};

const BROKEN: &str = "localhost/openshell/supervisor:broken";
const WRONG_PATH: &str = "/usr/local/bin/openshell-sandbox";

#[test]
fn binary_under_usr_local_bin_is_refused_and_breaks_the_sandbox_as_predicted() {
    let test = "binary_under_usr_local_bin_is_refused_and_breaks_the_sandbox_as_predicted";
    let Some(containers) = storage_with_agent(test) else {
        return;
    };
    if !require(test, &["buildah"], "apt-get install buildah") {
        return;
    }
    let context = containers.dir().join("broken-context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(static_supervisor_binary(), context.join(BINARY_NAME)).unwrap();
    std::fs::write(
        context.join("Containerfile"),
        format!("FROM scratch\nCOPY --chmod=0555 {BINARY_NAME} {WRONG_PATH}\nENTRYPOINT [\"{WRONG_PATH}\"]\n"),
    )
    .unwrap();
    containers.buildah_bud(None, &context, BROKEN);
    let layout = containers.dir().join("broken-layout");
    containers.buildah_ok([
        "push",
        "--quiet",
        BROKEN,
        &format!("oci:{}:latest", layout.display()),
    ]);

    // verify refuses it, and says where the mount would put the binary.
    let predicted = path_under_mount(MOUNT_PATH, WRONG_PATH);
    let mut verify = build_image();
    verify
        .arg("verify")
        .arg(format!("oci:{}:latest", layout.display()));
    let output = openshell_testsupport::podman::run(verify);
    assert!(
        !output.status.success(),
        "verify passed a broken image:\n{}",
        output_text(&output)
    );
    let report = output_text(&output);
    assert!(report.contains("binary-location"), "{report}");
    assert!(
        report.contains(&predicted),
        "verify does not predict {predicted}:\n{report}"
    );

    // Mounted anyway, the rendered command cannot start: there is nothing at
    // the path the pod runs ...
    let pod = render(&["--sandbox-image", AGENT_IMAGE, "--supervisor-image", BROKEN]);
    let (output, code) = run_pod_agent(&containers, &pod);
    assert_ne!(code, Some(0), "{output}");
    assert!(!output.contains("workload-output"), "{output}");
    assert!(output.contains(INSTALLED_BINARY_PATH), "{output}");
    assert!(
        output.to_lowercase().contains("no such file or directory"),
        "{output}"
    );

    // ... and the binary is where verify said it would be.
    let mount = format!("type=image,source={BROKEN},destination={MOUNT_PATH}");
    let found = containers.podman_ok([
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        &mount,
        AGENT_IMAGE,
        "ls",
        &predicted,
    ]);
    assert_eq!(found.trim(), predicted);
}
