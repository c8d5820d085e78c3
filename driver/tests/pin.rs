//! `--pin-supervisor-digest` against a real registry (docker-registry on
//! 127.0.0.1 with htpasswd auth): the tag resolves to the digest skopeo
//! sees, every rendered pod carries `REPO@sha256:...` (no tag), the image's
//! platforms are checked against the nodes, and an unreachable
//! registry, an unknown tag, a wrong password or an image that fails
//! verification stop the driver at start.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::oci_layout::{write_image, write_image_of};
use common::{pin_args, render_json, run_err, run_ok};
use openshell_contract::sideload::ENV_PIN_SUPERVISOR_DIGEST;
use openshell_contract::{BINARY_NAME, INSTALLED_BINARY_PATH};
use openshell_driver_kubernetes::SupervisorImage;
use openshell_driver_kubernetes::pin::pin_image;
use openshell_driver_kubernetes::platform::Platform;
use openshell_registry::RegistryOptions;
use openshell_testsupport::{Registry, require, static_supervisor_binary};

/// A started registry and skopeo, or `None` when a tool is missing outside
/// CI (in CI that is a failure).
fn registry_with_skopeo(test: &str) -> Option<Registry> {
    let registry = Registry::start(test)?;
    require(test, &["skopeo"], "apt-get install skopeo").then_some(registry)
}

/// Writes a supervisor image with `content` and pushes it to `HOST/REPO:TAG` with
/// skopeo.
fn push(registry: &Registry, layout: &Path, tag: &str, content: &str, target: &str) {
    write_image(layout, tag, content);
    skopeo_push(registry, layout, tag, target);
}

/// Pushes the image tagged `tag` in `layout` to `target` with skopeo.
fn skopeo_push(registry: &Registry, layout: &Path, tag: &str, target: &str) {
    let mut command = Command::new("skopeo");
    command
        .args(["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds"])
        .arg(registry.creds())
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{target}"));
    // Bounded: a stalled skopeo fails the test instead of hanging it.
    let output = openshell_testsupport::podman::run(command);
    assert!(
        output.status.success(),
        "skopeo copy failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        registry.log()
    );
}

