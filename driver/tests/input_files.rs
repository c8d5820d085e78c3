//! The driver's input files, as an attacker or a mistake would give them: a
//! FIFO, `/dev/zero`, a sparse file of gigabytes, a folder, deep nesting.
//! Each is refused at once with an error naming the file; none hangs or
//! eats memory.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openshell_driver_kubernetes::input::{MAX_YAML_DEPTH, parse_yaml};
use wait_timeout::ChildExt;

/// Each refusal must come well within this (a FIFO used to hang forever).
const DEADLINE: Duration = Duration::from_secs(20);

/// The flags that take an input file, with the arguments that make the rest
/// of the command line valid.
fn file_flags() -> [(&'static str, Vec<&'static str>); 4] {
    [
        ("--template", vec!["render", "--sandbox-image", "app:1"]),
        ("--config", vec!["render", "--sandbox-image", "app:1"]),
        (
            "--nodes-json",
            vec!["explain", "--kubernetes-version", "1.35.0"],
        ),
        ("--kubernetes-version-json", vec!["explain"]),
    ]
}

/// Runs the driver with `flag path`, with a deadline and a memory limit;
/// returns its stderr and how long it took. It must fail with 1.
fn refused(flag: &str, before: &[&str], path: &Path) -> (String, Duration) {
    let mut command = common::driver();
    command
        .args(before)
        .arg(flag)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    limit_memory(&mut command);
    let start = Instant::now();
    let mut child = command.spawn().unwrap();
    let status = match child.wait_timeout(DEADLINE).unwrap() {
        Some(status) => status,
        None => {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "{flag} {}: the driver did not finish within {DEADLINE:?}",
                path.display()
            );
        }
    };
    let elapsed = start.elapsed();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        status.code(),
        Some(1),
        "{flag} {}: {stderr}",
        path.display()
    );
    assert!(
        stderr.contains(&path.display().to_string()),
        "the error names the file: {stderr}"
    );
    (stderr, elapsed)
}

/// 256 MiB of address space: reading `/dev/zero` or a sparse file whole
/// would fail the run instead of passing slowly.
fn limit_memory(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the
    // child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = rustix::process::Rlimit {
                current: Some(256 << 20),
                maximum: Some(256 << 20),
            };
            rustix::process::setrlimit(rustix::process::Resource::As, limit)
                .map_err(std::io::Error::from)
        });
    }
}

#[test]
fn a_fifo_is_refused_at_once_for_every_input_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("input.fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    for (flag, before) in file_flags() {
        let (stderr, elapsed) = refused(flag, &before, &fifo);
        assert!(
            stderr.contains("a FIFO (named pipe), not a regular file"),
            "{flag}: {stderr}"
        );
        assert!(elapsed < Duration::from_secs(5), "{flag}: {elapsed:?}");
    }
}

#[test]
fn dev_zero_is_refused_for_every_input_file() {
    for (flag, before) in file_flags() {
        let (stderr, _) = refused(flag, &before, Path::new("/dev/zero"));
        assert!(
            stderr.contains("a character device, not a regular file"),
            "{flag}: {stderr}"
        );
    }
}

#[test]
fn a_sparse_file_of_gigabytes_is_refused_from_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = dir.path().join("sparse.yaml");
    let file = std::fs::File::create(&sparse).unwrap();
    file.set_len(4 << 30).unwrap();
    for (flag, before) in file_flags() {
        let (stderr, elapsed) = refused(flag, &before, &sparse);
        assert!(stderr.contains("over the limit"), "{flag}: {stderr}");
        assert!(elapsed < Duration::from_secs(5), "{flag}: {elapsed:?}");
    }
}

#[test]
fn a_folder_is_refused_for_every_input_file() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, before) in file_flags() {
        let (stderr, _) = refused(flag, &before, dir.path());
        assert!(
            stderr.contains("a folder, not a regular file"),
            "{flag}: {stderr}"
        );
    }
}

