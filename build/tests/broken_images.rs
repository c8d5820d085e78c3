//! One broken image per check: each is refused by `build-image verify`, with
//! its own check name and message, and a non-zero exit.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Entry, HandImage, details, failed_checks, tempdir, verify_json};
use openshell_contract::annotations::BINARY_SHA256;

fn supervisor_bytes() -> Vec<u8> {
    std::fs::read(openshell_testsupport::static_supervisor_binary()).expect("read supervisor")
}

/// Writes `image`, verifies it, asserts that exactly `check` failed and its
/// details contain `needle`; returns the report.
fn refused(image: &HandImage, check: &str, needle: &str) -> serde_json::Value {
    let dir = tempdir();
    let layout = dir.path().join("layout");
    image.write_layout(&layout);
    refused_layout(&layout, check, needle)
}

fn refused_layout(layout: &std::path::Path, check: &str, needle: &str) -> serde_json::Value {
    let source = format!("oci:{}:latest", layout.display());
    let (ok, report) = verify_json(&source, &[]);
    assert!(!ok, "verify accepted a broken image: {report:#}");
    assert_eq!(report["ok"], false);
    let failed = failed_checks(&report);
    assert!(
        failed.contains(&check.to_string()),
        "{check} did not fail: {report:#}"
    );
    let text = details(&report, check);
    assert!(
        text.contains(needle),
        "{check} says {text:?}, expected it to mention {needle:?}"
    );
    report
}

#[test]
fn the_hand_made_good_image_passes() {
    // The baseline the broken images are made from.
    let dir = tempdir();
    let layout = dir.path().join("layout");
    HandImage::good(&supervisor_bytes()).write_layout(&layout);
    let (ok, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(ok, "{report:#}");
    assert!(failed_checks(&report).is_empty());
    assert_eq!(
        report["platforms"][0]["binary_in_sandbox"],
        "/opt/openshell/bin/openshell-sandbox"
    );
}

#[test]
fn tampered_blob() {
    let dir = tempdir();
    let layout = dir.path().join("layout");
    let layers = HandImage::good(&supervisor_bytes()).write_layout(&layout);
    let mut bytes = std::fs::read(&layers[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&layers[0], bytes).unwrap();
    refused_layout(&layout, "blob-digests", "but its descriptor says");
}

#[test]
fn wrong_size() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layer_size_delta = 1;
    refused(&image, "blob-digests", "bytes, but its descriptor says");
}

#[test]
fn binary_under_usr_local_bin() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers = vec![vec![
        Entry::dir("usr/"),
        Entry::dir("usr/local/"),
        Entry::dir("usr/local/bin/"),
        Entry::file(
            "usr/local/bin/openshell-sandbox",
            &supervisor_bytes(),
            0o555,
        ),
    ]];
    refused(
        &image,
        "binary-location",
        "expected /openshell-sandbox; the image has usr/local/bin/openshell-sandbox, which an image volume at /opt/openshell/bin shows as /opt/openshell/bin/usr/local/bin/openshell-sandbox",
    );
}

#[test]
fn binary_under_usr_local_bin_with_another_mount_path() {
    let dir = tempdir();
    let layout = dir.path().join("layout");
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers = vec![vec![Entry::file(
        "bin/openshell-sandbox",
        &supervisor_bytes(),
        0o555,
    )]];
    image.write_layout(&layout);
    let (ok, report) = verify_json(
        &format!("oci:{}:latest", layout.display()),
        &["--mount-path", "/custom/mount"],
    );
    assert!(!ok);
    assert!(
        details(&report, "binary-location")
            .contains("shows as /custom/mount/bin/openshell-sandbox")
    );
}

#[test]
fn symlink() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers = vec![vec![
        Entry::file("real-binary", &supervisor_bytes(), 0o555),
        Entry::symlink("openshell-sandbox", "/real-binary"),
    ]];
    let report = refused(
        &image,
        "binary-file-type",
        "/openshell-sandbox is a symlink to /real-binary, expected a regular file",
    );
    assert!(details(&report, "binary-file-type").contains("agent container's root"));
}

#[test]
fn dynamic_binary() {
    // The test runner itself is linked against glibc.
    let dynamic = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let image = HandImage::good(&dynamic);
    refused(&image, "static-elf", "dynamically linked: PT_INTERP names");
}

#[test]
fn non_elf_binary() {
    let image = HandImage::good(b"#!/bin/sh\necho not a binary\n");
    refused(&image, "static-elf", "not an ELF file");
}

#[test]
fn wrong_arch() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.architecture = "arm64".into();
    refused(
        &image,
        "platform",
        "the config says architecture arm64, but /openshell-sandbox is an ELF for amd64",
    );
}

#[test]
fn dot_dot_entry() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0].push(Entry::file("etc/../../escape", b"x", 0o644));
    refused(
        &image,
        "unsafe-entries",
        "etc/../../escape: path contains '..'",
    );
}

