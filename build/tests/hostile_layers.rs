//! Hostile layers through the real CLI (`build-image verify oci:DIR:TAG
//! --json`): layer stacks that put something else where the binary should
//! be, tars that parsers read differently, and bombs that would exhaust
//! memory or time. Each asserts the verdict, a fitting message, and where it
//! matters the peak RSS of the verify process.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::raw_layout::{RawImage, RawLayer, sha256_hex, write_layout};
use common::{Entry, HandImage, check, details, failed_checks, tempdir, verify_json};
use openshell_testsupport::podman::{INSTALL_HINT, run};
use openshell_testsupport::{require, require_root};
use sha2::Digest as _;

/// The bound the issue sets on verify's peak RSS for every hostile case.
const MAX_RSS_KIB: u64 = 64 * 1024;

/// No verify run may take longer than this.
const DEADLINE: Duration = Duration::from_secs(120);

const SCRIPT: &[u8] = b"#!/bin/sh\necho not the supervisor\n";

fn supervisor_bytes() -> Vec<u8> {
    std::fs::read(openshell_testsupport::static_supervisor_binary()).unwrap()
}

/// A process run to its end: how it ended and what it used.
struct Measured {
    /// The exit code, or `None` when a signal ended it.
    code: Option<i32>,
    /// The signal that ended it.
    signal: Option<i32>,
    /// Peak resident set size in KiB, as `wait4` reports it for this very
    /// process.
    max_rss_kib: u64,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `command` (output into files, so no pipe can fill), reaping it with
/// `wait4` to read its own peak RSS; kills it past [`DEADLINE`].
fn run_measured(mut command: Command) -> Measured {
    use nix::libc;

    let dir = tempdir();
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let started = Instant::now();
    let (status, usage) = loop {
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 only writes the two out-parameters, which outlive
        // the call; `pid` is this process's own child, not yet reaped.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(
            reaped >= 0,
            "wait4 failed: {}",
            std::io::Error::last_os_error()
        );
        if reaped == pid {
            break (status, usage);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {DEADLINE:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Reaped above: the Child handle is dropped without waiting again.
    drop(child);
    Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(u64::MAX),
        stdout: std::fs::read_to_string(stdout_path).unwrap(),
        stderr: std::fs::read_to_string(stderr_path).unwrap(),
        elapsed: started.elapsed(),
    }
}

/// `build-image verify --json --quiet oci:LAYOUT:TAG`, measured.
fn verify_measured(layout: &Path, tag: &str) -> (Measured, serde_json::Value) {
    let mut command = common::build_image();
    command
        .args(["verify", "--json", "--quiet"])
        .arg(format!("oci:{}:{tag}", layout.display()));
    let measured = run_measured(command);
    let report = serde_json::from_str(&measured.stdout).unwrap_or_else(|err| {
        panic!(
            "verify printed no JSON report ({err}); exit {:?}, signal {:?}\nstdout:\n{}\nstderr:\n{}",
            measured.code, measured.signal, measured.stdout, measured.stderr
        )
    });
    (measured, report)
}

/// The rootfs `umoci unpack` makes of `tag` in `layout`.
fn umoci_rootfs(layout: &Path, tag: &str, bundle: &Path) -> std::path::PathBuf {
    let mut command = Command::new("umoci");
    command
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle);
    let output = run(command);
    assert!(
        output.status.success(),
        "umoci unpack failed: {}",
        common::text(&output)
    );
    bundle.join("rootfs")
}

/// Whether umoci can be used for a cross-check here.
fn umoci_available(test: &str) -> bool {
    require(test, &["umoci"], INSTALL_HINT) && require_root(test)
}

fn good_then(upper: Vec<Entry>) -> HandImage {
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers.push(upper);
    image
}

#[test]
fn a_link_to_the_root_lets_a_later_layer_put_a_script_at_the_binary_path() {
    let test = "a_link_to_the_root_lets_a_later_layer_put_a_script_at_the_binary_path";
    let dir = tempdir();
    let layout = dir.path().join("layout");
    good_then(vec![
        Entry::symlink("d", "."),
        Entry::file("d/openshell-sandbox", SCRIPT, 0o755),
    ])
    .write_layout(&layout);
    let (ok, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(!ok, "{report:#}");
    // The report names what really sits there: the script, not the binary.
    assert_eq!(report["platforms"][0]["binary_sha256"], sha256_hex(SCRIPT));
    assert!(
        details(&report, "static-elf").contains("not an ELF file"),
        "{report:#}"
    );
    if umoci_available(test) {
        let rootfs = umoci_rootfs(&layout, "latest", &dir.path().join("bundle"));
        assert_eq!(
            std::fs::read(rootfs.join("openshell-sandbox")).unwrap(),
            SCRIPT
        );
    }
}

#[test]
fn a_whiteout_through_a_symlinked_parent_removes_the_binary() {
    let test = "a_whiteout_through_a_symlinked_parent_removes_the_binary";
    let dir = tempdir();
    let layout = dir.path().join("layout");
    good_then(vec![
        Entry::symlink("d", "."),
        Entry::file("d/.wh.openshell-sandbox", b"", 0o644),
    ])
    .write_layout(&layout);
    let (ok, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(!ok, "{report:#}");
    assert_eq!(failed_checks(&report), ["binary-location"], "{report:#}");
    assert!(
        details(&report, "binary-location")
            .contains("layer 1 deletes it with the whiteout d/.wh.openshell-sandbox"),
        "{report:#}"
    );
    if umoci_available(test) {
        let rootfs = umoci_rootfs(&layout, "latest", &dir.path().join("bundle"));
        assert!(!rootfs.join("openshell-sandbox").exists());
    }
}

#[test]
fn a_hard_link_from_a_file_of_another_name_is_checked_by_its_bytes() {
    // An ELF file is kept whatever its name, so a hard link named like the
    // binary is judged by the bytes it shares (the runtimes show exactly
    // that file), not refused for want of them.
    let dir = tempdir();
    let layout = dir.path().join("layout");
    let mut image = HandImage::good(&supervisor_bytes());
    image.layers = vec![vec![
        Entry::file("bin/real", &supervisor_bytes(), 0o555),
        Entry {
            kind: tar::EntryType::Link,
            link: "bin/real".into(),
            ..Entry::file("openshell-sandbox", b"", 0o555)
        },
    ]];
    image.write_layout(&layout);
    let (_, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert_eq!(
        check(&report, "static-elf")["outcome"],
        "passed",
        "{report:#}"
    );
    assert_eq!(
        report["platforms"][0]["binary_sha256"],
        hex::encode(sha2::Sha256::digest(supervisor_bytes())),
        "{report:#}"
    );
}

/// A ustar header block, for layers no tar writer would make.
fn raw_header(name: &[u8], typeflag: u8, size: u64, mode: u32) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    block[..name.len()].copy_from_slice(name);
    block[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    if size < 8u64.pow(11) {
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256: the high bit set, then the number big-endian.
        block[124] = 0x80;
        block[128..136].copy_from_slice(&size.to_be_bytes());
    }
    block[136..148].copy_from_slice(b"14500000000\0");
    block[156] = typeflag;
    block[257..265].copy_from_slice(b"ustar\x0000");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&byte| u32::from(byte)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut data = data.to_vec();
    data.resize(data.len().div_ceil(512) * 512, 0);
    data
}

/// The good binary in layer 0, then `upper` (a raw tar) as layer 1.
fn good_then_raw(layout: &Path, upper: &[u8]) {
    let good = common::tar_of(&[Entry::file("openshell-sandbox", &supervisor_bytes(), 0o555)]);
    write_layout(
        layout,
        &[RawImage {
            tag: "latest".into(),
            layers: vec![RawLayer::from_tar(&good), RawLayer::from_tar(upper)],
        }],
    );
}

#[test]
fn an_entry_hidden_in_a_folders_declared_data_is_seen_as_extractors_see_it() {
    let test = "an_entry_hidden_in_a_folders_declared_data_is_seen_as_extractors_see_it";
    // Go's archive/tar gives a folder no data, whatever size it declares,
    // so the "data" is the next entry: a script at /openshell-sandbox.
    let hidden = [
        raw_header(b"openshell-sandbox", b'0', SCRIPT.len() as u64, 0o755),
        padded(SCRIPT),
    ]
    .concat();
    let upper = [
        raw_header(b"d/", b'5', hidden.len() as u64, 0o755),
        hidden,
        vec![0; 1024],
    ]
    .concat();
    let dir = tempdir();
    let layout = dir.path().join("layout");
    good_then_raw(&layout, &upper);
    let (ok, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(!ok, "{report:#}");
    assert_eq!(report["platforms"][0]["binary_sha256"], sha256_hex(SCRIPT));
    if umoci_available(test) {
        let rootfs = umoci_rootfs(&layout, "latest", &dir.path().join("bundle"));
        assert_eq!(
            std::fs::read(rootfs.join("openshell-sandbox")).unwrap(),
            SCRIPT
        );
    }
}

#[test]
fn a_nul_in_a_gnu_long_name_ends_the_name_as_extractors_end_it() {
    let test = "a_nul_in_a_gnu_long_name_ends_the_name_as_extractors_end_it";
    let long = b"openshell-sandbox\0.innocent-name";
    let upper = [
        raw_header(b"././@LongLink", b'L', long.len() as u64, 0o644),
        padded(long),
        raw_header(b"innocent", b'0', SCRIPT.len() as u64, 0o755),
        padded(SCRIPT),
        vec![0; 1024],
    ]
    .concat();
    let dir = tempdir();
    let layout = dir.path().join("layout");
    good_then_raw(&layout, &upper);
    let (ok, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(!ok, "{report:#}");
    assert_eq!(report["platforms"][0]["binary_sha256"], sha256_hex(SCRIPT));
    if umoci_available(test) {
        let rootfs = umoci_rootfs(&layout, "latest", &dir.path().join("bundle"));
        assert_eq!(
            std::fs::read(rootfs.join("openshell-sandbox")).unwrap(),
            SCRIPT
        );
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_tiny_layer_declaring_a_1_tib_binary_is_refused_cleanly() {
    // One tar header, no data: the layer is under a hundred bytes.
    let header = raw_header(b"openshell-sandbox", b'0', 1 << 40, 0o555);
    let blob = gzip(&header);
    assert!(blob.len() <= 100, "the layer is {} bytes", blob.len());
    let dir = tempdir();
    let layout = dir.path().join("layout");
    write_layout(
        &layout,
        &[RawImage {
            tag: "latest".into(),
            layers: vec![RawLayer::prebuilt(
                blob,
                format!("sha256:{}", sha256_hex(&header)),
            )],
        }],
    );
    let (measured, report) = verify_measured(&layout, "latest");
    assert_eq!(
        (measured.code, measured.signal),
        (Some(1), None),
        "expected exit 1, no abort: {}",
        measured.stderr
    );
    assert_eq!(check(&report, "filesystem")["outcome"], "failed");
    let message = details(&report, "filesystem");
    for expected in [
        "openshell-sandbox declares 1099511627776 bytes",
        "refused before reading it",
        "binary size limit of 268435456 bytes",
        "--max-binary-size",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    assert!(
        measured.max_rss_kib <= MAX_RSS_KIB,
        "peak RSS {} KiB",
        measured.max_rss_kib
    );
}

/// A gzip layer of files of zeros (`files` of them, each `size` bytes,
/// named `name`, `name-1`, ...) and the end blocks, written as gzip members
/// (a few MB however large), with the diff ID of the uncompressed stream.
fn zeros_layer(name: &str, size: u64, files: usize) -> RawLayer {
    const CHUNK: usize = 1 << 20;
    assert_eq!(size % CHUNK as u64, 0);
    let zeros = vec![0u8; CHUNK];
    let zeros_member = gzip(&zeros);
    let mut blob = Vec::new();
    let mut diff = sha2::Sha256::new();
    for index in 0..files {
        let name = if index == 0 {
            name.to_string()
        } else {
            format!("{name}-{index}")
        };
        let header = raw_header(name.as_bytes(), b'0', size, 0o555);
        blob.extend_from_slice(&gzip(&header));
        diff.update(&header);
        for _ in 0..size / CHUNK as u64 {
            blob.extend_from_slice(&zeros_member);
            diff.update(&zeros);
        }
    }
    let end = vec![0u8; 1024];
    blob.extend_from_slice(&gzip(&end));
    diff.update(&end);
    RawLayer::prebuilt(blob, format!("sha256:{}", hex::encode(diff.finalize())))
}

#[test]
fn four_gib_of_zeros_named_like_the_binary_is_refused_at_once_in_bounded_memory() {
    let dir = tempdir();
    let layout = dir.path().join("layout");
    let layer = zeros_layer("openshell-sandbox", 4 << 30, 1);
    assert!(layer.blob.len() < 8 << 20, "{} bytes", layer.blob.len());
    write_layout(
        &layout,
        &[RawImage {
            tag: "latest".into(),
            layers: vec![layer],
        }],
    );
    let (measured, report) = verify_measured(&layout, "latest");
    eprintln!(
        "4 GiB of zeros as the binary: refused in {:.2} s, peak RSS {} KiB",
        measured.elapsed.as_secs_f64(),
        measured.max_rss_kib
    );
    assert_eq!((measured.code, measured.signal), (Some(1), None));
    let message = details(&report, "filesystem");
    assert!(message.contains("declares 4294967296 bytes"), "{message}");
    assert!(message.contains("--max-binary-size"), "{message}");
    assert!(
        measured.max_rss_kib <= MAX_RSS_KIB,
        "peak RSS {} KiB",
        measured.max_rss_kib
    );
}

#[test]
fn four_gib_of_zeros_under_other_names_stop_at_the_uncompressed_limit() {
    // Eight files of 512 MiB: verify reads the first (the default limit is
    // 1 GiB), and refuses the second, whose header and data would pass it,
    // before reading it.
    let dir = tempdir();
    let layout = dir.path().join("layout");
    write_layout(
        &layout,
        &[RawImage {
            tag: "latest".into(),
            layers: vec![zeros_layer("zeros", 512 << 20, 8)],
        }],
    );
    let (measured, report) = verify_measured(&layout, "latest");
    eprintln!(
        "4 GiB of zeros in eight files: refused in {:.2} s, peak RSS {} KiB",
        measured.elapsed.as_secs_f64(),
        measured.max_rss_kib
    );
    assert_eq!((measured.code, measured.signal), (Some(1), None));
    let message = details(&report, "filesystem");
    assert!(
        message.contains("zeros-1 declares 536870912 bytes"),
        "{message}"
    );
    assert!(message.contains("--max-uncompressed-size"), "{message}");
    assert!(
        measured.max_rss_kib <= MAX_RSS_KIB,
        "peak RSS {} KiB",
        measured.max_rss_kib
    );
}

#[test]
fn a_200_mib_binary_is_verified_in_bounded_memory() {
    // The static supervisor with zeros appended: still a complete static
    // ELF, 200 MiB long, a small blob.
    const SIZE: u64 = 200 << 20;
    let binary = supervisor_bytes();
    let mut header = tar::Header::new_gnu();
    header.set_path("openshell-sandbox").unwrap();
    header.set_size(SIZE);
    header.set_mode(0o555);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut diff = sha2::Sha256::new();
    let mut binary_hash = sha2::Sha256::new();
    let mut write = |bytes: &[u8], in_binary: bool| {
        encoder.write_all(bytes).unwrap();
        diff.update(bytes);
        if in_binary {
            binary_hash.update(bytes);
        }
    };
    write(header.as_bytes(), false);
    write(&binary, true);
    let zeros = vec![0u8; 1 << 20];
    let mut left = SIZE - binary.len() as u64;
    while left > 0 {
        let chunk = left.min(zeros.len() as u64) as usize;
        write(&zeros[..chunk], true);
        left -= chunk as u64;
    }
    write(&[0u8; 2048], false);
    let layer = RawLayer::prebuilt(
        encoder.finish().unwrap(),
        format!("sha256:{}", hex::encode(diff.finalize())),
    );
    let dir = tempdir();
    let layout = dir.path().join("layout");
    write_layout(
        &layout,
        &[RawImage {
            tag: "latest".into(),
            layers: vec![layer],
        }],
    );
    let (measured, report) = verify_measured(&layout, "latest");
    eprintln!(
        "a 200 MiB binary: verified in {:.2} s, peak RSS {} KiB",
        measured.elapsed.as_secs_f64(),
        measured.max_rss_kib
    );
    assert_eq!(measured.code, Some(0), "{report:#}");
    assert_eq!(
        report["platforms"][0]["binary_sha256"],
        hex::encode(binary_hash.finalize())
    );
    assert_eq!(check(&report, "static-elf")["outcome"], "passed");
    assert!(
        measured.max_rss_kib <= MAX_RSS_KIB,
        "peak RSS {} KiB",
        measured.max_rss_kib
    );
}

#[test]
fn the_most_entries_with_the_longest_names_stay_in_bounded_memory() {
    use openshell_verify::filesystem::limits::DEFAULT_MAX_ENTRIES;

    // A folder 14 levels deep of 255-byte names (3,583 bytes), filled with
    // files of 240-byte names up to the entry limit, the binary among them;
    // then a layer whose opaque marker removes them all. Every path is near
    // the path length limit (Linux's 4 KiB less room for the node's storage
    // prefix).
    let component = |level: usize| format!("{level:0>255}");
    let deep: Vec<String> = (0..14).map(component).collect();
    let deep = deep.join("/");
    let files = usize::try_from(DEFAULT_MAX_ENTRIES).unwrap() - 14 - 1;
    let mut builder = tar::Builder::new(Vec::new());
    for index in 0..files {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        let name = format!("{deep}/{index:0>240}");
        builder.append_data(&mut header, name, &[][..]).unwrap();
    }
    let lower = builder.into_inner().unwrap();
    let opaque = format!("{}/.wh..wh..opq", component(0));
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, opaque, &[][..]).unwrap();
    let upper = builder.into_inner().unwrap();
    let dir = tempdir();
    let layout = dir.path().join("layout");
    write_layout(
        &layout,
        &[RawImage {
            tag: "latest".into(),
            layers: vec![RawLayer::from_tar(&lower), RawLayer::from_tar(&upper)],
        }],
    );
    let (measured, report) = verify_measured(&layout, "latest");
    eprintln!(
        "{files} entries with paths near the length limit: verified in {:.2} s, peak RSS {} KiB",
        measured.elapsed.as_secs_f64(),
        measured.max_rss_kib
    );
    assert_eq!((measured.code, measured.signal), (Some(1), None));
    // Within the entry limit: the tree is read whole, and the binary is
    // missing (it was never there).
    assert_eq!(
        check(&report, "filesystem")["outcome"],
        "passed",
        "{report:#}"
    );
    assert_eq!(check(&report, "binary-location")["outcome"], "failed");
    assert!(
        measured.max_rss_kib <= MAX_RSS_KIB,
        "peak RSS {} KiB",
        measured.max_rss_kib
    );
}
