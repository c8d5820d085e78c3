//! build-image against a slowloris registry (a TCP server on 127.0.0.1
//! that answers one byte every 5 s and never finishes): push, verify and
//! copy each end with one clear error naming the registry and the
//! reference, within the documented deadline, never hanging. Measured from
//! the registry's first connection, so the packaging before a push does
//! not count against the registry's deadline.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{build_image, supervisor_copy, tempdir};
use openshell_contract::registry::{
    ENV_REGISTRY_ATTEMPTS, ENV_REGISTRY_CONNECT_TIMEOUT, ENV_REGISTRY_OPERATION_TIMEOUT,
    ENV_REGISTRY_READ_TIMEOUT,
};
use openshell_registry::DEFAULT_STALLED_COMMAND_BOUND;
use openshell_testsupport::podman::{output_text, run_within};
use openshell_testsupport::{Slowloris, Trickle};

/// One byte every 5 s: no per-read timeout ever runs out.
const INTERVAL: Duration = Duration::from_secs(5);

/// The deadline the flagged tests set: 12 s per operation, with a 10 s read
/// timeout (longer than the interval, so a trickled body counts as
/// progress and only the deadline ends it).
const FLAGS: [&str; 4] = [
    "--registry-read-timeout",
    "10s",
    "--registry-operation-timeout",
    "12s",
];
const DEADLINE: Duration = Duration::from_secs(12);

/// Start-up, exit and scheduling on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

/// How long the child may run before the test kills it and fails: the
/// packaging before a push, and far more than any documented deadline.
const CHILD_DEADLINE: Duration = Duration::from_secs(150);

