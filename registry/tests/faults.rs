//! The registry client against a registry that misbehaves on cue (a proxy
//! in front of the real docker-registry): stalls, broken connections,
//! transient errors, rate limits and tampered content each end in the
//! verdict they deserve, within their time bound, with a one-line message
//! naming the operation, the reference and the registry.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use openshell_registry::{
    DEFAULT_MANIFEST_LIMIT, Reference, RegistryClient, RegistryError, RegistryOptions,
    parse_reference,
};
use openshell_testsupport::{Action, Fault, FaultRegistry};
use sha2::{Digest, Sha256};

/// Read timeout of the stall tests: short, so that stalls fail fast, but
/// above what a loaded 2-core CI machine adds to a loopback request.
const READ: Duration = Duration::from_secs(1);

/// Read timeout of the other tests: no spurious stalls, however loaded the
/// machine is.
const PATIENT_READ: Duration = Duration::from_secs(10);

/// Slack on every time bound: scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Deterministic bytes that do not repeat in any short period (so a resume
/// from the wrong offset would change the digest).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Options with the short read timeout of the stall tests.
fn stall_options(faults: &FaultRegistry, operation: Duration, attempts: u32) -> RegistryOptions {
    RegistryOptions {
        read_timeout: Some(READ),
        ..options(faults, operation, attempts)
    }
}

fn options(faults: &FaultRegistry, operation: Duration, attempts: u32) -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        basic: Some(faults.credentials()),
        connect_timeout: Some(Duration::from_secs(2)),
        read_timeout: Some(PATIENT_READ),
        operation_timeout: Some(operation),
        attempts: Some(attempts),
        quiet: true,
        ..Default::default()
    }
}

/// An image pushed through the proxy before any fault: a layer blob, a
/// config blob and a manifest tagged `v1`.
struct Image {
    reference: Reference,
    layer: Vec<u8>,
    layer_digest: String,
    manifest: Vec<u8>,
    manifest_digest: String,
}

const LAYER_SIZE: usize = 512 * 1024;

