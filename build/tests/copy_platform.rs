//! `build-image copy --platform OS/ARCH`: one platform's manifest, by its
//! own digest, with its own SBOM, signatures and attestations, without the
//! index; between layouts, from a registry and into one (docker-registry on
//! 127.0.0.1), read back by `verify --key` and skopeo. And each refusal:
//! a platform the source lacks, `--platform` with `--all-platforms` or
//! twice, an index into a docker-archive, another platform than a lone
//! manifest's. Through a registry that misbehaves on cue, the copy retries
//! and fails a stall within its deadline, as a push does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sbom_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::referrers::{attach, provenance_about};
use common::signed::{build_command, key_pair};
use common::{build_image, fails, ok, output_with_stdin, tempdir};
use openshell_contract::build_result::{BuildResult, PlatformImage};
use openshell_contract::signing::{
    BUNDLE_PREDICATE_TYPE_ANNOTATION, COSIGN_SIG_ARTIFACT_TYPE, SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
};
use openshell_signing::PrivateKey;
use openshell_signing::intoto::SLSA_PROVENANCE_V1;
use openshell_testsupport::podman::{output_text, run, run_ok};
use openshell_testsupport::{Action, Fault, FaultRegistry, Registry, require};
use sbom_support::{SPDX, blob_path, index, json_blob, referrer_entries};

const PASS: &str = "copy passphrase";
/// What a build without a registry destination signs as.
const IDENTITY: &str = "openshell/supervisor";

struct Signed {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    layout: PathBuf,
    result: BuildResult,
    public: PathBuf,
    key: PrivateKey,
}

impl Signed {
    fn platform(&self, name: &str) -> &PlatformImage {
        self.result
            .platforms
            .iter()
            .find(|p| p.platform == name)
            .unwrap()
    }
}

/// A signed image with an SBOM per platform, for linux/amd64 (and
/// linux/arm64 when `two`), written to a layout and, with `push`, to
/// `REPOSITORY:v1` in the registry.
fn signed_image(two: bool, push: Option<(&Registry, &str)>) -> Signed {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    let pair = key_pair(&path, PASS);
    let layout = path.join("layout");
    let mut command = build_command(&path, &layout, two, PASS);
    command.arg("--sign-key").arg(&pair.key_file);
    if let Some((_, repository)) = push {
        command.args(["--push", &format!("{repository}:v1")]);
    }
    let output = run_against(command, push.map(|(registry, _)| registry));
    let result: BuildResult = serde_json::from_str(&ok(output)).unwrap();
    Signed {
        _dir: dir,
        dir: path,
        layout,
        result,
        public: pair.public,
        key: pair.key,
    }
}

/// Runs `command`, with the registry's credentials (on standard input,
/// over plain HTTP) when given.
fn run_against(mut command: Command, registry: Option<&Registry>) -> std::process::Output {
    match registry {
        Some(registry) => {
            command.args([
                "--plain-http",
                "--username",
                registry.username(),
                "--password-stdin",
            ]);
            output_with_stdin(command, &format!("{}\n", registry.password()))
        }
        None => run(command),
    }
}

/// `build-image copy ARGS`, with the registry's credentials when given.
fn copy(args: &[&str], registry: Option<&Registry>) -> std::process::Output {
    let mut command = build_image();
    command.arg("copy").args(args);
    run_against(command, registry)
}

/// `build-image verify SOURCE --key PUB --json`: passed, and the report.
fn verify_key(
    source: &str,
    public: &Path,
    extra: &[&str],
    registry: Option<&Registry>,
) -> (bool, serde_json::Value) {
    let mut command = build_image();
    command
        .args(["verify", source, "--key"])
        .arg(public)
        .args(extra)
        .arg("--json");
    let output = run_against(command, registry);
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", output_text(&output)));
    (output.status.success(), report)
}

/// Asserts the report proves `digest`'s own signature and a provenance,
/// and nothing about any other manifest.
fn assert_verified(passed: bool, report: &serde_json::Value, digest: &str) {
    assert!(passed, "{report:#}");
    let subjects = report["signatures"]["subjects"].as_array().unwrap();
    assert_eq!(subjects.len(), 1, "{report:#}");
    assert_eq!(subjects[0]["digest"], digest);
    assert_eq!(subjects[0]["signed"], true);
    assert_eq!(report["signatures"]["provenance"]["ok"], true, "{report:#}");
}

