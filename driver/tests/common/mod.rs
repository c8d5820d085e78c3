//! Helpers shared by the driver's integration tests.
// Each test binary uses a different subset.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use openshell_contract::sideload::{
    ENV_DRIVER_CONFIG, ENV_IMAGE_PULL_SECRETS, ENV_KUBERNETES_VERSION, ENV_PIN_SUPERVISOR_DIGEST,
    ENV_SUPERVISOR_IMAGE, ENV_SUPERVISOR_IMAGE_FROM, ENV_SUPERVISOR_IMAGE_PULL_POLICY,
    ENV_SUPERVISOR_SIDELOAD_METHOD,
};
pub mod oci_layout;
pub mod pod_security;
pub mod pyyaml;

use serde_json::Value;

/// Every environment variable the driver reads; cleared for each run so a
/// developer's shell cannot change what a test sees.
pub const DRIVER_ENV: [&str; 8] = [
    ENV_SUPERVISOR_IMAGE,
    ENV_SUPERVISOR_IMAGE_PULL_POLICY,
    ENV_SUPERVISOR_SIDELOAD_METHOD,
    ENV_KUBERNETES_VERSION,
    ENV_SUPERVISOR_IMAGE_FROM,
    ENV_PIN_SUPERVISOR_DIGEST,
    ENV_IMAGE_PULL_SECRETS,
    ENV_DRIVER_CONFIG,
];

/// The driver binary, with none of its environment variables set.
pub fn driver() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_openshell-driver-kubernetes"));
    for variable in DRIVER_ENV {
        command.env_remove(variable);
    }
    command
}

/// The arguments of a `render` that pins the supervisor `image` (plain
/// HTTP, credentials from `auth_file`), to follow `render`.
pub fn pin_args<'a>(image: &'a str, auth_file: &'a str) -> Vec<&'a str> {
    vec![
        "--sandbox-image",
        "alpine",
        "--supervisor-image",
        image,
        "--pin-supervisor-digest",
        "--plain-http",
        "--authfile",
        auth_file,
    ]
}

/// How long one driver run may take: the slowest, a pin against a stalled
/// registry with the default bounds, ends within a minute.
pub const DRIVER_DEADLINE: Duration = Duration::from_secs(120);

/// Runs the driver with `args` and `env`, returning its output. A run that
/// outlives [`DRIVER_DEADLINE`] is killed and fails the test.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = driver();
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    openshell_testsupport::podman::run_within(command, DRIVER_DEADLINE)
}

/// Runs the driver, asserting success; returns (stdout, stderr).
pub fn run_ok(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let output = run(args, env);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "driver {args:?} failed with {}:\n{stderr}",
        output.status
    );
    (stdout, stderr)
}

/// Runs the driver, asserting it fails with exit code 1 and one `error:`
/// line; returns stderr.
pub fn run_err(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run(args, env);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "driver {args:?} should fail with 1:\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(output.stdout.is_empty(), "a failed run printed a pod");
    assert_eq!(
        stderr
            .lines()
            .filter(|line| line.starts_with("error:"))
            .count(),
        1,
        "{stderr}"
    );
    stderr
}

/// `render ARGS` printed as JSON, parsed.
pub fn render_json(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut full = vec!["render"];
    full.extend_from_slice(args);
    let (stdout, _) = run_ok(&full, env);
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{stdout}"))
}

/// `config --json ARGS`, parsed.
pub fn config_json(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut full = vec!["config", "--json"];
    full.extend_from_slice(args);
    let (stdout, _) = run_ok(&full, env);
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{stdout}"))
}

/// A test data file under `driver/tests/data`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

/// The pod after a round trip through k8s-openapi's typed `Pod`: a field
/// Kubernetes does not know (a typo, a wrong case) is dropped by the typed
/// deserialiser and so is missing here.
pub fn typed_round_trip(pod: &Value) -> Value {
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod.clone())
        .unwrap_or_else(|err| panic!("not a Pod ({err}):\n{pod:#}"));
    serde_json::to_value(&typed)
        .unwrap_or_else(|err| panic!("could not serialise the typed Pod: {err}"))
}

/// Asserts that a pod survives the typed round trip unchanged.
pub fn assert_typed_round_trip(pod: &Value) {
    assert_eq!(
        &typed_round_trip(pod),
        pod,
        "the pod changed in a round trip through the typed Pod (a misspelled or unknown field?)"
    );
}
