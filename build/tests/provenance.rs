//! Tags, labels and annotations: the provenance every manifest, the index
//! and every config carry, `--label`, `--annotation` and `--tag` in the
//! layout, and the refusal of each bad key.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sbom_support;

use common::{aarch64_copy, build_image, fails, ok, run, supervisor_copy, tempdir};
use openshell_contract::annotations::{BINARY_SHA256, CARGO_LOCK_SHA256, RUSTC_VERSION};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::BoundedOutput;
use sbom_support::{json_blob, sha256_hex, tags, workspace_cargo_lock};

fn build(args: &[&str]) -> BuildResult {
    let mut command = build_image();
    command
        .args(args)
        .args(["--json", "--quiet"])
        .env("SOURCE_DATE_EPOCH", "1700000000");
    serde_json::from_str(&ok(command.bounded_output())).unwrap()
}

const PUBLISHING: [&str; 12] = [
    "--tag",
    "v9.1",
    "--tag",
    "stable",
    "--label",
    "com.example.team=sandbox",
    "--annotation",
    "org.opencontainers.image.vendor=NVIDIA",
    "--annotation",
    "com.example.note=built for tests",
    "--revision",
    "0123abcd",
];

#[test]
fn tags_labels_and_annotations_are_in_the_layout() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let mut args = vec![
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
    ];
    args.extend_from_slice(&PUBLISHING);
    let result = build(&args);
    assert_eq!(result.tags, ["v9.1", "stable"]);
    let mut found = tags(&layout);
    found.sort();
    assert_eq!(found, ["stable", "v9.1"]);

    let manifest = json_blob(&layout, &result.digest);
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.vendor"], "NVIDIA");
    assert_eq!(annotations["com.example.note"], "built for tests");
    assert_eq!(annotations["org.opencontainers.image.revision"], "0123abcd");
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        annotations["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        env!("CARGO_PKG_REPOSITORY")
    );
    assert_eq!(
        annotations[BINARY_SHA256],
        result.platforms[0].binary_sha256
    );
    // The rustc the binary itself records, and the Cargo.lock its SBOM lists.
    let rustc = annotations[RUSTC_VERSION].as_str().unwrap();
    assert!(rustc.starts_with("rustc 1."), "{rustc}");
    assert_eq!(
        annotations[CARGO_LOCK_SHA256],
        sha256_hex(&workspace_cargo_lock())
    );
    // No label among the annotations.
    assert!(annotations["com.example.team"].is_null(), "{annotations:#}");

    let config = json_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["com.example.team"], "sandbox");
    assert_eq!(labels["org.opencontainers.image.revision"], "0123abcd");
    assert_eq!(labels[RUSTC_VERSION], rustc);
    // An annotation of the user's own stays an annotation.
    assert!(labels["com.example.note"].is_null(), "{labels:#}");
}

#[test]
fn a_multi_platform_index_carries_the_annotations_too() {
    let dir = tempdir();
    let amd64 = supervisor_copy(dir.path());
    let arm64 = aarch64_copy(dir.path());
    let layout = dir.path().join("layout");
    let amd64_arg = format!("linux/amd64={}", amd64.display());
    let arm64_arg = format!("linux/arm64={}", arm64.display());
    let mut args = vec![
        "--binary",
        &amd64_arg,
        "--binary",
        &arm64_arg,
        "--output",
        layout.to_str().unwrap(),
    ];
    args.extend_from_slice(&PUBLISHING);
    let result = build(&args);
    let index = json_blob(&layout, &result.digest);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let annotations = &index["annotations"];
    assert_eq!(annotations["org.opencontainers.image.vendor"], "NVIDIA");
    assert_eq!(annotations["com.example.note"], "built for tests");
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        annotations[CARGO_LOCK_SHA256],
        sha256_hex(&workspace_cargo_lock())
    );
    // Both binaries record the same rustc, so the index names it.
    assert!(
        annotations[RUSTC_VERSION]
            .as_str()
            .unwrap()
            .starts_with("rustc ")
    );
    // The binary digest is per platform: on the manifests, not the index.
    assert!(annotations[BINARY_SHA256].is_null(), "{annotations:#}");
    for platform in &result.platforms {
        let manifest = json_blob(&layout, &platform.manifest_digest);
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.vendor"],
            "NVIDIA"
        );
        assert_eq!(
            manifest["annotations"][BINARY_SHA256],
            platform.binary_sha256
        );
    }
}

#[test]
fn an_annotation_overrides_what_build_image_would_write() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let result = build(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
        "--annotation",
        "org.opencontainers.image.source=https://git.example/fork",
    ]);
    let manifest = json_blob(&layout, &result.digest);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://git.example/fork"
    );
    let config = json_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.source"],
        "https://git.example/fork"
    );
}

/// Runs a build with `extra` that must be refused; returns stderr, and
/// checks nothing was written.
fn refused(extra: &[&str]) -> String {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let mut args = vec![
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let err = fails(run(&args));
    assert!(
        !layout.exists(),
        "a refused build wrote {}",
        layout.display()
    );
    err
}

#[test]
fn a_label_without_an_equals_sign_is_refused() {
    let err = refused(&["--label", "com.example.team"]);
    assert!(err.contains("--label"), "{err}");
    assert!(err.contains("expected KEY=VALUE"), "{err}");
}

#[test]
fn a_label_key_with_a_space_is_refused() {
    let err = refused(&["--label", "team name=x"]);
    assert!(err.contains("'team name=x'"), "{err}");
    assert!(err.contains("has ' '"), "{err}");
}

#[test]
fn an_empty_annotation_key_is_refused() {
    let err = refused(&["--annotation", "=value"]);
    assert!(err.contains("the key is empty"), "{err}");
}

#[test]
fn a_misspelt_oci_annotation_is_refused() {
    let err = refused(&["--annotation", "org.opencontainers.image.sources=https://x"]);
    assert!(
        err.contains("org.opencontainers.image.sources is not a key the OCI image spec defines"),
        "{err}"
    );
    assert!(err.contains("org.opencontainers.image.source,"), "{err}");
}

#[test]
fn a_ref_name_annotation_is_refused_for_tag() {
    let err = refused(&["--annotation", "org.opencontainers.image.ref.name=v1"]);
    assert!(err.contains("give tags with --tag"), "{err}");
}

#[test]
fn a_key_build_image_computes_is_refused() {
    let err = refused(&["--label", &format!("{BINARY_SHA256}=00")]);
    assert!(err.contains("set by build-image"), "{err}");
    let err = refused(&["--annotation", &format!("{CARGO_LOCK_SHA256}=00")]);
    assert!(err.contains("set by build-image"), "{err}");
}

#[test]
fn an_annotation_given_twice_is_refused() {
    let err = refused(&[
        "--annotation",
        "com.example.a=1",
        "--annotation",
        "com.example.a=2",
    ]);
    assert!(
        err.contains("--annotation com.example.a is given twice"),
        "{err}"
    );
}

#[test]
fn a_value_with_a_newline_is_refused() {
    let err = refused(&["--label", "com.example.a=two\nlines"]);
    assert!(err.contains("control character"), "{err}");
}

#[test]
fn a_bad_tag_is_refused() {
    let err = refused(&["--tag", "v1/beta"]);
    assert!(err.contains("invalid tag \"v1/beta\""), "{err}");
}