#[test]
fn absolute_path_entry() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0].push(Entry::file("/etc/passwd", b"x", 0o644));
    refused(&image, "unsafe-entries", "/etc/passwd: absolute path");
}

#[test]
fn device_node() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0].push(Entry::device("dev-null"));
    refused(&image, "unsafe-entries", "dev-null: device node");
}

#[test]
fn link_leaving_the_image() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0].push(Entry::symlink("escape", "../../../etc/shadow"));
    refused(
        &image,
        "unsafe-entries",
        "escape: symlink to ../../../etc/shadow, which climbs above the image root",
    );
}

#[test]
fn setuid_bit() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0][0].mode = 0o4555;
    refused(&image, "binary-mode", "mode 4555, which sets setuid/setgid");
}

#[test]
fn world_writable() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0][0].mode = 0o557;
    refused(&image, "binary-mode", "mode 0557, which is world-writable");
}

#[test]
fn not_executable_by_everyone() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0][0].mode = 0o550;
    refused(
        &image,
        "binary-mode",
        "mode 0550, which is not executable by everyone",
    );
}

#[test]
fn wrong_owner() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0][0].uid = 1000;
    refused(&image, "binary-owner", "owned by 1000:0, expected 0:0");
}

#[test]
fn missing_entrypoint() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.entrypoint = None;
    refused(
        &image,
        "entrypoint",
        "the config has no Entrypoint, expected [\"/openshell-sandbox\"]",
    );
}

#[test]
fn wrong_entrypoint() {
    let mut image = HandImage::good(&supervisor_bytes());
    image.entrypoint = Some(vec!["/bin/sh".into()]);
    refused(&image, "entrypoint", "Entrypoint is [\"/bin/sh\"]");
}

#[test]
fn a_later_layer_whiteing_the_binary_out() {
    let mut image = HandImage::good(&supervisor_bytes());
    image
        .layers
        .push(vec![Entry::file(".wh.openshell-sandbox", b"", 0o644)]);
    refused(
        &image,
        "binary-location",
        "layer 1 deletes it with the whiteout .wh.openshell-sandbox",
    );
}

#[test]
fn an_opaque_folder_does_not_hide_the_binary_at_the_root() {
    // An opaque marker in a sub-folder leaves the root alone.
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers[0].push(Entry::dir("etc/"));
    image
        .layers
        .push(vec![Entry::file("etc/.wh..wh..opq", b"", 0o644)]);
    let dir = tempdir();
    let layout = dir.path().join("layout");
    image.write_layout(&layout);
    let (ok, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(ok, "{report:#}");
}

#[test]
fn annotation_not_matching_the_binary() {
    let mut image = HandImage::good(&supervisor_bytes());
    image
        .annotations
        .insert(BINARY_SHA256.into(), "0".repeat(64));
    refused(
        &image,
        "annotation-sha256",
        &format!("but the annotation {BINARY_SHA256} says {}", "0".repeat(64)),
    );
}

#[test]
fn config_that_does_not_parse() {
    let dir = tempdir();
    let layout = dir.path().join("layout");
    HandImage::good(&supervisor_bytes()).write_layout(&layout);
    // Point the manifest at a config blob that is not a config.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest_path = layout
        .join("blobs/sha256")
        .join(manifest_digest.trim_start_matches("sha256:"));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let bogus = b"{\"not\": \"a config\"}".to_vec();
    let bogus_digest = openshell_contract::digest::sha256_digest(&bogus);
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(bogus_digest.trim_start_matches("sha256:")),
        &bogus,
    )
    .unwrap();
    manifest["config"]["digest"] = bogus_digest.into();
    manifest["config"]["size"] = bogus.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let new_digest = openshell_contract::digest::sha256_digest(&manifest_bytes);
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(new_digest.trim_start_matches("sha256:")),
        &manifest_bytes,
    )
    .unwrap();
    let mut index = index;
    index["manifests"][0]["digest"] = new_digest.into();
    index["manifests"][0]["size"] = manifest_bytes.len().into();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    refused_layout(&layout, "config", "the config does not parse");
}

#[test]
fn human_report_names_every_failure_and_exits_non_zero() {
    let dir = tempdir();
    let layout = dir.path().join("layout");
    let mut image = HandImage::good(&supervisor_bytes());
    image.entrypoint = None;
    image.layers[0][0].mode = 0o4555;
    image.write_layout(&layout);
    let output = common::run(&[
        "verify",
        "--quiet",
        &format!("oci:{}:latest", layout.display()),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(stdout.contains("FAIL binary-mode"), "{stdout}");
    assert!(stdout.contains("FAIL entrypoint"), "{stdout}");
    assert!(stdout.contains("ok   binary-location"), "{stdout}");
    assert!(stdout.contains("result: 2 failure(s)"), "{stdout}");
}
