//! Several runs at once, and layouts changed behind build-image's back:
//! concurrent builds into one layout serialize on its lock and all succeed,
//! concurrent pushes all land, a reused blob is hashed before it is
//! trusted, and an unchanged image is not uploaded again.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{build_image, supervisor_copy, tempdir, verify_json};
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::Registry;
use openshell_testsupport::podman::{output_text, run as run_tool};
use sha2::Digest as _;

fn build_into(binary: &Path, layout: &Path, extra: &[&str]) -> std::process::Output {
    let mut command = build_image();
    command
        .arg("--binary")
        .arg(binary)
        .arg("--output")
        .arg(layout)
        .args(["--json"])
        .args(extra);
    run_tool(command)
}

/// A copy of the supervisor with 16 bytes `n` appended: still a valid
/// static ELF, with a sha256 of its own.
fn variant(dir: &Path, n: u8) -> std::path::PathBuf {
    let path = supervisor_copy(dir);
    let renamed = dir.join(format!("openshell-sandbox-{n}"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[n; 16]);
    std::fs::write(&renamed, bytes).unwrap();
    std::fs::remove_file(path).unwrap();
    renamed
}

#[test]
fn eight_concurrent_builds_into_one_layout_all_succeed() {
    let dir = tempdir();
    let layout = dir.path().join("shared-layout");
    let binaries: Vec<_> = (0..8).map(|n| variant(dir.path(), n)).collect();
    let outputs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = binaries
            .iter()
            .enumerate()
            .map(|(n, binary)| {
                let layout = layout.clone();
                scope.spawn(move || build_into(binary, &layout, &["--tag", &format!("run{n}")]))
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let mut digests = Vec::new();
    for output in &outputs {
        assert!(output.status.success(), "{}", output_text(output));
        let result: BuildResult = serde_json::from_slice(&output.stdout).unwrap();
        digests.push(result.digest);
    }
    // Each run's image is in the layout under its own tag, and verifies.
    for (n, digest) in digests.iter().enumerate() {
        let source = format!("oci:{}:run{n}", layout.display());
        let (passed, report) = verify_json(&source, &[]);
        assert!(passed, "{source}: {report:#}");
        assert_eq!(&report["platforms"][0]["manifest_digest"], digest);
    }
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = walk(&layout)
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(".openshell-tmp-"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_tampered_reused_blob_is_rebuilt_and_never_published() {
    let test = "a_tampered_reused_blob_is_rebuilt_and_never_published";
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let first = build_into(&binary, &layout, &[]);
    assert!(first.status.success(), "{}", output_text(&first));
    let result: BuildResult = serde_json::from_slice(&first.stdout).unwrap();
    let layer_digest = &result.platforms[0].layer_digest;
    let blob = layout
        .join("blobs/sha256")
        .join(layer_digest.trim_start_matches("sha256:"));
    let good = std::fs::read(&blob).unwrap();

    // Same size, one byte changed: a size check alone would keep it.
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0xff;
    std::fs::write(&blob, &bad).unwrap();

    let Some(registry) = Registry::start(test) else {
        return;
    };
    let reference = format!("{}/openshell/supervisor:tamper", registry.host());
    let auth = registry.auth_file();
    let second = build_into(
        &binary,
        &layout,
        &[
            "--push",
            &reference,
            "--plain-http",
            "--authfile",
            auth.to_str().unwrap(),
        ],
    );
    assert!(second.status.success(), "{}", output_text(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("is not what an earlier run wrote"),
        "{stderr}"
    );
    let rebuilt: BuildResult = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(rebuilt.digest, result.digest);
    // The layout holds the right bytes again.
    let now = std::fs::read(&blob).unwrap();
    assert_eq!(
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&now))),
        *layer_digest
    );
    // And the registry got the right bytes: it verifies from there.
    let (passed, report) = verify_json(
        &format!("docker://{}", rebuilt.pushed()[0]),
        &["--plain-http", "--authfile", auth.to_str().unwrap()],
    );
    assert!(passed, "{report:#}\n{}", registry.log());
}

#[test]
fn a_second_push_of_an_unchanged_image_uploads_no_blob() {
    let test = "a_second_push_of_an_unchanged_image_uploads_no_blob";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let reference = format!("{}/openshell/supervisor:again", registry.host());
    let auth = registry.auth_file();
    let push = || {
        build_into(
            &binary,
            &layout,
            &[
                "--push",
                &reference,
                "--plain-http",
                "--authfile",
                auth.to_str().unwrap(),
            ],
        )
    };
    let first = push();
    assert!(first.status.success(), "{}", output_text(&first));
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("0 blob(s) already there"),
        "{}",
        output_text(&first)
    );
    let second = push();
    assert!(second.status.success(), "{}", output_text(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    // The layer and config, and the SBOM and its empty config.
    assert!(
        stderr.contains("0 B sent, 4 blob(s) already there"),
        "{stderr}"
    );
}

#[test]
fn eight_concurrent_pushes_to_one_registry_all_succeed() {
    let test = "eight_concurrent_pushes_to_one_registry_all_succeed";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempdir();
    let auth = registry.auth_file();
    let binaries: Vec<_> = (0..8).map(|n| variant(dir.path(), n)).collect();
    let outputs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = binaries
            .iter()
            .enumerate()
            .map(|(n, binary)| {
                let layout = dir.path().join(format!("layout-{n}"));
                let reference = format!("{}/openshell/supervisor:push{n}", registry.host());
                let auth = auth.clone();
                scope.spawn(move || {
                    build_into(
                        binary,
                        &layout,
                        &[
                            "--push",
                            &reference,
                            "--plain-http",
                            "--authfile",
                            auth.to_str().unwrap(),
                        ],
                    )
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    for (n, output) in outputs.iter().enumerate() {
        assert!(
            output.status.success(),
            "push {n}: {}\n{}",
            output_text(output),
            registry.log()
        );
        let result: BuildResult = serde_json::from_slice(&output.stdout).unwrap();
        let (passed, report) = verify_json(
            &format!("docker://{}", result.pushed()[0]),
            &["--plain-http", "--authfile", auth.to_str().unwrap()],
        );
        assert!(passed, "push {n}: {report:#}");
    }
}
