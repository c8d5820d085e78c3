//! The layout and the docker-archive with the real tools: skopeo, umoci,
//! podman (with runc) and buildah, in private storage.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use openshell_testsupport::BoundedOutput;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, run, supervisor_copy, tempdir, verify_json};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::podman::INSTALL_HINT;
use openshell_testsupport::{Containers, require};

fn build(binary: &Path, layout: &Path, extra: &[&str]) -> BuildResult {
    let mut args = vec![
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(run(&args))).unwrap()
}

fn tool_ok(command: &mut Command) -> String {
    let output = command.bounded_output();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        common::text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn dockerfile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile.scratch")
}

#[test]
fn skopeo_inspect_and_umoci_unpack_accept_the_layout() {
    let test = "skopeo_inspect_and_umoci_unpack_accept_the_layout";
    if !require(test, &["skopeo", "umoci"], INSTALL_HINT) {
        return;
    }
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let result = build(&binary, &layout, &[]);

    let inspect = tool_ok(
        Command::new("skopeo").args(["inspect", &format!("oci:{}:latest", layout.display())]),
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], result.digest);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(
        inspect["Labels"]["dev.openshell.supervisor.binary.sha256"],
        result.platforms[0].binary_sha256
    );

    let bundle = dir.path().join("bundle");
    tool_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    let names: Vec<String> = std::fs::read_dir(&rootfs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["openshell-sandbox"]);
    let meta = std::fs::symlink_metadata(rootfs.join("openshell-sandbox")).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o555);
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert_eq!(
        std::fs::read(rootfs.join("openshell-sandbox")).unwrap(),
        std::fs::read(&binary).unwrap()
    );
}

#[test]
fn podman_runs_the_image_as_an_image_mount() {
    let test = "podman_runs_the_image_as_an_image_mount";
    let Some(containers) = Containers::new(test) else {
        return;
    };
    if !require(test, &["skopeo"], INSTALL_HINT) {
        return;
    }
    let Some(agent) = containers.build_agent_image(test, "localhost/agent:test") else {
        return;
    };
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    build(&binary, &layout, &[]);
    containers.load_oci_layout(&layout, "latest", "localhost/supervisor:test");
    let stdout = containers.podman_ok([
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=image,source=localhost/supervisor:test,destination=/opt/openshell/bin",
        &agent,
        "/opt/openshell/bin/openshell-sandbox",
        "--version",
    ]);
    assert!(stdout.starts_with("openshell-sandbox "), "{stdout}");
    // Only the binary shows up under the mount.
    let listing = containers.podman_ok([
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=image,source=localhost/supervisor:test,destination=/opt/openshell/bin",
        &agent,
        "ls",
        "/opt/openshell/bin",
    ]);
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>(),
        ["openshell-sandbox"]
    );
}

#[test]
fn verify_accepts_what_buildah_and_podman_build_from_dockerfile_scratch() {
    let test = "verify_accepts_what_buildah_and_podman_build_from_dockerfile_scratch";
    let Some(containers) = Containers::new(test) else {
        return;
    };
    if !require(test, &["buildah"], INSTALL_HINT) {
        return;
    }
    let context = containers.dir().join("context");
    std::fs::create_dir_all(&context).unwrap();
    supervisor_copy(&context);
    let dockerfile = dockerfile();

    containers.buildah_bud(Some(&dockerfile), &context, "localhost/supervisor:buildah");
    let buildah_layout = containers.dir().join("buildah-layout");
    containers.buildah_ok([
        "push",
        "--quiet",
        "localhost/supervisor:buildah",
        &format!("oci:{}:latest", buildah_layout.display()),
    ]);
    let (passed, report) = verify_json(
        &format!("oci:{}:latest", buildah_layout.display()),
        &["--run"],
    );
    assert!(passed, "buildah's image: {report:#}");
    assert_eq!(common::check(&report, "run-version")["outcome"], "passed");

    containers.podman_ok([
        "build".as_ref(),
        "--quiet".as_ref(),
        "-f".as_ref(),
        dockerfile.as_os_str(),
        "-t".as_ref(),
        "localhost/supervisor:podman".as_ref(),
        context.as_os_str(),
    ]);
    let podman_layout = containers.dir().join("podman-layout");
    containers.podman_ok([
        "push",
        "--quiet",
        "localhost/supervisor:podman",
        &format!("oci:{}:latest", podman_layout.display()),
    ]);
    let (passed, report) = verify_json(&format!("oci:{}:latest", podman_layout.display()), &[]);
    assert!(passed, "podman's image: {report:#}");
}

#[test]
fn the_docker_archive_loads_with_podman_and_verifies() {
    let test = "the_docker_archive_loads_with_podman_and_verifies";
    let Some(containers) = Containers::new(test) else {
        return;
    };
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let archive = dir.path().join("supervisor.tar");
    let result = build(
        &binary,
        &layout,
        &[
            "--docker-archive",
            archive.to_str().unwrap(),
            "--tag",
            "archive",
        ],
    );
    assert_eq!(
        result.docker_archive().as_deref(),
        Some(archive.to_str().unwrap())
    );

    let (passed, report) =
        verify_json(&format!("docker-archive:{}", archive.display()), &["--run"]);
    assert!(passed, "{report:#}");
    assert_eq!(common::check(&report, "media-types")["outcome"], "skipped");

    let loaded = containers.podman_ok(["load", "--input", archive.to_str().unwrap()]);
    assert!(loaded.contains("openshell/supervisor:archive"), "{loaded}");
    let inspect = containers.podman_ok(["image", "inspect", "openshell/supervisor:archive"]);
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(
        inspect[0]["Config"]["Entrypoint"],
        serde_json::json!(["/openshell-sandbox"])
    );
    assert_eq!(inspect[0]["Architecture"], "amd64");
}
