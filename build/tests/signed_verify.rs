//! `build-image verify SOURCE --key PUB`: accepts what --sign-key made and
//! what an independent signer (Python `cryptography`) made, and refuses,
//! naming what failed: an unsigned image, the wrong key, a tampered
//! payload, a signature over another digest or for another repository, an
//! attestation about another image; 1,000 signatures, a 10 MiB signature
//! manifest and a referrer loop cost bounded time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::referrers::{attach, list, provenance_about};
use common::signed::{build_command, key_pair};
use common::{build_image, ok, tempdir};
use openshell_contract::build_result::BuildResult;
use openshell_contract::signing::{
    COSIGN_SIG_ARTIFACT_TYPE, COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
    SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
};
use openshell_signing::intoto::SLSA_PROVENANCE_V1;
use openshell_signing::{PrivateKey, generate_cosign_key_pair, simple_signing};
use openshell_testsupport::oci_blobs::put_blob;
use openshell_testsupport::podman::{output_text, run};
use openshell_testsupport::python_tools::venv;

const PASS: &str = "verify passphrase";
const REPO: &str = "127.0.0.1:5000/openshell/supervisor";

struct Image {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    layout: PathBuf,
    result: BuildResult,
    key: PrivateKey,
    public: PathBuf,
}

fn image(sign: bool, platforms: usize) -> Image {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    let pair = key_pair(&path, PASS);
    let layout = path.join("layout");
    let mut command = build_command(&path, &layout, platforms > 1, PASS);
    command.arg("--no-sbom");
    if sign {
        command.arg("--sign-key").arg(&pair.key_file);
    }
    let result = serde_json::from_str(&ok(run(command))).unwrap();
    Image {
        _dir: dir,
        dir: path,
        layout,
        result,
        key: pair.key,
        public: pair.public,
    }
}

fn verify(image: &Image, public: &Path, extra: &[&str]) -> (bool, serde_json::Value, String) {
    let mut command = build_image();
    command
        .arg("verify")
        .arg(format!("oci:{}", image.layout.display()))
        .arg("--key")
        .arg(public)
        .args(extra)
        .arg("--json");
    let output = run(command);
    let text = output_text(&output);
    let value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {text}"));
    (output.status.success(), value, text)
}

fn failures(report: &serde_json::Value) -> String {
    report["signatures"]["failures"].to_string()
}

/// The image's one manifest: digest, size, media type.
fn subject(image: &Image) -> serde_json::Value {
    let digest = &image.result.digest;
    let size = std::fs::metadata(image.layout.join("blobs/sha256").join(&digest[7..]))
        .unwrap()
        .len();
    serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size})
}

fn attach_sig(image: &Image, payload: &[u8], signature: &[u8]) -> String {
    attach(
        &image.layout,
        &subject(image),
        COSIGN_SIG_ARTIFACT_TYPE,
        COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
        payload,
        serde_json::json!({COSIGN_SIGNATURE_ANNOTATION: STANDARD.encode(signature)}),
    )
}

fn attach_provenance(image: &Image, key: &PrivateKey, digests: &[&str]) {
    let envelope =
        openshell_signing::intoto::sign_provenance(key, &provenance_about(digests)).unwrap();
    let bundle = serde_json::json!({
        "mediaType": SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    });
    attach(
        &image.layout,
        &subject(image),
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        &serde_json::to_vec(&bundle).unwrap(),
        serde_json::json!({}),
    );
}

#[test]
fn verify_key_accepts_a_signed_build_and_names_what_each_signature_proved() {
    let image = image(true, 2);
    let (passed, report, text) = verify(&image, &image.public, &[]);
    assert!(passed, "{text}");
    let signatures = &report["signatures"];
    assert_eq!(signatures["ok"], true);
    let subjects = signatures["subjects"].as_array().unwrap();
    assert_eq!(subjects.len(), 3, "{signatures:#}");
    assert_eq!(subjects[0]["name"], "index");
    assert_eq!(subjects[0]["digest"], image.result.digest.as_str());
    for subject in subjects {
        assert_eq!(subject["signed"], true);
        let kinds: Vec<&str> = subject["found"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"cosign-simple-signing") && kinds.contains(&"sigstore-bundle"),
            "{kinds:?}"
        );
        for found in subject["found"].as_array().unwrap() {
            assert_eq!(found["ok"], true, "{found}");
        }
    }
    assert!(
        signatures["provenance"]["proved"]
            .as_str()
            .unwrap()
            .contains("SLSA provenance v1 of 3 subject(s)")
    );
    // The text report says the same.
    let mut command = build_image();
    command
        .arg("verify")
        .arg(format!("oci:{}", image.layout.display()))
        .arg("--key")
        .arg(&image.public);
    let text = ok(run(command));
    assert!(
        text.contains("signatures: ok") && text.contains("provenance: SLSA provenance"),
        "{text}"
    );
}

