//! build-image against a registry that misbehaves on cue (the
//! fault-injecting proxy in front of docker-registry): a stall fails push
//! and verify within their deadline with one clear line and a non-zero
//! exit, never a silent hang; transient errors are retried; tampered
//! bytes are refused.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{build_image, supervisor_copy, tempdir};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::podman::{output_text, run as run_tool};
use openshell_testsupport::{Action, Fault, FaultRegistry};

/// Short network bounds, so a stall fails fast.
const NETWORK: [&str; 4] = ["--registry-read-timeout", "1s", "--registry-attempts", "2"];

fn push(faults: &FaultRegistry, dir: &std::path::Path, tag: &str) -> std::process::Output {
    let binary = supervisor_copy(dir);
    let auth = faults.auth_file();
    let mut command = build_image();
    command
        .arg("--binary")
        .arg(&binary)
        .arg("--output")
        .arg(dir.join("layout"))
        .args([
            "--push",
            &format!("{}/openshell/supervisor:{tag}", faults.host()),
            "--plain-http",
            "--authfile",
            auth.to_str().unwrap(),
            "--json",
        ])
        .args(NETWORK);
    run_tool(command)
}

fn verify(faults: &FaultRegistry, reference: &str) -> std::process::Output {
    let auth = faults.auth_file();
    let mut command = build_image();
    command
        .args([
            "verify",
            "--quiet",
            &format!("docker://{reference}"),
            "--plain-http",
            "--authfile",
            auth.to_str().unwrap(),
        ])
        .args(NETWORK);
    run_tool(command)
}

#[test]
fn a_push_to_a_registry_that_never_answers_fails_within_its_deadline() {
    let Some(faults) =
        FaultRegistry::start("a_push_to_a_registry_that_never_answers_fails_within_its_deadline")
    else {
        return;
    };
    faults.inject(Fault::on("*", "/v2/", Action::Stall));
    let dir = tempdir();
    let start = Instant::now();
    let output = push(&faults, dir.path(), "stalled");
    let elapsed = start.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    // Two attempts of one second each, plus backoff and start-up.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .find(|line| line.starts_with("build-image: error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(error.contains(&faults.host()), "{error}");
    assert!(error.contains("stalled"), "{error}");
    assert!(error.contains("--registry-read-timeout"), "{error}");
}

#[test]
fn verify_of_a_registry_that_stalls_mid_blob_fails_within_its_deadline() {
    let Some(faults) =
        FaultRegistry::start("verify_of_a_registry_that_stalls_mid_blob_fails_within_its_deadline")
    else {
        return;
    };
    let dir = tempdir();
    let pushed = push(&faults, dir.path(), "midblob");
    assert!(pushed.status.success(), "{}", output_text(&pushed));
    let result: BuildResult = serde_json::from_slice(&pushed.stdout).unwrap();
    faults.inject(Fault::on("GET", "/blobs/sha256:", Action::StallAfter(100)));
    let start = Instant::now();
    let output = verify(&faults, &result.pushed()[0]);
    let elapsed = start.elapsed();
    assert!(!output.status.success(), "{}", output_text(&output));
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("stalled"), "{text}");
}

#[test]
fn verify_refuses_a_blob_the_registry_tampers_with() {
    let Some(faults) = FaultRegistry::start("verify_refuses_a_blob_the_registry_tampers_with")
    else {
        return;
    };
    let dir = tempdir();
    let pushed = push(&faults, dir.path(), "tampered");
    assert!(pushed.status.success(), "{}", output_text(&pushed));
    let result: BuildResult = serde_json::from_slice(&pushed.stdout).unwrap();
    let layer = &result.platforms[0].layer_digest;
    faults.inject(Fault::on("GET", &format!("/blobs/{layer}"), Action::Tamper));
    let output = verify(&faults, &result.pushed()[0]);
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("FAIL blob-digests"), "{text}");
    assert!(text.contains(layer.as_str()), "{text}");
}

#[test]
fn a_push_retries_a_transient_server_error_and_succeeds() {
    let Some(faults) = FaultRegistry::start("a_push_retries_a_transient_server_error_and_succeeds")
    else {
        return;
    };
    faults.inject(Fault::on("PUT", "/manifests/", Action::status(503)).times(1));
    faults.inject(Fault::on("HEAD", "/blobs/", Action::status(500)).times(1));
    let dir = tempdir();
    let output = push(&faults, dir.path(), "transient");
    assert!(output.status.success(), "{}", output_text(&output));
    // The image's manifest went up twice (the 503, then the retry); the
    // SBOM's referrer and its tag-schema index once each.
    assert_eq!(faults.seen_matching("PUT", "/manifests/transient").len(), 2);
    assert_eq!(faults.seen_matching("PUT", "/manifests/").len(), 4);
    let result: BuildResult = serde_json::from_slice(&output.stdout).unwrap();
    let verified = verify(&faults, &result.pushed()[0]);
    assert!(verified.status.success(), "{}", output_text(&verified));
}

#[test]
fn a_registry_manifest_claiming_a_one_tib_layer_is_refused_in_bounded_memory() {
    let test = "a_registry_manifest_claiming_a_one_tib_layer_is_refused_in_bounded_memory";
    let Some(faults) = FaultRegistry::start(test) else {
        return;
    };
    let dir = tempdir();
    let pushed = push(&faults, dir.path(), "honest");
    assert!(pushed.status.success(), "{}", output_text(&pushed));
    let result: BuildResult = serde_json::from_slice(&pushed.stdout).unwrap();

    // The same manifest, its layer now said to be 1 TiB: docker-registry
    // stores it without looking at the blob.
    let options = openshell_registry::RegistryOptions {
        plain_http: true,
        basic: Some(faults.credentials()),
        ..Default::default()
    };
    let repository = openshell_registry::parse_reference(&format!(
        "{}/openshell/supervisor:huge",
        faults.host()
    ))
    .unwrap();
    let client = openshell_registry::RegistryClient::new(&repository, &options).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let honest = runtime
        .block_on(client.pull_manifest(
            &client.at_digest(&result.platforms[0].manifest_digest),
            1 << 22,
        ))
        .unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&honest.bytes).unwrap();
    manifest["layers"][0]["size"] = serde_json::json!(1u64 << 40);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    runtime
        .block_on(client.push_manifest(
            &repository,
            bytes,
            "application/vnd.oci.image.manifest.v1+json",
        ))
        .unwrap();

    let auth = faults.auth_file();
    let mut command = build_image();
    command.args([
        "verify",
        "--json",
        "--quiet",
        &format!("docker://{}/openshell/supervisor:huge", faults.host()),
        "--plain-http",
        "--authfile",
        auth.to_str().unwrap(),
    ]);
    let run = openshell_testsupport::rss::run_measured(command, Duration::from_secs(120));
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let text = common::details(&report, "blob-digests");
    assert!(
        text.contains("bytes, but its descriptor says 1099511627776"),
        "{text}"
    );
    assert!(
        run.peak_rss <= 64 * 1024 * 1024,
        "peak RSS {}",
        run.peak_rss
    );
}
