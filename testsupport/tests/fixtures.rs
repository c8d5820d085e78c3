//! The fixtures themselves work: a registry that checks passwords, and
//! container storage that runs the agent image.

use openshell_testsupport::BoundedOutput;
use openshell_testsupport::{Containers, Registry};

#[test]
fn registry_accepts_the_password_and_refuses_a_wrong_one() {
    let Some(registry) = Registry::start("registry_accepts_the_password_and_refuses_a_wrong_one")
    else {
        return;
    };
    let url = format!("http://{}/v2/", registry.host());
    let status = |creds: &str| {
        let output = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-u",
                creds,
                &url,
            ])
            .bounded_output();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    if !openshell_testsupport::require("registry fixture check", &["curl"], "apt-get install curl")
    {
        return;
    }
    assert_eq!(status(&registry.creds()), "200", "{}", registry.log());
    assert_eq!(status("openshell:wrong"), "401", "{}", registry.log());
    let auth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(registry.auth_file()).unwrap()).unwrap();
    assert!(auth["auths"][registry.host()]["auth"].is_string());
}

#[test]
fn agent_image_runs_in_private_storage() {
    let Some(containers) = Containers::new("agent_image_runs_in_private_storage") else {
        return;
    };
    let Some(image) = containers.build_agent_image(
        "agent_image_runs_in_private_storage",
        "localhost/agent:fixture",
    ) else {
        return;
    };
    let out = containers.podman_ok([
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo hello; ls /",
    ]);
    assert!(out.starts_with("hello\n"), "{out}");
    assert!(
        !out.contains("openshell"),
        "the agent image must not contain OpenShell: {out}"
    );
    // The image lives in the fixture's storage only.
    let images = containers.podman_ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "localhost/agent:fixture");
}
