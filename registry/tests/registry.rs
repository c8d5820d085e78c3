//! Digest resolution and error reporting against a real registry
//! (docker-registry on 127.0.0.1 with htpasswd auth).

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openshell_registry::{
    Access, RegistryClient, RegistryError, RegistryOptions, parse_reference, resolve_digest,
};
use openshell_testsupport::BoundedOutput;
use openshell_testsupport::{Registry, require};
use sha2::{Digest, Sha256};

/// An empty tar archive: two zero blocks.
const EMPTY_TAR: [u8; 1024] = [0; 1024];

fn options_for(registry: &Registry) -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        auth_file: Some(registry.auth_file()),
        ..Default::default()
    }
}

/// Pushes a one-layer image to `reference` through the project's bounded
/// client (its blobs, then the manifest under the tag).
async fn push_small_image(registry: &Registry, reference: &str) {
    let reference = parse_reference(reference).unwrap();
    let sha = |bytes: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [sha(&EMPTY_TAR)] },
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": sha(&EMPTY_TAR),
            "size": EMPTY_TAR.len(),
        }],
    }))
    .unwrap();
    let client = RegistryClient::new(&reference, &options_for(registry)).unwrap();
    for blob in [EMPTY_TAR.to_vec(), config] {
        client
            .push_blob(&sha(&blob), bytes::Bytes::from(blob))
            .await
            .unwrap();
    }
    client
        .push_manifest(
            &reference,
            manifest,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .unwrap();
}

fn skopeo_digest(registry: &Registry, reference: &str) -> String {
    let output = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &registry.creds(),
        ])
        .args(["--format", "{{.Digest}}", &format!("docker://{reference}")])
        .bounded_output();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn tag_resolves_to_the_digest_skopeo_sees() {
    let test = "tag_resolves_to_the_digest_skopeo_sees";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    if !require(test, &["skopeo"], "apt-get install skopeo") {
        return;
    }
    let tagged = format!("{}/openshell/supervisor:v1", registry.host());
    push_small_image(&registry, &tagged).await;

    let digest = resolve_digest(&parse_reference(&tagged).unwrap(), &options_for(&registry))
        .await
        .unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(digest, skopeo_digest(&registry, &tagged));

    // A pinned reference resolves to its own digest.
    let pinned = format!("{}/openshell/supervisor@{digest}", registry.host());
    let again = resolve_digest(&parse_reference(&pinned).unwrap(), &options_for(&registry))
        .await
        .unwrap();
    assert_eq!(again, digest);
}

#[tokio::test]
async fn wrong_password_is_unauthorized_and_names_the_source() {
    let test = "wrong_password_is_unauthorized_and_names_the_source";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let tagged = format!("{}/openshell/supervisor:v1", registry.host());
    push_small_image(&registry, &tagged).await;
    let wrong = registry.write_auth_file("wrong.json", "not-the-password");
    let options = RegistryOptions {
        plain_http: true,
        auth_file: Some(wrong.clone()),
        ..Default::default()
    };
    let err = resolve_digest(&parse_reference(&tagged).unwrap(), &options)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&registry.host()), "{message}");
    assert!(message.contains(&wrong.display().to_string()), "{message}");
    assert!(message.contains("refused"), "{message}");
}

#[tokio::test]
async fn wrong_password_on_a_blob_request_is_unauthorized_too() {
    let test = "wrong_password_on_a_blob_request_is_unauthorized_too";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let tagged = format!("{}/openshell/supervisor:v1", registry.host());
    push_small_image(&registry, &tagged).await;
    let reference = parse_reference(&tagged).unwrap();
    let options = RegistryOptions {
        plain_http: true,
        basic: Some((registry.username().into(), "not-the-password".into())),
        ..Default::default()
    };
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(EMPTY_TAR)));
    let err = RegistryClient::new(&reference, &options)
        .unwrap()
        .blob_exists(&digest)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("--username"), "{err}");
}

