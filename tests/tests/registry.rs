//! Through a real registry: build-image pushes to docker-registry on
//! 127.0.0.1 (htpasswd auth), verify pulls the image back and passes, skopeo
//! sees the same digest, podman pulls the pushed reference by digest, and the
//! driver, reading build-image's result file, renders a pod pinned to that
//! digest which starts the sandbox.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    AGENT_IMAGE, WORKLOAD_EXIT, assert_workload_ran, build_image, build_supervisor_image, render,
    run_fails, run_ok, run_pod_agent, storage_with_agent,
};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::{Registry, require};

#[test]
fn pushed_image_verifies_pins_and_starts_a_sandbox() {
    let test = "pushed_image_verifies_pins_and_starts_a_sandbox";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    if !require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(containers) = storage_with_agent(test) else {
        return;
    };
    let auth = registry.auth_file();
    let auth = auth.to_str().unwrap();
    let repository = format!("{}/openshell/supervisor", registry.host());
    let result_file = containers.dir().join("build-result.json");

    let result = build_supervisor_image(
        &containers.dir().join("layout"),
        "e2e",
        &[
            "--push",
            &format!("{repository}:e2e"),
            "--plain-http",
            "--authfile",
            auth,
            "--metadata-file",
            result_file.to_str().unwrap(),
        ],
    );
    // Digest only: CRI-O 1.31.0 refuses REPO:TAG@sha256:... references.
    let pinned = format!("{repository}@{}", result.digest);
    assert_eq!(result.pushed(), std::slice::from_ref(&pinned));
    let written: BuildResult =
        serde_json::from_str(&std::fs::read_to_string(&result_file).unwrap()).unwrap();
    assert_eq!(written, result);

    // verify pulls it back through the registry and passes every check.
    let mut verify = build_image();
    verify.args([
        "verify",
        &format!("docker://{pinned}"),
        "--plain-http",
        "--authfile",
        auth,
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&run_ok(verify)).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(
        report["platforms"][0]["binary_in_sandbox"],
        openshell_contract::INSTALLED_BINARY_PATH
    );

    // skopeo sees the same digest under the tag.
    let mut skopeo = containers.skopeo();
    skopeo.args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &registry.creds(),
    ]);
    skopeo.args([
        "--format",
        "{{.Digest}}",
        &format!("docker://{repository}:e2e"),
    ]);
    assert_eq!(run_ok(skopeo).trim(), result.digest);

    // podman pulls by digest (the reference the driver will render).
    let by_digest = format!("{repository}@{}", result.digest);
    containers.podman_ok([
        "pull",
        "--quiet",
        "--tls-verify=false",
        "--creds",
        &registry.creds(),
        &by_digest,
    ]);

    // The driver takes the image from build-image's result file, pinned.
    let pod = render(&[
        "--sandbox-image",
        AGENT_IMAGE,
        "--supervisor-image-from",
        result_file.to_str().unwrap(),
    ]);
    let parsed: serde_json::Value = serde_json::from_str(&pod).unwrap();
    let reference = parsed["spec"]["volumes"][0]["image"]["reference"]
        .as_str()
        .unwrap();
    assert!(
        reference.ends_with(&format!("@{}", result.digest)),
        "{reference}"
    );
    assert_eq!(
        parsed["spec"]["volumes"][0]["image"]["pullPolicy"],
        "IfNotPresent"
    );

    let (output, code) = run_pod_agent(&containers, &pod);
    assert_workload_ran(&output);
    assert_eq!(code, Some(WORKLOAD_EXIT), "{output}");
}

#[test]
fn wrong_password_and_unknown_repository_fail_clearly() {
    let test = "wrong_password_and_unknown_repository_fail_clearly";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wrong = registry.write_auth_file("wrong.json", "not-the-password");
    let reference = format!("{}/openshell/supervisor:e2e", registry.host());

    let mut push = build_image();
    push.arg("--binary")
        .arg(openshell_testsupport::static_supervisor_binary())
        .arg("--output")
        .arg(dir.path().join("layout"))
        .args([
            "--quiet",
            "--push",
            &reference,
            "--plain-http",
            "--authfile",
        ])
        .arg(&wrong);
    let stderr = run_fails(push);
    assert!(stderr.contains(&registry.host()), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains(&wrong.display().to_string()), "{stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one clear line:\n{stderr}"
    );

    let mut verify = build_image();
    let missing = format!("docker://{}/nobody/here:1", registry.host());
    verify
        .args(["verify", &missing, "--plain-http", "--authfile"])
        .arg(registry.auth_file());
    let stderr = run_fails(verify);
    assert!(
        stderr.contains(&format!("{}/nobody/here:1", registry.host())),
        "{stderr}"
    );
    assert!(stderr.contains("not found"), "{stderr}");
}