/// The source layout's referrer of `subject` whose artifact type (and,
/// for bundles, predicate type) is given: its digest.
fn referrer_of(layout: &Path, subject: &str, artifact: &str, predicate: Option<&str>) -> String {
    let found: Vec<String> = referrer_entries(layout)
        .iter()
        .filter(|entry| entry["artifactType"] == artifact)
        .map(|entry| entry["digest"].as_str().unwrap().to_string())
        .filter(|digest| {
            let manifest = json_blob(layout, digest);
            manifest["subject"]["digest"] == subject
                && predicate
                    .is_none_or(|p| manifest["annotations"][BUNDLE_PREDICATE_TYPE_ANNOTATION] == p)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{artifact} {predicate:?} of {subject}: {found:?}"
    );
    found.into_iter().next().unwrap()
}

/// Asserts that `copy` (a layout) holds `platform`'s manifest of `image`,
/// unchanged, as its one image, with its SBOM, signature and sign bundle
/// (the same manifests) and the index's provenance attached to it again
/// (the same bundle), and nothing of the index or the other platform.
fn assert_platform_layout(image: &Signed, platform: &str, other: &str, copy: &Path) {
    let chosen = image.platform(platform);
    let other = image.platform(other);
    let digest = &chosen.manifest_digest;
    let images: Vec<serde_json::Value> = index(copy)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry.get("artifactType").is_none())
        .cloned()
        .collect();
    assert!(!images.is_empty());
    assert!(
        images
            .iter()
            .all(|entry| entry["digest"] == digest.as_str()),
        "{images:?}"
    );
    assert_eq!(
        std::fs::read(blob_path(copy, digest)).unwrap(),
        std::fs::read(blob_path(&image.layout, digest)).unwrap(),
        "the manifest is byte for byte the source's"
    );
    // Nothing of the index or of the other platform.
    let other_manifest = json_blob(&image.layout, &other.manifest_digest);
    for absent in [
        image.result.digest.as_str(),
        other.manifest_digest.as_str(),
        other.layer_digest.as_str(),
        other_manifest["config"]["digest"].as_str().unwrap(),
    ] {
        assert!(!blob_path(copy, absent).exists(), "{absent} was copied");
    }
    // Every referrer names the platform manifest.
    let entries = referrer_entries(copy);
    for entry in &entries {
        let manifest = json_blob(copy, entry["digest"].as_str().unwrap());
        assert_eq!(
            manifest["subject"]["digest"],
            digest.as_str(),
            "{manifest:#}"
        );
    }
    let listed: Vec<&str> = entries
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    // Its own SBOM, signature and sign bundle: the same manifests.
    let sbom = chosen.sbom_manifest_digest.clone().unwrap();
    assert_eq!(referrer_of(&image.layout, digest, SPDX, None), sbom);
    let signature = referrer_of(&image.layout, digest, COSIGN_SIG_ARTIFACT_TYPE, None);
    let bundle = referrer_of(
        &image.layout,
        digest,
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        Some("https://sigstore.dev/cosign/sign/v1"),
    );
    for own in [&sbom, &signature, &bundle] {
        assert!(listed.contains(&own.as_str()), "{own} missing: {listed:?}");
        assert_eq!(
            std::fs::read(blob_path(copy, own)).unwrap(),
            std::fs::read(blob_path(&image.layout, own)).unwrap()
        );
    }
    // The index's provenance, attached to the manifest: the same bundle.
    let provenance = referrer_of(
        &image.layout,
        &image.result.digest,
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        Some(SLSA_PROVENANCE_V1),
    );
    let remade = referrer_of(
        copy,
        digest,
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        Some(SLSA_PROVENANCE_V1),
    );
    assert_eq!(
        json_blob(copy, &remade)["layers"],
        json_blob(&image.layout, &provenance)["layers"]
    );
    assert_eq!(entries.len(), 4, "{entries:#?}");
}

/// skopeo's view of `reference`: its digest and architecture.
fn skopeo_inspect(reference: &str, registry: Option<&Registry>) -> serde_json::Value {
    let mut command = Command::new("skopeo");
    command.arg("inspect");
    if let Some(registry) = registry {
        command.args(["--tls-verify=false", "--creds", &registry.creds()]);
    }
    command.arg(reference);
    serde_json::from_str(&run_ok(command)).unwrap()
}