async fn seed(faults: &FaultRegistry) -> Image {
    let reference = parse_reference(&format!("{}/openshell/supervisor:v1", faults.host())).unwrap();
    let client =
        RegistryClient::new(&reference, &options(faults, Duration::from_secs(30), 4)).unwrap();
    let layer = pattern(LAYER_SIZE, 7);
    let layer_digest = digest_of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    }))
    .unwrap();
    let config_digest = digest_of(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .unwrap();
    client
        .push_blob(&layer_digest, Bytes::from(layer.clone()))
        .await
        .unwrap();
    client
        .push_blob(&config_digest, Bytes::from(config))
        .await
        .unwrap();
    client
        .push_manifest(
            &reference,
            manifest.clone(),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .unwrap();
    faults.forget_seen();
    Image {
        reference,
        layer,
        layer_digest,
        manifest_digest: digest_of(&manifest),
        manifest,
    }
}

async fn pull_all(client: &RegistryClient, digest: &str) -> Result<Vec<u8>, RegistryError> {
    let mut received = Vec::new();
    let count = client
        .pull_blob(digest, 64 * 1024 * 1024, &mut |bytes: &[u8]| {
            received.extend_from_slice(bytes);
            Ok(())
        })
        .await?;
    assert_eq!(count, received.len() as u64);
    Ok(received)
}

/// The message names the operation, the reference and the registry.
fn assert_names(message: &str, operation: &str, reference: &str, host: &str) {
    assert!(
        message.contains(operation),
        "no '{operation}' in: {message}"
    );
    assert!(
        message.contains(reference),
        "no '{reference}' in: {message}"
    );
    assert!(
        message.contains(&format!("registry {host}")),
        "no 'registry {host}' in: {message}"
    );
    assert!(!message.contains('\n'), "more than one line: {message}");
}

#[tokio::test]
async fn a_registry_that_never_answers_fails_after_the_read_timeout_of_each_attempt() {
    let test = "a_registry_that_never_answers_fails_after_the_read_timeout_of_each_attempt";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    faults.inject(Fault::on("*", "/v2/", Action::Stall));
    let reference = parse_reference(&format!("{}/openshell/supervisor:v1", faults.host())).unwrap();
    let client = RegistryClient::new(
        &reference,
        &stall_options(&faults, Duration::from_secs(20), 3),
    )
    .unwrap();
    let started = Instant::now();
    let error = client
        .pull_manifest(&reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("{test}: failed after {elapsed:?}: {error}");
    assert!(
        matches!(error, RegistryError::Stalled { attempts: 3, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert_names(
        &message,
        "pull manifest",
        &reference.whole(),
        &faults.host(),
    );
    assert!(message.contains("stalled: no progress for 1s"), "{message}");
    assert!(
        message.contains("--registry-read-timeout / OPENSHELL_REGISTRY_READ_TIMEOUT"),
        "{message}"
    );
    assert!(message.contains("gave up after 3 attempts"), "{message}");
    // Three read timeouts and two back-offs (at most 250 ms and 500 ms).
    assert!(elapsed >= READ * 3, "{elapsed:?}");
    assert!(
        elapsed < READ * 3 + Duration::from_millis(750) + SLACK,
        "{elapsed:?}"
    );
    assert_eq!(faults.seen().len(), 3, "{:?}", faults.seen());
}

#[tokio::test]
async fn the_operation_deadline_ends_a_stall_before_the_read_timeout_would() {
    let test = "the_operation_deadline_ends_a_stall_before_the_read_timeout_would";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    faults.inject(Fault::on("GET", "/manifests/", Action::Stall));
    let mut options = options(&faults, Duration::from_secs(1), 4);
    options.read_timeout = Some(Duration::from_secs(30));
    let client = RegistryClient::new(&image.reference, &options).unwrap();
    let started = Instant::now();
    let error = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("{test}: failed after {elapsed:?}: {error}");
    assert!(matches!(error, RegistryError::TimedOut { .. }), "{error:?}");
    let message = error.to_string();
    assert_names(
        &message,
        "pull manifest",
        &image.reference.whole(),
        &faults.host(),
    );
    assert!(message.contains("within 1s (operation timeout; --registry-operation-timeout / OPENSHELL_REGISTRY_OPERATION_TIMEOUT)"), "{message}");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(1) + SLACK, "{elapsed:?}");
}

#[tokio::test]
async fn a_stall_before_the_first_byte_is_retried() {
    let test = "a_stall_before_the_first_byte_is_retried";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    faults.inject(Fault::on("GET", "/manifests/v1", Action::Stall).times(1));
    let client = RegistryClient::new(
        &image.reference,
        &stall_options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    let started = Instant::now();
    let manifest = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    eprintln!("{test}: succeeded after {elapsed:?}");
    assert_eq!(manifest.bytes, image.manifest);
    assert_eq!(manifest.digest, image.manifest_digest);
    assert_eq!(
        manifest.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let gets = faults.seen_matching("GET", "/manifests/v1");
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].action, "stall");
    assert_eq!(gets[1].action, "forward");
    assert!(elapsed >= READ && elapsed < READ + SLACK, "{elapsed:?}");
}

#[tokio::test]
async fn a_blob_stalled_mid_transfer_resumes_where_it_stopped() {
    let test = "a_blob_stalled_mid_transfer_resumes_where_it_stopped";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let blob_path = format!("/blobs/{}", image.layer_digest);
    faults.inject(Fault::on("GET", &blob_path, Action::StallAfter(100_000)).times(1));
    let client = RegistryClient::new(
        &image.reference,
        &stall_options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    let started = Instant::now();
    let received = pull_all(&client, &image.layer_digest).await.unwrap();
    eprintln!("{test}: succeeded after {:?}", started.elapsed());
    // Every byte once, in order: the digest was checked, and the bytes are
    // the blob's.
    assert_eq!(received, image.layer);
    let gets = faults.seen_matching("GET", &blob_path);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=100000-"));
}

#[tokio::test]
async fn a_blob_reset_mid_transfer_resumes_where_it_stopped() {
    let test = "a_blob_reset_mid_transfer_resumes_where_it_stopped";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let blob_path = format!("/blobs/{}", image.layer_digest);
    faults.inject(Fault::on("GET", &blob_path, Action::ResetAfter(200_000)).times(1));
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    let started = Instant::now();
    let received = pull_all(&client, &image.layer_digest).await.unwrap();
    eprintln!("{test}: succeeded after {:?}", started.elapsed());
    assert_eq!(received, image.layer);
    let gets = faults.seen_matching("GET", &blob_path);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[1].action, "forward");
    // The resume starts where the reset cut the transfer: somewhere in the
    // first 200,000 bytes (a reset may discard what was still in flight).
    let range = gets[1].range.clone().expect("the second request resumes");
    let offset: u64 = range
        .strip_prefix("bytes=")
        .and_then(|rest| rest.strip_suffix('-'))
        .and_then(|offset| offset.parse().ok())
        .unwrap_or_else(|| panic!("unexpected Range {range}"));
    assert!(offset > 0 && offset <= 200_000, "{range}");
}

#[tokio::test]
async fn a_blob_that_stalls_on_every_attempt_fails_naming_the_blob() {
    let test = "a_blob_that_stalls_on_every_attempt_fails_naming_the_blob";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let blob_path = format!("/blobs/{}", image.layer_digest);
    faults.inject(Fault::on("GET", &blob_path, Action::StallAfter(1000)));
    let client = RegistryClient::new(
        &image.reference,
        &stall_options(&faults, Duration::from_secs(20), 3),
    )
    .unwrap();
    let started = Instant::now();
    let mut received = 0usize;
    let error = client
        .pull_blob(
            &image.layer_digest,
            64 * 1024 * 1024,
            &mut |bytes: &[u8]| {
                received += bytes.len();
                Ok(())
            },
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("{test}: failed after {elapsed:?}: {error}");
    assert!(
        matches!(error, RegistryError::Stalled { attempts: 3, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert_names(
        &message,
        &format!("pull blob {}", image.layer_digest),
        &image.reference.whole(),
        &faults.host(),
    );
    assert!(message.contains("gave up after 3 attempts"), "{message}");
    assert!(
        elapsed < READ * 3 + Duration::from_millis(750) + SLACK,
        "{elapsed:?}"
    );
    // Each attempt got 1000 more bytes (the proxy passes 1000 bytes of
    // every answer) and the next one resumed after them.
    assert_eq!(received, 3000);
    let ranges: Vec<Option<String>> = faults
        .seen_matching("GET", &blob_path)
        .into_iter()
        .map(|seen| seen.range)
        .collect();
    assert_eq!(
        ranges,
        [None, Some("bytes=1000-".into()), Some("bytes=2000-".into())]
    );
}

/// Pushes `image`'s manifest as tag `tag`, which must succeed after
/// `puts` PUTs (the faults injected on it first), and checks the registry
/// then resolves the tag to the manifest's digest.
async fn push_manifest_as(
    client: &RegistryClient,
    faults: &FaultRegistry,
    image: &Image,
    tag: &str,
    puts: usize,
) {
    let tagged = parse_reference(&format!("{}/openshell/supervisor:{tag}", faults.host())).unwrap();
    client
        .push_manifest(
            &tagged,
            image.manifest.clone(),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .unwrap();
    let path = format!("/manifests/{tag}");
    assert_eq!(faults.seen_matching("PUT", &path).len(), puts);
    assert_eq!(
        client.resolve_digest(&tagged).await.unwrap(),
        image.manifest_digest
    );
}

#[tokio::test]
async fn a_server_error_then_success_is_retried() {
    let test = "a_server_error_then_success_is_retried";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();

    faults.inject(Fault::on("GET", "/manifests/v1", Action::status(503)).times(1));
    let manifest = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap();
    assert_eq!(manifest.digest, image.manifest_digest);
    let actions: Vec<String> = faults
        .seen_matching("GET", "/manifests/v1")
        .into_iter()
        .map(|seen| seen.action)
        .collect();
    assert_eq!(actions, ["respond 503", "forward"]);

    // A blob check answered 500 once (as docker-registry does under load).
    faults.inject(Fault::on("HEAD", "/blobs/", Action::status(500)).times(1));
    assert!(client.blob_exists(&image.layer_digest).await.unwrap());
    assert_eq!(faults.seen_matching("HEAD", "/blobs/").len(), 2);

    // A manifest push answered 502 once: PUT again (idempotent by content).
    faults.inject(Fault::on("PUT", "/manifests/v2", Action::status(502)).times(1));
    push_manifest_as(&client, &faults, &image, "v2", 2).await;
}

#[tokio::test]
async fn a_failed_blob_commit_restarts_in_a_new_upload_session() {
    let test = "a_failed_blob_commit_restarts_in_a_new_upload_session";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    let blob = pattern(300_000, 11);
    let digest = digest_of(&blob);
    // The commit (PUT ...?digest=) fails once, before it reaches the registry.
    faults.inject(Fault::on("PUT", "/blobs/uploads/", Action::status(500)).times(1));
    client
        .push_blob(&digest, Bytes::from(blob.clone()))
        .await
        .unwrap();
    let posts = faults.seen_matching("POST", "/blobs/uploads/");
    assert_eq!(posts.len(), 2, "one new session per attempt: {posts:?}");
    let puts = faults.seen_matching("PUT", "/blobs/uploads/");
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert_ne!(
        puts[0].target.split('?').next(),
        puts[1].target.split('?').next(),
        "the retry commits another session"
    );
    assert_eq!(pull_all(&client, &digest).await.unwrap(), blob);
}

#[tokio::test]
async fn an_upload_broken_mid_blob_commits_nothing_and_restarts() {
    let test = "an_upload_broken_mid_blob_commits_nothing_and_restarts";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let blob = pattern(1024 * 1024, 13);
    let digest = digest_of(&blob);

    // With one attempt, the broken upload is an error, and the registry
    // has nothing under the digest.
    faults.inject(
        Fault::on(
            "PATCH",
            "/blobs/uploads/",
            Action::ResetRequestAfter(200_000),
        )
        .times(1),
    );
    let single = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 1),
    )
    .unwrap();
    let error = single
        .push_blob(&digest, Bytes::from(blob.clone()))
        .await
        .unwrap_err();
    eprintln!("{test}: one attempt: {error}");
    assert!(
        matches!(error, RegistryError::Interrupted { .. }),
        "{error:?}"
    );
    assert_names(
        &error.to_string(),
        &format!("push blob {digest}"),
        &image.reference.whole(),
        &faults.host(),
    );
    assert!(!single.blob_exists(&digest).await.unwrap());

    // With retries, the next attempt opens a new session and succeeds.
    faults.forget_seen();
    faults.inject(
        Fault::on(
            "PATCH",
            "/blobs/uploads/",
            Action::ResetRequestAfter(200_000),
        )
        .times(1),
    );
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    client
        .push_blob(&digest, Bytes::from(blob.clone()))
        .await
        .unwrap();
    assert_eq!(faults.seen_matching("POST", "/blobs/uploads/").len(), 2);
    assert_eq!(faults.seen_matching("PATCH", "/blobs/uploads/").len(), 2);
    assert_eq!(pull_all(&client, &digest).await.unwrap(), blob);
}

#[tokio::test]
async fn an_upload_the_registry_stops_reading_is_retried() {
    let test = "an_upload_the_registry_stops_reading_is_retried";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    // Larger than the loopback socket buffers, so the client's writes stop.
    let blob = pattern(24 * 1024 * 1024, 17);
    let digest = digest_of(&blob);
    faults.inject(
        Fault::on(
            "PATCH",
            "/blobs/uploads/",
            Action::StallRequestAfter(1024 * 1024),
        )
        .times(1),
    );
    let client = RegistryClient::new(
        &image.reference,
        &stall_options(&faults, Duration::from_secs(60), 4),
    )
    .unwrap();
    let started = Instant::now();
    client
        .push_blob(&digest, Bytes::from(blob.clone()))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    eprintln!("{test}: succeeded after {elapsed:?}");
    // One read timeout to see the stall, then the upload again.
    assert!(elapsed >= READ && elapsed < READ * 2 + SLACK, "{elapsed:?}");
    let patches: Vec<String> = faults
        .seen_matching("PATCH", "/blobs/uploads/")
        .into_iter()
        .map(|seen| seen.action)
        .collect();
    assert_eq!(patches, ["stall after 1048576 request bytes", "forward"]);
    assert_eq!(pull_all(&client, &digest).await.unwrap(), blob);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let test = "too_many_requests_waits_for_retry_after";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    faults.inject(
        Fault::on(
            "GET",
            "/manifests/v1",
            Action::Respond {
                status: 429,
                headers: vec![("Retry-After".into(), "1".into())],
                body: br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_vec(),
            },
        )
        .times(1),
    );
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    let started = Instant::now();
    let manifest = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    eprintln!("{test}: succeeded after {elapsed:?}");
    assert_eq!(manifest.digest, image.manifest_digest);
    // Retry-After: 1, not the first back-off (at most 250 ms).
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(1) + SLACK, "{elapsed:?}");
    assert_eq!(faults.seen_matching("GET", "/manifests/v1").len(), 2);
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_fails_at_once() {
    let test = "a_retry_after_past_the_deadline_fails_at_once";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    faults.inject(Fault::on(
        "GET",
        "/manifests/v1",
        Action::Respond {
            status: 429,
            headers: vec![("Retry-After".into(), "3600".into())],
            body: br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_vec(),
        },
    ));
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(5), 4),
    )
    .unwrap();
    let started = Instant::now();
    let error = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("{test}: failed after {elapsed:?}: {error}");
    assert!(
        matches!(error, RegistryError::Status { status: 429, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert_names(
        &message,
        "pull manifest",
        &image.reference.whole(),
        &faults.host(),
    );
    assert!(message.contains("TOOMANYREQUESTS: slow down"), "{message}");
    assert!(
        message
            .contains("asked to retry after 1h (Retry-After), past the operation deadline of 5s"),
        "{message}"
    );
    assert!(elapsed < SLACK, "{elapsed:?}");
}

#[tokio::test]
async fn a_tampered_blob_is_refused_as_a_digest_mismatch() {
    let test = "a_tampered_blob_is_refused_as_a_digest_mismatch";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let blob_path = format!("/blobs/{}", image.layer_digest);
    faults.inject(Fault::on("GET", &blob_path, Action::Tamper));
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    let error = pull_all(&client, &image.layer_digest).await.unwrap_err();
    eprintln!("{test}: {error}");
    let RegistryError::DigestMismatch {
        expected, actual, ..
    } = &error
    else {
        panic!("expected a digest mismatch, got {error:?}");
    };
    assert_eq!(expected, &image.layer_digest);
    let mut tampered = image.layer.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(actual, &digest_of(&tampered));
    let message = error.to_string();
    assert_names(
        &message,
        &format!("pull blob {}", image.layer_digest),
        &image.reference.whole(),
        &faults.host(),
    );
    assert!(message.ends_with("refused"), "{message}");
    // Not retried: the bytes went to the caller, and the verdict stands.
    assert_eq!(faults.seen_matching("GET", &blob_path).len(), 1);
}

#[tokio::test]
async fn a_manifest_whose_digest_differs_is_refused() {
    let test = "a_manifest_whose_digest_differs_is_refused";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();

    // Asked by digest, served another manifest.
    let mut other: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    other["annotations"] = serde_json::json!({ "swapped": "yes" });
    let other = serde_json::to_vec(&other).unwrap();
    faults.inject(
        Fault::on(
            "GET",
            "/manifests/sha256:",
            Action::ReplaceBody(other.clone()),
        )
        .times(1),
    );
    let pinned = client.at_digest(&image.manifest_digest);
    let error = client
        .pull_manifest(&pinned, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap_err();
    eprintln!("{test}: by digest: {error}");
    let RegistryError::DigestMismatch {
        expected, actual, ..
    } = &error
    else {
        panic!("expected a digest mismatch, got {error:?}");
    };
    assert_eq!(expected, &image.manifest_digest);
    assert_eq!(actual, &digest_of(&other));
    assert_names(
        &error.to_string(),
        "pull manifest",
        &pinned.whole(),
        &faults.host(),
    );

    // Asked by tag, served bytes that do not match the registry's own
    // Docker-Content-Digest.
    faults.inject(Fault::on("GET", "/manifests/v1", Action::Tamper).times(1));
    let error = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap_err();
    eprintln!("{test}: by tag: {error}");
    assert!(
        matches!(&error, RegistryError::DigestMismatch { expected, .. } if *expected == image.manifest_digest),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_manifest_whose_blobs_the_registry_does_not_see_yet_is_pushed_again() {
    let test = "a_manifest_whose_blobs_the_registry_does_not_see_yet_is_pushed_again";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    let blob_unknown = || Action::Respond {
        status: 400,
        headers: Vec::new(),
        body:
            br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
                .to_vec(),
    };
    // As docker-registry answers for a moment under concurrent pushes of
    // the same blob: once, then the PUT is accepted.
    faults.inject(Fault::on("PUT", "/manifests/v3", blob_unknown()).times(1));
    push_manifest_as(&client, &faults, &image, "v3", 2).await;

    // A blob that stays unknown fails after the bounded attempts, saying so.
    faults.inject(Fault::on("PUT", "/manifests/v4", blob_unknown()));
    let tagged = parse_reference(&format!("{}/openshell/supervisor:v4", faults.host())).unwrap();
    let error = client
        .push_manifest(
            &tagged,
            image.manifest.clone(),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .unwrap_err();
    eprintln!("{test}: {error}");
    assert!(
        matches!(
            error,
            RegistryError::Status {
                status: 400,
                attempts: 4,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert_names(&message, "push manifest", &tagged.whole(), &faults.host());
    assert!(message.contains("MANIFEST_BLOB_UNKNOWN"), "{message}");
    assert_eq!(faults.seen_matching("PUT", "/manifests/v4").len(), 4);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let test = "client_errors_are_not_retried";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    faults.inject(Fault::on(
        "PUT",
        "/manifests/",
        Action::Respond {
            status: 400,
            headers: Vec::new(),
            body: br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#
                .to_vec(),
        },
    ));
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    let error = client
        .push_manifest(
            &image.reference,
            image.manifest.clone(),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .unwrap_err();
    eprintln!("{test}: {error}");
    assert!(
        matches!(
            error,
            RegistryError::Status {
                status: 400,
                attempts: 1,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert_names(
        &message,
        "push manifest",
        &image.reference.whole(),
        &faults.host(),
    );
    assert!(
        message.contains("HTTP 400: Bad Request (MANIFEST_INVALID: manifest invalid)"),
        "{message}"
    );
    assert!(!message.contains("gave up"), "{message}");
    assert_eq!(faults.seen_matching("PUT", "/manifests/").len(), 1);
}

#[tokio::test]
async fn server_errors_on_every_attempt_say_how_many_were_made() {
    let test = "server_errors_on_every_attempt_say_how_many_were_made";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    faults.inject(Fault::on("HEAD", "/blobs/", Action::status(503)));
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 3),
    )
    .unwrap();
    let started = Instant::now();
    let error = client.blob_exists(&image.layer_digest).await.unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("{test}: failed after {elapsed:?}: {error}");
    assert!(
        matches!(
            error,
            RegistryError::Status {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert_names(
        &message,
        &format!("check blob {}", image.layer_digest),
        &image.reference.whole(),
        &faults.host(),
    );
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(message.contains("gave up after 3 attempts"), "{message}");
    assert_eq!(faults.seen_matching("HEAD", "/blobs/").len(), 3);
    // Two back-offs: at most 250 ms and 500 ms.
    assert!(elapsed < Duration::from_millis(750) + SLACK, "{elapsed:?}");
}

#[tokio::test]
async fn oversized_manifests_and_blobs_are_refused() {
    let test = "oversized_manifests_and_blobs_are_refused";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();

    let error = client
        .pull_manifest(&image.reference, 100)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::TooLarge { limit: 100, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert_names(
        &message,
        "pull manifest",
        &image.reference.whole(),
        &faults.host(),
    );
    assert!(
        message.contains("larger than the limit of 100 bytes"),
        "{message}"
    );

    // A 5 MiB "manifest" against the default 4 MiB limit.
    faults.inject(
        Fault::on(
            "GET",
            "/manifests/v1",
            Action::ReplaceBody(vec![b' '; 5 * 1024 * 1024]),
        )
        .times(1),
    );
    let error = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::TooLarge { .. }), "{error:?}");

    // A blob one byte over the limit: refused from its announced size,
    // before a byte reaches the caller.
    let mut received = 0usize;
    let limit = LAYER_SIZE as u64 - 1;
    let error = client
        .pull_blob(&image.layer_digest, limit, &mut |bytes: &[u8]| {
            received += bytes.len();
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::TooLarge { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("blob {}", image.layer_digest)),
        "{message}"
    );
    assert!(
        message.contains(&format!("limit of {limit} bytes")),
        "{message}"
    );
    assert_eq!(received, 0);
}

#[tokio::test]
async fn a_wrong_password_fails_at_authentication_before_any_upload() {
    let test = "a_wrong_password_fails_at_authentication_before_any_upload";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let reference = parse_reference(&format!("{}/openshell/supervisor:v1", faults.host())).unwrap();
    let mut options = options(&faults, Duration::from_secs(20), 4);
    options.basic = Some((faults.credentials().0, "not-the-password".into()));
    let client = RegistryClient::new(&reference, &options).unwrap();
    let error = client
        .authenticate(openshell_registry::Access::Push)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::Unauthorized { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "registry {} refused access to {}",
            faults.host(),
            reference.whole()
        )),
        "{message}"
    );
    assert!(message.contains("authenticate for push"), "{message}");
    let blob = b"never sent".to_vec();
    let error = client
        .push_blob(&digest_of(&blob), Bytes::from(blob))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(faults.seen_matching("POST", "/blobs/uploads/").is_empty());
    assert!(faults.seen_matching("PATCH", "/blobs/uploads/").is_empty());
}

#[tokio::test]
async fn bytes_that_do_not_match_their_digest_are_never_sent() {
    let test = "bytes_that_do_not_match_their_digest_are_never_sent";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let reference = parse_reference(&format!("{}/openshell/supervisor:v1", faults.host())).unwrap();
    let client =
        RegistryClient::new(&reference, &options(&faults, Duration::from_secs(20), 4)).unwrap();
    let error = client
        .push_blob(
            &digest_of(b"the real bytes"),
            Bytes::from_static(b"other bytes"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::DigestMismatch { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("checked before sending"),
        "{error}"
    );
    assert!(faults.seen().is_empty(), "{:?}", faults.seen());
}

#[tokio::test]
async fn credentials_refused_mid_operation_are_negotiated_again_once() {
    let test = "credentials_refused_mid_operation_are_negotiated_again_once";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let image = seed(&faults).await;
    let client = RegistryClient::new(
        &image.reference,
        &options(&faults, Duration::from_secs(20), 4),
    )
    .unwrap();
    client
        .authenticate(openshell_registry::Access::Pull)
        .await
        .unwrap();
    let unauthorized = || Action::Respond {
        status: 401,
        headers: vec![(
            "WWW-Authenticate".into(),
            "Basic realm=\"openshell-test\"".into(),
        )],
        body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
            .to_vec(),
    };

    // Once (an expired token): the client logs in again and carries on.
    faults.forget_seen();
    faults.inject(Fault::on("GET", "/manifests/v1", unauthorized()).times(1));
    let manifest = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap();
    assert_eq!(manifest.digest, image.manifest_digest);
    assert_eq!(faults.seen_matching("GET", "/manifests/v1").len(), 2);
    // The new login: oci-client's challenge request and the credentials
    // check, both `GET /v2/`.
    let logins = faults
        .seen()
        .into_iter()
        .filter(|seen| seen.method == "GET" && seen.target == "/v2/")
        .count();
    assert_eq!(logins, 2, "{:?}", faults.seen());

    // Every time: refused after one new login, not retried further.
    faults.forget_seen();
    faults.inject(Fault::on("GET", "/manifests/v1", unauthorized()));
    let error = client
        .pull_manifest(&image.reference, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap_err();
    eprintln!("{test}: {error}");
    assert!(
        matches!(error, RegistryError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("(while: pull manifest)"),
        "{error}"
    );
    assert_eq!(faults.seen_matching("GET", "/manifests/v1").len(), 2);
}
