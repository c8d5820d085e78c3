//! A layer of several gzip members (one per 1 MiB chunk) is read whole by
//! the real consumers: the gzip command, umoci (Go's gzip), and podman's
//! containers/storage (the code CRI-O unpacks image volumes with).

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use openshell_testsupport::BoundedOutput;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ok, run, tempdir};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::podman::INSTALL_HINT;
use openshell_testsupport::{Containers, require};
use sha2::{Digest, Sha256};

/// The static supervisor with copies of itself appended, past 4 MiB: the
/// appended bytes lie after every ELF segment, so it still runs and passes
/// the static rules, and its layer spans five gzip members.
fn large_binary(dir: &Path) -> PathBuf {
    let supervisor = std::fs::read(openshell_testsupport::static_supervisor_binary()).unwrap();
    let mut bytes = supervisor.clone();
    let mut copy = 0u8;
    while bytes.len() < 4 * 1024 * 1024 + 12345 {
        // Each copy a little different, so the chunks are not all alike.
        copy = copy.wrapping_add(1);
        bytes.extend(supervisor.iter().map(|byte| byte ^ copy));
    }
    let path = dir.join("openshell-sandbox");
    std::fs::write(&path, &bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn build(binary: &Path, layout: &Path) -> BuildResult {
    serde_json::from_str(&ok(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
        "--json",
        "--quiet",
    ])))
    .unwrap()
}

/// The layer blob and the diff ID the config gives it.
fn layer_and_diff_id(layout: &Path, result: &BuildResult) -> (PathBuf, String) {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&result.platforms[0].manifest_digest)).unwrap())
            .unwrap();
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    (
        blob(&result.platforms[0].layer_digest),
        config["rootfs"]["diff_ids"][0]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

fn member_count(mut gz: &[u8]) -> usize {
    let mut count = 0;
    while !gz.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(gz);
        std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
        gz = decoder.into_inner();
        count += 1;
    }
    count
}

#[test]
fn gzip_and_umoci_read_every_member_of_the_layer() {
    let test = "gzip_and_umoci_read_every_member_of_the_layer";
    if !require(test, &["gzip", "umoci"], "apt-get install gzip umoci") {
        return;
    }
    let dir = tempdir();
    let binary = large_binary(dir.path());
    let layout = dir.path().join("layout");
    let result = build(&binary, &layout);
    let (layer, diff_id) = layer_and_diff_id(&layout, &result);
    let gz = std::fs::read(&layer).unwrap();
    assert_eq!(member_count(&gz), 5, "one member per started MiB of tar");

    // `gzip -dc` decompresses every member in turn: the tar the diff ID names.
    let mut gunzip = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = gunzip.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&gz));
    let output = gunzip.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "{}", common::text(&output));
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&output.stdout))),
        diff_id
    );

    // umoci unpacks it with Go's gzip and gets the whole binary.
    let bundle = dir.path().join("bundle");
    let unpack = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .bounded_output();
    assert!(unpack.status.success(), "{}", common::text(&unpack));
    assert!(
        std::fs::read(bundle.join("rootfs/openshell-sandbox")).unwrap()
            == std::fs::read(&binary).unwrap(),
        "umoci unpacked a different binary"
    );
}

#[test]
fn podman_runs_a_binary_from_a_layer_of_several_members() {
    let test = "podman_runs_a_binary_from_a_layer_of_several_members";
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
    let binary = large_binary(dir.path());
    let layout = dir.path().join("layout");
    build(&binary, &layout);
    containers.load_oci_layout(&layout, "latest", "localhost/supervisor:large");
    // containers/storage checked the layer against its diff ID on the way
    // in; the binary it unpacked runs and hashes itself.
    let stdout = containers.podman_ok([
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=image,source=localhost/supervisor:large,destination=/opt/openshell/bin",
        &agent,
        "/opt/openshell/bin/openshell-sandbox",
        "version",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        report["sha256"],
        hex::encode(Sha256::digest(std::fs::read(&binary).unwrap()))
    );
}
