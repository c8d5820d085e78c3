//! The SBOM build-image attaches to each platform manifest, as an OCI 1.1
//! referrer in the layout: its shape, its validity (pyspdxtools), its
//! reproducibility, verify's report of it, and the --sbom / --no-sbom
//! options.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sbom_support;

use openshell_testsupport::BoundedOutput;
use std::path::Path;
use std::process::Command;

use common::{aarch64_copy, build_image, fails, ok, run, supervisor_copy, tempdir, verify_json};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::podman::{INSTALL_HINT, run_ok};
use openshell_testsupport::require;
use sbom_support::{
    SPDX, assert_valid_spdx, blob_path, index, json_blob, only_sbom, referrer_entries, sboms,
    sha256_hex, workspace_cargo_lock,
};

fn build(args: &[&str], epoch: &str) -> BuildResult {
    let mut command = build_image();
    command
        .args(args)
        .args(["--json", "--quiet"])
        .env("SOURCE_DATE_EPOCH", epoch);
    serde_json::from_str(&ok(command.bounded_output())).unwrap()
}

fn build_layout(binary: &Path, layout: &Path, extra: &[&str]) -> BuildResult {
    let mut args = vec![
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    build(&args, "1700000000")
}

/// The `name@version` of every package an SPDX document lists.
fn package_names(document: &serde_json::Value) -> Vec<String> {
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            format!(
                "{}@{}",
                package["name"].as_str().unwrap(),
                package["versionInfo"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn the_sbom_is_a_referrer_of_the_platform_manifest_in_the_layout() {
    let test = "the_sbom_is_a_referrer_of_the_platform_manifest_in_the_layout";
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let result = build_layout(&binary, &layout, &[]);
    let platform = &result.platforms[0];

    // Listed in index.json without a tag, with its artifact type.
    let entries = referrer_entries(&layout);
    assert_eq!(entries.len(), 1, "{:#}", index(&layout));
    assert_eq!(entries[0]["artifactType"], SPDX);
    assert!(entries[0]["annotations"]["org.opencontainers.image.ref.name"].is_null());

    // An OCI 1.1 artifact manifest: empty config, the SBOM as its one
    // layer, the platform manifest as subject.
    let sbom = only_sbom(&layout);
    let manifest = &sbom.manifest;
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["artifactType"], SPDX);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(manifest["config"]["size"], 2);
    assert_eq!(
        std::fs::read(blob_path(
            &layout,
            manifest["config"]["digest"].as_str().unwrap()
        ))
        .unwrap(),
        b"{}"
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], SPDX);
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "openshell-sandbox.spdx.json"
    );
    assert_eq!(sbom.subject(), result.digest);
    assert_eq!(manifest["subject"]["size"], result.size);
    assert_eq!(
        sha256_hex(&sbom.bytes),
        sbom.digest.trim_start_matches("sha256:")
    );

    // The document: SPDX 2.3, describing the binary, listing the
    // supervisor's crates (and not build-image's), with Cargo.lock's
    // checksums.
    let document = sbom.document();
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    assert_eq!(document["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let packages = document["packages"].as_array().unwrap();
    let root = packages
        .iter()
        .find(|package| package["name"] == "openshell-sandbox")
        .expect("the supervisor package");
    assert_eq!(root["checksums"][0]["algorithm"], "SHA256");
    assert_eq!(
        root["checksums"][0]["checksumValue"],
        platform.binary_sha256
    );
    let described = document["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|relationship| relationship["relationshipType"] == "DESCRIBES")
        .unwrap();
    assert_eq!(described["relatedSpdxElement"], root["SPDXID"]);
    let names = package_names(&document);
    for crate_name in ["nix@", "rustix@", "libc@", "openshell-contract@"] {
        assert!(
            names.iter().any(|name| name.starts_with(crate_name)),
            "{crate_name} missing from {names:?}"
        );
    }
    // build-image's own dependencies and dev-dependencies are not in the
    // supervisor.
    for absent in [
        "oci-client@",
        "tokio@",
        "flate2@",
        "cargo_metadata@",
        "openshell-testsupport@",
    ] {
        assert!(
            !names.iter().any(|name| name.starts_with(absent)),
            "{absent} should not be listed: {names:?}"
        );
    }
    let lock = String::from_utf8(workspace_cargo_lock()).unwrap();
    let nix = packages
        .iter()
        .find(|package| package["name"] == "nix")
        .unwrap();
    let nix_sum = nix["checksums"][0]["checksumValue"].as_str().unwrap();
    assert!(
        lock.contains(&format!("checksum = \"{nix_sum}\"")),
        "nix's checksum {nix_sum} is not Cargo.lock's"
    );
    assert_eq!(
        nix["externalRefs"][0]["referenceLocator"],
        format!("pkg:cargo/nix@{}", nix["versionInfo"].as_str().unwrap())
    );
    // Nothing of this machine leaks into it.
    let text = String::from_utf8(sbom.bytes.clone()).unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(!text.contains(workspace.to_str().unwrap()), "{text}");
    assert!(!text.contains("/root/"), "{text}");

    assert_valid_spdx(test, &sbom.bytes);

    // verify finds it, and says so.
    let (passed, report) = verify_json(
        &format!("oci:{}:latest", layout.display()),
        &["--require-sbom"],
    );
    assert!(passed, "{report:#}");
    assert_eq!(common::check(&report, "sbom")["outcome"], "passed");
    let found = &report["platforms"][0]["sbom"];
    assert_eq!(found["referrer_digest"], sbom.referrer);
    assert_eq!(found["sbom_digest"], sbom.digest);
    assert_eq!(found["artifact_type"], SPDX);
    assert!(
        found["summary"].as_str().unwrap().starts_with("SPDX-2.3, "),
        "{found}"
    );
}

#[test]
fn two_builds_give_the_same_sbom_digest() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let one = dir.path().join("one");
    let two = dir.path().join("two");
    let three = dir.path().join("three");
    build_layout(&binary, &one, &[]);
    build_layout(&binary, &two, &[]);
    let (first, second) = (only_sbom(&one), only_sbom(&two));
    assert_eq!(first.digest, second.digest);
    assert_eq!(first.referrer, second.referrer);
    assert_eq!(first.bytes, second.bytes);
    // The time stamp is SOURCE_DATE_EPOCH's, so another one gives another
    // document (and namespace).
    build(
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--output",
            three.to_str().unwrap(),
        ],
        "1700000001",
    );
    let third = only_sbom(&three);
    assert_ne!(third.digest, first.digest);
    assert_eq!(
        third.document()["creationInfo"]["created"],
        "2023-11-14T22:13:21Z"
    );
    assert_ne!(
        third.document()["documentNamespace"],
        first.document()["documentNamespace"]
    );
    // The same binary bytes at another path give the same SBOM.
    let elsewhere = tempdir();
    let moved = supervisor_copy(elsewhere.path());
    let four = elsewhere.path().join("four");
    build_layout(&moved, &four, &[]);
    assert_eq!(only_sbom(&four).digest, first.digest);
}

#[test]
fn each_platform_of_an_index_gets_its_own_sbom() {
    let test = "each_platform_of_an_index_gets_its_own_sbom";
    let dir = tempdir();
    let amd64 = supervisor_copy(dir.path());
    let arm64 = aarch64_copy(dir.path());
    let layout = dir.path().join("layout");
    let result = build(
        &[
            "--binary",
            &format!("linux/amd64={}", amd64.display()),
            "--binary",
            &format!("linux/arm64={}", arm64.display()),
            "--output",
            layout.to_str().unwrap(),
        ],
        "0",
    );
    let found = sboms(&layout);
    assert_eq!(found.len(), 2, "{found:#?}");
    // The build result names each platform's referrer manifest.
    let mut listed: Vec<String> = referrer_entries(&layout)
        .iter()
        .map(|entry| entry["digest"].as_str().unwrap().to_string())
        .collect();
    let mut reported: Vec<String> = result
        .platforms
        .iter()
        .map(|platform| {
            platform
                .sbom_manifest_digest
                .clone()
                .unwrap_or_else(|| panic!("no sbom_manifest_digest for {}", platform.platform))
        })
        .collect();
    listed.sort();
    reported.sort();
    assert_eq!(reported, listed);
    for platform in &result.platforms {
        let sbom = found
            .iter()
            .find(|sbom| sbom.subject() == platform.manifest_digest)
            .unwrap_or_else(|| panic!("no SBOM for {}", platform.platform));
        let document = sbom.document();
        let target = match platform.platform.as_str() {
            "linux/amd64" => "x86_64-unknown-linux-musl",
            _ => "aarch64-unknown-linux-musl",
        };
        assert!(
            document["comment"].as_str().unwrap().contains(target),
            "{}",
            document["comment"]
        );
        let root = document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|package| package["name"] == "openshell-sandbox")
            .unwrap();
        assert_eq!(
            root["checksums"][0]["checksumValue"],
            platform.binary_sha256
        );
        assert_valid_spdx(test, &sbom.bytes);
    }
    let (passed, report) = verify_json(
        &format!("oci:{}:latest", layout.display()),
        &["--require-sbom"],
    );
    assert!(passed, "{report:#}");
    for platform in report["platforms"].as_array().unwrap() {
        assert!(platform["sbom"]["sbom_digest"].is_string(), "{platform:#}");
    }
}

#[test]
fn no_sbom_attaches_none_and_require_sbom_then_fails() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let result = build_layout(&binary, &layout, &["--no-sbom"]);
    assert!(referrer_entries(&layout).is_empty(), "{:#}", index(&layout));
    assert_eq!(result.platforms[0].sbom_manifest_digest, None);
    let source = format!("oci:{}:latest", layout.display());
    let (passed, report) = verify_json(&source, &[]);
    assert!(passed, "{report:#}");
    assert_eq!(common::check(&report, "sbom")["outcome"], "skipped");
    assert!(
        common::details(&report, "sbom").contains("no SBOM refers to this manifest"),
        "{report:#}"
    );
    let (passed, report) = verify_json(&source, &["--require-sbom"]);
    assert!(!passed, "{report:#}");
    assert_eq!(common::check(&report, "sbom")["outcome"], "failed");
    assert!(
        common::details(&report, "sbom").contains("an SBOM is required here"),
        "{report:#}"
    );
    // --sbom and --no-sbom contradict each other.
    let err = fails(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--no-sbom",
        "--sbom",
        "x.json",
    ]));
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn an_sbom_file_of_ones_own_is_attached_as_given() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let file = dir.path().join("bom.cdx.json");
    let cyclonedx = br#"{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"x","version":"1"}]}"#;
    std::fs::write(&file, cyclonedx).unwrap();
    let layout = dir.path().join("layout");
    build_layout(&binary, &layout, &["--sbom", file.to_str().unwrap()]);
    let entries = referrer_entries(&layout);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["artifactType"], "application/vnd.cyclonedx+json");
    let manifest = json_blob(&layout, entries[0]["digest"].as_str().unwrap());
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.cyclonedx+json"
    );
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "bom.cdx.json"
    );
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        std::fs::read(blob_path(&layout, digest)).unwrap(),
        cyclonedx
    );
    let (passed, report) = verify_json(
        &format!("oci:{}:latest", layout.display()),
        &["--require-sbom"],
    );
    assert!(passed, "{report:#}");
    assert_eq!(
        report["platforms"][0]["sbom"]["summary"],
        "CycloneDX 1.6, 1 components"
    );
}

