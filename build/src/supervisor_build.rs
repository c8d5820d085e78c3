//! Building the static supervisor with cargo, for the no-argument run.
//!
//! One `cargo build --release` with a `--target` per platform, so cargo
//! shares the host build scripts and proc macros between the targets and
//! keeps both cores busy. Each platform is built for its musl target
//! (static by default). `rust-toolchain.toml` names those targets so that
//! rustup installs them; when one is still missing, the build says so with
//! the command that installs it: on the host's own architecture it falls
//! back, loudly, to glibc with `+crt-static`, and the build result records
//! the libc; for another architecture it stops.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use openshell_contract::platform::{Platform, host_architecture};
use openshell_contract::version::Libc;
use openshell_contract::{BINARY_NAME, PLATFORM_FLAG};

use crate::platform::{UnsupportedPlatform, supervisor_target};
use crate::progress::Progress;

use openshell_contract::sbom::SUPERVISOR_PACKAGE;

/// Why the supervisor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorBuildError {
    /// A platform build-image has no target for.
    #[error(transparent)]
    Unsupported(#[from] UnsupportedPlatform),
    /// The same platform was asked for twice.
    #[error(
        "platform {platform} is given twice ({PLATFORM_FLAG} {platform}); name each platform once"
    )]
    Duplicate {
        /// The platform.
        platform: String,
    },
    /// A platform's musl target is not installed and nothing can stand in.
    #[error(
        "cannot build the supervisor for {platform}: the Rust target {target} is not installed in {sysroot}. Install it with\n    {command}\n(rust-toolchain.toml names it; rustup installs it by itself unless RUSTUP_AUTO_INSTALL=0), or build other platforms only, e.g. {PLATFORM_FLAG} {host_platform}"
    )]
    TargetMissing {
        /// The platform.
        platform: String,
        /// The missing target.
        target: String,
        /// The toolchain's sysroot that lacks it.
        sysroot: String,
        /// The command that installs it.
        command: String,
        /// The platform of this machine, which may still be built.
        host_platform: String,
    },
    /// No workspace found.
    #[error(
        "could not find the OpenShell workspace (a Cargo.toml with [workspace] and a supervisor/ folder) from {start}: run build-image inside the repository, or pass --binary PATH"
    )]
    NoWorkspace {
        /// Where the search started.
        start: PathBuf,
    },
    /// cargo could not be started.
    #[error("could not run {cargo}: {source}")]
    Spawn {
        /// The cargo program.
        cargo: String,
        /// Why.
        source: std::io::Error,
    },
    /// cargo failed.
    #[error("`{command}` failed with {status}; its errors are above")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// cargo succeeded but the binary is not where expected.
    #[error("cargo finished but {path} does not exist")]
    Missing {
        /// Where it should be.
        path: PathBuf,
    },
}

fn is_workspace_root(dir: &Path) -> bool {
    dir.join("supervisor").join("Cargo.toml").is_file()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
}

/// The workspace root: the first folder up from `start` that is the
/// OpenShell workspace, else the one this program was compiled in.
pub fn workspace_root(start: &Path) -> Result<PathBuf, SupervisorBuildError> {
    if let Some(found) = start.ancestors().find(|dir| is_workspace_root(dir)) {
        return Ok(found.to_path_buf());
    }
    let compiled_in = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    match compiled_in {
        Some(dir) if is_workspace_root(dir) => Ok(dir.to_path_buf()),
        _ => Err(SupervisorBuildError::NoWorkspace {
            start: start.to_path_buf(),
        }),
    }
}

/// The sysroot of the toolchain cargo will use (`$RUSTC --print sysroot`).
fn sysroot() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// Which targets the toolchain has the standard library for.
pub trait InstalledTargets {
    /// Whether `target` is installed.
    fn has(&self, target: &str) -> bool;
    /// Where the toolchain lives, for messages.
    fn describe(&self) -> String;
}