#[test]
fn verify_key_refuses_an_unsigned_image() {
    let image = image(false, 1);
    let (passed, report, text) = verify(&image, &image.public, &[]);
    assert!(!passed, "{text}");
    let failures = failures(&report);
    assert!(
        failures.contains(&format!(
            "linux/amd64 {} is not signed",
            image.result.digest
        )),
        "{failures}"
    );
    assert!(
        failures.contains("no SLSA provenance attestation"),
        "{failures}"
    );
}

#[test]
fn verify_key_refuses_the_wrong_key() {
    let image = image(true, 1);
    let other = image.dir.join("other.pub");
    std::fs::write(&other, generate_cosign_key_pair(b"x").unwrap().public_pem).unwrap();
    let (passed, report, _) = verify(&image, &other, &[]);
    assert!(!passed);
    let failures = failures(&report);
    assert!(
        failures.contains("does not verify with the given public key"),
        "{failures}"
    );
    assert!(
        failures.contains("no SLSA provenance attestation verifies"),
        "{failures}"
    );
}

#[test]
fn verify_key_refuses_a_tampered_payload() {
    let image = image(false, 1);
    let signed = simple_signing::sign(&image.key, REPO, &image.result.digest);
    let tampered = String::from_utf8(signed.payload)
        .unwrap()
        .replace("openshell", "0penshell");
    attach_sig(&image, tampered.as_bytes(), &signed.signature);
    let (passed, report, _) = verify(&image, &image.public, &[]);
    assert!(!passed);
    let failures = failures(&report);
    assert!(
        failures.contains("has no signature that verifies")
            && failures.contains("payload was altered"),
        "{failures}"
    );
}

#[test]
fn verify_key_refuses_a_signature_over_another_digest() {
    let image = image(false, 1);
    let other = format!("sha256:{}", "ab".repeat(32));
    let signed = simple_signing::sign(&image.key, REPO, &other);
    attach_sig(&image, &signed.payload, &signed.signature);
    let (passed, report, _) = verify(&image, &image.public, &[]);
    assert!(!passed);
    let failures = failures(&report);
    assert!(
        failures.contains(&format!(
            "the signature is over {other}, not over the expected {}",
            image.result.digest
        )),
        "{failures}"
    );
}

#[test]
fn verify_key_refuses_a_signature_for_another_repository() {
    let image = image(false, 1);
    let signed = simple_signing::sign(
        &image.key,
        "127.0.0.1:5000/someone/else",
        &image.result.digest,
    );
    attach_sig(&image, &signed.payload, &signed.signature);
    attach_provenance(&image, &image.key, &[&image.result.digest]);
    // Without a known identity the repository is not checked...
    let (passed, _, text) = verify(&image, &image.public, &[]);
    assert!(passed, "{text}");
    // ...with one, a signature for another repository is refused.
    let (passed, report, _) = verify(&image, &image.public, &["--identity", REPO]);
    assert!(!passed);
    let failures = failures(&report);
    assert!(
        failures.contains("made for repository") && failures.contains("someone/else"),
        "{failures}"
    );
}

#[test]
fn verify_key_refuses_an_attestation_about_another_image() {
    let image = image(false, 1);
    let signed = simple_signing::sign(&image.key, REPO, &image.result.digest);
    attach_sig(&image, &signed.payload, &signed.signature);
    let other = format!("sha256:{}", "cd".repeat(32));
    attach_provenance(&image, &image.key, &[&other]);
    let (passed, report, _) = verify(&image, &image.public, &[]);
    assert!(!passed);
    let failures = failures(&report);
    assert!(
        failures.contains(&format!(
            "no subject of the attestation has digest {}",
            image.result.digest
        )),
        "{failures}"
    );
    assert!(failures.contains(&other), "{failures}");
}

