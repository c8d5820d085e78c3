//! `build-image --sign-key`: cosign signatures (simple signing and Sigstore
//! bundle v0.3) on the index and each platform manifest, and the SLSA
//! provenance attestation, as OCI 1.1 referrers in the layout; checked by
//! an independent Python verifier (signing/tests/cosign_check.py on
//! `cryptography`), reproducible, and refused keys write nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{aarch64_copy, build_image, fails, ok, output_with_stdin, supervisor_copy, tempdir};
use openshell_contract::build_result::BuildResult;
use openshell_contract::signing::{
    COSIGN_SIG_ARTIFACT_TYPE, COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLE_SIGNING_MEDIA_TYPE,
    SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
};
use openshell_signing::{PrivateKey, PublicKey, generate_cosign_key_pair, simple_signing};
use openshell_testsupport::podman::{output_text, run};
use openshell_testsupport::python_tools::venv;

const PASS: &str = "build passphrase";
const EPOCH: &str = "1700000000";

fn keypair(dir: &Path) -> (PathBuf, PathBuf) {
    let pair = generate_cosign_key_pair(PASS.as_bytes()).unwrap();
    let (key, public) = (dir.join("cosign.key"), dir.join("cosign.pub"));
    std::fs::write(&key, pair.private_pem).unwrap();
    std::fs::write(&public, pair.public_pem).unwrap();
    (key, public)
}

fn signed_build(dir: &Path, key: &Path, layout: &Path, extra: &[&str]) -> BuildResult {
    let mut command = build_image();
    command
        .args([
            "--binary",
            &format!("linux/amd64={}", supervisor_copy(dir).display()),
        ])
        .args([
            "--binary",
            &format!("linux/arm64={}", aarch64_copy(dir).display()),
        ])
        .arg("--output")
        .arg(layout)
        .arg("--sign-key")
        .arg(key)
        .args(extra)
        .args(["--json", "--quiet"])
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("COSIGN_PASSWORD", PASS);
    serde_json::from_str(&ok(run(command))).unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

/// The referrer manifests of the layout of one artifact type, by subject.
fn referrers(layout: &Path, artifact_type: &str) -> Vec<(String, serde_json::Value)> {
    let index = read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["artifactType"] == artifact_type)
        .map(|entry| {
            let manifest: serde_json::Value =
                serde_json::from_slice(&blob(layout, entry["digest"].as_str().unwrap())).unwrap();
            (
                manifest["subject"]["digest"].as_str().unwrap().to_string(),
                manifest,
            )
        })
        .collect()
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

/// Where `scripts/setup-test-env` installs sigstore-js.
const NODE_DIR_ENV: &str = "OPENSHELL_TEST_NODE";

/// sigstore-js's node_modules, or a skip (a failure in CI) naming what is
/// missing.
fn sigstore_js(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(NODE_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/openshell-test-node"));
    let modules = dir.join("node_modules");
    if modules.join("@sigstore/verify").is_dir()
        && openshell_testsupport::tools::which("node").is_some()
    {
        return Some(modules);
    }
    let message = format!(
        "{test}: needs node and sigstore-js in {} (`scripts/setup-test-env` installs them, or set {NODE_DIR_ENV})",
        dir.display()
    );
    if openshell_testsupport::in_ci() {
        panic!("{message}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {message}");
    None
}

/// Runs signing/tests/sigstore_js_verify.js: (verified, its message).
fn sigstore_js_verify(modules: &Path, bundle: &Path, public: &Path) -> (bool, String) {
    let mut command = Command::new("node");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../signing/tests/sigstore_js_verify.js"
        ))
        .arg(modules)
        .arg(bundle)
        .arg(public);
    let output = run(command);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_string(),
    )
}