/// The targets of a toolchain's sysroot (`lib/rustlib/<target>/lib`).
#[derive(Debug, Clone)]
pub struct Sysroot(pub Option<PathBuf>);

impl Sysroot {
    /// The sysroot of the rustc that cargo runs (`$RUSTC`, else `rustc`).
    pub fn of_rustc() -> Self {
        Self(sysroot())
    }
}

impl InstalledTargets for Sysroot {
    fn has(&self, target: &str) -> bool {
        self.0.as_ref().is_some_and(|sysroot| {
            sysroot
                .join("lib/rustlib")
                .join(target)
                .join("lib")
                .is_dir()
        })
    }

    fn describe(&self) -> String {
        match &self.0 {
            Some(path) => format!("the toolchain at {}", path.display()),
            None => "the toolchain (`rustc --print sysroot` failed)".into(),
        }
    }
}

/// What one platform is built as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetChoice {
    /// The platform.
    pub platform: Platform,
    /// The Rust target triple.
    pub target: &'static str,
    /// Its C library.
    pub libc: Libc,
    /// Set when the musl target is missing and glibc stands in: the
    /// warning to print.
    pub fallback: Option<String>,
}

/// Picks the target of each platform: its musl target when installed; the
/// glibc target with `+crt-static` when the musl one is missing and the
/// platform is this machine's (its glibc target is the host's, always
/// there); else an error naming the command that installs the target.
pub fn choose_targets(
    platforms: &[Platform],
    installed: &dyn InstalledTargets,
    host_architecture: &str,
) -> Result<Vec<TargetChoice>, SupervisorBuildError> {
    let mut choices: Vec<TargetChoice> = Vec::new();
    for platform in platforms {
        let target = supervisor_target(platform)?;
        if choices
            .iter()
            .any(|choice| choice.target == target.musl_target || choice.target == target.gnu_target)
        {
            return Err(SupervisorBuildError::Duplicate {
                platform: platform.to_string(),
            });
        }
        let command = format!("rustup target add {}", target.musl_target);
        if installed.has(target.musl_target) {
            choices.push(TargetChoice {
                platform: platform.clone(),
                target: target.musl_target,
                libc: Libc::Musl,
                fallback: None,
            });
        } else if target.oci == host_architecture && installed.has(target.gnu_target) {
            choices.push(TargetChoice {
                platform: platform.clone(),
                target: target.gnu_target,
                libc: Libc::Gnu,
                fallback: Some(format!(
                    "the Rust target {musl} is not installed in {toolchain}, so the {platform} supervisor is built for {gnu} with -C target-feature=+crt-static instead: a static glibc binary, not the documented musl one (the build result says libc \"gnu\"). For the musl binary run\n    {command}\nand build again.",
                    musl = target.musl_target,
                    gnu = target.gnu_target,
                    toolchain = installed.describe(),
                )),
            });
        } else {
            return Err(SupervisorBuildError::TargetMissing {
                platform: platform.to_string(),
                target: target.musl_target.to_string(),
                sysroot: installed.describe(),
                command,
                host_platform: format!("linux/{host_architecture}"),
            });
        }
    }
    Ok(choices)
}

/// A supervisor binary cargo built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltSupervisor {
    /// The platform it is for.
    pub platform: Platform,
    /// The Rust target it was built for.
    pub target: String,
    /// Its C library.
    pub libc: Libc,
    /// The executable.
    pub path: PathBuf,
}

/// The cargo command that builds `choices`, and its printable form.
fn cargo_command(cargo: &str, workspace: &Path, choices: &[TargetChoice]) -> (Command, String) {
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args([
        "build",
        "--release",
        "--package",
        SUPERVISOR_PACKAGE,
        "--bin",
        BINARY_NAME,
    ]);
    let mut line = format!("{cargo} build --release --package {SUPERVISOR_PACKAGE}");
    for choice in choices {
        command.args(["--target", choice.target]);
        line.push_str(" --target ");
        line.push_str(choice.target);
    }
    if choices.iter().any(|choice| choice.libc == Libc::Gnu) {
        // With --target given, RUSTFLAGS reach the target's crates only,
        // not build scripts; musl targets link statically anyway.
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        flags.push_str(" -C target-feature=+crt-static");
        command.env("RUSTFLAGS", flags.trim());
        line = format!("RUSTFLAGS=\"{}\" {line}", flags.trim());
    }
    (command, line)
}

