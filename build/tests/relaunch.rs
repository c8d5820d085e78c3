//! build-image as a fresh clone's `cargo run -p build-image` builds it:
//! without the `registry` feature, so without an HTTP, TLS or async stack.
//! It writes layouts by itself; asked for a registry, it compiles the
//! feature in through cargo and runs again with the same arguments.
//!
//! The build without the feature, and the one with it that the relaunch
//! asks cargo for, live in a target folder of their own
//! (testsupport::lean_target_dir), which every command here is given as
//! CARGO_TARGET_DIR. The tests of this file run one at a time
//! (.config/nextest.toml): two relaunches at once would both have cargo
//! replace the same output file.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{fails, ok, output_with_stdin, supervisor_copy, tempdir, verify_json};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::podman::run;
use openshell_testsupport::supervisor::workspace_root;
use openshell_testsupport::{Registry, lean_build_image, lean_target_dir};

/// The registry-less build-image, set up to relaunch within its own
/// target folder.
fn lean() -> Command {
    let mut command = Command::new(lean_build_image());
    command
        .env("CARGO_TARGET_DIR", lean_target_dir())
        .env_remove(build_image::relaunch::RELAUNCHED_ENV)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    command
}

/// Runs the registry-less build-image, set up by `args`, within
/// testsupport's deadline.
fn lean_run(args: impl FnOnce(&mut Command) -> &mut Command) -> Output {
    let mut command = lean();
    args(&mut command);
    run(command)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The crates of build-image's build (normal and build dependencies), as
/// `cargo tree` resolves them for `cargo run -p build-image [FEATURES]`.
fn crates_built(features: &[&str]) -> Vec<String> {
    let mut tree = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    tree.current_dir(workspace_root())
        .args(["tree", "--locked", "--offline", "-p", "build-image"])
        .args(["-e", "normal,build", "--prefix", "none", "--format", "{p}"])
        .args(features);
    ok(run(tree))
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

const REGISTRY_STACK: [&str; 7] = [
    "oci-client",
    "reqwest",
    "hyper",
    "rustls",
    "ring",
    "tokio",
    "openshell-registry",
];

#[test]
fn the_default_build_compiles_no_registry_client() {
    let default = crates_built(&[]);
    let with_registry = crates_built(&["--features", "registry"]);
    for name in REGISTRY_STACK {
        let in_default = default.iter().any(|c| c == name);
        let in_registry = with_registry.iter().any(|c| c == name);
        // openshell-registry itself stays (references and flags parse
        // without the client); its client dependencies go.
        if name == "openshell-registry" {
            assert!(in_default && in_registry, "{name}");
        } else {
            assert!(
                !in_default,
                "{name} is compiled by `cargo run -p build-image`"
            );
            assert!(in_registry, "{name} is missing with --features registry");
        }
    }
    assert!(
        default.len() * 3 < with_registry.len() * 2,
        "the default build has {} crates, the registry build {}",
        default.len(),
        with_registry.len()
    );
}

#[test]
fn a_build_without_registry_support_writes_a_layout_by_itself() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let output = lean_run(|command| {
        command.args(["--binary", binary.to_str().unwrap()]).args([
            "--output",
            layout.to_str().unwrap(),
            "--json",
        ])
    });
    let errors = stderr(&output);
    let result: BuildResult = serde_json::from_str(&ok(output)).unwrap();
    assert!(!errors.contains("registry support"), "{errors}");
    let (passed, report) = verify_json(&format!("oci:{}", layout.display()), &[]);
    assert!(passed, "{report:#}");
    assert_eq!(report["platforms"][0]["manifest_digest"], result.digest);

    let help = ok(lean_run(|command| command.arg("--help")));
    assert!(help.contains("--features registry"), "{help}");
}

#[test]
fn verifying_a_registry_reference_relaunches_with_registry_support() {
    let output = lean_run(|command| {
        command
            .args(["verify", "docker://127.0.0.1:1/openshell/supervisor:v1"])
            .args(["--plain-http", "--registry-attempts", "1"])
            .args(["--registry-connect-timeout", "2s"])
    });
    let errors = fails(output);
    assert!(
        errors.contains(
            "docker://127.0.0.1:1/openshell/supervisor:v1 needs registry support, which this build leaves out"
        ),
        "{errors}"
    );
    assert!(
        errors.contains(
            "cargo run -p build-image --features registry -- verify docker://127.0.0.1:1/openshell/supervisor:v1 --plain-http --registry-attempts 1 --registry-connect-timeout 2s"
        ),
        "{errors}"
    );
    // Only the registry client knows this: the relaunched build ran and
    // tried the (closed) port.
    assert!(
        errors.contains("could not reach registry 127.0.0.1:1"),
        "{errors}"
    );
}

#[test]
fn a_quiet_relaunch_prints_only_the_outcome() {
    let output = lean_run(|command| {
        command
            .args(["verify", "--quiet", "docker://127.0.0.1:1/x:v1"])
            .args(["--plain-http", "--registry-attempts", "1"])
    });
    let errors = fails(output);
    assert!(
        errors.contains("could not reach registry 127.0.0.1:1"),
        "{errors}"
    );
    for noise in ["needs registry support", "Finished", "Compiling"] {
        assert!(!errors.contains(noise), "{noise:?} under --quiet: {errors}");
    }
}

#[test]
fn a_push_through_a_build_without_registry_support_reaches_the_registry() {
    let test = "a_push_through_a_build_without_registry_support_reaches_the_registry";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let reference = format!("{}/openshell/supervisor:lean", registry.host());
    let mut command = lean();
    command
        .args(["--binary", binary.to_str().unwrap()])
        .args(["--output", layout.to_str().unwrap()])
        .args(["--push", &reference, "--plain-http"])
        .args([
            "--username",
            registry.username(),
            "--password-stdin",
            "--json",
        ]);
    // The password goes to the relaunched build, which reads it.
    let output = output_with_stdin(command, &format!("{}\n", registry.password()));
    let errors = stderr(&output);
    let result: BuildResult = serde_json::from_str(&ok(output)).unwrap();
    assert!(errors.contains("needs registry support"), "{errors}");
    let repository = reference.rsplit_once(':').unwrap().0;
    assert_eq!(result.pushed, [format!("{repository}@{}", result.digest)]);
    let auth = registry.auth_file();
    let (passed, report) = verify_json(
        &format!("docker://{}", result.pushed[0]),
        &["--plain-http", "--authfile", auth.to_str().unwrap()],
    );
    assert!(passed, "{report:#}\n{}", registry.log());
}

#[test]
fn a_relaunched_build_that_still_lacks_registry_support_stops() {
    let output = lean_run(|command| {
        command
            .env(build_image::relaunch::RELAUNCHED_ENV, "1")
            .args(["verify", "docker://127.0.0.1:1/x:v1", "--plain-http"])
    });
    let errors = fails(output);
    assert!(
        errors.contains("started by a relaunch that should have had it"),
        "{errors}"
    );
    assert!(
        errors.contains(
            "build it yourself with: cargo run -p build-image --features registry -- verify docker://127.0.0.1:1/x:v1 --plain-http"
        ),
        "{errors}"
    );
    assert!(!errors.contains("Compiling"), "{errors}");
}

#[test]
fn a_cargo_that_cannot_run_is_named_with_the_command_to_use() {
    let missing = lean_run(|command| {
        command
            .env("CARGO", "/nonexistent/cargo")
            .args(["verify", "docker://127.0.0.1:1/x:v1"])
    });
    let errors = fails(missing);
    assert!(
        errors.contains("compiling it in failed: could not run /nonexistent/cargo"),
        "{errors}"
    );
    assert!(
        errors.contains(
            "run it yourself: cargo run -p build-image --features registry -- verify docker://127.0.0.1:1/x:v1"
        ),
        "{errors}"
    );

    let failing = lean_run(|command| {
        command.env("CARGO", "/bin/false").args([
            "--push",
            "127.0.0.1:1/x:v1",
            "--output",
            "/nonexistent/never",
        ])
    });
    let errors = fails(failing);
    assert!(
        errors.contains("compiling it in failed: cargo build exit status: 1"),
        "{errors}"
    );
    // Nothing was written before the relaunch was tried.
    assert!(!std::path::Path::new("/nonexistent/never").exists());
}