#[test]
fn an_sbom_file_that_is_not_json_is_refused_before_anything_is_written() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "not an SBOM").unwrap();
    let layout = dir.path().join("layout");
    let err = fails(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
        "--sbom",
        file.to_str().unwrap(),
    ]));
    assert!(err.contains(&format!("--sbom {}", file.display())), "{err}");
    assert!(err.contains("not JSON"), "{err}");
    assert!(
        !layout.exists(),
        "a refused build wrote {}",
        layout.display()
    );
}

#[test]
fn an_sbom_file_of_another_kind_is_refused() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let file = dir.path().join("other.json");
    std::fs::write(&file, r#"{"name":"a package.json, not an SBOM"}"#).unwrap();
    let err = fails(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        dir.path().join("layout").to_str().unwrap(),
        "--sbom",
        file.to_str().unwrap(),
    ]));
    assert!(err.contains("neither spdxVersion nor bomFormat"), "{err}");
}

#[test]
fn a_missing_sbom_file_is_refused() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let missing = dir.path().join("missing.spdx.json");
    let err = fails(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        dir.path().join("layout").to_str().unwrap(),
        "--sbom",
        missing.to_str().unwrap(),
    ]));
    assert!(
        err.contains(&format!("--sbom {}", missing.display())),
        "{err}"
    );
}

