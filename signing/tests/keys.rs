//! Keys in cosign's format and as PKCS#8: round trips, and each bad input
//! issue 20 names (wrong passphrase, another curve, truncated PEM, a public
//! key given as the private one) with its own error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openshell_signing::encrypted::{self, ScryptStrength};
use openshell_signing::keys::{
    COSIGN_PRIVATE_KEY_LABEL, PKCS8_PRIVATE_KEY_LABEL, SIGSTORE_PRIVATE_KEY_LABEL,
};
use openshell_signing::{
    KeyError, PrivateKey, PrivateKeyFormat, PublicKey, generate_cosign_key_pair,
};

const PASS: &[u8] = b"correct horse battery staple";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The base64 lines of a PEM text: what must never show in an error.
fn pem_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_string)
        .collect()
}

fn assert_no_secret(message: &str, pem: &str) {
    assert!(
        !message.contains(std::str::from_utf8(PASS).unwrap()),
        "the passphrase leaked into: {message}"
    );
    for line in pem_lines(pem) {
        assert!(!message.contains(&line), "key bytes leaked into: {message}");
    }
}

/// A cosign PEM around an envelope sealed at the fastest accepted strength,
/// so tests that need many keys stay quick.
fn legacy_cosign_pem(key: &PrivateKey, label: &str) -> String {
    let der = key.to_pkcs8_der().unwrap();
    let env =
        encrypted::encrypt_with(&der, PASS, ScryptStrength::Legacy, [7; 32], [9; 24]).unwrap();
    pkcs8::der::pem::encode_string(label, pkcs8::der::pem::LineEnding::LF, &env).unwrap()
}

