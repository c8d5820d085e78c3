//! Differential checks against an independent implementation: a Python
//! verifier and signer (`tests/cosign_check.py`, on `cryptography` and
//! `pynacl`, written from cosign's and go-securesystemslib's
//! specifications). Our keys open there, our signatures verify there, and
//! its keys and signatures are accepted here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openshell_signing::dsse::{self, Envelope, IN_TOTO_PAYLOAD_TYPE};
use openshell_signing::simple_signing;
use openshell_signing::{PrivateKey, PublicKey, generate_cosign_key_pair};
use openshell_testsupport::podman::{output_text, run};
use openshell_testsupport::python_tools::venv;

const PASS: &str = "differential passphrase";

/// The venv's Python with `cryptography` and `nacl`, or a skip (a failure
/// in CI) naming what is missing.
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

fn check(python: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(python);
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/cosign_check.py"
        ))
        .args(args)
        .env("PASS", PASS);
    run(command)
}

fn check_ok(python: &Path, args: &[&str]) -> String {
    let output = check(python, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        output_text(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A small seeded generator (SplitMix64), so every run checks the same cases.
struct Seeded(u64);
impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn digest(&mut self) -> String {
        let bytes: Vec<u8> = (0..32).map(|_| self.next() as u8).collect();
        format!("sha256:{}", hex::encode(bytes))
    }
    fn repository(&mut self) -> String {
        let port = 1024 + self.next() % 60000;
        let depth = 1 + self.next() % 3;
        let parts: Vec<String> = (0..depth)
            .map(|_| format!("p{}", self.next() % 1000))
            .collect();
        format!("127.0.0.1:{port}/{}", parts.join("/"))
    }
}

/// Cases of both kinds, as cosign_check.py's batch commands read them.
fn cases(rng: &mut Seeded, count: usize) -> Vec<serde_json::Value> {
    (0..count)
        .map(|i| {
            let payload = if i % 2 == 0 {
                simple_signing::SimpleSigning::new(&rng.repository(), &rng.digest()).to_bytes()
            } else {
                let len = (rng.next() % 2000) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            };
            serde_json::json!({
                "kind": if i % 3 == 0 { "dsse" } else { "sig" },
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "payload": STANDARD.encode(payload),
            })
        })
        .collect()
}

fn message_of(case: &serde_json::Value) -> Vec<u8> {
    let payload = STANDARD.decode(case["payload"].as_str().unwrap()).unwrap();
    if case["kind"] == "dsse" {
        dsse::pae(case["payloadType"].as_str().unwrap(), &payload)
    } else {
        payload
    }
}

#[test]
fn our_cosign_key_opens_in_python() {
    let Some(python) = python("our_cosign_key_opens_in_python") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pair = generate_cosign_key_pair(PASS.as_bytes()).unwrap();
    let key = dir.path().join("ours.key");
    std::fs::write(&key, &pair.private_pem).unwrap();
    let public = check_ok(&python, &["decrypt-key", key.to_str().unwrap()]);
    assert_eq!(public, pair.public_pem);
}

#[test]
fn python_cosign_key_opens_here() {
    let Some(python) = python("python_cosign_key_opens_here") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = (dir.path().join("py.key"), dir.path().join("py.pub"));
    check_ok(
        &python,
        &["gen-key", key.to_str().unwrap(), public.to_str().unwrap()],
    );
    let (ours, _) =
        PrivateKey::from_pem(&std::fs::read(&key).unwrap(), PASS.as_bytes(), "py.key").unwrap();
    let theirs = PublicKey::from_pem(&std::fs::read(&public).unwrap(), "py.pub").unwrap();
    assert_eq!(ours.public_key(), theirs);
    assert_eq!(
        ours.public_key().to_pem(),
        std::fs::read_to_string(&public).unwrap()
    );
    // The wrong passphrase fails here too.
    assert!(PrivateKey::from_pem(&std::fs::read(&key).unwrap(), b"nope", "py.key").is_err());
}

#[test]
fn python_verifies_our_signatures_on_seeded_cases() {
    let Some(python) = python("python_verifies_our_signatures_on_seeded_cases") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate().unwrap();
    let public = dir.path().join("k.pub");
    std::fs::write(&public, key.public_key().to_pem()).unwrap();
    let mut rng = Seeded(20);
    let mut cases = cases(&mut rng, 300);
    let mut expected = Vec::new();
    for (i, case) in cases.iter_mut().enumerate() {
        let mut sig = key.sign(&message_of(case));
        // Every fifth case is spoiled: Python must refuse exactly those.
        let good = i % 5 != 4;
        if !good {
            let last = sig.len() - 3;
            sig[last] ^= 0x40;
        }
        case["sig"] = STANDARD.encode(sig).into();
        expected.push(good);
    }
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let verdicts: Vec<bool> = serde_json::from_str(&check_ok(
        &python,
        &[
            "verify-batch",
            public.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(verdicts, expected);
}

#[test]
fn we_verify_python_signatures_on_seeded_cases() {
    let Some(python) = python("we_verify_python_signatures_on_seeded_cases") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = (dir.path().join("py.key"), dir.path().join("py.pub"));
    check_ok(
        &python,
        &["gen-key", key.to_str().unwrap(), public.to_str().unwrap()],
    );
    let public = PublicKey::from_pem(&std::fs::read(&public).unwrap(), "py.pub").unwrap();
    let other = PrivateKey::generate().unwrap().public_key();
    let mut rng = Seeded(2020);
    let cases = cases(&mut rng, 300);
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let signatures: Vec<String> = serde_json::from_str(&check_ok(
        &python,
        &["sign-batch", key.to_str().unwrap(), file.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(signatures.len(), cases.len());
    for (case, sig) in cases.iter().zip(&signatures) {
        let sig = STANDARD.decode(sig).unwrap();
        let message = message_of(case);
        public.verify(&message, &sig, "python").unwrap();
        assert!(other.verify(&message, &sig, "python").is_err());
        let mut altered = message.clone();
        altered.push(b' ');
        assert!(public.verify(&altered, &sig, "python").is_err());
    }
}

#[test]
fn cosign_sig_and_dsse_envelope_cross_check_both_ways() {
    let Some(python) = python("cosign_sig_and_dsse_envelope_cross_check_both_ways") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pair = generate_cosign_key_pair(PASS.as_bytes()).unwrap();
    let (key_file, pub_file) = (dir.path().join("c.key"), dir.path().join("c.pub"));
    std::fs::write(&key_file, &pair.private_pem).unwrap();
    std::fs::write(&pub_file, &pair.public_pem).unwrap();
    let (key, _) =
        PrivateKey::from_pem(pair.private_pem.as_bytes(), PASS.as_bytes(), "c.key").unwrap();
    let digest = "sha256:".to_string() + &"5a".repeat(32);
    let repo = "127.0.0.1:5000/openshell/supervisor";

    // Our .sig payload and signature, checked there.
    let signed = simple_signing::sign(&key, repo, &digest);
    let (payload, sig) = (dir.path().join("payload"), dir.path().join("sig"));
    std::fs::write(&payload, &signed.payload).unwrap();
    std::fs::write(&sig, STANDARD.encode(&signed.signature)).unwrap();
    let critical: serde_json::Value = serde_json::from_str(&check_ok(
        &python,
        &[
            "verify-sig",
            pub_file.to_str().unwrap(),
            payload.to_str().unwrap(),
            sig.to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(critical["identity"]["docker-reference"], repo);
    assert_eq!(critical["image"]["docker-manifest-digest"], digest.as_str());

    // Our DSSE envelope, checked there.
    let statement = br#"{"_type":"https://in-toto.io/Statement/v1"}"#;
    let envelope = dsse::sign(&key, IN_TOTO_PAYLOAD_TYPE, statement);
    let env_file = dir.path().join("env.json");
    std::fs::write(&env_file, envelope.to_bytes()).unwrap();
    let body = check_ok(
        &python,
        &[
            "verify-dsse",
            pub_file.to_str().unwrap(),
            env_file.to_str().unwrap(),
        ],
    );
    assert_eq!(body.as_bytes(), statement);
    // A tampered envelope fails there.
    let mut tampered = envelope.clone();
    tampered.payload = STANDARD.encode(br#"{"_type":"x"}"#);
    std::fs::write(&env_file, tampered.to_bytes()).unwrap();
    let output = check(
        &python,
        &[
            "verify-dsse",
            pub_file.to_str().unwrap(),
            env_file.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success(), "{}", output_text(&output));

    // Their signatures on our cosign key, checked here.
    let sig_b64 = check_ok(
        &python,
        &[
            "sign",
            key_file.to_str().unwrap(),
            payload.to_str().unwrap(),
        ],
    );
    let sig = STANDARD.decode(sig_b64.trim()).unwrap();
    simple_signing::verify(
        &key.public_key(),
        &signed.payload,
        &sig,
        &digest,
        Some(repo),
        "py",
    )
    .unwrap();
    let statement_file = dir.path().join("statement");
    std::fs::write(&statement_file, statement).unwrap();
    let theirs: Envelope = serde_json::from_str(&check_ok(
        &python,
        &[
            "sign-dsse",
            key_file.to_str().unwrap(),
            IN_TOTO_PAYLOAD_TYPE,
            statement_file.to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(
        theirs
            .verify(&key.public_key(), IN_TOTO_PAYLOAD_TYPE, "py")
            .unwrap(),
        statement
    );
}