fn python(test: &str) -> Option<PathBuf> {
    let python = venv().join("bin/python");
    if python.is_file() {
        let mut probe = Command::new(&python);
        probe.args(["-c", "import cryptography, nacl"]);
        if run(probe).status.success() {
            return Some(python);
        }
    }
    let message = format!(
        "{test}: needs Python's cryptography and pynacl in {} (`scripts/setup-test-env` installs them)",
        venv().display()
    );
    if openshell_testsupport::in_ci() {
        panic!("{message}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {message}");
    None
}

#[test]
fn verify_key_accepts_signatures_made_by_an_independent_signer() {
    let test = "verify_key_accepts_signatures_made_by_an_independent_signer";
    let Some(python) = python(test) else { return };
    let image = image(false, 1);
    // Python makes the key pair and both signatures; we only verify.
    let (key, public) = (image.dir.join("py.key"), image.dir.join("py.pub"));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../signing/tests/cosign_check.py"
    );
    let mut command = Command::new(&python);
    command
        .arg(script)
        .arg("gen-key")
        .arg(&key)
        .arg(&public)
        .env("PASS", "py");
    assert!(run(command).status.success());
    let payload = simple_signing::SimpleSigning::new(REPO, &image.result.digest).to_bytes();
    let payload_file = image.dir.join("payload");
    std::fs::write(&payload_file, &payload).unwrap();
    let mut command = Command::new(&python);
    command
        .arg(script)
        .arg("sign")
        .arg(&key)
        .arg(&payload_file)
        .env("PASS", "py");
    let output = run(command);
    assert!(output.status.success(), "{}", output_text(&output));
    let signature = STANDARD
        .decode(String::from_utf8(output.stdout).unwrap().trim())
        .unwrap();
    attach_sig(&image, &payload, &signature);
    let statement = serde_json::to_vec(&provenance_about(&[&image.result.digest])).unwrap();
    let statement_file = image.dir.join("statement");
    std::fs::write(&statement_file, &statement).unwrap();
    let mut command = Command::new(&python);
    command
        .arg(script)
        .args(["sign-dsse"])
        .arg(&key)
        .arg("application/vnd.in-toto+json")
        .arg(&statement_file)
        .env("PASS", "py");
    let output = run(command);
    assert!(output.status.success(), "{}", output_text(&output));
    let envelope: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let bundle = serde_json::json!({
        "mediaType": SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    });
    attach(
        &image.layout,
        &subject(&image),
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
        &serde_json::to_vec(&bundle).unwrap(),
        serde_json::json!({}),
    );
    let (passed, report, text) = verify(&image, &public, &["--identity", REPO]);
    assert!(passed, "{text}");
    assert_eq!(report["signatures"]["subjects"][0]["signed"], true);
}

#[test]
fn a_thousand_signatures_cost_bounded_time() {
    let image = image(false, 1);
    let other = PrivateKey::generate().unwrap();
    let payload = simple_signing::SimpleSigning::new(REPO, &image.result.digest).to_bytes();
    let signature = other.sign(&payload);
    let subject = subject(&image);
    // 1,000 referrers signed by another key, each a distinct manifest.
    let empty = put_blob(&image.layout, b"{}");
    let layer_digest = put_blob(&image.layout, &payload);
    let path = image.layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for i in 0..1000 {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": COSIGN_SIG_ARTIFACT_TYPE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": COSIGN_SIMPLE_SIGNING_MEDIA_TYPE, "digest": layer_digest, "size": payload.len(),
                        "annotations": {COSIGN_SIGNATURE_ANNOTATION: STANDARD.encode(&signature), "n": i.to_string()}}],
            "subject": subject,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = put_blob(&image.layout, &bytes);
        index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": bytes.len(), "artifactType": COSIGN_SIG_ARTIFACT_TYPE,
        }));
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    // By default the listing itself is over --max-referrers: refused
    // before any of them is read.
    let mut command = build_image();
    command
        .arg("verify")
        .arg(format!("oci:{}", image.layout.display()))
        .arg("--key")
        .arg(&image.public)
        .arg("--json");
    let measured = openshell_testsupport::rss::run_measured(command, Duration::from_secs(120));
    assert!(!measured.status.success());
    let report: serde_json::Value = serde_json::from_slice(&measured.stdout).unwrap();
    let notes = report["signatures"]["subjects"][0]["notes"].to_string();
    assert!(
        notes.contains("is more than 64, over the limit of 64 (--max-referrers raises it)"),
        "{notes}"
    );
    // Raised past the listing, verify still examines only 32 of them.
    let mut command = build_image();
    command
        .arg("verify")
        .arg(format!("oci:{}", image.layout.display()))
        .arg("--key")
        .arg(&image.public)
        .args(["--max-referrers", "2000"])
        .arg("--json");
    let measured = openshell_testsupport::rss::run_measured(command, Duration::from_secs(120));
    let (passed, took) = (measured.status.success(), measured.elapsed);
    let report: serde_json::Value = serde_json::from_slice(&measured.stdout).unwrap();
    assert!(!passed);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // Reading the image itself (its 33 MiB binary layer) dominates; the
    // signatures add little.
    assert!(
        measured.peak_rss < 200 * 1024 * 1024,
        "peak RSS {} bytes",
        measured.peak_rss
    );
    eprintln!("peak RSS {} KiB", measured.peak_rss / 1024);
    let notes = report["signatures"]["subjects"][0]["notes"].to_string();
    assert!(
        notes.contains("1000 signature referrers listed; examined the first 32 only"),
        "{notes}"
    );
    assert_eq!(
        report["signatures"]["subjects"][0]["found"]
            .as_array()
            .unwrap()
            .len(),
        32
    );
    eprintln!("verify --key over 1,000 signatures: {took:?}");
}

