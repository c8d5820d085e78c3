//! What a registry answers is read within bounds: a token service that
//! answers 10 MB or never stops, a referrers listing that never ends, a
//! blob that trickles under a huge Content-Length. Each ends with a clear
//! refusal within its deadline, and the test process stays under 64 MiB.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use openshell_registry::{
    Access, DEFAULT_MANIFEST_LIMIT, RegistryClient, RegistryError, RegistryOptions,
    TOKEN_RESPONSE_LIMIT, parse_reference,
};
use openshell_testsupport::rss::own_peak_rss;
use openshell_testsupport::{Action, Fault, FaultRegistry};

/// The issue's memory bound for any input.
const RSS_LIMIT: u64 = 64 * 1024 * 1024;

/// Slack on every time bound: scheduling on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(5);

fn options(faults: &FaultRegistry, operation: Duration) -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        basic: Some(faults.credentials()),
        connect_timeout: Some(Duration::from_secs(2)),
        read_timeout: Some(Duration::from_secs(2)),
        operation_timeout: Some(operation),
        attempts: Some(2),
        quiet: true,
        ..Default::default()
    }
}

fn client(faults: &FaultRegistry, operation: Duration) -> RegistryClient {
    let reference = parse_reference(&format!("{}/openshell/supervisor:v1", faults.host())).unwrap();
    RegistryClient::new(&reference, &options(faults, operation)).unwrap()
}

/// Makes the registry ask for a token from `/token` on the proxy (which
/// the next fault then answers), as a registry with a token service does.
fn challenge_with_token_service(faults: &FaultRegistry) {
    faults.inject(Fault::exact(
        "GET",
        "/v2/",
        Action::Respond {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!(
                    "Bearer realm=\"http://{}/token\",service=\"fault-registry\"",
                    faults.host()
                ),
            )],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                .to_vec(),
        },
    ));
}

fn assert_bounded(started: Instant, deadline: Duration) {
    let elapsed = started.elapsed();
    assert!(elapsed < deadline + SLACK, "took {elapsed:?}");
    let peak = own_peak_rss();
    assert!(peak < RSS_LIMIT, "peak RSS {peak} bytes");
}

#[tokio::test]
async fn a_token_service_answering_10_mb_is_refused_from_its_length() {
    let Some(faults) = FaultRegistry::start("a_token_service_answering_10_mb_is_refused") else {
        return;
    };
    challenge_with_token_service(&faults);
    faults.inject(Fault::on(
        "GET",
        "/token",
        Action::Endless {
            prefix: Vec::new(),
            headers: vec![("Content-Length".into(), (10 * 1024 * 1024).to_string())],
            chunk: vec![b'a'; 64 * 1024],
            every: Duration::ZERO,
        },
    ));
    let client = client(&faults, Duration::from_secs(20));
    let started = Instant::now();
    let error = client.authenticate(Access::Pull).await.unwrap_err();
    assert!(
        matches!(error, RegistryError::TooLarge { limit, .. } if limit == TOKEN_RESPONSE_LIMIT),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("token service's answer (10485760 bytes)"),
        "{message}"
    );
    assert!(message.contains(&faults.host()), "{message}");
    // The token service was asked once, with the scope of the repository.
    let asked = faults.seen_matching("GET", "/token");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].target.contains("scope=repository"), "{asked:?}");
    assert_bounded(started, Duration::from_secs(2));
}

