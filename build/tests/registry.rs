//! Pushing to and verifying from a real registry (docker-registry on
//! 127.0.0.1 with htpasswd auth).

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    aarch64_copy, build_image, fails, ok, run_with_stdin, supervisor_copy, tempdir, verify_json,
};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::BoundedOutput;
use openshell_testsupport::Registry;

#[test]
fn push_with_password_stdin_then_verify_from_the_registry() {
    let test = "push_with_password_stdin_then_verify_from_the_registry";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let reference = format!("{}/openshell/supervisor:test", registry.host());
    let output = run_with_stdin(
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--output",
            layout.to_str().unwrap(),
            "--push",
            &reference,
            "--plain-http",
            "--username",
            registry.username(),
            "--password-stdin",
            "--json",
        ],
        &format!("{}\n", registry.password()),
    );
    let result: BuildResult = serde_json::from_str(&ok(output)).unwrap();
    // Digest only: CRI-O 1.31.0 refuses REPO:TAG@sha256:... references.
    let repository = reference.rsplit_once(':').unwrap().0;
    assert_eq!(result.pushed(), [format!("{repository}@{}", result.digest)]);

    // Verify through an auth file this time, pinned by the pushed digest.
    let auth = registry.auth_file();
    let (passed, report) = verify_json(
        &format!("docker://{}", result.pushed()[0]),
        &[
            "--plain-http",
            "--authfile",
            auth.to_str().unwrap(),
            "--run",
        ],
    );
    assert!(passed, "{report:#}\n{}", registry.log());
    assert_eq!(report["platforms"][0]["manifest_digest"], result.digest);
    assert_eq!(common::check(&report, "run-version")["outcome"], "passed");

    // The human form prints the pinned reference.
    let mut command = build_image();
    command
        .args([
            "--binary",
            binary.to_str().unwrap(),
            "--output",
            layout.to_str().unwrap(),
        ])
        .args(["--push", &reference, "--plain-http"])
        .env("REGISTRY_AUTH_FILE", &auth);
    let stdout = ok(command.bounded_output());
    assert!(
        stdout.contains(&format!("pushed     {repository}@{}", result.digest)),
        "{stdout}"
    );
}

#[test]
fn a_multi_platform_index_is_pushed_and_verified_per_platform() {
    let test = "a_multi_platform_index_is_pushed_and_verified_per_platform";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let amd64 = supervisor_copy(dir.path());
    let arm64 = aarch64_copy(dir.path());
    let reference = format!("{}/openshell/supervisor:multi", registry.host());
    let auth = registry.auth_file();
    let mut command = build_image();
    command
        .args(["--binary", &format!("linux/amd64={}", amd64.display())])
        .args(["--binary", &format!("linux/arm64={}", arm64.display())])
        .arg("--output")
        .arg(dir.path().join("layout"))
        .args(["--push", &reference, "--plain-http", "--json", "--quiet"])
        .env("REGISTRY_AUTH_FILE", &auth);
    let result: BuildResult = serde_json::from_str(&ok(command.bounded_output())).unwrap();
    assert_eq!(result.media_type, "application/vnd.oci.image.index.v1+json");

    let (passed, report) = verify_json(
        &format!("docker://{reference}"),
        &["--plain-http", "--authfile", auth.to_str().unwrap()],
    );
    assert!(passed, "{report:#}");
    assert_eq!(report["index_digest"], result.digest);
    let platforms: Vec<&str> = report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|platform| platform["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
}

#[test]
fn a_wrong_password_gives_a_clear_error() {
    let test = "a_wrong_password_gives_a_clear_error";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let reference = format!("{}/openshell/supervisor:test", registry.host());
    let output = run_with_stdin(
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--output",
            dir.path().join("layout").to_str().unwrap(),
            "--push",
            &reference,
            "--plain-http",
            "--username",
            registry.username(),
            "--password-stdin",
        ],
        "not-the-password\n",
    );
    let stderr = fails(output);
    assert!(
        stderr.contains(&format!(
            "registry {} refused access to {reference}",
            registry.host()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("check the user name and password"),
        "{stderr}"
    );

    // Verifying with a wrong auth file fails the same clear way.
    let wrong = registry.write_auth_file("wrong.json", "nope");
    let output = common::run(&[
        "verify",
        &format!("docker://{reference}"),
        "--plain-http",
        "--authfile",
        wrong.to_str().unwrap(),
    ]);
    let stderr = fails(output);
    assert!(stderr.contains("refused access"), "{stderr}");
}

#[test]
fn an_unreachable_registry_gives_a_clear_error() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reference = format!("127.0.0.1:{port}/openshell/supervisor:test");
    let output = common::run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        dir.path().join("layout").to_str().unwrap(),
        "--push",
        &reference,
        "--plain-http",
        "--quiet",
    ]);
    let stderr = fails(output);
    assert!(
        stderr.contains(&format!("could not reach registry 127.0.0.1:{port}")),
        "{stderr}"
    );
}