/// Replaces the SBOM of the layout's referrer with `bytes`, rewriting the
/// referrer manifest and its index.json entry so every digest still
/// matches: only the document itself is wrong.
fn replace_sbom(layout: &Path, bytes: &[u8]) {
    let sbom = only_sbom(layout);
    let digest = format!("sha256:{}", sha256_hex(bytes));
    std::fs::write(blob_path(layout, &digest), bytes).unwrap();
    let mut manifest = sbom.manifest.clone();
    manifest["layers"][0]["digest"] = digest.into();
    manifest["layers"][0]["size"] = bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest_bytes));
    std::fs::write(blob_path(layout, &manifest_digest), &manifest_bytes).unwrap();
    let mut index = index(layout);
    for entry in index["manifests"].as_array_mut().unwrap() {
        if entry["digest"] == sbom.referrer {
            entry["digest"] = manifest_digest.clone().into();
            entry["size"] = manifest_bytes.len().into();
        }
    }
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn verify_fails_an_sbom_that_is_not_json() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    build_layout(&binary, &layout, &[]);
    replace_sbom(&layout, b"{\"spdxVersion\": \"SPDX-2.3\", trunc");
    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(!passed, "{report:#}");
    assert_eq!(common::check(&report, "sbom")["outcome"], "failed");
    assert!(
        common::details(&report, "sbom").contains("not JSON"),
        "{report:#}"
    );
}

