//! Registry support on first use.
//!
//! The registry client (HTTP, TLS on ring, the async runtime) is about half
//! of what a fresh clone's `cargo run -p build-image` would compile, and a
//! run that writes an OCI layout never uses it. So it is the `registry`
//! feature, off by default, and a build-image compiled without it that is
//! asked for a registry (`--push`, `--to docker://`, `verify docker://`)
//! does what the user would do next: it compiles build-image with the
//! feature from the workspace it was compiled in (cargo keeps both builds,
//! so switching back costs no compiling) and replaces itself with the
//! result, given the same arguments. The working folder, standard input
//! (`--password-stdin`) and the environment (`CARGO_TARGET_DIR`) carry
//! over. cargo runs in the workspace, so rustup picks the toolchain its
//! rust-toolchain.toml names wherever build-image was started.

use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether this build-image was compiled with registry support.
pub const HAS_REGISTRY: bool = cfg!(feature = "registry");

/// The cargo feature that compiles registry support in.
pub const REGISTRY_FEATURE: &str = "registry";

/// Set for the relaunched build-image: a build that still lacks registry
/// support then fails instead of relaunching again.
pub const RELAUNCHED_ENV: &str = "OPENSHELL_BUILD_IMAGE_RELAUNCHED";

/// This package's name, as `cargo run -p` takes it.
const PACKAGE: &str = env!("CARGO_PKG_NAME");

/// Why build-image could not relaunch itself with registry support.
#[derive(Debug, thiserror::Error)]
pub enum RelaunchError {
    /// The relaunched build still had no registry support.
    #[error(
        "{wanted} needs registry support, and this build-image was started by a relaunch that should have had it ({RELAUNCHED_ENV} is set); build it yourself with: {command}"
    )]
    StillMissing {
        /// The reference that needs a registry.
        wanted: String,
        /// The command that builds and runs it with the feature.
        command: String,
    },
    /// The source this binary was compiled from is not there any more.
    #[error(
        "{wanted} needs registry support, which this build-image was compiled without (the `registry` feature), and its workspace {workspace} is gone, so it cannot be compiled in; build build-image with: cargo build -p {PACKAGE} --features {REGISTRY_FEATURE}"
    )]
    NoWorkspace {
        /// The reference that needs a registry.
        wanted: String,
        /// Where the source was.
        workspace: PathBuf,
    },
    /// cargo could not be started, or failed.
    #[error(
        "{wanted} needs registry support, which this build-image was compiled without (the `registry` feature), and compiling it in failed: {reason}; run it yourself: {command}"
    )]
    Build {
        /// The reference that needs a registry.
        wanted: String,
        /// The command to run instead.
        command: String,
        /// What went wrong.
        reason: String,
    },
    /// The build with registry support could not be started.
    #[error("could not run {executable}, build-image compiled with registry support: {source}")]
    Exec {
        /// The executable cargo built.
        executable: PathBuf,
        /// Why it could not run.
        source: std::io::Error,
    },
}

/// The cargo command that builds build-image with registry support from
/// `workspace`, reporting the executable on stdout as JSON messages (and
/// its progress, unless `quiet`, and its diagnostics on stderr).
pub fn build_command(cargo: &OsString, workspace: &Path, release: bool, quiet: bool) -> Command {
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "-p", PACKAGE, "--features", REGISTRY_FEATURE])
        .args(["--bin", PACKAGE, "--message-format=json-render-diagnostics"]);
    if release {
        command.arg("--release");
    }
    if quiet {
        command.arg("--quiet");
    }
    command
}

/// The executable of build-image among cargo's JSON messages.
pub fn executable_in_messages(messages: impl BufRead) -> Option<PathBuf> {
    let mut found = None;
    for line in messages.lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" && message["target"]["name"] == PACKAGE {
            if let Some(executable) = message["executable"].as_str() {
                found = Some(PathBuf::from(executable));
            }
        }
    }
    found
}