#[test]
fn keygen_writes_cosign_format_that_reads_back() {
    let pair = generate_cosign_key_pair(PASS).unwrap();
    assert!(
        pair.private_pem
            .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    );
    assert!(
        pair.private_pem
            .ends_with("-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    );
    assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    // Go's pem.EncodeToMemory: 64-column lines.
    for line in pem_lines(&pair.private_pem) {
        assert!(line.len() <= 64, "line of {} columns", line.len());
    }
    // go-securesystemslib's JSON, byte for byte in its field order.
    let (_, env) = pkcs8::der::pem::decode_vec(pair.private_pem.as_bytes()).unwrap();
    let env = String::from_utf8(env).unwrap();
    assert!(
        env.starts_with(r#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":""#),
        "{env}"
    );
    assert!(
        env.contains(r#""},"cipher":{"name":"nacl/secretbox","nonce":""#),
        "{env}"
    );
    let json: serde_json::Value = serde_json::from_str(&env).unwrap();
    assert_eq!(
        STANDARD
            .decode(json["kdf"]["salt"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        STANDARD
            .decode(json["cipher"]["nonce"].as_str().unwrap())
            .unwrap()
            .len(),
        24
    );

    let (key, format) = PrivateKey::from_pem(pair.private_pem.as_bytes(), PASS, "k.key").unwrap();
    assert_eq!(
        format,
        PrivateKeyFormat::CosignEncrypted(SIGSTORE_PRIVATE_KEY_LABEL)
    );
    assert_eq!(key.public_key().to_pem(), pair.public_pem);
    let public = PublicKey::from_pem(pair.public_pem.as_bytes(), "k.pub").unwrap();
    assert_eq!(public, key.public_key());
    // Fresh salt and nonce each time: two encryptions of one key differ.
    assert_ne!(key.to_cosign_pem(PASS).unwrap(), pair.private_pem);
}

#[test]
fn older_cosign_label_and_plain_pkcs8_are_read() {
    let key = PrivateKey::generate().unwrap();
    let old = legacy_cosign_pem(&key, COSIGN_PRIVATE_KEY_LABEL);
    let (read, format) = PrivateKey::from_pem(old.as_bytes(), PASS, "old.key").unwrap();
    assert_eq!(
        format,
        PrivateKeyFormat::CosignEncrypted(COSIGN_PRIVATE_KEY_LABEL)
    );
    assert_eq!(read.public_key(), key.public_key());

    let der = key.to_pkcs8_der().unwrap();
    let plain = pkcs8::der::pem::encode_string(
        PKCS8_PRIVATE_KEY_LABEL,
        pkcs8::der::pem::LineEnding::LF,
        &der,
    )
    .unwrap();
    // With leading text, as Go's pem.Decode allows; no passphrase needed.
    let with_text = format!("a comment\n{plain}");
    let (read, format) = PrivateKey::from_pem(with_text.as_bytes(), b"", "plain.key").unwrap();
    assert_eq!(format, PrivateKeyFormat::Pkcs8);
    assert_eq!(read.public_key(), key.public_key());
    assert!(!PrivateKey::needs_passphrase(plain.as_bytes()));
    assert!(PrivateKey::needs_passphrase(old.as_bytes()));
}

#[test]
fn wrong_passphrase_is_refused_by_name() {
    let key = PrivateKey::generate().unwrap();
    let pem = legacy_cosign_pem(&key, SIGSTORE_PRIVATE_KEY_LABEL);
    let err = PrivateKey::from_pem(pem.as_bytes(), b"wrong", "release.key").unwrap_err();
    assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("release.key") && message.contains("wrong passphrase"),
        "{message}"
    );
    assert_no_secret(&message, &pem);
    // An empty passphrase is just another wrong one.
    let err = PrivateKey::from_pem(pem.as_bytes(), b"", "release.key").unwrap_err();
    assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err:?}");
}

#[test]
fn altered_ciphertext_is_refused() {
    let key = PrivateKey::generate().unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let env =
        encrypted::encrypt_with(&der, PASS, ScryptStrength::Legacy, [1; 32], [2; 24]).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&env).unwrap();
    let mut ct = STANDARD
        .decode(json["ciphertext"].as_str().unwrap())
        .unwrap();
    ct[20] ^= 1;
    json["ciphertext"] = STANDARD.encode(ct).into();
    let err = encrypted::decrypt(json.to_string().as_bytes(), PASS, "k").unwrap_err();
    assert!(matches!(err, KeyError::WrongPassphrase { .. }), "{err:?}");
}

#[test]
fn key_of_another_curve_is_refused_naming_the_curve() {
    let p384 = fixture("p384.key");
    let err = PrivateKey::from_pem(&p384, b"", "p384.key").unwrap_err();
    assert!(matches!(err, KeyError::UnsupportedCurve { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("P-384") && message.contains("expected P-256"),
        "{message}"
    );
    assert_no_secret(&message, std::str::from_utf8(&p384).unwrap());

    let k1 = fixture("secp256k1.key");
    let err = PrivateKey::from_pem(&k1, b"", "k1.key").unwrap_err();
    assert!(err.to_string().contains("secp256k1"), "{err}");

    // The same P-384 key sealed in cosign's format: refused after
    // decryption, by curve, not as a wrong passphrase.
    let (_, der) = pkcs8::der::pem::decode_vec(&p384).unwrap();
    let env =
        encrypted::encrypt_with(&der, PASS, ScryptStrength::Legacy, [3; 32], [4; 24]).unwrap();
    let pem = pkcs8::der::pem::encode_string(
        SIGSTORE_PRIVATE_KEY_LABEL,
        pkcs8::der::pem::LineEnding::LF,
        &env,
    )
    .unwrap();
    let err = PrivateKey::from_pem(pem.as_bytes(), PASS, "p384-cosign.key").unwrap_err();
    assert!(matches!(err, KeyError::UnsupportedCurve { .. }), "{err:?}");

    let err = PublicKey::from_pem(&fixture("p384.pub"), "p384.pub").unwrap_err();
    assert!(matches!(err, KeyError::UnsupportedCurve { .. }), "{err:?}");
}

#[test]
fn keys_of_other_algorithms_are_refused_naming_them() {
    for (file, name) in [("ed25519.key", "Ed25519"), ("rsa.key", "RSA")] {
        let err = PrivateKey::from_pem(&fixture(file), b"", file).unwrap_err();
        assert!(
            matches!(err, KeyError::UnsupportedAlgorithm { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn truncated_pem_is_refused() {
    let key = PrivateKey::generate().unwrap();
    let pem = legacy_cosign_pem(&key, SIGSTORE_PRIVATE_KEY_LABEL);
    // Cut at every line boundary and in the middle of lines: never a panic,
    // always a PEM or envelope error naming the file.
    let mut cuts: Vec<usize> = pem.match_indices('\n').map(|(i, _)| i + 1).collect();
    cuts.extend((1..pem.len() - 1).step_by(37));
    for cut in cuts {
        if cut >= pem.len() - 1 {
            continue;
        }
        let err = PrivateKey::from_pem(&pem.as_bytes()[..cut], PASS, "cut.key").unwrap_err();
        assert!(
            matches!(err, KeyError::Pem { .. } | KeyError::Envelope { .. }),
            "cut at {cut}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("cut.key"), "{message}");
        assert_no_secret(&message, &pem);
    }
    let err = PrivateKey::from_pem(b"", PASS, "empty.key").unwrap_err();
    assert!(matches!(err, KeyError::Pem { .. }), "{err:?}");
    // A plain PKCS#8 key whose DER is cut but whose armour is whole.
    let der = key.to_pkcs8_der().unwrap();
    let short = pkcs8::der::pem::encode_string(
        PKCS8_PRIVATE_KEY_LABEL,
        pkcs8::der::pem::LineEnding::LF,
        &der[..der.len() - 10],
    )
    .unwrap();
    let err = PrivateKey::from_pem(short.as_bytes(), b"", "short.key").unwrap_err();
    assert!(matches!(err, KeyError::Der { .. }), "{err:?}");
}

#[test]
fn public_key_given_as_private_is_refused() {
    let pair = generate_cosign_key_pair(PASS).unwrap();
    let err = PrivateKey::from_pem(pair.public_pem.as_bytes(), PASS, "cosign.pub").unwrap_err();
    assert!(
        matches!(err, KeyError::PublicGivenAsPrivate { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("cosign.pub") && message.contains("public key"),
        "{message}"
    );
    // And the other way round.
    let err = PublicKey::from_pem(pair.private_pem.as_bytes(), "cosign.key").unwrap_err();
    assert!(
        matches!(err, KeyError::PrivateGivenAsPublic { .. }),
        "{err:?}"
    );
    assert_no_secret(&err.to_string(), &pair.private_pem);
}

#[test]
fn tampered_scrypt_parameters_are_refused_before_deriving() {
    let key = PrivateKey::generate().unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let env =
        encrypted::encrypt_with(&der, PASS, ScryptStrength::Legacy, [5; 32], [6; 24]).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&env).unwrap();
    json["kdf"]["params"]["N"] = (1u64 << 30).into();
    let started = std::time::Instant::now();
    let err = encrypted::decrypt(json.to_string().as_bytes(), PASS, "k").unwrap_err();
    assert!(
        matches!(err, KeyError::ScryptParams { n: 1073741824, .. }),
        "{err:?}"
    );
    assert!(started.elapsed().as_secs() < 2);
    let mut json: serde_json::Value = serde_json::from_slice(&env).unwrap();
    json["cipher"]["name"] = "aes-gcm".into();
    let err = encrypted::decrypt(json.to_string().as_bytes(), PASS, "k").unwrap_err();
    assert!(err.to_string().contains("aes-gcm"), "{err}");
}

#[test]
fn debug_output_shows_no_secret() {
    let key = PrivateKey::generate().unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let debug = format!("{key:?}");
    assert!(debug.starts_with("PrivateKey(public sha256:"), "{debug}");
    assert!(!debug.contains(&hex::encode(&der[der.len() - 40..])));
    let pair = generate_cosign_key_pair(PASS).unwrap();
    assert!(!format!("{pair:?}").contains("PRIVATE"));
}

#[test]
fn signatures_are_rfc6979_deterministic() {
    // RFC 6979, A.2.5: P-256, SHA-256, message "sample".
    let x =
        hex::decode("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721").unwrap();
    let key = PrivateKey::from_scalar_bytes(&x).unwrap();
    let der = key.sign(b"sample");
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    assert_eq!(
        hex::encode_upper(sig.r().to_bytes()),
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
    );
    assert_eq!(
        hex::encode_upper(sig.s().to_bytes()),
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
    );
    assert_eq!(key.sign(b"sample"), der);
    key.public_key().verify(b"sample", &der, "sig").unwrap();
}

#[test]
fn verification_refuses_another_key_and_altered_bytes() {
    let key = PrivateKey::generate().unwrap();
    let other = PrivateKey::generate().unwrap();
    let sig = key.sign(b"payload");
    key.public_key().verify(b"payload", &sig, "s").unwrap();
    let err = other
        .public_key()
        .verify(b"payload", &sig, "s")
        .unwrap_err();
    assert!(matches!(
        err,
        openshell_signing::VerifyError::BadSignature { .. }
    ));
    let err = key.public_key().verify(b"payloaD", &sig, "s").unwrap_err();
    assert!(matches!(
        err,
        openshell_signing::VerifyError::BadSignature { .. }
    ));
    let err = key
        .public_key()
        .verify(b"payload", b"junk", "s")
        .unwrap_err();
    assert!(matches!(
        err,
        openshell_signing::VerifyError::SignatureEncoding { .. }
    ));
}