#[tokio::test]
async fn a_token_service_that_never_ends_is_refused_at_the_limit() {
    let Some(faults) = FaultRegistry::start("a_token_service_that_never_ends") else {
        return;
    };
    challenge_with_token_service(&faults);
    // No length, and a body as fast as the client reads: only the size
    // limit can end it (the read timeout never fires).
    faults.inject(Fault::on(
        "GET",
        "/token",
        Action::Endless {
            prefix: Vec::new(),
            headers: Vec::new(),
            chunk: br#"{"token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"#
                .repeat(1024),
            every: Duration::ZERO,
        },
    ));
    let client = client(&faults, Duration::from_secs(20));
    let started = Instant::now();
    let error = client.authenticate(Access::Pull).await.unwrap_err();
    assert!(matches!(error, RegistryError::TooLarge { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains(&format!("over {TOKEN_RESPONSE_LIMIT} bytes")),
        "{error}"
    );
    assert_bounded(started, Duration::from_secs(2));
}

#[tokio::test]
async fn a_token_service_that_trickles_ends_at_the_operation_deadline() {
    let Some(faults) = FaultRegistry::start("a_token_service_that_trickles") else {
        return;
    };
    challenge_with_token_service(&faults);
    // A byte every 100 ms: never idle for the read timeout, never over
    // the size limit; the operation's deadline ends it.
    faults.inject(Fault::on(
        "GET",
        "/token",
        Action::Endless {
            prefix: Vec::new(),
            headers: Vec::new(),
            chunk: b" ".to_vec(),
            every: Duration::from_millis(100),
        },
    ));
    let operation = Duration::from_secs(4);
    let client = client(&faults, operation);
    let started = Instant::now();
    let error = client.authenticate(Access::Pull).await.unwrap_err();
    assert!(started.elapsed() >= operation, "{error}");
    assert!(error.to_string().contains("operation timeout"), "{error}");
    assert_bounded(started, operation);
}

#[tokio::test]
async fn a_token_from_the_token_service_is_sent_as_a_bearer_token() {
    let Some(faults) = FaultRegistry::start("a_token_from_the_token_service") else {
        return;
    };
    faults.inject(
        Fault::exact(
            "GET",
            "/v2/",
            Action::Respond {
                status: 401,
                headers: vec![(
                    "WWW-Authenticate".into(),
                    format!(
                        "Bearer realm=\"http://{}/token\",service=\"fault-registry\"",
                        faults.host()
                    ),
                )],
                body: b"{}".to_vec(),
            },
        )
        .times(1),
    );
    // With the token, `/v2/` answers (as a registry with a token service
    // does).
    faults.inject(Fault::exact(
        "GET",
        "/v2/",
        Action::Respond {
            status: 200,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        },
    ));
    faults.inject(Fault::on(
        "GET",
        "/token",
        Action::Respond {
            status: 200,
            headers: Vec::new(),
            body: br#"{"access_token":"opaque-token","expires_in":300}"#.to_vec(),
        },
    ));
    // The registry behind the proxy takes basic credentials only, so the
    // bearer token is refused there: what matters is that it was asked
    // for and sent.
    let client = client(&faults, Duration::from_secs(20));
    let reference = parse_reference(&format!("{}/openshell/supervisor:v1", faults.host())).unwrap();
    let _ = client
        .pull_manifest(&reference, DEFAULT_MANIFEST_LIMIT)
        .await;
    assert_eq!(faults.seen_matching("GET", "/token").len(), 1);
    assert!(!faults.seen_matching("GET", "/manifests/v1").is_empty());
}

#[tokio::test]
async fn a_referrers_listing_that_never_ends_is_refused_at_the_limit() {
    let Some(faults) = FaultRegistry::start("a_referrers_listing_that_never_ends") else {
        return;
    };
    faults.inject(Fault::on(
        "GET",
        "/referrers/",
        Action::Endless {
            prefix: Vec::new(),
            headers: vec![(
                "Content-Type".into(),
                "application/vnd.oci.image.index.v1+json".into(),
            )],
            chunk: br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"#.repeat(256),
            every: Duration::ZERO,
        },
    ));
    let client = client(&faults, Duration::from_secs(20));
    let started = Instant::now();
    let subject = format!("sha256:{}", "ab".repeat(32));
    let error = client
        .referrers(&subject, DEFAULT_MANIFEST_LIMIT)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::TooLarge { .. }), "{error:?}");
    assert!(error.to_string().contains("referrers listing"), "{error}");
    assert_bounded(started, Duration::from_secs(3));
}

#[tokio::test]
async fn a_blob_that_trickles_under_a_huge_content_length_ends_at_the_deadline() {
    let Some(faults) = FaultRegistry::start("a_blob_that_trickles_under_a_huge_content_length")
    else {
        return;
    };
    let digest = format!("sha256:{}", "cd".repeat(32));
    // A terabyte announced, 4 KiB sent every 100 ms: the read timeout
    // never fires, and the deadline must not grow with the announcement
    // (it would be eleven days at the floor rate).
    faults.inject(Fault::on(
        "GET",
        &format!("/blobs/{digest}"),
        Action::Endless {
            prefix: Vec::new(),
            headers: vec![
                ("Content-Length".into(), (1u64 << 40).to_string()),
                ("Content-Type".into(), "application/octet-stream".into()),
            ],
            chunk: vec![0u8; 4096],
            every: Duration::from_millis(100),
        },
    ));
    let operation = Duration::from_secs(4);
    let client = client(&faults, operation);
    let started = Instant::now();
    let mut received = 0u64;
    let error = client
        .pull_blob(&digest, u64::MAX, &mut |bytes: &[u8]| {
            received += bytes.len() as u64;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("operation timeout"), "{error}");
    assert!(received > 0, "the trickle reached the caller");
    assert_bounded(started, operation);
}