fn python_check(python: &Path, args: &[&Path]) -> String {
    let mut command = Command::new(python);
    command.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../signing/tests/cosign_check.py"
    ));
    command.args(args);
    let output = run(command);
    assert!(output.status.success(), "{}", output_text(&output));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_signed_build_carries_cosign_signatures_and_provenance_that_python_verifies() {
    let test = "a_signed_build_carries_cosign_signatures_and_provenance_that_python_verifies";
    let dir = tempdir();
    let (key, public) = keypair(dir.path());
    let layout = dir.path().join("layout");
    let result = signed_build(dir.path(), &key, &layout, &["--no-sbom"]);
    let index_digest = result.digest.clone();
    let mut subjects: Vec<String> = vec![index_digest.clone()];
    subjects.extend(result.platforms.iter().map(|p| p.manifest_digest.clone()));
    assert_eq!(subjects.len(), 3);
    // No signature is mistaken for an SBOM in the build result.
    assert!(
        result
            .platforms
            .iter()
            .all(|p| p.sbom_manifest_digest.is_none())
    );
    let public_key = PublicKey::from_pem(&std::fs::read(&public).unwrap(), "cosign.pub").unwrap();
    let python = python(test);
    let sigstore_js = sigstore_js(test);

    // cosign's simple signing: one per manifest, the payload as the layer,
    // the signature in the layer's annotation.
    let sigs = referrers(&layout, COSIGN_SIG_ARTIFACT_TYPE);
    let mut signed: Vec<String> = sigs.iter().map(|(subject, _)| subject.clone()).collect();
    signed.sort();
    let mut expected = subjects.clone();
    expected.sort();
    assert_eq!(signed, expected);
    for (subject, manifest) in &sigs {
        let layer = &manifest["layers"][0];
        assert_eq!(layer["mediaType"], COSIGN_SIMPLE_SIGNING_MEDIA_TYPE);
        let payload = blob(&layout, layer["digest"].as_str().unwrap());
        let signature = layer["annotations"][COSIGN_SIGNATURE_ANNOTATION]
            .as_str()
            .unwrap();
        simple_signing::verify(
            &public_key,
            &payload,
            &STANDARD.decode(signature).unwrap(),
            subject,
            Some("openshell/supervisor"),
            "sig",
        )
        .unwrap();
        if let Some(python) = &python {
            let (payload_file, sig_file) = (dir.path().join("payload"), dir.path().join("sig"));
            std::fs::write(&payload_file, &payload).unwrap();
            std::fs::write(&sig_file, signature).unwrap();
            let critical: serde_json::Value = serde_json::from_str(&python_check(
                python,
                &[Path::new("verify-sig"), &public, &payload_file, &sig_file],
            ))
            .unwrap();
            assert_eq!(
                critical["image"]["docker-manifest-digest"],
                subject.as_str()
            );
        }
    }

    // Sigstore bundles: cosign v3's sign statement per manifest, and one
    // SLSA provenance on the index.
    let bundles = referrers(&layout, SIGSTORE_BUNDLE_V03_MEDIA_TYPE);
    assert_eq!(bundles.len(), 4, "3 signatures and the provenance");
    let mut provenance = 0;
    for (subject, manifest) in &bundles {
        let layer = &manifest["layers"][0];
        assert_eq!(layer["mediaType"], SIGSTORE_BUNDLE_V03_MEDIA_TYPE);
        let bundle: serde_json::Value =
            serde_json::from_slice(&blob(&layout, layer["digest"].as_str().unwrap())).unwrap();
        assert_eq!(bundle["mediaType"], SIGSTORE_BUNDLE_V03_MEDIA_TYPE);
        assert_eq!(
            bundle["verificationMaterial"]["publicKey"]["hint"],
            public_key.key_id()
        );
        let envelope: openshell_signing::dsse::Envelope =
            serde_json::from_value(bundle["dsseEnvelope"].clone()).unwrap();
        let statement: serde_json::Value = serde_json::from_slice(
            &envelope
                .verify(
                    &public_key,
                    openshell_signing::dsse::IN_TOTO_PAYLOAD_TYPE,
                    "bundle",
                )
                .unwrap(),
        )
        .unwrap();
        let predicate_type = manifest["annotations"]["dev.sigstore.bundle.predicateType"].clone();
        assert_eq!(statement["predicateType"], predicate_type);
        if predicate_type == "https://slsa.dev/provenance/v1" {
            provenance += 1;
            assert_eq!(subject, &index_digest);
            let statement = openshell_signing::intoto::verify_provenance(
                &public_key,
                &envelope,
                &result.platforms[1].manifest_digest,
                "provenance",
            )
            .unwrap();
            let digests: Vec<String> = statement
                .subject
                .iter()
                .map(|s| format!("sha256:{}", s.digest["sha256"]))
                .collect();
            assert_eq!(digests, subjects);
            let predicate = &statement.predicate;
            assert_eq!(
                predicate.run_details.metadata.started_on,
                "2023-11-14T22:13:20Z"
            );
            let arguments = predicate.build_definition.external_parameters["arguments"].to_string();
            assert!(arguments.contains("--sign-key"), "{arguments}");
            let materials = &predicate.build_definition.resolved_dependencies;
            assert!(
                materials
                    .iter()
                    .any(|m| m.name == "openshell-sandbox (linux/arm64)"),
                "{materials:?}"
            );
            assert!(
                materials
                    .iter()
                    .any(|m| m.uri.starts_with("pkg:cargo/p256@"))
            );
        } else {
            assert_eq!(
                statement["subject"][0]["digest"]["sha256"],
                subject.trim_start_matches("sha256:")
            );
        }
        if let Some(python) = &python {
            let file = dir.path().join("envelope.json");
            std::fs::write(&file, envelope.to_bytes()).unwrap();
            python_check(python, &[Path::new("verify-dsse"), &public, &file]);
        }
        if let Some(modules) = &sigstore_js {
            // sigstore-js verifies the whole bundle with the public key...
            let file = dir.path().join("bundle.json");
            std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
            assert_eq!(
                sigstore_js_verify(modules, &file, &public),
                (true, "verified".into())
            );
            // ...and refuses it with another key, or with its statement altered.
            let other = dir.path().join("other.pub");
            std::fs::write(&other, generate_cosign_key_pair(b"o").unwrap().public_pem).unwrap();
            assert!(!sigstore_js_verify(modules, &file, &other).0);
            let mut altered = bundle.clone();
            altered["dsseEnvelope"]["payload"] = STANDARD.encode(b"{}").into();
            std::fs::write(&file, serde_json::to_vec(&altered).unwrap()).unwrap();
            assert!(!sigstore_js_verify(modules, &file, &public).0);
        }
    }
    assert_eq!(provenance, 1);

    // The layout still verifies as an image.
    let verify = ok(common::run(&[
        "verify",
        &format!("oci:{}", layout.display()),
    ]));
    assert!(!verify.is_empty());
}