fn skopeo_digest(registry: &Registry, reference: &str) -> String {
    let mut command = Command::new("skopeo");
    command
        .args(["inspect", "--tls-verify=false", "--creds"])
        .arg(registry.creds())
        .args(["--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}"));
    // Bounded: a stalled skopeo fails the test instead of hanging it.
    let output = openshell_testsupport::podman::run(command);
    assert!(
        output.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[test]
fn the_tag_is_pinned_to_the_digest_skopeo_sees() {
    let test = "the_tag_is_pinned_to_the_digest_skopeo_sees";
    let Some(registry) = registry_with_skopeo(test) else {
        return;
    };
    let layout = tempfile::tempdir().unwrap();
    let repository = format!("{}/openshell/supervisor", registry.host());
    let tagged = format!("{repository}:v1");
    push(&registry, layout.path(), "v1", "first build", &tagged);
    let digest = skopeo_digest(&registry, &tagged);
    let auth = registry.auth_file().display().to_string();

    let args = pin_args(&tagged, &auth);
    let mut render_args = vec!["render"];
    render_args.extend(&args);
    let (stdout, stderr) = run_ok(&render_args, &[]);
    let pod: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        pod["spec"]["volumes"][0]["image"],
        serde_json::json!({
            "reference": format!("{repository}@{digest}"),
            "pullPolicy": "IfNotPresent",
        })
    );
    assert!(
        stderr.contains(&format!(
            "pinned the supervisor image to {repository}@{digest}"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("warning"),
        "a pinned image is not mutable: {stderr}"
    );

    // The environment variable does the same, for the init container too.
    let pod = render_json(
        &[
            "--sandbox-image",
            "alpine",
            "--supervisor-image",
            &tagged,
            "--plain-http",
            "--authfile",
            &auth,
            "--supervisor-sideload-method",
            "init-container",
        ],
        &[(ENV_PIN_SUPERVISOR_DIGEST, "true")],
    );
    assert_eq!(
        pod["spec"]["initContainers"][0]["image"],
        format!("{repository}@{digest}")
    );

    // When the tag moves, a new start pins the new digest.
    push(&registry, layout.path(), "v1b", "second build", &tagged);
    let moved = skopeo_digest(&registry, &tagged);
    assert_ne!(moved, digest);
    let pod = render_json(&args, &[]);
    assert_eq!(
        pod["spec"]["volumes"][0]["image"]["reference"],
        format!("{repository}@{moved}")
    );
}

#[test]
fn pinning_checks_the_image_platforms_against_the_nodes() {
    let test = "pinning_checks_the_image_platforms_against_the_nodes";
    let Some(registry) = registry_with_skopeo(test) else {
        return;
    };
    let layout = tempfile::tempdir().unwrap();
    let tagged = format!("{}/openshell/supervisor:0.1.0", registry.host());
    // The test image is linux/amd64 only.
    push(&registry, layout.path(), "0.1.0", "one platform", &tagged);
    let auth = registry.auth_file().display().to_string();
    let nodes = |arm: &str| {
        let path = layout.path().join(format!("nodes-{arm}.json"));
        std::fs::write(
            &path,
            serde_json::json!({"kind": "List", "items": [
                {"metadata": {"name": "x86-1"}, "status": {"nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "containerRuntimeVersion": "containerd://2.1.4", "kubeletVersion": "v1.35.0"}}},
                {"metadata": {"name": "arm-1"}, "status": {"nodeInfo": {"architecture": arm, "operatingSystem": "linux", "containerRuntimeVersion": "containerd://2.1.4", "kubeletVersion": "v1.35.0"}}}
            ]})
            .to_string(),
        )
        .unwrap();
        path.display().to_string()
    };
    let mixed = nodes("arm64");
    let mut args = vec!["render"];
    args.extend(pin_args(&tagged, &auth));
    args.extend(["--nodes-json", &mixed]);
    let err = run_err(&args, &[]);
    assert!(
        err.contains(&format!(
            "node arm-1 is linux/arm64 (--nodes-json), but the supervisor image {}/openshell/supervisor@sha256:",
            registry.host()
        )),
        "{err}"
    );
    assert!(
        err.contains("has only linux/amd64 (the registry's manifest of"),
        "{err}"
    );

    // Every node amd64: pinned and rendered.
    let amd = nodes("amd64");
    let mut args = vec!["render"];
    args.extend(pin_args(&tagged, &auth));
    args.extend(["--nodes-json", &amd]);
    run_ok(&args, &[]);
}

#[test]
fn the_library_pins_and_checks_an_already_pinned_reference() {
    let test = "the_library_pins_and_checks_an_already_pinned_reference";
    let Some(registry) = registry_with_skopeo(test) else {
        return;
    };
    let layout = tempfile::tempdir().unwrap();
    let tagged = format!("{}/team/sup:2.0", registry.host());
    push(&registry, layout.path(), "2.0", "library", &tagged);
    let digest = skopeo_digest(&registry, &tagged);
    let options = RegistryOptions {
        plain_http: true,
        auth_file: Some(registry.auth_file()),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let image = SupervisorImage::parse(&tagged).unwrap();
    let pinned = runtime.block_on(pin_image(&image, &options)).unwrap();
    // Digest only: CRI-O 1.31.0 refuses REPO:TAG@sha256:... .
    assert_eq!(
        pinned.image.as_str(),
        format!("{}/team/sup@{digest}", registry.host())
    );
    assert!(!pinned.image.is_mutable());
    assert_eq!(pinned.platforms, [Platform::parse("linux/amd64").unwrap()]);
    // Pinning the pinned reference again finds the same digest.
    let again = runtime
        .block_on(pin_image(&pinned.image, &options))
        .unwrap();
    assert_eq!(again, pinned);

    // A digest the registry does not have is an error, not a silent pass.
    let absent = format!("{}/team/sup@sha256:{}", registry.host(), "0".repeat(64));
    let err = runtime
        .block_on(pin_image(
            &SupervisorImage::parse(&absent).unwrap(),
            &options,
        ))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "could not pin the supervisor image {absent} to a digest: "
        )),
        "{err}"
    );
    assert!(err.contains("was not found on registry"), "{err}");
}

#[test]
fn an_unreachable_registry_stops_the_driver_at_start() {
    // A port that was free a moment ago and has nothing listening now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let image = format!("127.0.0.1:{port}/openshell/supervisor:v1");
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    std::fs::write(&auth, r#"{"auths": {}}"#).unwrap();
    let auth = auth.display().to_string();
    let mut args = vec!["render"];
    args.extend(pin_args(&image, &auth));
    let stderr = run_err(&args, &[]);
    assert!(
        stderr.contains(&format!(
            "error: could not pin the supervisor image {image} to a digest: could not reach registry 127.0.0.1:{port} for {image}: "
        )),
        "{stderr}"
    );
}

#[test]
fn an_unknown_tag_stops_the_driver_at_start() {
    let test = "an_unknown_tag_stops_the_driver_at_start";
    let Some(registry) = registry_with_skopeo(test) else {
        return;
    };
    let layout = tempfile::tempdir().unwrap();
    push(
        &registry,
        layout.path(),
        "v1",
        "present",
        &format!("{}/openshell/supervisor:v1", registry.host()),
    );
    let missing = format!("{}/openshell/supervisor:v9", registry.host());
    let auth = registry.auth_file().display().to_string();
    let mut args = vec!["render"];
    args.extend(pin_args(&missing, &auth));
    let stderr = run_err(&args, &[]);
    assert!(
        stderr.contains(&format!(
            "error: could not pin the supervisor image {missing} to a digest: {missing} was not found on registry {}",
            registry.host()
        )),
        "{stderr}"
    );
}

#[test]
fn a_wrong_password_stops_the_driver_at_start() {
    let test = "a_wrong_password_stops_the_driver_at_start";
    let Some(registry) = registry_with_skopeo(test) else {
        return;
    };
    let layout = tempfile::tempdir().unwrap();
    let tagged = format!("{}/openshell/supervisor:v1", registry.host());
    push(&registry, layout.path(), "v1", "present", &tagged);
    let wrong = registry.write_auth_file("wrong.json", "not-the-password");
    let wrong_text = wrong.display().to_string();
    let mut args = vec!["render"];
    args.extend(pin_args(&tagged, &wrong_text));
    let stderr = run_err(&args, &[]);
    assert!(
        stderr.contains(&format!(
            "error: could not pin the supervisor image {tagged} to a digest: registry {} refused access to {tagged} with ",
            registry.host()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&wrong_text),
        "names the auth file: {stderr}"
    );
}

#[test]
fn an_image_that_would_not_start_sandboxes_is_not_pinned() {
    let test = "an_image_that_would_not_start_sandboxes_is_not_pinned";
    let Some(registry) = registry_with_skopeo(test) else {
        return;
    };
    let layout = tempfile::tempdir().unwrap();
    let auth = registry.auth_file().display().to_string();
    let supervisor = std::fs::read(static_supervisor_binary()).unwrap();
    // /bin/true: a dynamically linked program, which cannot run from the
    // image volume in an agent image without the same libc.
    let dynamic = std::fs::read("/bin/true").unwrap();
    let cases = [
        (
            "elsewhere",
            "usr/local/bin/openshell-sandbox",
            &supervisor,
            "binary-location",
        ),
        ("dynamic", BINARY_NAME, &dynamic, "static-elf"),
    ];
    for (tag, path, bytes, check) in cases {
        write_image_of(layout.path(), tag, path, bytes);
        let tagged = format!("{}/openshell/supervisor:{tag}", registry.host());
        skopeo_push(&registry, layout.path(), tag, &tagged);
        let mut args = vec!["render"];
        args.extend(pin_args(&tagged, &auth));
        let stderr = run_err(&args, &[]);
        assert!(
            stderr.contains(&format!(
                "error: the supervisor image {}/openshell/supervisor@sha256:",
                registry.host()
            )) && stderr.contains("would not start sandboxes"),
            "{tag}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("\n  {check}: ")),
            "{tag}: the failed check {check} is not named:\n{stderr}"
        );
    }

    // A supervisor image pins, and says it was verified.
    write_image(layout.path(), "good", "verified");
    let tagged = format!("{}/openshell/supervisor:good", registry.host());
    skopeo_push(&registry, layout.path(), "good", &tagged);
    let mut args = vec!["render"];
    args.extend(pin_args(&tagged, &auth));
    let (_, stderr) = run_ok(&args, &[]);
    assert!(
        stderr.contains(&format!(
            "verified it: 1 platform(s), the binary appears at {INSTALLED_BINARY_PATH}"
        )),
        "{stderr}"
    );
}
