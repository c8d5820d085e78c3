//! Building the supervisor itself: both platforms by default, `--platform`
//! to choose, the musl targets rust-toolchain.toml names, and what happens
//! on a toolchain that lacks them (a throwaway sysroot with the host's
//! standard library only).

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use openshell_testsupport::BoundedOutput;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{build_image, fails, ok, tempdir, verify_json};
use openshell_contract::build_result::BuildResult;
use openshell_contract::elf;
use openshell_contract::version::Libc;
use openshell_contract::{ARM64_STATIC_TARGET, BINARY_NAME, DEFAULT_STATIC_TARGET};
use openshell_testsupport::supervisor::{target_dir, workspace_root};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `build-image ARGS --json --quiet`, run from the workspace root as
/// `cargo run -p build-image` runs it.
fn build_in_workspace(args: &[&str]) -> BuildResult {
    let mut command = build_image();
    command
        .current_dir(workspace_root())
        .args(args)
        .args(["--json", "--quiet"]);
    let stdout = ok(command.bounded_output());
    serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("not a BuildResult ({err}): {stdout}"))
}

/// The release binary cargo built for `target`.
fn built_binary(target: &str) -> PathBuf {
    target_dir().join(target).join("release").join(BINARY_NAME)
}

/// Asserts that `path` is a static ELF for the OCI `architecture`, and
/// returns its sha256.
fn assert_static_elf_for(path: &Path, architecture: &str) -> String {
    let bytes = std::fs::read(path).unwrap();
    let info = elf::inspect(&bytes).unwrap();
    assert_eq!(
        Some(info.machine),
        elf::machine_for_oci_architecture(architecture),
        "{} is not an ELF for {architecture}",
        path.display()
    );
    assert_eq!(info.static_violations(), [], "{}", path.display());
    openshell_contract::digest::sha256_hex(&bytes)
}