#[test]
fn the_same_key_and_inputs_give_the_same_bytes() {
    let dir = tempdir();
    let (key, _) = keypair(dir.path());
    // The same arguments (the provenance records them): the first layout
    // is moved away before the second build.
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let first = signed_build(dir.path(), &key, &one, &["--no-sbom"]);
    std::fs::rename(&one, &two).unwrap();
    let second = signed_build(dir.path(), &key, &one, &["--no-sbom"]);
    assert_eq!(first.digest, second.digest);
    let listing = |layout: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing(&one), listing(&two));
    assert_eq!(
        referrers(&one, COSIGN_SIG_ARTIFACT_TYPE).len()
            + referrers(&one, SIGSTORE_BUNDLE_V03_MEDIA_TYPE).len(),
        7
    );
}

#[test]
fn a_wrong_passphrase_fails_the_build_before_anything_is_written() {
    let dir = tempdir();
    let (key, _) = keypair(dir.path());
    let layout = dir.path().join("layout");
    let mut command = build_image();
    command
        .args(["--binary", supervisor_copy(dir.path()).to_str().unwrap()])
        .arg("--output")
        .arg(&layout)
        .arg("--sign-key")
        .arg(&key)
        .args(["--no-sbom", "--quiet"])
        .env_remove("COSIGN_PASSWORD");
    let stderr = fails(output_with_stdin(command, "not the passphrase\n"));
    assert!(
        stderr.contains("cosign.key") && stderr.contains("wrong passphrase"),
        "{stderr}"
    );
    assert!(!stderr.contains("not the passphrase"), "{stderr}");
    assert!(!layout.exists(), "the layout was written");
}