/// How long `rustup target add` may take (a download of a few tens of MiB).
const RUSTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Asks rustup for the musl targets of `platforms` that the toolchain lacks,
/// so that the first `cargo run -p build-image` on a fresh machine builds
/// the documented static binaries even where rustup does not install what
/// rust-toolchain.toml names by itself (RUSTUP_AUTO_INSTALL=0). What rustup
/// cannot add (offline, no rustup) is left to [`choose_targets`], which
/// falls back loudly or stops with the command.
fn install_missing_targets(
    platforms: &[Platform],
    installed: &dyn InstalledTargets,
    progress: &Progress,
) {
    let missing: Vec<&'static str> = platforms
        .iter()
        .filter_map(|platform| supervisor_target(platform).ok())
        .map(|target| target.musl_target)
        .filter(|musl| !installed.has(musl))
        .collect();
    if missing.is_empty() {
        return;
    }
    let line = format!("rustup target add {}", missing.join(" "));
    // Said even with --quiet: the toolchain is changed.
    eprintln!(
        "build-image: the Rust target(s) {} are missing; running {line}",
        missing.join(", ")
    );
    let child = Command::new("rustup")
        .args(["target", "add"])
        .args(&missing)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        progress.note("rustup is not on PATH; the targets stay missing");
        return;
    };
    let deadline = std::time::Instant::now() + RUSTUP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                eprintln!("build-image: {line} failed ({status})");
                return;
            }
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!(
                    "build-image: {line} did not finish within {} s; stopped it",
                    RUSTUP_TIMEOUT.as_secs()
                );
                return;
            }
        }
    }
}