#[test]
fn platform_copy_between_layouts_keeps_the_manifest_and_its_evidence() {
    let test = "platform_copy_between_layouts_keeps_the_manifest_and_its_evidence";
    let image = signed_image(true, None);
    let arm64 = image.platform("linux/arm64").manifest_digest.clone();
    let target = image.dir.join("arm64");
    let output = copy(
        &[
            &format!("oci:{}:latest", image.layout.display()),
            &format!("oci:{}:mirrored", target.display()),
            "--platform",
            "linux/arm64",
            "--quiet",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let out = ok(output);
    assert!(
        out.contains(&format!("copied     {arm64} (linux/arm64, 4 referrer(s))")),
        "{out}"
    );
    // Said even with --quiet: the index's own evidence stays behind.
    assert!(
        stderr.contains(&format!("without its index {}", image.result.digest))
            && stderr.contains("cannot travel with one platform")
            && stderr.contains("1 attestation(s) of the index whose signed statement names this manifest (the SLSA provenance) are attached to it again, unchanged"),
        "{stderr}"
    );
    assert_platform_layout(&image, "linux/arm64", "linux/amd64", &target);
    let (passed, report) = verify_key(
        &format!("oci:{}:mirrored", target.display()),
        &image.public,
        &["--require-sbom"],
        None,
    );
    assert_verified(passed, &report, &arm64);
    if require(test, &["skopeo"], "apt-get install skopeo") {
        let seen = skopeo_inspect(&format!("oci:{}:mirrored", target.display()), None);
        assert_eq!(seen["Digest"], arm64.as_str());
        assert_eq!(seen["Architecture"], "arm64");
    }

    // --all-platforms, explicit, is the default: the index and every
    // referrer, every digest kept.
    let whole = image.dir.join("whole");
    let out = ok(copy(
        &[
            &format!("oci:{}:latest", image.layout.display()),
            &format!("oci:{}", whole.display()),
            "--all-platforms",
            "--quiet",
        ],
        None,
    ));
    assert!(
        out.contains(&format!("copied     {} (", image.result.digest)),
        "{out}"
    );
    assert_eq!(
        referrer_entries(&whole).len(),
        referrer_entries(&image.layout).len()
    );
}

#[test]
fn platform_copy_from_a_registry_into_a_layout() {
    let test = "platform_copy_from_a_registry_into_a_layout";
    if !require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let repository = format!("{}/openshell/supervisor", registry.host());
    let image = signed_image(true, Some((&registry, &repository)));
    let amd64 = image.platform("linux/amd64").manifest_digest.clone();
    let target = image.dir.join("amd64");
    let out = ok(copy(
        &[
            &format!("docker://{repository}:v1"),
            &format!("oci:{}:mirrored", target.display()),
            "--platform",
            "linux/amd64",
            "--quiet",
        ],
        Some(&registry),
    ));
    assert!(
        out.contains(&format!("copied     {amd64} (linux/amd64, 4 referrer(s))")),
        "{out}\n{}",
        registry.log()
    );
    assert_platform_layout(&image, "linux/amd64", "linux/arm64", &target);
    let (passed, report) = verify_key(
        &format!("oci:{}:mirrored", target.display()),
        &image.public,
        &["--identity", &repository, "--require-sbom"],
        None,
    );
    assert_verified(passed, &report, &amd64);
    let seen = skopeo_inspect(&format!("oci:{}:mirrored", target.display()), None);
    assert_eq!(seen["Digest"], amd64.as_str());
    assert_eq!(seen["Architecture"], "amd64");
}

#[test]
fn platform_copy_from_a_layout_into_a_registry() {
    let test = "platform_copy_from_a_layout_into_a_registry";
    if !require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let image = signed_image(true, None);
    let arm64 = image.platform("linux/arm64").manifest_digest.clone();
    let amd64 = image.platform("linux/amd64").manifest_digest.clone();
    let mirror = format!("{}/mirror/supervisor", registry.host());
    let out = ok(copy(
        &[
            &format!("oci:{}:latest", image.layout.display()),
            &format!("docker://{mirror}:arm64"),
            "--platform",
            "linux/arm64/v8",
            "--quiet",
        ],
        Some(&registry),
    ));
    assert!(out.contains(&format!("copied     {arm64} (")), "{out}");
    let seen = skopeo_inspect(&format!("docker://{mirror}:arm64"), Some(&registry));
    assert_eq!(seen["Digest"], arm64.as_str(), "{seen:#}");
    assert_eq!(seen["Architecture"], "arm64");
    // cosign v2's tags on the manifest, none on the index.
    let mut command = Command::new("skopeo");
    command
        .args([
            "list-tags",
            "--tls-verify=false",
            "--creds",
            &registry.creds(),
        ])
        .arg(format!("docker://{mirror}"));
    let tags: serde_json::Value = serde_json::from_str(&run_ok(command)).unwrap();
    let tags: Vec<&str> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let hex = &arm64[7..];
    for wanted in [format!("sha256-{hex}.sig"), format!("sha256-{hex}.att")] {
        assert!(tags.contains(&wanted.as_str()), "{wanted} not in {tags:?}");
    }
    assert!(
        !tags
            .iter()
            .any(|t| t.contains(&image.result.digest[7..]) || t.contains(&amd64[7..])),
        "{tags:?}"
    );
    // The other platform and the index are not there.
    for absent in [&amd64, &image.result.digest] {
        let mut command = Command::new("skopeo");
        command
            .args([
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--creds",
                &registry.creds(),
            ])
            .arg(format!("docker://{mirror}@{absent}"));
        let output = run(command);
        assert!(!output.status.success(), "{absent} is in the mirror");
    }
    let (passed, report) = verify_key(
        &format!("docker://{mirror}:arm64"),
        &image.public,
        &["--identity", IDENTITY, "--require-sbom"],
        Some(&registry),
    );
    assert_verified(passed, &report, &arm64);
}

#[test]
fn platform_copy_refuses_a_platform_the_source_lacks() {
    let image = signed_image(true, None);
    let target = image.dir.join("copy");
    // Another architecture, and a variant the index does not give.
    for platform in ["linux/s390x", "linux/arm64/v7"] {
        let stderr = fails(copy(
            &[
                &format!("oci:{}:latest", image.layout.display()),
                &format!("oci:{}", target.display()),
                "--platform",
                platform,
            ],
            None,
        ));
        assert!(
            stderr.contains(&format!(
                "has no {platform} manifest; its index lists linux/amd64, linux/arm64"
            )),
            "{stderr}"
        );
        assert!(!target.exists(), "nothing is written");
    }
}

/// The stderr of `copy oci:A oci:B FLAGS`, which fails before reading A.
fn refused_flags(flags: &[&str]) -> String {
    let dir = tempdir();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (a, b) = (
        format!("oci:{}", a.display()),
        format!("oci:{}", b.display()),
    );
    let mut args = vec![a.as_str(), b.as_str()];
    args.extend_from_slice(flags);
    fails(copy(&args, None))
}

#[test]
fn platform_copy_refuses_all_platforms_too() {
    let stderr = refused_flags(&["--all-platforms", "--platform", "linux/amd64"]);
    assert!(
        stderr.contains("--all-platforms") && stderr.contains("cannot be used with"),
        "{stderr}"
    );
}

#[test]
fn platform_copy_takes_one_platform_only() {
    let stderr = refused_flags(&["--platform", "linux/amd64", "--platform", "linux/arm64"]);
    assert!(
        stderr.contains("--platform") && stderr.contains("cannot be used multiple times"),
        "{stderr}"
    );
    let stderr = refused_flags(&["--platform", "amd64"]);
    assert!(
        stderr.contains("expected os/architecture[/variant]"),
        "{stderr}"
    );
}

#[test]
fn a_docker_archive_takes_one_platform_not_the_index() {
    let image = signed_image(true, None);
    let archive = image.dir.join("supervisor.tar");
    let stderr = fails(copy(
        &[
            &format!("oci:{}:latest", image.layout.display()),
            &format!("docker-archive:{}", archive.display()),
        ],
        None,
    ));
    assert!(
        stderr.contains("a docker-archive holds one platform's image (and no referrers)")
            && stderr.contains("is an index over 2 platforms")
            && stderr.contains("--platform OS/ARCH"),
        "{stderr}"
    );
    assert!(!archive.exists(), "nothing is written");
    // Refused before a blob is read: no "reading ... with its referrers".
    assert!(!stderr.contains("with its referrers"), "{stderr}");
    // One platform fits, and its evidence stays behind, as a lone
    // manifest's always did.
    let out = ok(copy(
        &[
            &format!("oci:{}:latest", image.layout.display()),
            &format!("docker-archive:{}", archive.display()),
            "--platform",
            "linux/amd64",
            "--quiet",
        ],
        None,
    ));
    assert!(
        out.contains("a docker-archive cannot hold referrers: the 4 SBOM(s), signature(s) and attestation(s) stay behind"),
        "{out}"
    );
    assert!(archive.is_file());
}

#[test]
fn platform_copy_of_a_lone_manifest_refuses_another_platform() {
    let image = signed_image(false, None);
    let target = image.dir.join("copy");
    let source = format!("oci:{}:latest", image.layout.display());
    let stderr = fails(copy(
        &[
            &source,
            &format!("oci:{}", target.display()),
            "--platform",
            "linux/arm64",
        ],
        None,
    ));
    assert!(
        stderr.contains("is a single manifest (no index) for linux/amd64, not linux/arm64"),
        "{stderr}"
    );
    assert!(!target.exists());
    // Its own platform: the whole image, as it is.
    let out = ok(copy(
        &[
            &source,
            &format!("oci:{}", target.display()),
            "--platform",
            "linux/amd64",
            "--quiet",
        ],
        None,
    ));
    assert!(
        out.contains(&format!(
            "copied     {} (linux/amd64, ",
            image.result.digest
        )),
        "{out}"
    );
    let (passed, report) = verify_key(
        &format!("oci:{}", target.display()),
        &image.public,
        &[],
        None,
    );
    assert_verified(passed, &report, &image.result.digest);
}

/// Attaches to the index of `image` a SLSA provenance bundle, signed with
/// its key, whose statement names only `digests` (and no predicate-type
/// annotation on the referrer, as other tools write it); returns the
/// bundle layer's digest.
fn attach_provenance_to_index(image: &Signed, digests: &[&str]) -> String {
    let envelope =
        openshell_signing::intoto::sign_provenance(&image.key, &provenance_about(digests)).unwrap();
    let bundle = serde_json::to_vec(&serde_json::json!({
        "mediaType": SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    }))
    .unwrap();
    let index_size = std::fs::metadata(blob_path(&image.layout, &image.result.digest))
        .unwrap()
        .len();
    let referrer = attach(
        &image.layout,
        &serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": image.result.digest, "size": index_size}),
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        &bundle,
        serde_json::json!({}),
    );
    json_blob(&image.layout, &referrer)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn only_attestations_naming_the_platform_travel_with_it() {
    let image = signed_image(true, None);
    let amd64 = image.platform("linux/amd64").manifest_digest.clone();
    let arm64 = image.platform("linux/arm64").manifest_digest.clone();
    // An attestation of the index about amd64 (and another image) only.
    let layer =
        attach_provenance_to_index(&image, &[&amd64, &format!("sha256:{}", "ab".repeat(32))]);
    let source = format!("oci:{}:latest", image.layout.display());
    // Copies one platform, checks what it printed, and that verify passes.
    let copy_one = |platform: &str, digest: &str, referrers: usize, attached: &str| {
        let target = image.dir.join(platform.replace('/', "-"));
        let output = copy(
            &[
                &source,
                &format!("oci:{}", target.display()),
                "--platform",
                platform,
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let out = ok(output);
        assert!(
            out.contains(&format!(
                "copied     {digest} ({platform}, {referrers} referrer(s))"
            )),
            "{out}"
        );
        assert!(stderr.contains("the index's own 4 referrer(s)"), "{stderr}");
        assert!(stderr.contains(attached), "{stderr}");
        let (passed, report) = verify_key(
            &format!("oci:{}", target.display()),
            &image.public,
            &[],
            None,
        );
        assert_verified(passed, &report, digest);
        target
    };
    // arm64: not named, so it stays behind; the build's provenance comes.
    let target = copy_one("linux/arm64", &arm64, 4, "1 attestation(s) of the index");
    assert!(
        !blob_path(&target, &layer).exists(),
        "an attestation about other images travelled"
    );
    // amd64: named, so it comes along, its bundle unchanged, about amd64.
    let target = copy_one("linux/amd64", &amd64, 5, "2 attestation(s) of the index");
    let carried: Vec<serde_json::Value> = referrer_entries(&target)
        .iter()
        .map(|entry| json_blob(&target, entry["digest"].as_str().unwrap()))
        .filter(|manifest| manifest["layers"][0]["digest"] == layer.as_str())
        .collect();
    assert_eq!(carried.len(), 1);
    assert_eq!(carried[0]["subject"]["digest"], amd64.as_str());
}

/// `build-image copy ARGS` through the fault-injecting registry, with
/// short network bounds (so a stall fails fast).
fn copy_through(faults: &FaultRegistry, args: &[&str]) -> std::process::Output {
    let auth = faults.auth_file();
    let mut command = build_image();
    command.arg("copy").args(args).args([
        "--plain-http",
        "--authfile",
        auth.to_str().unwrap(),
        "--registry-read-timeout",
        "1s",
        "--registry-attempts",
        "2",
        "--quiet",
    ]);
    run(command)
}

#[test]
fn platform_copy_retries_and_stalls_like_a_push() {
    let Some(faults) = FaultRegistry::start("platform_copy_retries_and_stalls_like_a_push") else {
        return;
    };
    let image = signed_image(true, None);
    let arm64 = image.platform("linux/arm64").manifest_digest.clone();
    let mirror = format!("{}/mirror/supervisor", faults.host());
    // A transient error on the manifest and on a blob check: retried.
    faults.inject(Fault::on("PUT", "/manifests/arm64", Action::status(503)).times(1));
    faults.inject(Fault::on("HEAD", "/blobs/", Action::status(500)).times(1));
    let output = copy_through(
        &faults,
        &[
            &format!("oci:{}:latest", image.layout.display()),
            &format!("docker://{mirror}:arm64"),
            "--platform",
            "linux/arm64",
        ],
    );
    let out = ok(output);
    assert!(out.contains(&format!("copied     {arm64} (")), "{out}");
    assert_eq!(faults.seen_matching("PUT", "/manifests/arm64").len(), 2);
    faults.clear();
    // A registry that stalls mid-blob: the copy out of it fails within its
    // deadline, names the stall, and writes no layout.
    faults.inject(Fault::on("GET", "/blobs/sha256:", Action::StallAfter(100)));
    let target = image.dir.join("stalled");
    let start = Instant::now();
    let output = copy_through(
        &faults,
        &[
            &format!("docker://{mirror}:arm64"),
            &format!("oci:{}", target.display()),
            "--platform",
            "linux/arm64",
        ],
    );
    let elapsed = start.elapsed();
    let stderr = fails(output);
    eprintln!("the stalled copy failed in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert!(stderr.contains("stalled"), "{stderr}");
    assert!(!target.exists(), "a layout was written");
}

#[test]
fn platform_copy_refuses_a_platform_several_manifests_match() {
    let image = signed_image(true, None);
    // The index again, with a second arm64 entry, variant v9: `linux/arm64`
    // (v8 when no variant is given) then names two manifests.
    let layout = &image.layout;
    let mut top: serde_json::Value = json_blob(layout, &image.result.digest);
    let mut v9 = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap()
        .clone();
    v9["platform"]["variant"] = "v9".into();
    top["manifests"].as_array_mut().unwrap().push(v9);
    let bytes = serde_json::to_vec(&top).unwrap();
    let digest = openshell_testsupport::oci_blobs::put_blob(layout, &bytes);
    let mut index = index(layout);
    for entry in index["manifests"].as_array_mut().unwrap() {
        if entry["digest"] == image.result.digest.as_str() {
            entry["digest"] = digest.clone().into();
            entry["size"] = bytes.len().into();
        }
    }
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let target = image.dir.join("copy");
    let stderr = fails(copy(
        &[
            &format!("oci:{}:latest", layout.display()),
            &format!("oci:{}", target.display()),
            "--platform",
            "linux/arm64",
        ],
        None,
    ));
    assert!(
        stderr.contains("has several linux/arm64 manifests (linux/arm64, linux/arm64/v9)"),
        "{stderr}"
    );
    assert!(!target.exists());
    // Named with its variant, it is one.
    let out = ok(copy(
        &[
            &format!("oci:{}:latest", layout.display()),
            &format!("oci:{}", target.display()),
            "--platform",
            "linux/arm64/v9",
            "--quiet",
        ],
        None,
    ));
    assert!(
        out.contains(&format!(
            "copied     {} (linux/arm64/v9, ",
            image.platform("linux/arm64").manifest_digest
        )),
        "{out}"
    );
}