#[test]
fn a_public_key_or_a_passphrase_file_is_handled_by_name() {
    let dir = tempdir();
    let (key, public) = keypair(dir.path());
    let layout = dir.path().join("layout");
    let mut command = build_image();
    command
        .args(["--binary", supervisor_copy(dir.path()).to_str().unwrap()])
        .arg("--output")
        .arg(&layout)
        .arg("--sign-key")
        .arg(&public)
        .args(["--no-sbom", "--quiet"]);
    let stderr = fails(run(command));
    assert!(
        stderr.contains("cosign.pub") && stderr.contains("public key"),
        "{stderr}"
    );
    assert!(!layout.exists());

    // The passphrase from a file: the build signs.
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, format!("{PASS}\n")).unwrap();
    let mut command = build_image();
    command
        .args(["--binary", supervisor_copy(dir.path()).to_str().unwrap()])
        .arg("--output")
        .arg(&layout)
        .arg("--sign-key")
        .arg(&key)
        .arg("--sign-key-passphrase-file")
        .arg(&pass_file)
        .args(["--no-sbom", "--quiet"])
        .env_remove("COSIGN_PASSWORD");
    ok(run(command));
    assert_eq!(referrers(&layout, COSIGN_SIG_ARTIFACT_TYPE).len(), 1);
    // An unencrypted PKCS#8 key needs no passphrase at all.
    let (loaded, _) =
        PrivateKey::from_pem(&std::fs::read(&key).unwrap(), PASS.as_bytes(), "k").unwrap();
    let der = loaded.to_pkcs8_der().unwrap();
    let plain = dir.path().join("plain.pem");
    std::fs::write(
        &plain,
        p256::pkcs8::der::pem::encode_string(
            "PRIVATE KEY",
            p256::pkcs8::der::pem::LineEnding::LF,
            &der,
        )
        .unwrap(),
    )
    .unwrap();
    let layout2 = dir.path().join("layout2");
    let mut command = build_image();
    command
        .args(["--binary", supervisor_copy(dir.path()).to_str().unwrap()])
        .arg("--output")
        .arg(&layout2)
        .arg("--sign-key")
        .arg(&plain)
        .args(["--no-sbom", "--quiet"])
        .env_remove("COSIGN_PASSWORD");
    ok(run(command));
    // Same key, same image: the same signature manifests as before.
    assert_eq!(
        referrers(&layout2, COSIGN_SIG_ARTIFACT_TYPE)[0].1,
        referrers(&layout, COSIGN_SIG_ARTIFACT_TYPE)[0].1
    );
}

/// `skopeo ARGS` against the test registry (plain HTTP, its credentials).
fn skopeo(registry: &openshell_testsupport::Registry, args: &[&str]) -> String {
    let (subcommand, rest) = args.split_first().unwrap();
    let mut command = Command::new("skopeo");
    command.arg(subcommand);
    if *subcommand == "copy" {
        command.args(["--src-tls-verify=false", "--src-creds", &registry.creds()]);
    } else {
        command.args(["--tls-verify=false", "--creds", &registry.creds()]);
    }
    command.args(rest);
    openshell_testsupport::podman::run_ok(command)
}

