//! Publishing to a real registry (docker-registry 2.8 on 127.0.0.1, with
//! htpasswd auth): tags, labels and annotations as skopeo sees them, and
//! the SBOM referrer read back. docker-registry 2.8 has no referrers API
//! (it answers 404), so the referrers are found through the OCI 1.1 tag
//! schema: an index tagged `sha256-<hex of the manifest>`.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sbom_support;

use std::process::Command;

use common::{aarch64_copy, ok, run_with_stdin, supervisor_copy, tempdir, verify_json};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::podman::run_ok;
use openshell_testsupport::{Registry, require};
use sbom_support::{SPDX, assert_valid_spdx, sboms};

/// `skopeo SUBCOMMAND ARGS` with the registry's credentials, over plain
/// HTTP.
fn skopeo(registry: &Registry, args: &[&str]) -> String {
    let (subcommand, rest) = args.split_first().unwrap();
    let mut command = Command::new("skopeo");
    command.arg(subcommand);
    // skopeo copy names its source's options --src-*.
    if *subcommand == "copy" {
        command.args(["--src-tls-verify=false", "--src-creds", &registry.creds()]);
    } else {
        command.args(["--tls-verify=false", "--creds", &registry.creds()]);
    }
    command.args(rest);
    run_ok(command)
}

fn push(registry: &Registry, args: &[&str]) -> BuildResult {
    let mut full = args.to_vec();
    full.extend_from_slice(&[
        "--plain-http",
        "--username",
        registry.username(),
        "--password-stdin",
        "--json",
        "--quiet",
    ]);
    let output = run_with_stdin(&full, &format!("{}\n", registry.password()));
    serde_json::from_str(&ok(output)).unwrap()
}

#[test]
fn skopeo_sees_the_tags_labels_and_annotations_after_a_push() {
    let test = "skopeo_sees_the_tags_labels_and_annotations_after_a_push";
    if !require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let repository = format!("{}/openshell/supervisor", registry.host());
    let result = push(
        &registry,
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--output",
            layout.to_str().unwrap(),
            "--push",
            &repository,
            "--tag",
            "v2.0",
            "--tag",
            "stable",
            "--label",
            "com.example.team=sandbox",
            "--annotation",
            "org.opencontainers.image.vendor=NVIDIA",
        ],
    );
    assert_eq!(result.pushed(), [format!("{repository}@{}", result.digest)]);

    let listed: serde_json::Value = serde_json::from_str(&skopeo(
        &registry,
        &["list-tags", &format!("docker://{repository}")],
    ))
    .unwrap();
    let tags: Vec<&str> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag.as_str().unwrap())
        .collect();
    for tag in ["v2.0", "stable"] {
        assert!(tags.contains(&tag), "{tag} not in {tags:?}");
    }
    for tag in ["v2.0", "stable"] {
        let inspect: serde_json::Value = serde_json::from_str(&skopeo(
            &registry,
            &["inspect", &format!("docker://{repository}:{tag}")],
        ))
        .unwrap();
        assert_eq!(inspect["Digest"], result.digest);
        assert_eq!(inspect["Labels"]["com.example.team"], "sandbox");
        let raw: serde_json::Value = serde_json::from_str(&skopeo(
            &registry,
            &["inspect", "--raw", &format!("docker://{repository}:{tag}")],
        ))
        .unwrap();
        assert_eq!(
            raw["annotations"]["org.opencontainers.image.vendor"],
            "NVIDIA"
        );
        assert_eq!(
            raw["annotations"]["dev.openshell.supervisor.binary.sha256"],
            result.platforms[0].binary_sha256
        );
    }
}