/// Builds the release supervisor, static, for each of `platforms` (in one
/// cargo run) and returns the binaries in the same order.
pub fn build_supervisors(
    workspace: &Path,
    platforms: &[Platform],
    progress: &Progress,
) -> Result<Vec<BuiltSupervisor>, SupervisorBuildError> {
    install_missing_targets(platforms, &Sysroot::of_rustc(), progress);
    let choices = choose_targets(platforms, &Sysroot::of_rustc(), host_architecture())?;
    for choice in &choices {
        if let Some(warning) = &choice.fallback {
            // Printed even with --quiet: a glibc fallback is never silent.
            eprintln!("build-image: warning: {warning}");
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let (mut command, line) = cargo_command(&cargo, workspace, &choices);
    // cargo's own progress goes to our stderr; our stdout stays for results.
    if let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() {
        command.stdout(Stdio::from(stderr));
    }
    command.stdin(Stdio::null());
    let step = progress.step(format!("building the supervisor: {line}"));
    let status = command
        .status()
        .map_err(|source| SupervisorBuildError::Spawn {
            cargo: cargo.clone(),
            source,
        })?;
    if !status.success() {
        return Err(SupervisorBuildError::Failed {
            command: line,
            status,
        });
    }
    let mut built = Vec::new();
    for choice in choices {
        let path = openshell_contract::cargo::target_dir(workspace)
            .join(choice.target)
            .join("release")
            .join(BINARY_NAME);
        if !path.is_file() {
            return Err(SupervisorBuildError::Missing { path });
        }
        built.push(BuiltSupervisor {
            platform: choice.platform,
            target: choice.target.to_string(),
            libc: choice.libc,
            path,
        });
    }
    step.done(
        built
            .iter()
            .map(|binary| binary.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    Ok(built)
}

/// The commit the workspace is at (`git rev-parse HEAD`), if git knows it.
pub fn git_revision(workspace: &Path) -> Option<String> {
    let output = Command::new("git")
        .current_dir(workspace)
        .args(["rev-parse", "HEAD"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let revision = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toolchain with exactly these targets.
    struct Targets(&'static [&'static str]);

    impl InstalledTargets for Targets {
        fn has(&self, target: &str) -> bool {
            self.0.contains(&target)
        }
        fn describe(&self) -> String {
            "the test toolchain".into()
        }
    }

    const GNU_HOST: &str = "x86_64-unknown-linux-gnu";
    const AMD64_MUSL: &str = "x86_64-unknown-linux-musl";
    const ARM64_MUSL: &str = "aarch64-unknown-linux-musl";

    #[test]
    fn every_platform_gets_its_musl_target_when_installed() {
        let choices = choose_targets(
            &Platform::defaults(),
            &Targets(&[GNU_HOST, AMD64_MUSL, ARM64_MUSL]),
            "amd64",
        )
        .unwrap();
        let picked: Vec<(String, &str, Libc, bool)> = choices
            .iter()
            .map(|choice| {
                (
                    choice.platform.to_string(),
                    choice.target,
                    choice.libc,
                    choice.fallback.is_some(),
                )
            })
            .collect();
        assert_eq!(
            picked,
            [
                ("linux/amd64".to_string(), AMD64_MUSL, Libc::Musl, false),
                ("linux/arm64".to_string(), ARM64_MUSL, Libc::Musl, false),
            ]
        );
        let (command, line) = cargo_command("cargo", Path::new("/w"), &choices);
        assert_eq!(
            line,
            format!(
                "cargo build --release --package openshell-sandbox --target {AMD64_MUSL} --target {ARM64_MUSL}"
            )
        );
        assert!(command.get_envs().all(|(name, _)| name != "RUSTFLAGS"));
    }

    #[test]
    fn the_host_falls_back_to_static_glibc_loudly() {
        let choices = choose_targets(
            &["linux/amd64".parse().unwrap()],
            &Targets(&[GNU_HOST, ARM64_MUSL]),
            "amd64",
        )
        .unwrap();
        assert_eq!(choices[0].target, GNU_HOST);
        assert_eq!(choices[0].libc, Libc::Gnu);
        let warning = choices[0].fallback.as_deref().unwrap();
        assert!(
            warning.contains(&format!("rustup target add {AMD64_MUSL}"))
                && warning.contains("+crt-static")
                && warning.contains("libc \"gnu\""),
            "{warning}"
        );
        let (command, line) = cargo_command("cargo", Path::new("/w"), &choices);
        assert!(line.contains("-C target-feature=+crt-static"), "{line}");
        assert!(line.ends_with(&format!("--target {GNU_HOST}")), "{line}");
        let flags = command
            .get_envs()
            .find(|(name, _)| *name == "RUSTFLAGS")
            .and_then(|(_, value)| value)
            .unwrap();
        assert!(
            flags
                .to_string_lossy()
                .ends_with("-C target-feature=+crt-static")
        );
    }

    #[test]
    fn another_architecture_without_its_target_stops_with_the_command() {
        let err = choose_targets(
            &Platform::defaults(),
            &Targets(&[GNU_HOST, AMD64_MUSL]),
            "amd64",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cannot build the supervisor for linux/arm64")
                && err.contains(&format!("rustup target add {ARM64_MUSL}"))
                && err.contains("--platform linux/amd64"),
            "{err}"
        );
    }

    #[test]
    fn a_platform_twice_or_unknown_is_refused() {
        let twice = [
            "linux/arm64".parse().unwrap(),
            "linux/arm64/v8".parse().unwrap(),
        ];
        let err = choose_targets(&twice, &Targets(&[ARM64_MUSL]), "amd64")
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux/arm64/v8 is given twice"), "{err}");
        let err = choose_targets(&["linux/riscv64".parse().unwrap()], &Targets(&[]), "amd64")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--binary linux/riscv64=PATH"), "{err}");
    }
}