#[test]
fn a_signed_push_leaves_cosign_sig_and_att_tags_that_skopeo_reads() {
    let test = "a_signed_push_leaves_cosign_sig_and_att_tags_that_skopeo_reads";
    if !openshell_testsupport::require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(registry) = openshell_testsupport::Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let (key, public) = keypair(dir.path());
    let repository = format!("{}/openshell/supervisor", registry.host());
    let mut command = build_image();
    command
        .args([
            "--binary",
            &format!("linux/amd64={}", supervisor_copy(dir.path()).display()),
        ])
        .args([
            "--binary",
            &format!("linux/arm64={}", aarch64_copy(dir.path()).display()),
        ])
        .arg("--output")
        .arg(dir.path().join("layout"))
        .args(["--push", &repository, "--tag", "1.0"])
        .arg("--sign-key")
        .arg(&key)
        .args([
            "--no-sbom",
            "--plain-http",
            "--username",
            registry.username(),
            "--password-stdin",
        ])
        .args(["--json", "--quiet"])
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("COSIGN_PASSWORD", PASS);
    let result: BuildResult = serde_json::from_str(&ok(output_with_stdin(
        command,
        &format!("{}\n", registry.password()),
    )))
    .unwrap();
    let mut subjects = vec![result.digest.clone()];
    subjects.extend(result.platforms.iter().map(|p| p.manifest_digest.clone()));

    let listed: serde_json::Value = serde_json::from_str(&skopeo(
        &registry,
        &["list-tags", &format!("docker://{repository}")],
    ))
    .unwrap();
    let tags: Vec<&str> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let public_key = PublicKey::from_pem(&std::fs::read(&public).unwrap(), "cosign.pub").unwrap();
    let python = python(test);
    for subject in &subjects {
        let hex = subject.trim_start_matches("sha256:");
        for suffix in [".sig", ".att"] {
            let tag = format!("sha256-{hex}{suffix}");
            assert!(tags.contains(&tag.as_str()), "{tag} not in {tags:?}");
            // containers/image (skopeo) reads it as an OCI image and copies it.
            let raw: serde_json::Value = serde_json::from_str(&skopeo(
                &registry,
                &["inspect", "--raw", &format!("docker://{repository}:{tag}")],
            ))
            .unwrap();
            assert_eq!(
                raw["mediaType"],
                "application/vnd.oci.image.manifest.v1+json"
            );
            let copy = dir.path().join(format!("copy{suffix}"));
            skopeo(
                &registry,
                &[
                    "copy",
                    &format!("docker://{repository}:{tag}"),
                    &format!("oci:{}:x", copy.display()),
                ],
            );
            let layer = &raw["layers"][0];
            let bytes = blob(&copy, layer["digest"].as_str().unwrap());
            if suffix == ".sig" {
                assert_eq!(layer["mediaType"], COSIGN_SIMPLE_SIGNING_MEDIA_TYPE);
                let signature = layer["annotations"][COSIGN_SIGNATURE_ANNOTATION]
                    .as_str()
                    .unwrap();
                // The identity is the pushed repository, as containers/image's
                // sigstoreSigned policy matches it.
                simple_signing::verify(
                    &public_key,
                    &bytes,
                    &STANDARD.decode(signature).unwrap(),
                    subject,
                    Some(&repository),
                    "sig",
                )
                .unwrap();
                if let Some(python) = &python {
                    let (payload_file, sig_file) =
                        (dir.path().join("payload"), dir.path().join("sig"));
                    std::fs::write(&payload_file, &bytes).unwrap();
                    std::fs::write(&sig_file, signature).unwrap();
                    python_check(
                        python,
                        &[Path::new("verify-sig"), &public, &payload_file, &sig_file],
                    );
                }
            } else {
                assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
                assert_eq!(
                    layer["annotations"]["predicateType"],
                    "https://slsa.dev/provenance/v1"
                );
                let envelope: openshell_signing::dsse::Envelope =
                    serde_json::from_slice(&bytes).unwrap();
                openshell_signing::intoto::verify_provenance(
                    &public_key,
                    &envelope,
                    subject,
                    "att",
                )
                .unwrap();
                if let Some(python) = &python {
                    let file = dir.path().join("envelope.json");
                    std::fs::write(&file, &bytes).unwrap();
                    python_check(python, &[Path::new("verify-dsse"), &public, &file]);
                }
            }
            std::fs::remove_dir_all(&copy).unwrap();
        }
    }

    // verify --key reads the referrers back from the registry (its
    // tag-schema index) and checks the identity against the repository.
    let mut command = build_image();
    command
        .args(["verify", &format!("docker://{repository}:1.0"), "--key"])
        .arg(&public)
        .args([
            "--plain-http",
            "--username",
            registry.username(),
            "--password-stdin",
            "--json",
        ]);
    let report: serde_json::Value = serde_json::from_str(&ok(output_with_stdin(
        command,
        &format!("{}\n", registry.password()),
    )))
    .unwrap();
    assert_eq!(report["signatures"]["ok"], true, "{report:#}");
    assert_eq!(report["signatures"]["identity"], repository.as_str());
    assert_eq!(
        report["signatures"]["subjects"].as_array().unwrap().len(),
        3
    );
}