#[test]
fn verify_fails_an_sbom_whose_blob_was_changed() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    build_layout(&binary, &layout, &[]);
    let sbom = only_sbom(&layout);
    let mut bytes = sbom.bytes.clone();
    bytes[10] ^= 1;
    std::fs::write(blob_path(&layout, &sbom.digest), bytes).unwrap();
    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(!passed, "{report:#}");
    let details = common::details(&report, "sbom");
    assert!(details.contains("the SBOM document"), "{details}");
    assert!(details.contains(&sbom.digest), "{details}");
}

#[test]
fn verify_fails_an_sbom_referrer_of_the_wrong_kind_of_document() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    build_layout(&binary, &layout, &[]);
    // Valid JSON, listed as SPDX, but CycloneDX inside.
    replace_sbom(&layout, br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#);
    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(!passed, "{report:#}");
    assert!(
        common::details(&report, "sbom").contains("but the referrer says application/spdx+json"),
        "{report:#}"
    );
}

#[test]
fn a_moved_tag_leaves_one_sbom_listed() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let first = build_layout(&binary, &layout, &[]);
    // Another binary (bytes after the ELF's segments change its digest,
    // not its validity), the same tags: the tags move to the new image.
    let mut bytes = std::fs::read(&binary).unwrap();
    bytes.extend_from_slice(b"another build");
    let other = dir.path().join("other").join("openshell-sandbox");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(&other, bytes).unwrap();
    let second = build_layout(&other, &layout, &[]);
    assert_ne!(first.digest, second.digest);
    let found = sboms(&layout);
    assert_eq!(found.len(), 1, "{:#}", index(&layout));
    assert_eq!(found[0].subject(), second.digest);
    // A third tag keeps the first image, and its SBOM with it.
    build_layout(&binary, &layout, &["--tag", "first"]);
    let found = sboms(&layout);
    assert_eq!(found.len(), 2, "{:#}", index(&layout));
    let (passed, report) = verify_json(
        &format!("oci:{}:first", layout.display()),
        &["--require-sbom"],
    );
    assert!(passed, "{report:#}");
}

#[test]
fn skopeo_and_umoci_still_read_a_layout_with_an_sbom() {
    let test = "skopeo_and_umoci_still_read_a_layout_with_an_sbom";
    if !require(test, &["skopeo", "umoci"], INSTALL_HINT) {
        return;
    }
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let result = build_layout(&binary, &layout, &[]);
    assert_eq!(sboms(&layout).len(), 1);
    let mut inspect = Command::new("skopeo");
    inspect.args(["inspect", &format!("oci:{}:latest", layout.display())]);
    let inspect: serde_json::Value = serde_json::from_str(&run_ok(inspect)).unwrap();
    assert_eq!(inspect["Digest"], result.digest);
    let bundle = dir.path().join("bundle");
    let mut unpack = Command::new("umoci");
    unpack
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle);
    run_ok(unpack);
    let names: Vec<String> = std::fs::read_dir(bundle.join("rootfs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["openshell-sandbox"]);
}