/// The command a user would type in the workspace to do the same (for
/// messages).
pub fn shown(release: bool, args: &[OsString]) -> String {
    let mut text = format!("cargo run -p {PACKAGE} --features {REGISTRY_FEATURE}");
    if release {
        text.push_str(" --release");
    }
    text.push_str(" --");
    for arg in args {
        text.push(' ');
        text.push_str(&shell_word(&arg.to_string_lossy()));
    }
    text
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Replaces this process with build-image built with registry support,
/// given the same `args` (without the program name). `wanted` names what
/// needs the registry, for messages; `announce` is told the command before
/// it runs; `quiet` keeps cargo's progress off stderr (its errors stay).
/// Returns only on failure.
pub fn relaunch_with_registry(
    wanted: &str,
    args: &[OsString],
    quiet: bool,
    announce: impl FnOnce(&str),
) -> RelaunchError {
    // A release build-image relaunches a release build.
    let release = !cfg!(debug_assertions);
    let command_text = shown(release, args);
    if std::env::var_os(RELAUNCHED_ENV).is_some() {
        return RelaunchError::StillMissing {
            wanted: wanted.to_string(),
            command: command_text,
        };
    }
    let package_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = package_dir.parent().unwrap_or(package_dir);
    if !package_dir.join("Cargo.toml").is_file() {
        return RelaunchError::NoWorkspace {
            wanted: wanted.to_string(),
            workspace: workspace.to_path_buf(),
        };
    }
    let build_failed = |reason: String| RelaunchError::Build {
        wanted: wanted.to_string(),
        command: command_text.clone(),
        reason,
    };
    // `cargo run` sets CARGO to itself for the program it runs.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    announce(&command_text);
    let mut build = build_command(&cargo, workspace, release, quiet);
    let child = build
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            return build_failed(format!(
                "could not run {}: {err}",
                Path::new(&cargo).display()
            ));
        }
    };
    let executable = child
        .stdout
        .take()
        .and_then(|stdout| executable_in_messages(std::io::BufReader::new(stdout)));
    match child.wait() {
        Ok(status) if status.success() => {}
        Ok(status) => {
            return build_failed(format!("cargo build {status} (its messages are above)"));
        }
        Err(err) => return build_failed(format!("could not wait for cargo: {err}")),
    }
    let Some(executable) = executable else {
        return build_failed("cargo reported no build-image executable".into());
    };
    let mut command = Command::new(&executable);
    command.args(args).env(RELAUNCHED_ENV, "1");
    let source = exec(&mut command);
    RelaunchError::Exec { executable, source }
}

#[cfg(unix)]
fn exec(command: &mut Command) -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    command.exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn cargo_builds_this_package_with_the_feature_in_the_workspace() {
        let command = build_command(&"cargo".into(), Path::new("/ws"), false, false);
        assert_eq!(command.get_current_dir(), Some(Path::new("/ws")));
        let got: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            got,
            [
                "build",
                "-p",
                "build-image",
                "--features",
                "registry",
                "--bin",
                "build-image",
                "--message-format=json-render-diagnostics"
            ]
        );
        let flags = |release, quiet| -> Vec<String> {
            build_command(&"cargo".into(), Path::new("/ws"), release, quiet)
                .get_args()
                .skip(got.len())
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(flags(true, false), ["--release"]);
        assert_eq!(flags(false, true), ["--quiet"]);
        assert_eq!(flags(true, true), ["--release", "--quiet"]);
    }

    #[test]
    fn the_executable_is_read_from_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"openshell-registry"},"executable":null}"#,
            "\n",
            "not json\n",
            r#"{"reason":"compiler-artifact","target":{"name":"build-image"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"build-image"},"executable":"/t/debug/build-image"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        assert_eq!(
            executable_in_messages(messages.as_bytes()),
            Some(PathBuf::from("/t/debug/build-image"))
        );
        assert_eq!(
            executable_in_messages(&br#"{"reason":"build-finished","success":true}"#[..]),
            None
        );
    }

    #[test]
    fn the_shown_command_quotes_what_a_shell_would_split() {
        assert_eq!(
            shown(false, &os(&["verify", "docker://h:5000/r@sha256:ab"])),
            "cargo run -p build-image --features registry -- verify docker://h:5000/r@sha256:ab"
        );
        assert_eq!(
            shown(true, &os(&["--label", "a=b c", "--annotation", "it's"])),
            r"cargo run -p build-image --features registry --release -- --label 'a=b c' --annotation 'it'\''s'"
        );
        assert_eq!(shell_word(""), "''");
    }
}