#[test]
fn copy_carries_every_referrer_from_a_layout_to_a_registry_and_back() {
    let test = "copy_carries_every_referrer_from_a_layout_to_a_registry_and_back";
    if !openshell_testsupport::require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let Some(registry) = openshell_testsupport::Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let (key, public) = keypair(dir.path());
    let layout = dir.path().join("layout");
    // With the SBOM: it must travel too.
    let result = signed_build(dir.path(), &key, &layout, &[]);
    let before = read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["annotations"]["org.opencontainers.image.ref.name"].is_null())
        .count();
    assert_eq!(
        before,
        2 + 3 * 2 + 1,
        "two SBOMs, two signatures per manifest, the provenance"
    );

    let repository = format!("{}/mirror/supervisor", registry.host());
    let mut command = build_image();
    command
        .arg("copy")
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{repository}:mirrored"))
        .args([
            "--plain-http",
            "--username",
            registry.username(),
            "--password-stdin",
            "--quiet",
        ]);
    let out = ok(output_with_stdin(
        command,
        &format!("{}\n", registry.password()),
    ));
    assert!(
        out.contains(&format!(
            "copied     {} ({before} referrer(s))",
            result.digest
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("pushed     {repository}@{}", result.digest)),
        "{out}"
    );

    // The digest is kept, the cosign tags are there, and verify --key passes
    // at the mirror (the signatures still claim the original repository).
    let inspect: serde_json::Value = serde_json::from_str(&skopeo(
        &registry,
        &[
            "inspect",
            "--raw",
            &format!("docker://{repository}:mirrored"),
        ],
    ))
    .unwrap();
    assert_eq!(
        inspect["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed: serde_json::Value = serde_json::from_str(&skopeo(
        &registry,
        &["list-tags", &format!("docker://{repository}")],
    ))
    .unwrap();
    let tags = listed["Tags"].to_string();
    assert!(
        tags.contains(&format!("sha256-{}.sig", &result.digest[7..])),
        "{tags}"
    );
    assert!(
        tags.contains(&format!("sha256-{}.att", &result.digest[7..])),
        "{tags}"
    );
    let verify_registry = |reference: &str| {
        let mut command = build_image();
        command
            .args(["verify", reference, "--key"])
            .arg(&public)
            .args(["--identity", "openshell/supervisor", "--require-sbom"])
            .args([
                "--plain-http",
                "--username",
                registry.username(),
                "--password-stdin",
                "--json",
            ]);
        let report: serde_json::Value = serde_json::from_str(&ok(output_with_stdin(
            command,
            &format!("{}\n", registry.password()),
        )))
        .unwrap();
        report
    };
    let report = verify_registry(&format!("docker://{repository}:mirrored"));
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["signatures"]["ok"], true);

    // And back from the registry into a fresh layout: still all there.
    let back = dir.path().join("back");
    let mut command = build_image();
    command
        .arg("copy")
        .arg(format!("docker://{repository}:mirrored"))
        .arg(format!("oci:{}", back.display()))
        .args([
            "--plain-http",
            "--username",
            registry.username(),
            "--password-stdin",
            "--quiet",
        ]);
    let out = ok(output_with_stdin(
        command,
        &format!("{}\n", registry.password()),
    ));
    assert!(out.contains(&format!("({before} referrer(s))")), "{out}");
    let mut command = build_image();
    command
        .args([
            "verify",
            &format!("oci:{}:mirrored", back.display()),
            "--key",
        ])
        .arg(&public)
        .args(["--require-sbom", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&ok(run(command))).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(
        report["signatures"]["subjects"].as_array().unwrap().len(),
        3
    );
}

#[test]
fn the_passphrase_never_competes_with_the_registry_password_for_stdin() {
    let dir = tempdir();
    let (key, _) = keypair(dir.path());
    let layout = dir.path().join("layout");
    let base = |command: &mut Command| {
        command
            .args(["--binary", supervisor_copy(dir.path()).to_str().unwrap()])
            .arg("--output")
            .arg(&layout)
            .arg("--sign-key")
            .arg(&key)
            .args(["--no-sbom", "--quiet"])
            .env_remove("COSIGN_PASSWORD");
    };
    let mut command = build_image();
    base(&mut command);
    command.args(["--username", "u", "--password-stdin"]);
    let stderr = fails(output_with_stdin(command, &format!("{PASS}\n")));
    assert!(
        stderr.contains("--password-stdin reads standard input")
            && stderr.contains("COSIGN_PASSWORD")
            && stderr.contains("--sign-key-passphrase-file"),
        "{stderr}"
    );
    assert!(!layout.exists());

    // A passphrase file that is missing is named.
    let mut command = build_image();
    base(&mut command);
    command
        .arg("--sign-key-passphrase-file")
        .arg(dir.path().join("nope"));
    let stderr = fails(run(command));
    assert!(
        stderr.contains("--sign-key-passphrase-file") && stderr.contains("nope"),
        "{stderr}"
    );
    assert!(!layout.exists());
}
