//! Issue 16's layer, compression and ELF cases through the real CLI
//! (`build-image verify --json oci:DIR:TAG`): each asserts the verdict of
//! the check concerned and that the refusal names what is at fault (and
//! the flag, for a limit). The truth for the compression cases was
//! established with podman (overlay and vfs) and umoci: a gzip-typed plain
//! tar and a PAX global header load in podman; a gzip header with a wrong
//! CRC fails everywhere; a tar-typed gzip blob fails in umoci.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::raw_layout::{RawImage, RawLayer, write_layout};
use common::{check, details, tempdir, verify_json};
use oci_spec::image::MediaType;

const BIN: &str = "openshell-sandbox";

/// One raw tar header block (GNU magic) with its checksum.
fn header(name: &str, typeflag: u8, size: usize, link: &str, mode: u32) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = typeflag;
    block[157..157 + link.len()].copy_from_slice(link.as_bytes());
    block[257..265].copy_from_slice(b"ustar  \0");
    checksum(&mut block);
    block
}

fn checksum(block: &mut [u8]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&byte| u32::from(byte)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut data = data.to_vec();
    data.resize(data.len().div_ceil(512) * 512, 0);
    data
}

fn end(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend([0u8; 1024]);
    tar
}

/// A tar holding `bytes` as the binary, mode 0555.
fn binary_tar(bytes: &[u8]) -> Vec<u8> {
    end([header(BIN, b'0', bytes.len(), "", 0o555), padded(bytes)].concat())
}

/// A minimal x86-64 ELF: `phnum` program headers, the first a `PT_LOAD` of
/// the whole file.
fn tiny_elf(e_type: u16, phnum: u16) -> Vec<u8> {
    let mut file = vec![0u8; 64];
    file[..4].copy_from_slice(b"\x7fELF");
    file[4] = 2;
    file[5] = 1;
    file[6] = 1;
    file[16..18].copy_from_slice(&e_type.to_le_bytes());
    file[18..20].copy_from_slice(&62u16.to_le_bytes());
    file[20..24].copy_from_slice(&1u32.to_le_bytes());
    file[24..32].copy_from_slice(&0x40_0078u64.to_le_bytes());
    file[32..40].copy_from_slice(&64u64.to_le_bytes());
    file[52..54].copy_from_slice(&64u16.to_le_bytes());
    file[54..56].copy_from_slice(&56u16.to_le_bytes());
    file[56..58].copy_from_slice(&phnum.to_le_bytes());
    let total = 64 + 56 * u64::from(phnum) + 16;
    for index in 0..phnum {
        let mut phdr = [0u8; 56];
        if index == 0 {
            phdr[..4].copy_from_slice(&1u32.to_le_bytes());
            phdr[4..8].copy_from_slice(&5u32.to_le_bytes());
            phdr[16..24].copy_from_slice(&0x40_0000u64.to_le_bytes());
            phdr[32..40].copy_from_slice(&total.to_le_bytes());
            phdr[40..48].copy_from_slice(&total.to_le_bytes());
        }
        file.extend_from_slice(&phdr);
    }
    file.extend_from_slice(&[0xcc; 16]);
    file
}

/// Verifies one image of `layers` (tag `t`); the report.
fn verify_layers(layers: Vec<RawLayer>, extra: &[&str]) -> (bool, serde_json::Value, Duration) {
    let dir = tempdir();
    let layout = dir.path().join("layout");
    write_layout(
        &layout,
        &[RawImage {
            tag: "t".into(),
            layers,
        }],
    );
    let started = Instant::now();
    let (ok, report) = verify_json(&format!("oci:{}:t", layout.display()), extra);
    (ok, report, started.elapsed())
}