#[test]
fn the_sbom_is_read_back_from_the_registry() {
    let test = "the_sbom_is_read_back_from_the_registry";
    if !require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let amd64 = supervisor_copy(dir.path());
    let arm64 = aarch64_copy(dir.path());
    let layout = dir.path().join("layout");
    let repository = format!("{}/openshell/supervisor", registry.host());
    let binaries = [
        format!("linux/amd64={}", amd64.display()),
        format!("linux/arm64={}", arm64.display()),
    ];
    let args = [
        "--binary",
        binaries[0].as_str(),
        "--binary",
        binaries[1].as_str(),
        "--output",
        layout.to_str().unwrap(),
        "--push",
        &format!("{repository}:v1"),
    ];
    let result = push(&registry, &args);
    let local = sboms(&layout);
    assert_eq!(local.len(), 2);

    for platform in &result.platforms {
        let sbom = local
            .iter()
            .find(|sbom| sbom.subject() == platform.manifest_digest)
            .unwrap();
        // The tag-schema index lists the referrer, with its artifact type.
        let tag = platform.manifest_digest.replacen(':', "-", 1);
        let index: serde_json::Value = serde_json::from_str(&skopeo(
            &registry,
            &["inspect", "--raw", &format!("docker://{repository}:{tag}")],
        ))
        .unwrap();
        let entries = index["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{index:#}");
        assert_eq!(entries[0]["digest"], sbom.referrer);
        assert_eq!(entries[0]["artifactType"], SPDX);

        // skopeo copies the artifact out of the registry; it is the same
        // manifest and the same document as in the layout.
        let copy = dir.path().join(format!("copy-{}", tag));
        skopeo(
            &registry,
            &[
                "copy",
                &format!("docker://{repository}@{}", sbom.referrer),
                &format!("oci:{}:sbom", copy.display()),
            ],
        );
        let manifest = sbom_support::json_blob(&copy, &sbom.referrer);
        assert_eq!(manifest["subject"]["digest"], platform.manifest_digest);
        let document = sbom_support::blob(&copy, &sbom.digest);
        assert_eq!(document, sbom.bytes);
        assert_valid_spdx(test, &document);
    }

    // verify reads it through the registry, pinned by digest.
    let auth = registry.auth_file();
    let (passed, report) = verify_json(
        &format!("docker://{}", result.pushed()[0]),
        &[
            "--plain-http",
            "--authfile",
            auth.to_str().unwrap(),
            "--require-sbom",
        ],
    );
    assert!(passed, "{report:#}\n{}", registry.log());
    for platform in report["platforms"].as_array().unwrap() {
        let digest = platform["manifest_digest"].as_str().unwrap();
        let sbom = local.iter().find(|sbom| sbom.subject() == digest).unwrap();
        assert_eq!(platform["sbom"]["referrer_digest"], sbom.referrer);
        assert_eq!(platform["sbom"]["sbom_digest"], sbom.digest);
    }

    // Pushing again changes nothing: the referrers are already listed.
    push(&registry, &args);
    let tag = result.platforms[0].manifest_digest.replacen(':', "-", 1);
    let index: serde_json::Value = serde_json::from_str(&skopeo(
        &registry,
        &["inspect", "--raw", &format!("docker://{repository}:{tag}")],
    ))
    .unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index:#}");
}

#[test]
fn without_an_sbom_no_referrers_tag_is_pushed() {
    let test = "without_an_sbom_no_referrers_tag_is_pushed";
    if !require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let repository = format!("{}/openshell/supervisor", registry.host());
    let result = push(
        &registry,
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--output",
            dir.path().join("layout").to_str().unwrap(),
            "--push",
            &format!("{repository}:bare"),
            "--no-sbom",
        ],
    );
    let listed: serde_json::Value = serde_json::from_str(&skopeo(
        &registry,
        &["list-tags", &format!("docker://{repository}")],
    ))
    .unwrap();
    assert_eq!(listed["Tags"], serde_json::json!(["bare"]));
    let auth = registry.auth_file();
    let source = format!("docker://{}", result.pushed()[0]);
    let auth_args = ["--plain-http", "--authfile", auth.to_str().unwrap()];
    let (passed, report) = verify_json(&source, &auth_args);
    assert!(passed, "{report:#}");
    assert_eq!(common::check(&report, "sbom")["outcome"], "skipped");
    let mut required = auth_args.to_vec();
    required.push("--require-sbom");
    let (passed, report) = verify_json(&source, &required);
    assert!(!passed, "{report:#}");
    assert!(
        common::details(&report, "sbom").contains("no SBOM refers to this manifest"),
        "{report:#}"
    );
}
