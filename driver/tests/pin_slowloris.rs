//! `--pin-supervisor-digest` against a slowloris registry (a TCP server on
//! 127.0.0.1 that answers one byte every 5 s and never finishes): the
//! driver stops at start with one error naming the registry and the image,
//! within the registry deadline, instead of waiting forever.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{driver, pin_args};
use openshell_testsupport::podman::{output_text, run_within};
use openshell_testsupport::{Slowloris, Trickle, anonymous_registry_client};

/// One byte every 5 s: no per-read timeout ever runs out.
const INTERVAL: Duration = Duration::from_secs(5);

/// Start-up, exit and scheduling on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

/// The driver rendering a pod with the supervisor image at `image` pinned,
/// anonymous and with no registry setting from the environment (see
/// [`anonymous_registry_client`]).
fn pin_command(image: &str, dir: &std::path::Path) -> Command {
    let mut command = driver();
    let auth = anonymous_registry_client(&mut command, dir)
        .display()
        .to_string();
    command.arg("render").args(pin_args(image, &auth));
    command
}

/// Runs the pin, asserting it fails at start with one error line naming the
/// registry and the image; returns that line and how long the run took.
fn pin_fails(
    slowloris: &Slowloris,
    command: Command,
    child_deadline: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let output = run_within(command, child_deadline);
    let elapsed = started.elapsed();
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        output.stdout.is_empty(),
        "a failed pin printed a pod: {text}"
    );
    assert!(
        slowloris.connections() > 0,
        "never reached the registry: {text}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {text}"))
        .to_string();
    (line, elapsed)
}

#[test]
fn pinning_against_a_slowloris_registry_fails_within_the_operation_deadline() {
    // A trickled body: every byte counts as progress under the 10 s read
    // timeout, so only the 12 s operation deadline ends it.
    let slowloris = Slowloris::start(INTERVAL, Trickle::Body);
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/openshell/supervisor:v1", slowloris.host());
    let mut command = pin_command(&image, dir.path());
    command.args([
        "--registry-read-timeout",
        "10s",
        "--registry-operation-timeout",
        "12s",
    ]);
    let (line, elapsed) = pin_fails(&slowloris, command, Duration::from_secs(60));
    eprintln!("pin: failed after {elapsed:?}: {line}");
    assert!(
        line.starts_with(&format!(
            "error: could not pin the supervisor image {image} to a digest: pull manifest of {image}: registry {} did not complete it within 12s (operation timeout; --registry-operation-timeout",
            slowloris.host()
        )),
        "{line}"
    );
    assert!(elapsed >= Duration::from_secs(12), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(12) + SLACK, "{elapsed:?}");
}

#[test]
fn pinning_against_a_slowloris_registry_with_the_defaults_fails_within_a_minute() {
    // The answer head trickles: no attempt ever gets a whole answer, each
    // ends at the 15 s read timeout, and three fit in the 50 s deadline.
    let slowloris = Slowloris::start(INTERVAL, Trickle::Head);
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/openshell/supervisor:v1", slowloris.host());
    let command = pin_command(&image, dir.path());
    let (line, elapsed) = pin_fails(&slowloris, command, Duration::from_secs(90));
    eprintln!("pin with defaults: failed after {elapsed:?}: {line}");
    assert!(
        line.starts_with(&format!(
            "error: could not pin the supervisor image {image} to a digest: authenticate for pull of {image}: registry {} stalled: no progress for 15s (read timeout; --registry-read-timeout",
            slowloris.host()
        )),
        "{line}"
    );
    assert!(line.ends_with("gave up after 3 attempts"), "{line}");
    assert!(elapsed >= Duration::from_secs(45), "{elapsed:?}");
    assert!(
        elapsed < openshell_registry::DEFAULT_STALLED_COMMAND_BOUND,
        "{elapsed:?}"
    );
}