#[test]
fn a_ten_mib_signature_manifest_is_refused_by_its_declared_size() {
    let image = image(false, 1);
    let mut huge = br#"{"schemaVersion":2,"pad":""#.to_vec();
    huge.resize(10 * 1024 * 1024, b'a');
    huge.extend_from_slice(b"\"}");
    let digest = put_blob(&image.layout, &huge);
    list(
        &image.layout,
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": huge.len(), "artifactType": COSIGN_SIG_ARTIFACT_TYPE,
        }),
    );
    let mut command = build_image();
    command
        .arg("verify")
        .arg(format!("oci:{}", image.layout.display()))
        .arg("--key")
        .arg(&image.public)
        .arg("--json");
    let measured = openshell_testsupport::rss::run_measured(command, Duration::from_secs(120));
    assert!(!measured.status.success());
    let report: serde_json::Value = serde_json::from_slice(&measured.stdout).unwrap();
    // Refused from its declared size: never read.
    assert!(
        measured.peak_rss < 200 * 1024 * 1024,
        "peak RSS {} bytes",
        measured.peak_rss
    );
    eprintln!(
        "10 MiB signature manifest: peak RSS {} KiB, {:?}",
        measured.peak_rss / 1024,
        measured.elapsed
    );
    let failures = failures(&report);
    assert!(failures.contains("--max-manifest-size"), "{failures}");
    assert!(failures.contains(&digest), "{failures}");
}

