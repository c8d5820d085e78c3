//! `--supervisor-public-key` with `--pin-supervisor-digest` against a real
//! registry: a supervisor image signed in cosign's format (the `.sig` and
//! `.att` tags, pushed by skopeo) is pinned; the wrong key and an unsigned
//! image stop the driver at start, naming what failed; a key without
//! pinning is warned about.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::oci_layout::write_image;
use common::{pin_args, run_err, run_ok};
use openshell_contract::signing::ENV_SUPERVISOR_PUBLIC_KEY;
use openshell_signing::intoto::{
    BuildDefinition, BuildMetadata, Builder, Provenance, ResourceDescriptor, RunDetails,
    SLSA_PROVENANCE_V1, STATEMENT_TYPE, Statement,
};
use openshell_signing::{PrivateKey, simple_signing};
use openshell_testsupport::{Registry, require};

fn skopeo_copy(registry: &Registry, from: &str, to: &str) {
    let mut command = Command::new("skopeo");
    command
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
        ])
        .arg(registry.creds())
        .args([from, to]);
    // Bounded: a stalled skopeo fails the test instead of hanging it.
    let output = openshell_testsupport::podman::run(command);
    assert!(
        output.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn digest_of(registry: &Registry, reference: &str) -> String {
    let mut command = Command::new("skopeo");
    command
        .args(["inspect", "--tls-verify=false", "--creds"])
        .arg(registry.creds())
        .args(["--format", "{{.Digest}}"])
        .arg(format!("docker://{reference}"));
    // Bounded: a stalled skopeo fails the test instead of hanging it.
    let output = openshell_testsupport::podman::run(command);
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Signs `digest` in `repository` the way cosign v2 stores it.
fn sign(registry: &Registry, dir: &Path, key: &PrivateKey, repository: &str, digest: &str) {
    let signed = simple_signing::sign(key, repository, digest);
    let sig = dir.join("sig");
    openshell_testsupport::oci_blobs::cosign_signatures_layout(
        &sig,
        "application/vnd.dev.cosign.simplesigning.v1+json",
        &signed.payload,
        serde_json::json!({"dev.cosignproject.cosign/signature": STANDARD.encode(&signed.signature)}),
    );
    skopeo_copy(
        registry,
        &format!("oci:{}:x", sig.display()),
        &format!("docker://{repository}:sha256-{}.sig", &digest[7..]),
    );
    let statement = Statement {
        kind: STATEMENT_TYPE.into(),
        subject: vec![ResourceDescriptor::from_digest("supervisor", digest)],
        predicate_type: SLSA_PROVENANCE_V1.into(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: "https://example.com/t".into(),
                external_parameters: serde_json::json!({}),
                internal_parameters: serde_json::Value::Null,
                resolved_dependencies: Vec::new(),
            },
            run_details: RunDetails {
                builder: Builder {
                    id: "https://example.com/builder".into(),
                    version: Default::default(),
                },
                metadata: BuildMetadata::default(),
            },
        },
    };
    let envelope = openshell_signing::intoto::sign_provenance(key, &statement).unwrap();
    let att = dir.join("att");
    openshell_testsupport::oci_blobs::cosign_signatures_layout(
        &att,
        "application/vnd.dsse.envelope.v1+json",
        &envelope.to_bytes(),
        serde_json::json!({"predicateType": SLSA_PROVENANCE_V1}),
    );
    skopeo_copy(
        registry,
        &format!("oci:{}:x", att.display()),
        &format!("docker://{repository}:sha256-{}.att", &digest[7..]),
    );
}

fn as_str(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn only_a_signed_supervisor_image_is_pinned() {
    let test = "only_a_signed_supervisor_image_is_pinned";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    if !require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repository = format!("{}/openshell/supervisor", registry.host());
    let tagged = format!("{repository}:v1");
    let layout = dir.path().join("layout");
    write_image(&layout, "v1", "signed build");
    skopeo_copy(
        &registry,
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{tagged}"),
    );
    let digest = digest_of(&registry, &tagged);
    let key = PrivateKey::generate().unwrap();
    let public = dir.path().join("cosign.pub");
    std::fs::write(&public, key.public_key().to_pem()).unwrap();
    let auth = registry.auth_file().display().to_string();
    let public_text = public.display().to_string();
    let args = |image: &str, key_file: &str| -> Vec<String> {
        std::iter::once("render")
            .chain(pin_args(image, &auth))
            .chain(["--supervisor-public-key", key_file])
            .map(str::to_string)
            .collect()
    };

    // Unsigned: refused, naming the manifest.
    let stderr = run_err(&as_str(&args(&tagged, &public_text)), &[]);
    assert!(
        stderr.contains("is not signed by the key")
            && stderr.contains(&format!("{digest} is not signed")),
        "{stderr}"
    );

    // Signed: pinned, and the signer and provenance are reported.
    sign(&registry, dir.path(), &key, &repository, &digest);
    let (stdout, stderr) = run_ok(&as_str(&args(&tagged, &public_text)), &[]);
    let pod: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        pod["spec"]["volumes"][0]["image"]["reference"],
        format!("{repository}@{digest}")
    );
    assert!(
        stderr.contains(&format!("signed by the key {}", key.public_key().key_id()))
            && stderr.contains(
                "SLSA provenance v1 of 1 subject(s), builder https://example.com/builder"
            ),
        "{stderr}"
    );

    // explain names the signer, the provenance and every signature.
    let mut explain_args = args(&tagged, &public_text);
    explain_args[0] = "explain".to_string();
    explain_args.drain(1..3);
    let (stdout, _) = run_ok(&as_str(&explain_args), &[]);
    assert!(
        stdout.contains("supervisor signature")
            && stdout.contains(&format!("signed by the key {}", key.public_key().key_id()))
            && stdout.contains("cosign-sig-tag")
            && stdout.contains("builder https://example.com/builder"),
        "{stdout}"
    );

    // The environment variable does the same; another key is refused.
    let other = dir.path().join("other.pub");
    std::fs::write(
        &other,
        PrivateKey::generate().unwrap().public_key().to_pem(),
    )
    .unwrap();
    let mut env_args = args(&tagged, &public_text);
    env_args.truncate(env_args.len() - 2);
    let stderr = run_err(
        &as_str(&env_args),
        &[(ENV_SUPERVISOR_PUBLIC_KEY, other.to_str().unwrap())],
    );
    assert!(
        stderr.contains("does not verify with the given public key"),
        "{stderr}"
    );

    // A key without pinning checks nothing: rendered, with a warning.
    let (_, stderr) = run_ok(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-image",
            &tagged,
            "--supervisor-public-key",
            &public_text,
        ],
        &[],
    );
    assert!(
        stderr.contains("checks nothing without --pin-supervisor-digest"),
        "{stderr}"
    );
}