/// build-image ARGS with no registry setting from the environment and an
/// empty auth file (anonymous: the slowloris asks for nothing).
fn command(dir: &Path, args: &[&str]) -> Command {
    let auth = dir.join("auth.json");
    std::fs::write(&auth, r#"{"auths": {}}"#).unwrap();
    let mut command = build_image();
    for variable in [
        ENV_REGISTRY_ATTEMPTS,
        ENV_REGISTRY_CONNECT_TIMEOUT,
        ENV_REGISTRY_OPERATION_TIMEOUT,
        ENV_REGISTRY_READ_TIMEOUT,
    ] {
        command.env_remove(variable);
    }
    command
        .env("REGISTRY_AUTH_FILE", &auth)
        .args(args)
        .arg("--plain-http")
        .arg("--authfile")
        .arg(&auth);
    command
}

/// Runs `command`, asserting it failed; returns its output and the time
/// from the registry's first connection to its end.
fn run_failing(slowloris: &Slowloris, command: Command) -> (String, Duration) {
    let output: Output = run_within(command, CHILD_DEADLINE);
    let ended = Instant::now();
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert_eq!(output.status.code(), Some(1), "{text}");
    let first = slowloris
        .first_connection()
        .unwrap_or_else(|| panic!("the command never reached the registry: {text}"));
    (text, ended - first)
}

/// The one error line, which must name the registry and the reference.
fn error_line(text: &str, host: &str, reference: &str) -> String {
    let line = text
        .lines()
        .find(|line| line.contains("error:") && line.contains(host))
        .unwrap_or_else(|| panic!("no error line naming {host}: {text}"))
        .to_string();
    eprintln!("{line}");
    assert!(line.contains(reference), "{line}");
    line
}

#[test]
fn a_push_to_a_slowloris_registry_fails_within_its_deadline() {
    let slowloris = Slowloris::start(INTERVAL, Trickle::Head);
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let reference = format!("{}/openshell/supervisor:v1", slowloris.host());
    let mut push = command(dir.path(), &["--push", &reference, "--tag", "v1"]);
    push.arg("--binary")
        .arg(&binary)
        .arg("--output")
        .arg(dir.path().join("layout"))
        .args(FLAGS);
    let (text, elapsed) = run_failing(&slowloris, push);
    eprintln!("push: failed {elapsed:?} after the first connection");
    let line = error_line(&text, &slowloris.host(), &reference);
    // The answer head never completes: the read timeout ends the attempt,
    // and no second one fits in what is left of the deadline.
    assert!(
        line.contains("stalled: no progress for 10s (read timeout"),
        "{line}"
    );
    assert!(elapsed >= Duration::from_secs(10), "{elapsed:?}");
    assert!(elapsed < DEADLINE + SLACK, "{elapsed:?}: {line}");
}

#[test]
fn a_push_with_to_docker_to_a_slowloris_registry_fails_within_its_deadline() {
    let slowloris = Slowloris::start(INTERVAL, Trickle::Body);
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let repository = format!("{}/openshell/supervisor", slowloris.host());
    let to = format!("docker://{repository}");
    let mut push = command(dir.path(), &["--to", &to, "--tag", "v1"]);
    push.arg("--binary").arg(&binary).args(FLAGS);
    let (text, elapsed) = run_failing(&slowloris, push);
    eprintln!("push --to docker://: failed {elapsed:?} after the first connection");
    // Its first request (the blob check, a HEAD) trickles from the status
    // line whatever the mode.
    let line = error_line(&text, &slowloris.host(), &repository);
    assert!(line.contains("stalled"), "{line}");
    assert!(elapsed < DEADLINE + SLACK, "{elapsed:?}: {line}");
}

#[test]
fn verify_of_a_slowloris_registry_fails_within_its_deadline() {
    let slowloris = Slowloris::start(INTERVAL, Trickle::Body);
    let dir = tempdir();
    let reference = format!("{}/openshell/supervisor:v1", slowloris.host());
    let source = format!("docker://{reference}");
    let mut verify = command(dir.path(), &["verify", "--quiet", &source]);
    verify.args(FLAGS);
    let (text, elapsed) = run_failing(&slowloris, verify);
    eprintln!("verify: failed {elapsed:?} after the first connection");
    let line = error_line(&text, &slowloris.host(), &reference);
    // A byte every 5 s keeps the 10 s read timeout from running out: the
    // operation deadline ends it.
    assert!(
        line.contains("did not complete it within 12s (operation timeout"),
        "{line}"
    );
    assert!(elapsed >= DEADLINE, "{elapsed:?}");
    assert!(elapsed < DEADLINE + SLACK, "{elapsed:?}: {line}");
}

#[test]
fn copy_from_a_slowloris_registry_fails_within_its_deadline() {
    let slowloris = Slowloris::start(INTERVAL, Trickle::Body);
    let dir = tempdir();
    let reference = format!("{}/openshell/supervisor:v1", slowloris.host());
    let out = dir.path().join("mirror");
    let source = format!("docker://{reference}");
    let destination = format!("oci:{}:v1", out.display());
    let mut copy = command(dir.path(), &["copy", &source, &destination]);
    copy.args(FLAGS);
    let (text, elapsed) = run_failing(&slowloris, copy);
    eprintln!("copy: failed {elapsed:?} after the first connection");
    let line = error_line(&text, &slowloris.host(), &reference);
    assert!(
        line.contains("did not complete it within 12s (operation timeout"),
        "{line}"
    );
    assert!(elapsed >= DEADLINE, "{elapsed:?}");
    assert!(elapsed < DEADLINE + SLACK, "{elapsed:?}: {line}");
    // Nothing half-written is left as a layout.
    assert!(
        !out.join("index.json").exists(),
        "a failed copy left {}",
        out.display()
    );
}

#[test]
fn with_the_default_settings_a_slowloris_registry_ends_a_command_within_a_minute() {
    let slowloris = Slowloris::start(INTERVAL, Trickle::Head);
    let dir = tempdir();
    let reference = format!("{}/openshell/supervisor:v1", slowloris.host());
    let source = format!("docker://{reference}");
    let verify = command(dir.path(), &["verify", "--quiet", &source]);
    let started = Instant::now();
    let (text, elapsed) = run_failing(&slowloris, verify);
    let whole = started.elapsed();
    eprintln!(
        "verify with defaults: failed {elapsed:?} after the first connection, {whole:?} in all"
    );
    let line = error_line(&text, &slowloris.host(), &reference);
    // Three attempts of the 15 s read timeout and their back-off (45.75 s
    // at most); a fourth would not fit in the 50 s deadline.
    assert!(
        line.contains("stalled: no progress for 15s (read timeout"),
        "{line}"
    );
    assert!(line.contains("gave up after 3 attempts"), "{line}");
    assert!(elapsed >= Duration::from_secs(45), "{elapsed:?}");
    assert!(whole < DEFAULT_STALLED_COMMAND_BOUND, "{whole:?}: {line}");
}
