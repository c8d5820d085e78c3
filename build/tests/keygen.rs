//! `build-image keygen PREFIX`: a cosign-format pair, the passphrase from
//! COSIGN_PASSWORD or standard input, written atomically and never over an
//! existing key without --force.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{build_image, fails, ok, output_with_stdin, tempdir};
use openshell_signing::{PrivateKey, PublicKey};

fn keygen(prefix: &std::path::Path, extra: &[&str], stdin: &str) -> std::process::Output {
    let mut command = build_image();
    command
        .env_remove("COSIGN_PASSWORD")
        .arg("keygen")
        .arg(prefix)
        .args(extra);
    output_with_stdin(command, stdin)
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn keygen_writes_a_cosign_pair_with_the_passphrase_from_stdin() {
    let dir = tempdir();
    let prefix = dir.path().join("release");
    let output = keygen(&prefix, &[], "s3cret-phrase\n");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = ok(output);
    assert_eq!(
        listing(dir.path()),
        ["release.key", "release.pub"],
        "debris left behind"
    );
    let key_text = std::fs::read_to_string(dir.path().join("release.key")).unwrap();
    let pub_text = std::fs::read_to_string(dir.path().join("release.pub")).unwrap();
    assert!(key_text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert!(pub_text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("release.key"), 0o600);
    assert_eq!(mode("release.pub"), 0o644);
    let (key, _) =
        PrivateKey::from_pem(key_text.as_bytes(), b"s3cret-phrase", "release.key").unwrap();
    let public = PublicKey::from_pem(pub_text.as_bytes(), "release.pub").unwrap();
    assert_eq!(key.public_key(), public);
    assert!(stdout.contains(&public.key_id()), "{stdout}");
    // Neither the passphrase nor the key's body shows in any output.
    let body_line = key_text.lines().nth(1).unwrap();
    for shown in [&stdout, &stderr] {
        assert!(
            !shown.contains("s3cret-phrase") && !shown.contains(body_line),
            "{shown}"
        );
    }
}

#[test]
fn keygen_takes_cosign_password_from_the_environment() {
    let dir = tempdir();
    let prefix = dir.path().join("cosign");
    let mut command = build_image();
    command
        .env("COSIGN_PASSWORD", "from-env")
        .arg("keygen")
        .arg(&prefix);
    // Standard input holds something else: the variable wins, as in cosign.
    ok(output_with_stdin(command, "from-stdin\n"));
    let key_text = std::fs::read(dir.path().join("cosign.key")).unwrap();
    PrivateKey::from_pem(&key_text, b"from-env", "cosign.key").unwrap();
    assert!(PrivateKey::from_pem(&key_text, b"from-stdin", "cosign.key").is_err());
}

#[test]
fn keygen_refuses_to_overwrite_a_key_without_force() {
    let dir = tempdir();
    let prefix = dir.path().join("k");
    ok(keygen(&prefix, &[], "first\n"));
    let before = std::fs::read(dir.path().join("k.key")).unwrap();
    let stderr = fails(keygen(&prefix, &[], "second\n"));
    assert!(
        stderr.contains("k.key exists already") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(dir.path().join("k.key")).unwrap(), before);

    // Only the .pub exists: still refused, and no .key is created.
    let lone = dir.path().join("lone");
    std::fs::write(dir.path().join("lone.pub"), "keep me").unwrap();
    let stderr = fails(keygen(&lone, &[], "pw\n"));
    assert!(stderr.contains("lone.pub exists already"), "{stderr}");
    assert!(!dir.path().join("lone.key").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lone.pub")).unwrap(),
        "keep me"
    );

    ok(keygen(&prefix, &["--force"], "second\n"));
    let after = std::fs::read(dir.path().join("k.key")).unwrap();
    assert_ne!(after, before);
    PrivateKey::from_pem(&after, b"second", "k.key").unwrap();
    assert_eq!(listing(dir.path()), ["k.key", "k.pub", "lone.pub"]);
}

#[test]
fn keygen_without_a_passphrase_source_writes_nothing() {
    let dir = tempdir();
    let stderr = fails(keygen(&dir.path().join("k"), &[], ""));
    assert!(
        stderr.contains("COSIGN_PASSWORD") && stderr.contains("standard input"),
        "{stderr}"
    );
    assert!(listing(dir.path()).is_empty());
    // A passphrase is never a flag value.
    let stderr = fails(keygen(
        &dir.path().join("k"),
        &["--passphrase", "x"],
        "pw\n",
    ));
    assert!(stderr.contains("--passphrase"), "{stderr}");
    assert!(listing(dir.path()).is_empty());
}