fn outcome(report: &serde_json::Value, name: &str) -> String {
    check(report, name)["outcome"].as_str().unwrap().to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_gzip_typed_layer_that_is_plain_tar_is_read_as_tar() {
    let tar = binary_tar(&tiny_elf(2, 1));
    let layer = RawLayer::prebuilt(
        tar.clone(),
        format!("sha256:{}", common::raw_layout::sha256_hex(&tar)),
    );
    let (_, report, _) = verify_layers(vec![layer], &[]);
    assert_eq!(outcome(&report, "filesystem"), "passed", "{report:#}");
    assert_eq!(outcome(&report, "binary-location"), "passed");
    assert_eq!(outcome(&report, "static-elf"), "passed", "{report:#}");
}

#[test]
fn a_tar_typed_layer_whose_bytes_are_gzip_is_refused() {
    let layer = RawLayer::from_tar(&binary_tar(&tiny_elf(2, 1))).declared(MediaType::ImageLayer);
    let (ok, report, _) = verify_layers(vec![layer], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(
        message.contains("(uncompressed) but its bytes are gzip"),
        "{message}"
    );
}

/// CRC-32 (IEEE), bit by bit: the gzip header CRC is its low 16 bits.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_gzip_header_with_a_wrong_crc_is_refused() {
    let tar = binary_tar(&tiny_elf(2, 1));
    let good = gzip(&tar);
    // Set FHCRC and put a wrong CRC-16 after the 10-byte header.
    let mut header = good[..10].to_vec();
    header[3] |= 0x02;
    let crc = crc32(&header) as u16;
    let blob = [
        header,
        (crc ^ 0x5555).to_le_bytes().to_vec(),
        good[10..].to_vec(),
    ]
    .concat();
    let layer = RawLayer::prebuilt(
        blob,
        format!("sha256:{}", common::raw_layout::sha256_hex(&tar)),
    );
    let (ok, report, _) = verify_layers(vec![layer], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(message.contains("corrupt gzip"), "{message}");
}

#[test]
fn more_layers_than_overlayfs_stacks_are_refused_naming_the_flag() {
    let layers: Vec<RawLayer> = (0..501)
        .map(|index| {
            let name = format!("f{index}");
            RawLayer::from_tar(&end([header(&name, b'0', 0, "", 0o644)].concat()))
        })
        .collect();
    let (ok, report, elapsed) = verify_layers(layers, &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(message.contains("more than 500 layers"), "{message}");
    assert!(message.contains("--max-layers"), "{message}");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}

#[test]
fn a_path_that_reaches_path_max_with_the_storage_prefix_is_refused() {
    // 3,900 bytes: under PATH_MAX alone, over it under a node's storage
    // folder.
    let dirs: Vec<String> = (0..39).map(|_| "d".repeat(99)).collect();
    let long = format!("{}/x", dirs.join("/"));
    let tar = {
        let record = {
            let body = format!(" path={long}\n");
            let mut length = body.len() + 1;
            while format!("{length}").len() + body.len() != length {
                length += 1;
            }
            format!("{length}{body}")
        };
        let mut pax = header("pax", b'x', record.len(), "", 0o644);
        pax[257..265].copy_from_slice(b"ustar\x0000");
        checksum(&mut pax);
        end([
            pax,
            padded(record.as_bytes()),
            header("x", b'0', 0, "", 0o644),
        ]
        .concat())
    };
    let (ok, report, _) = verify_layers(vec![RawLayer::from_tar(&tar)], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(message.contains("--max-path-length"), "{message}");
    assert!(message.contains("PATH_MAX"), "{message}");
}

#[test]
fn nineteen_hundred_ninety_nested_folders_are_refused_quickly() {
    let mut tar = Vec::new();
    let mut path = String::new();
    for _ in 0..1990 {
        path.push_str("a/");
        if path.len() < 100 {
            tar.extend(header(&path, b'5', 0, "", 0o755));
        }
    }
    // GNU long names for the deep ones.
    let mut deep = String::new();
    for depth in 0..1990 {
        deep.push_str("a/");
        if depth >= 49 {
            let name = format!("{deep}\0");
            tar.extend(header("././@LongLink", b'L', name.len(), "", 0o644));
            tar.extend(padded(name.as_bytes()));
            tar.extend(header("long", b'5', 0, "", 0o755));
        }
    }
    let (ok, report, elapsed) = verify_layers(vec![RawLayer::from_tar(&end(tar))], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(message.contains("--max-path-depth"), "{message}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

#[test]
fn a_symlink_to_a_deep_folder_is_refused_by_depth() {
    let deep: String = (0..120).map(|_| "a/").collect();
    let target = deep.trim_end_matches('/').to_string();
    let mut tar = vec![header("l", b'2', 0, "", 0o777)];
    // The link target goes in a GNU long link (it is longer than 100).
    let name = format!("{target}\0");
    tar.insert(0, header("././@LongLink", b'K', name.len(), "", 0o644));
    tar.insert(1, padded(name.as_bytes()));
    let through: String = (0..20).map(|_| "b/").collect();
    tar.push(header(&format!("l/{through}x"), b'0', 0, "", 0o644));
    let (ok, report, _) = verify_layers(vec![RawLayer::from_tar(&end(tar.concat()))], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(message.contains("--max-path-depth"), "{message}");
}

/// A symlink whose target (in a PAX `linkpath`) is `length` bytes.
fn long_symlink(name: &str, length: usize) -> Vec<u8> {
    let target = "t".repeat(length);
    let body = format!(" linkpath={target}\n");
    let mut record_length = body.len() + 1;
    while format!("{record_length}").len() + body.len() != record_length {
        record_length += 1;
    }
    let record = format!("{record_length}{body}");
    let mut pax = header("pax", b'x', record.len(), "", 0o644);
    pax[257..265].copy_from_slice(b"ustar\x0000");
    checksum(&mut pax);
    [
        pax,
        padded(record.as_bytes()),
        header(name, b'2', 0, "", 0o777),
    ]
    .concat()
}

#[test]
fn a_one_mib_symlink_target_is_refused_naming_the_flag() {
    let tar = end(long_symlink("l", (1 << 20) - 64));
    let (ok, report, _) = verify_layers(vec![RawLayer::from_tar(&tar)], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(message.contains("--max-symlink-target"), "{message}");
}

#[test]
fn symlink_targets_past_their_total_are_refused_naming_the_flag() {
    // 1,100 targets of 4,000 bytes: each within the single-target limit,
    // 4.4 MB together.
    let tar: Vec<u8> = (0..1100)
        .flat_map(|index| long_symlink(&format!("l{index}"), 4000))
        .collect();
    let (ok, report, _) = verify_layers(vec![RawLayer::from_tar(&end(tar))], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(message.contains("--max-symlink-targets-total"), "{message}");
    // A raised limit lets it through that check.
    let tar: Vec<u8> = (0..1100)
        .flat_map(|index| long_symlink(&format!("l{index}"), 4000))
        .collect();
    let (_, report, _) = verify_layers(
        vec![RawLayer::from_tar(&end(tar))],
        &["--max-symlink-targets-total", "8MiB"],
    );
    assert!(!details(&report, "filesystem").contains("--max-symlink-targets-total"));
}

#[test]
fn an_elf_with_1200_program_headers_is_refused_as_the_kernel_refuses_it() {
    let layer = RawLayer::from_tar(&binary_tar(&tiny_elf(2, 1200)));
    let (ok, report, _) = verify_layers(vec![layer], &[]);
    assert!(!ok);
    assert_eq!(outcome(&report, "static-elf"), "failed");
    let message = details(&report, "static-elf");
    assert!(message.contains("1200 program headers"), "{message}");
    assert!(message.contains("execve fails"), "{message}");
}

#[test]
fn a_static_pie_without_the_pie_flag_is_accepted() {
    // ET_DYN, no PT_INTERP and no PT_DYNAMIC, so no DF_1_PIE.
    let layer = RawLayer::from_tar(&binary_tar(&tiny_elf(3, 1)));
    let (_, report, _) = verify_layers(vec![layer], &[]);
    assert_eq!(outcome(&report, "static-elf"), "passed", "{report:#}");
}

#[test]
fn a_hard_link_header_that_changes_the_binarys_mode_fails_the_filesystem_check() {
    let elf = tiny_elf(2, 1);
    let tar = end([
        header(BIN, b'0', elf.len(), "", 0o555),
        padded(&elf),
        header("alias", b'1', 0, BIN, 0o644),
    ]
    .concat());
    let (ok, report, _) = verify_layers(vec![RawLayer::from_tar(&tar)], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(message.contains("mode 0644"), "{message}");
    assert!(message.contains("overlay"), "{message}");
}

#[test]
fn file_capabilities_on_the_binary_fail_the_mode_check() {
    let elf = tiny_elf(2, 1);
    let body = " SCHILY.xattr.security.capability=\u{1}\n".to_string();
    let mut length = body.len() + 1;
    while format!("{length}").len() + body.len() != length {
        length += 1;
    }
    let record = format!("{length}{body}");
    let mut pax = header("pax", b'x', record.len(), "", 0o644);
    pax[257..265].copy_from_slice(b"ustar\x0000");
    checksum(&mut pax);
    let tar = end([
        pax,
        padded(record.as_bytes()),
        header(BIN, b'0', elf.len(), "", 0o555),
        padded(&elf),
    ]
    .concat());
    let (ok, report, _) = verify_layers(vec![RawLayer::from_tar(&tar)], &[]);
    assert!(!ok);
    let message = details(&report, "binary-mode");
    assert!(message.contains("security.capability"), "{message}");
}

#[test]
fn a_gnu_header_whose_atime_go_reads_as_a_prefix_puts_the_binary_elsewhere() {
    // ustar magic with GNU's version: Go reads the prefix field, where GNU
    // keeps atime, so the name becomes sub/openshell-sandbox.
    let elf = tiny_elf(2, 1);
    let mut block = header(BIN, b'0', elf.len(), "", 0o555);
    block[257..265].copy_from_slice(b"ustar\0 \0");
    block[345..348].copy_from_slice(b"sub");
    checksum(&mut block);
    let tar = end([block, padded(&elf)].concat());
    let (ok, report, _) = verify_layers(vec![RawLayer::from_tar(&tar)], &[]);
    assert!(!ok);
    let message = details(&report, "binary-location");
    assert!(message.contains("sub/openshell-sandbox"), "{message}");
}

#[test]
fn a_whiteout_under_the_binary_in_a_later_layer_fails_as_the_overlay_shows_a_folder() {
    let elf = tiny_elf(2, 1);
    let lower = RawLayer::from_tar(&binary_tar(&elf));
    let upper = RawLayer::from_tar(&end(header("openshell-sandbox/.wh.x", b'0', 0, "", 0o644)));
    let (ok, report, _) = verify_layers(vec![lower, upper], &[]);
    assert!(!ok);
    let message = details(&report, "filesystem");
    assert!(
        message.contains("containers/storage's overlay driver (CRI-O, podman) shows /openshell-sandbox differently: a folder where umoci has a regular file"),
        "{message}"
    );
    assert!(
        message.contains("containerd's overlayfs snapshotter"),
        "{message}"
    );
}