#[test]
fn a_template_just_over_its_limit_is_refused_and_one_at_it_is_read() {
    use openshell_driver_kubernetes::input::TEMPLATE_SIZE_LIMIT;
    let dir = tempfile::tempdir().unwrap();
    let head = "spec:\n  containers:\n  - name: agent\n    image: app:1\n";
    let path = dir.path().join("pod.yaml");
    // A comment pads the template to exactly the limit.
    let pad = usize::try_from(TEMPLATE_SIZE_LIMIT).unwrap() - head.len() - 2;
    std::fs::write(&path, format!("{head}#{}\n", "x".repeat(pad))).unwrap();
    common::run_ok(&["render", "--template", path.to_str().unwrap()], &[]);
    std::fs::write(&path, format!("{head}#{}\n", "x".repeat(pad + 1))).unwrap();
    let (stderr, _) = refused("--template", &["render"], &path);
    assert!(stderr.contains("over the limit"), "{stderr}");
}

/// A template nested `levels` deep as flow sequences, block sequences or
/// block mappings.
fn nested(levels: usize, shape: &str) -> String {
    match shape {
        "flow" => format!("spec: {}{}\n", "[".repeat(levels), "]".repeat(levels)),
        "block-sequence" => format!("spec:\n  {}x\n", "- ".repeat(levels)),
        _ => {
            let mut text = String::from("spec:\n");
            for level in 1..levels {
                text.push_str(&" ".repeat(level));
                text.push_str("a:\n");
            }
            text
        }
    }
}

#[test]
fn a_template_nested_100k_levels_deep_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    for shape in ["flow", "block-sequence"] {
        let path = dir.path().join(format!("{shape}.yaml"));
        std::fs::write(&path, nested(100_000, shape)).unwrap();
        let (stderr, elapsed) =
            refused("--template", &["render", "--sandbox-image", "app:1"], &path);
        assert!(stderr.contains("nested more than"), "{shape}: {stderr}");
        assert!(elapsed < Duration::from_secs(2), "{shape}: {elapsed:?}");
    }
    // Block mappings need the indentation to grow: 3000 levels are already
    // 4.5 MB, over the size limit, so 1000 (0.5 MB) shows the depth check.
    let path = dir.path().join("mapping.yaml");
    std::fs::write(&path, nested(1000, "mapping")).unwrap();
    let (stderr, elapsed) = refused("--template", &["render", "--sandbox-image", "app:1"], &path);
    assert!(stderr.contains("nested more than"), "{stderr}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn a_config_file_nested_too_deep_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("driver.yaml");
    std::fs::write(&path, nested(100_000, "flow")).unwrap();
    let (stderr, _) = refused("--config", &["render", "--sandbox-image", "app:1"], &path);
    assert!(stderr.contains("nested more than"), "{stderr}");
}

#[test]
fn nesting_at_the_limit_parses_and_one_more_level_does_not() {
    let at_limit = format!(
        "{}{}",
        "[".repeat(MAX_YAML_DEPTH),
        "]".repeat(MAX_YAML_DEPTH)
    );
    parse_yaml(&at_limit).unwrap();
    let over = format!("[{at_limit}]");
    assert!(parse_yaml(&over).unwrap_err().contains("nested more than"));
}

#[test]
fn a_billion_laughs_is_refused_within_the_memory_limit_for_both_yaml_files() {
    // Ten levels of ten aliases each: 10^10 strings if expanded.
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let items = vec![format!("*a{}", level - 1); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("laughs.yaml");
    std::fs::write(&path, text).unwrap();
    for flag in ["--template", "--config"] {
        let (stderr, elapsed) = refused(flag, &["render", "--sandbox-image", "app:1"], &path);
        assert!(
            stderr.contains("expands too much through aliases"),
            "{flag}: {stderr}"
        );
        assert!(elapsed < Duration::from_secs(2), "{flag}: {elapsed:?}");
    }
}