#[test]
fn a_referrer_loop_is_not_followed() {
    let image = image(false, 1);
    let signed = simple_signing::sign(&image.key, REPO, &image.result.digest);
    let first = attach_sig(&image, &signed.payload, &signed.signature);
    attach_provenance(&image, &image.key, &[&image.result.digest]);
    // A second signature whose subject is the first, and a third whose
    // subject is the second: referrers of referrers, never followed.
    let first_size = std::fs::metadata(image.layout.join("blobs/sha256").join(&first[7..]))
        .unwrap()
        .len();
    let first_subject = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": first, "size": first_size});
    let second = attach(
        &image.layout,
        &first_subject,
        COSIGN_SIG_ARTIFACT_TYPE,
        COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
        &signed.payload,
        serde_json::json!({}),
    );
    let second_size = std::fs::metadata(image.layout.join("blobs/sha256").join(&second[7..]))
        .unwrap()
        .len();
    attach(
        &image.layout,
        &serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": second, "size": second_size}),
        COSIGN_SIG_ARTIFACT_TYPE,
        COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
        &signed.payload,
        serde_json::json!({}),
    );
    let started = Instant::now();
    let (passed, report, text) = verify(&image, &image.public, &[]);
    assert!(passed, "{text}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let found = report["signatures"]["subjects"][0]["found"]
        .as_array()
        .unwrap();
    assert!(
        found.iter().all(|f| f["referrer"] != second.as_str()),
        "{found:?}"
    );
}

#[test]
fn copy_into_a_docker_archive_says_the_referrers_stay_behind() {
    let image = image(true, 1);
    let archive = image.dir.join("supervisor.tar");
    let mut command = build_image();
    command
        .arg("copy")
        .arg(format!("oci:{}:latest", image.layout.display()))
        .arg(format!("docker-archive:{}", archive.display()))
        .arg("--quiet");
    let out = ok(run(command));
    assert!(out.contains("a docker-archive cannot hold referrers: the 3 SBOM(s), signature(s) and attestation(s) stay behind"), "{out}");
    assert!(archive.is_file());
    // The archive has no referrers, so verify --key refuses it by name.
    let mut command = build_image();
    command
        .args([
            "verify",
            &format!("docker-archive:{}", archive.display()),
            "--key",
        ])
        .arg(&image.public)
        .arg("--json");
    let output = run(command);
    assert!(!output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        failures(&report).contains("cannot hold OCI referrers"),
        "{}",
        failures(&report)
    );
}

#[test]
fn verify_key_reads_cosign_v2_tags_pushed_by_other_tools() {
    let test = "verify_key_reads_cosign_v2_tags_pushed_by_other_tools";
    if !openshell_testsupport::require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(python) = python(test) else { return };
    let Some(registry) = openshell_testsupport::Registry::start(test) else {
        return;
    };
    let image = image(false, 1);
    let repository = format!("{}/openshell/supervisor", registry.host());
    let skopeo_copy = |from: &str, to: &str| {
        let mut command = Command::new("skopeo");
        command
            .args([
                "copy",
                "--preserve-digests",
                "--dest-tls-verify=false",
                "--dest-creds",
                &registry.creds(),
            ])
            .args([from, to]);
        openshell_testsupport::podman::run_ok(command);
    };
    // The unsigned image, pushed by skopeo.
    skopeo_copy(
        &format!("oci:{}:latest", image.layout.display()),
        &format!("docker://{repository}:1.0"),
    );
    let digest = &image.result.digest;

    // Python signs (its own key), skopeo pushes the .sig and .att images.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../signing/tests/cosign_check.py"
    );
    let (key, public) = (image.dir.join("py.key"), image.dir.join("py.pub"));
    let python_run = |args: &[&std::ffi::OsStr]| {
        let mut command = Command::new(&python);
        command.arg(script).args(args).env("PASS", "py");
        let output = run(command);
        assert!(output.status.success(), "{}", output_text(&output));
        output.stdout
    };
    python_run(&[
        std::ffi::OsStr::new("gen-key"),
        key.as_os_str(),
        public.as_os_str(),
    ]);
    let payload = simple_signing::SimpleSigning::new(&repository, digest).to_bytes();
    let payload_file = image.dir.join("payload");
    std::fs::write(&payload_file, &payload).unwrap();
    let signature = python_run(&[
        std::ffi::OsStr::new("sign"),
        key.as_os_str(),
        payload_file.as_os_str(),
    ]);
    let signature = String::from_utf8(signature).unwrap().trim().to_string();
    let sig_dir = image.dir.join("sig-image");
    openshell_testsupport::oci_blobs::cosign_signatures_layout(
        &sig_dir,
        COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
        &payload,
        serde_json::json!({COSIGN_SIGNATURE_ANNOTATION: signature}),
    );
    skopeo_copy(
        &format!("oci:{}:x", sig_dir.display()),
        &format!("docker://{repository}:sha256-{}.sig", &digest[7..]),
    );
    let statement_file = image.dir.join("statement");
    std::fs::write(
        &statement_file,
        serde_json::to_vec(&provenance_about(&[digest])).unwrap(),
    )
    .unwrap();
    let envelope = python_run(&[
        std::ffi::OsStr::new("sign-dsse"),
        key.as_os_str(),
        std::ffi::OsStr::new("application/vnd.in-toto+json"),
        statement_file.as_os_str(),
    ]);
    let att_dir = image.dir.join("att-image");
    openshell_testsupport::oci_blobs::cosign_signatures_layout(
        &att_dir,
        "application/vnd.dsse.envelope.v1+json",
        envelope.trim_ascii(),
        serde_json::json!({"predicateType": SLSA_PROVENANCE_V1}),
    );
    skopeo_copy(
        &format!("oci:{}:x", att_dir.display()),
        &format!("docker://{repository}:sha256-{}.att", &digest[7..]),
    );

    let verify_with = |public: &Path| {
        let mut command = build_image();
        command
            .args(["verify", &format!("docker://{repository}:1.0"), "--key"])
            .arg(public)
            .args([
                "--plain-http",
                "--username",
                registry.username(),
                "--password-stdin",
                "--json",
            ]);
        let output = common::output_with_stdin(command, &format!("{}\n", registry.password()));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (output.status.success(), report)
    };
    let (passed, report) = verify_with(&public);
    assert!(passed, "{report:#}");
    let found = &report["signatures"]["subjects"][0]["found"];
    assert_eq!(found[0]["kind"], "cosign-sig-tag", "{found}");
    assert_eq!(
        found[0]["referrer"],
        format!("tag sha256-{}.sig", &digest[7..])
    );
    assert!(
        report["signatures"]["provenance"]["referrer"]
            .as_str()
            .unwrap()
            .ends_with(".att")
    );
    // Another key: both tags are refused by name.
    let (passed, report) = verify_with(&image.public);
    assert!(!passed);
    let failures = failures(&report);
    assert!(
        failures.contains(".sig layer") && failures.contains("does not verify"),
        "{failures}"
    );

    // copy mirrors the tags as they are, and they verify at the mirror.
    let mirror = format!("{}/mirror/supervisor", registry.host());
    let mut command = build_image();
    command
        .args([
            "copy",
            &format!("docker://{repository}:1.0"),
            &format!("docker://{mirror}:1.0"),
        ])
        .args([
            "--plain-http",
            "--username",
            registry.username(),
            "--password-stdin",
            "--quiet",
        ]);
    ok(common::output_with_stdin(
        command,
        &format!("{}\n", registry.password()),
    ));
    let mut command = build_image();
    command
        .args(["verify", &format!("docker://{mirror}:1.0"), "--key"])
        .arg(&public)
        .args(["--identity", &repository])
        .args([
            "--plain-http",
            "--username",
            registry.username(),
            "--password-stdin",
            "--json",
        ]);
    let output = common::output_with_stdin(command, &format!("{}\n", registry.password()));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(output.status.success(), "{report:#}");
    assert_eq!(
        report["signatures"]["subjects"][0]["found"][0]["kind"],
        "cosign-sig-tag"
    );
}