/// The platforms the verify report lists, in index order.
fn reported_platforms(report: &serde_json::Value) -> Vec<String> {
    report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|platform| {
            platform["platform"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn by_default_the_index_has_a_static_musl_supervisor_for_amd64_and_arm64() {
    let result = build_in_workspace(&[]);
    assert_eq!(result.media_type, INDEX);
    let expected = [
        ("linux/amd64", DEFAULT_STATIC_TARGET, "amd64"),
        ("linux/arm64", ARM64_STATIC_TARGET, "arm64"),
    ];
    assert_eq!(result.platforms.len(), expected.len(), "{result:#?}");
    for (platform, (name, target, architecture)) in result.platforms.iter().zip(expected) {
        assert_eq!(platform.platform, name);
        assert_eq!(platform.target.as_deref(), Some(target));
        assert_eq!(platform.libc, Some(Libc::Musl));
        let sha256 = assert_static_elf_for(&built_binary(target), architecture);
        assert_eq!(platform.binary_sha256, sha256, "{name}");
    }

    let layout = workspace_root().join(openshell_contract::DEFAULT_OCI_LAYOUT_DIR);
    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(passed, "{report:#}");
    assert_eq!(report["index_digest"], result.digest);
    assert_eq!(reported_platforms(&report), ["linux/amd64", "linux/arm64"]);
    for (index, platform) in result.platforms.iter().enumerate() {
        let checked = &report["platforms"][index];
        assert_eq!(checked["manifest_digest"], platform.manifest_digest);
        assert_eq!(checked["binary_sha256"], platform.binary_sha256);
        // Config architecture, index platform and ELF machine agree.
        let platform_check = checked["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "platform")
            .unwrap();
        assert_eq!(platform_check["outcome"], "passed", "{report:#}");
    }
}

#[test]
fn platform_selects_one_and_accepts_lists_in_either_form() {
    let dir = tempdir();
    let arm64 = dir.path().join("arm64");
    let result = build_in_workspace(&[
        "--platform",
        "linux/arm64",
        "--output",
        arm64.to_str().unwrap(),
    ]);
    assert_eq!(result.media_type, MANIFEST, "one platform, one manifest");
    assert_eq!(result.platforms.len(), 1);
    assert_eq!(result.platforms[0].platform, "linux/arm64");
    assert_eq!(
        result.platforms[0].target.as_deref(),
        Some(ARM64_STATIC_TARGET)
    );
    let (passed, report) = verify_json(&format!("oci:{}:latest", arm64.display()), &[]);
    assert!(passed, "{report:#}");

    // A comma-separated list and a repeated flag build the same index.
    let listed = dir.path().join("listed");
    let repeated = dir.path().join("repeated");
    let one = build_in_workspace(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "--output",
        listed.to_str().unwrap(),
    ]);
    let two = build_in_workspace(&[
        "--platform",
        "linux/amd64",
        "--platform",
        "linux/arm64",
        "--output",
        repeated.to_str().unwrap(),
    ]);
    assert_eq!(one.media_type, INDEX);
    assert_eq!(one.digest, two.digest);
    let platforms: Vec<&str> = one.platforms.iter().map(|p| p.platform.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
}

#[test]
fn a_platform_without_a_supervisor_target_is_refused_before_any_work() {
    let dir = tempdir();
    let output_dir = dir.path().join("out");
    let stderr = fails(
        build_image()
            .current_dir(workspace_root())
            .args(["--platform", "linux/s390x", "--output"])
            .arg(&output_dir)
            .bounded_output(),
    );
    assert!(
        stderr.contains("not linux/s390x")
            && stderr.contains("linux/amd64, linux/arm64")
            && stderr.contains("--binary linux/s390x=PATH"),
        "{stderr}"
    );
    assert!(!output_dir.exists(), "nothing is written");

    let stderr = fails(
        build_image()
            .current_dir(workspace_root())
            .args(["--platform", "linux/arm64", "--platform", "linux/arm64/v8"])
            .arg("--output")
            .arg(&output_dir)
            .bounded_output(),
    );
    assert!(stderr.contains("linux/arm64/v8 is given twice"), "{stderr}");

    let stderr = fails(
        build_image()
            .args(["--platform", "linux/arm64", "--binary", "/bin/true"])
            .bounded_output(),
    );
    assert!(
        stderr.contains("--platform") && stderr.contains("--binary"),
        "{stderr}"
    );
}

/// A rustc that sees a sysroot holding the host's standard library only: a
/// toolchain on which no musl target was installed.
struct ToolchainWithoutMusl {
    _dir: tempfile::TempDir,
    rustc: PathBuf,
    sysroot: PathBuf,
    /// The real toolchain's sysroot, which has every target.
    real: PathBuf,
    /// A folder for a stand-in `rustup`, first on PATH.
    bin: PathBuf,
}

impl ToolchainWithoutMusl {
    fn new() -> Self {
        let real = Command::new("rustc")
            .current_dir(workspace_root())
            .args(["--print", "sysroot"])
            .bounded_output();
        let real = PathBuf::from(String::from_utf8(real.stdout).unwrap().trim());
        let host = Command::new(real.join("bin/rustc"))
            .arg("-vV")
            .bounded_output();
        let host = String::from_utf8(host.stdout)
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("host: ").map(str::to_string))
            .unwrap();
        let dir = tempdir();
        let sysroot = dir.path().join("sysroot");
        let rustlib = sysroot.join("lib/rustlib");
        std::fs::create_dir_all(&rustlib).unwrap();
        std::os::unix::fs::symlink(real.join("lib/rustlib").join(&host), rustlib.join(&host))
            .unwrap();
        assert!(!rustlib.join(DEFAULT_STATIC_TARGET).exists());
        let rustc = dir.path().join("rustc");
        std::fs::write(
            &rustc,
            format!(
                "#!/bin/sh\nexec '{}' --sysroot '{}' \"$@\"\n",
                real.join("bin/rustc").display(),
                sysroot.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&rustc, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let toolchain = Self {
            _dir: dir,
            rustc,
            sysroot,
            real,
            bin,
        };
        // By default rustup cannot help (offline, say).
        toolchain.rustup("echo \"error: could not download\" >&2; exit 1");
        toolchain
    }

    /// Makes the stand-in `rustup` run `script` (with its arguments in
    /// "$@"), logging every call to rustup.log beside it.
    fn rustup(&self, script: &str) {
        let path = self.bin.join("rustup");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$@\" >>'{}'\n{script}\n",
                self.bin.join("rustup.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// What the stand-in rustup was asked, one call a line.
    fn rustup_calls(&self) -> String {
        std::fs::read_to_string(self.bin.join("rustup.log")).unwrap_or_default()
    }

    /// build-image in the workspace, with cargo running this rustc.
    fn build_image(&self, args: &[&str]) -> Command {
        let mut command = build_image();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.bin.clone()];
        paths.extend(std::env::split_paths(&path));
        command
            .current_dir(workspace_root())
            .env("RUSTC", &self.rustc)
            .env("PATH", std::env::join_paths(paths).unwrap())
            .args(args);
        command
    }
}

#[test]
fn a_missing_target_is_asked_of_rustup_before_anything_else() {
    let toolchain = ToolchainWithoutMusl::new();
    // A rustup that installs by linking the real toolchain's target in.
    toolchain.rustup(&format!(
        "shift 2\nfor target in \"$@\"; do ln -s '{real}/lib/rustlib/'\"$target\" '{sysroot}/lib/rustlib/'\"$target\"; done",
        real = toolchain.real.display(),
        sysroot = toolchain.sysroot.display()
    ));
    let dir = tempdir();
    let layout = dir.path().join("layout");
    let output = toolchain
        .build_image(&["--platform", "linux/arm64", "--json", "--output"])
        .arg(&layout)
        .bounded_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = ok(output);
    assert_eq!(
        toolchain.rustup_calls().trim(),
        format!("target add {ARM64_STATIC_TARGET}")
    );
    assert!(
        stderr.contains(&format!("running rustup target add {ARM64_STATIC_TARGET}")),
        "{stderr}"
    );
    let result: openshell_contract::build_result::BuildResult =
        serde_json::from_str(&stdout).unwrap();
    assert_eq!(result.platforms[0].libc, Some(Libc::Musl), "{stdout}");
}

#[test]
fn without_the_arm64_target_the_build_stops_and_names_the_command() {
    let toolchain = ToolchainWithoutMusl::new();
    let dir = tempdir();
    let output_dir = dir.path().join("out");
    for args in [
        vec!["--platform", "linux/arm64"],
        // The default asks for arm64 too.
        vec![],
    ] {
        let mut args = args.clone();
        args.extend(["--output", output_dir.to_str().unwrap()]);
        let output = toolchain.build_image(&args).bounded_output();
        let stderr = fails(output);
        assert!(
            stderr.contains("cannot build the supervisor for linux/arm64")
                && stderr.contains(&format!("rustup target add {ARM64_STATIC_TARGET}"))
                && stderr.contains(&toolchain.sysroot.display().to_string())
                && stderr.contains("--platform linux/amd64"),
            "{args:?}: {stderr}"
        );
        assert!(!output_dir.exists(), "{args:?}: nothing is written");
    }
}

#[test]
fn without_the_amd64_musl_target_glibc_stands_in_loudly_and_the_result_says_so() {
    let toolchain = ToolchainWithoutMusl::new();
    let dir = tempdir();
    let layout = dir.path().join("layout");
    // --quiet silences progress, not the fallback warning.
    let output = toolchain
        .build_image(&["--platform", "linux/amd64", "--quiet", "--json", "--output"])
        .arg(&layout)
        .bounded_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = ok(output);
    assert!(
        stderr.contains(
            "build-image: warning: the Rust target x86_64-unknown-linux-musl is not installed"
        ) && stderr.contains(&format!("rustup target add {DEFAULT_STATIC_TARGET}"))
            && stderr.contains("+crt-static"),
        "{stderr}"
    );
    let result: BuildResult = serde_json::from_str(&stdout).unwrap();
    let platform = &result.platforms[0];
    assert_eq!(platform.platform, "linux/amd64");
    assert_eq!(platform.target.as_deref(), Some("x86_64-unknown-linux-gnu"));
    assert_eq!(platform.libc, Some(Libc::Gnu));
    // Still a static executable (a static-PIE), which verify accepts.
    let sha256 = assert_static_elf_for(&built_binary("x86_64-unknown-linux-gnu"), "amd64");
    assert_eq!(platform.binary_sha256, sha256);
    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &["--run"]);
    assert!(passed, "{report:#}");
}
