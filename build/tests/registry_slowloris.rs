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
use openshell_registry::DEFAULT_STALLED_COMMAND_BOUND;
use openshell_testsupport::podman::{output_text, run_within};
use openshell_testsupport::{Slowloris, Trickle, anonymous_registry_client};

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

/// build-image ARGS, anonymous and with no registry setting from the
/// environment (see [`anonymous_registry_client`]).
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = build_image();
    let auth = anonymous_registry_client(&mut command, dir);
    command
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
    // Named at the tag pushed, not at a `latest` nobody asked for.
    let line = error_line(&text, &slowloris.host(), &format!("{repository}:v1"));
    assert!(line.contains("stalled"), "{line}");
    assert!(elapsed < DEADLINE + SLACK, "{elapsed:?}: {line}");
}

/// Runs build-image ARGS (with [`FLAGS`]) against a slowloris that
/// trickles bodies and asserts it ends at the 12 s operation deadline, with
/// an error naming `reference` and the registry; a byte every 5 s keeps the
/// 10 s read timeout from running out.
fn ends_at_the_deadline(slowloris: &Slowloris, what: &str, reference: &str, args: &[&str]) {
    let dir = tempdir();
    let mut run = command(dir.path(), args);
    run.args(FLAGS);
    let (text, elapsed) = run_failing(slowloris, run);
    eprintln!("{what}: failed {elapsed:?} after the first connection");
    let line = error_line(&text, &slowloris.host(), reference);
    assert!(
        line.contains("did not complete it within 12s (operation timeout"),
        "{line}"
    );
    assert!(elapsed >= DEADLINE, "{elapsed:?}");
    assert!(elapsed < DEADLINE + SLACK, "{elapsed:?}: {line}");
}

#[test]
fn verify_of_a_slowloris_registry_fails_within_its_deadline() {
    let slowloris = Slowloris::start(INTERVAL, Trickle::Body);
    let reference = format!("{}/openshell/supervisor:v1", slowloris.host());
    let source = format!("docker://{reference}");
    ends_at_the_deadline(
        &slowloris,
        "verify",
        &reference,
        &["verify", "--quiet", &source],
    );
}

#[test]
fn copy_from_a_slowloris_registry_fails_within_its_deadline() {
    let slowloris = Slowloris::start(INTERVAL, Trickle::Body);
    let reference = format!("{}/openshell/supervisor:v1", slowloris.host());
    let out = tempdir();
    let mirror = out.path().join("mirror");
    let source = format!("docker://{reference}");
    let destination = format!("oci:{}:v1", mirror.display());
    ends_at_the_deadline(
        &slowloris,
        "copy",
        &reference,
        &["copy", &source, &destination],
    );
    // Nothing half-written is left as a layout.
    assert!(
        !mirror.join("index.json").exists(),
        "a failed copy left {}",
        mirror.display()
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