#[test]
fn copy_between_layouts_keeps_digests_and_refuses_a_flood_of_referrers() {
    let image = image(true, 2);
    let copy = image.dir.join("copy");
    let mut command = build_image();
    command
        .arg("copy")
        .arg(format!("oci:{}:latest", image.layout.display()))
        .arg(format!("oci:{}:mirrored", copy.display()))
        .arg("--quiet");
    let out = ok(run(command));
    assert!(
        out.contains(&format!(
            "copied     {} (7 referrer(s))",
            image.result.digest
        )),
        "{out}"
    );
    // Every blob of the source is in the copy, byte for byte.
    for entry in std::fs::read_dir(image.layout.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let copied = copy.join("blobs/sha256").join(entry.file_name());
        // The cosign tag manifests exist only for registries.
        if copied.exists() {
            assert_eq!(
                std::fs::read(&copied).unwrap(),
                std::fs::read(entry.path()).unwrap()
            );
        }
    }
    let mut command = build_image();
    command
        .args([
            "verify",
            &format!("oci:{}:mirrored", copy.display()),
            "--key",
        ])
        .arg(&image.public)
        .arg("--json");
    let report: serde_json::Value = serde_json::from_str(&ok(run(command))).unwrap();
    assert_eq!(report["ok"], true);

    // 257 more referrers on the index (260 with its signatures and
    // provenance): refused, by count, before anything is written.
    let subject = serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": image.result.digest,
        "size": std::fs::metadata(image.layout.join("blobs/sha256").join(&image.result.digest[7..])).unwrap().len(),
    });
    for i in 0..257 {
        attach(
            &image.layout,
            &subject,
            "application/example",
            "application/example",
            format!("{i}").as_bytes(),
            serde_json::json!({}),
        );
    }
    let flooded = image.dir.join("flooded");
    let mut command = build_image();
    command
        .arg("copy")
        .arg(format!("oci:{}:latest", image.layout.display()))
        .arg(format!("oci:{}", flooded.display()))
        .arg("--quiet");
    let stderr = common::fails(run(command));
    assert!(
        stderr.contains(&format!(
            "the number of referrers listed for {} is more than 64, over the limit of 64 (--max-referrers raises it)",
            image.result.digest
        )),
        "{stderr}"
    );
    assert!(!flooded.join("index.json").exists());
    // Raised, the same copy carries every one of them.
    let mut command = build_image();
    command
        .arg("copy")
        .arg(format!("oci:{}:latest", image.layout.display()))
        .arg(format!("oci:{}", flooded.display()))
        .args(["--max-referrers", "300", "--quiet"]);
    common::ok(run(command));
    let copied: serde_json::Value =
        serde_json::from_slice(&std::fs::read(flooded.join("index.json")).unwrap()).unwrap();
    let carried = copied["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["artifactType"] == "application/example")
        .count();
    assert_eq!(carried, 257, "{copied}");
}