#[tokio::test]
async fn explicit_credentials_override_the_auth_file() {
    let test = "explicit_credentials_override_the_auth_file";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let tagged = format!("{}/openshell/supervisor:v2", registry.host());
    push_small_image(&registry, &tagged).await;
    let options = RegistryOptions {
        plain_http: true,
        basic: Some((registry.username().into(), registry.password().into())),
        auth_file: Some(registry.write_auth_file("wrong.json", "nope")),
        ..Default::default()
    };
    let digest = resolve_digest(&parse_reference(&tagged).unwrap(), &options).await;
    assert!(digest.is_ok(), "{digest:?}");
}

#[tokio::test]
async fn unknown_tag_and_repository_are_not_found() {
    let test = "unknown_tag_and_repository_are_not_found";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    push_small_image(
        &registry,
        &format!("{}/openshell/supervisor:v1", registry.host()),
    )
    .await;
    for missing in ["openshell/supervisor:nope", "nobody/here:v1"] {
        let reference = format!("{}/{missing}", registry.host());
        let err = resolve_digest(
            &parse_reference(&reference).unwrap(),
            &options_for(&registry),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, RegistryError::NotFound { .. }),
            "{missing}: {err:?}"
        );
        assert!(err.to_string().contains("was not found"), "{err}");
        assert!(err.to_string().contains(&reference), "{err}");
    }
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    // Bind and drop: nothing listens there afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reference = format!("127.0.0.1:{port}/openshell/supervisor:v1");
    let options = RegistryOptions {
        plain_http: true,
        auth_file: Some("/dev/null/none".into()),
        basic: Some(("u".into(), "p".into())),
        attempts: Some(2),
        ..Default::default()
    };
    let err = resolve_digest(&parse_reference(&reference).unwrap(), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unreachable { attempts: 2, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "could not reach registry 127.0.0.1:{port} for {reference}: resolve digest: "
        )),
        "{message}"
    );
    assert!(message.contains("gave up after 2 attempts"), "{message}");
}

#[tokio::test]
async fn eight_concurrent_blob_pushes_all_succeed() {
    let test = "eight_concurrent_blob_pushes_all_succeed";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let reference =
        parse_reference(&format!("{}/openshell/supervisor:v1", registry.host())).unwrap();
    let options = RegistryOptions {
        quiet: true,
        ..options_for(&registry)
    };
    let client = RegistryClient::new(&reference, &options).unwrap();
    client.authenticate(Access::Push).await.unwrap();
    // Different blobs of 1 to 2 MiB, all in flight at once on one client.
    let blobs: Vec<Vec<u8>> = (0..8u8)
        .map(|index| {
            let len = 1024 * 1024 + usize::from(index) * 131_072;
            (0..len)
                .map(|at| (at as u8).wrapping_mul(31).wrapping_add(index))
                .collect()
        })
        .collect();
    let digests: Vec<String> = blobs
        .iter()
        .map(|blob| format!("sha256:{}", hex::encode(Sha256::digest(blob))))
        .collect();
    let started = std::time::Instant::now();
    let results = futures_util::future::join_all(
        blobs
            .iter()
            .zip(&digests)
            .map(|(blob, digest)| client.push_blob(digest, bytes::Bytes::from(blob.clone()))),
    )
    .await;
    eprintln!("{test}: 8 pushes took {:?}", started.elapsed());
    for (result, digest) in results.iter().zip(&digests) {
        assert!(result.is_ok(), "{digest}: {result:?}\n{}", registry.log());
    }
    for (blob, digest) in blobs.iter().zip(&digests) {
        assert!(client.blob_exists(digest).await.unwrap(), "{digest}");
        let mut pulled = Vec::new();
        client
            .pull_blob(digest, 4 * 1024 * 1024, &mut |bytes: &[u8]| {
                pulled.extend_from_slice(bytes);
                Ok(())
            })
            .await
            .unwrap();
        assert!(pulled == *blob, "{digest} came back different");
    }
}

#[tokio::test]
async fn https_against_a_plain_http_registry_suggests_plain_http() {
    let test = "https_against_a_plain_http_registry_suggests_plain_http";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let reference = format!("{}/openshell/supervisor:v1", registry.host());
    let options = RegistryOptions {
        plain_http: false,
        auth_file: Some(registry.auth_file()),
        ..Default::default()
    };
    let err = resolve_digest(&parse_reference(&reference).unwrap(), &options)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("--plain-http"), "{message}");
}
