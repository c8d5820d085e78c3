//! The layer cases of issue 16, each in its own test, against the readings
//! verification compares: umoci's (the model itself), containers/storage's
//! vfs driver, containerd's overlayfs snapshotter and containers/storage's
//! overlay driver. Verification accepts an image only when every reading
//! shows the same good binary; each case states what each reading shows.
//!
//! `every_case_matches_podman_overlay_vfs_and_umoci` establishes the truth:
//! it writes all cases into one OCI layout and unpacks each with podman's
//! overlay driver (as root), podman's vfs driver and `umoci unpack`,
//! comparing what sits at `/openshell-sandbox` with the model's readings.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use openshell_testsupport::BoundedOutput;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::raw_layout::{RawImage, RawLayer, write_layout};
use openshell_testsupport::podman::{INSTALL_HINT, output_text, run};
use openshell_testsupport::{Containers, require, require_root};
use openshell_verify::filesystem::{Filesystem, Limits, Node, NodeKind};
use sha2::{Digest, Sha256};

const BIN: &str = "openshell-sandbox";

/// Stands in for the binary: an ELF magic, then bytes.
fn binary() -> Vec<u8> {
    let mut bytes = b"\x7fELF".to_vec();
    bytes.extend(b"payload".repeat(10));
    bytes
}

/// One raw tar header block, GNU magic, with its checksum.
fn header(name: &str, typeflag: u8, size: usize, link: &str, mode: u32, owner: u32) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    block[108..116].copy_from_slice(format!("{owner:07o}\0").as_bytes());
    block[116..124].copy_from_slice(format!("{owner:07o}\0").as_bytes());
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

/// A PAX record, its length counted as the format wants.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
    let mut length = body.len() + 1;
    while format!("{length}").len() + body.len() != length {
        length += 1;
    }
    [format!("{length}").as_bytes(), &body].concat()
}

/// A tar entry.
enum E {
    File(&'static str, Vec<u8>, u32),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
    Link(&'static str, &'static str, u32, u32),
    /// A PAX header of `typeflag` (`x` or `g`) with these records.
    Pax(u8, Vec<(&'static str, Vec<u8>)>),
}

fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        match entry {
            E::File(name, data, mode) => {
                out.extend(header(name, b'0', data.len(), "", *mode, 0));
                out.extend(padded(data));
            }
            E::Dir(name) => out.extend(header(name, b'5', 0, "", 0o755, 0)),
            E::Symlink(name, target) => out.extend(header(name, b'2', 0, target, 0o777, 0)),
            E::Link(name, target, mode, owner) => {
                out.extend(header(name, b'1', 0, target, *mode, *owner));
            }
            E::Pax(typeflag, records) => {
                let data: Vec<u8> = records
                    .iter()
                    .flat_map(|(key, value)| pax_record(key, value))
                    .collect();
                let mut block = header("PaxHeaders/x", *typeflag, data.len(), "", 0o644, 0);
                block[257..265].copy_from_slice(b"ustar\x0000");
                checksum(&mut block);
                out.extend(block);
                out.extend(padded(&data));
            }
        }
    }
    out.extend([0u8; 1024]);
    out
}

fn file(name: &'static str, data: &[u8], mode: u32) -> E {
    E::File(name, data.to_vec(), mode)
}

fn good() -> E {
    file(BIN, &binary(), 0o555)
}

/// What a reading shows at `/openshell-sandbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// The extractor refuses the image.
    Refused,
    /// Nothing there.
    Absent,
    /// A regular file: mode, owner, sha256 prefix, file capabilities.
    File(u32, u32, &'static str, bool),
    /// A regular file with other contents than [`binary`].
    OtherFile(u32),
    /// A folder.
    Dir,
    /// Anything else.
    Other,
}

fn good_sha() -> String {
    hex::encode(Sha256::digest(binary()))
}

fn seen_node(node: Option<&Node>) -> Seen {
    match node {
        None => Seen::Absent,
        Some(node) => match &node.kind {
            NodeKind::File { sha256, .. } if hex::encode(sha256) == good_sha() => Seen::File(
                node.mode,
                u32::try_from(node.uid).unwrap(),
                "good",
                node.file_capabilities,
            ),
            NodeKind::File { .. } => Seen::OtherFile(node.mode),
            NodeKind::Dir => Seen::Dir,
            _ => Seen::Other,
        },
    }
}

/// The four readings of a stack: umoci's, vfs, containerd overlay,
/// containers/storage overlay; and verification's verdict on the tree.
#[derive(Debug, PartialEq, Eq)]
struct Readings {
    umoci: Seen,
    vfs: Seen,
    containerd_overlay: Seen,
    storage_overlay: Seen,
}

fn readings(layers: &[Vec<u8>]) -> (Readings, Vec<String>) {
    let mut filesystem = Filesystem::new(Limits::default());
    for (index, layer) in layers.iter().enumerate() {
        if let Err(err) = filesystem.apply_layer(index, &layer[..]) {
            let refused = Readings {
                umoci: Seen::Refused,
                vfs: Seen::Refused,
                containerd_overlay: Seen::Refused,
                storage_overlay: Seen::Refused,
            };
            return (refused, vec![err.to_string()]);
        }
    }
    let reading = |name: &str| match filesystem.reading_of_binary(name).unwrap() {
        Err(_) => Seen::Refused,
        Ok(node) => seen_node(node.as_ref()),
    };
    let found = Readings {
        umoci: seen_node(filesystem.nodes.get(BIN)),
        vfs: reading("vfs driver"),
        containerd_overlay: reading("containerd"),
        storage_overlay: reading("overlay driver"),
    };
    (found, filesystem.extractor_disagreements())
}

const GOOD: Seen = Seen::File(0o555, 0, "good", false);

/// One case: its layers, what each reading shows, and whether
/// verification accepts the tree (every reading agrees on a good binary).
struct Case {
    name: &'static str,
    layers: Vec<Vec<u8>>,
    expected: Readings,
    accepted: bool,
}

fn case(name: &'static str, layers: Vec<Vec<u8>>, seen: [Seen; 4], accepted: bool) -> Case {
    let [umoci, vfs, containerd_overlay, storage_overlay] = seen;
    Case {
        name,
        layers,
        expected: Readings {
            umoci,
            vfs,
            containerd_overlay,
            storage_overlay,
        },
        accepted,
    }
}

fn capability() -> Vec<u8> {
    // VFS_CAP_REVISION_2 with CAP_NET_RAW permitted.
    let mut value = vec![0u8; 20];
    value[..4].copy_from_slice(&0x0200_0000u32.to_le_bytes());
    value[4] = 1 << 5;
    value
}

/// A file of 1 MiB and 4 bytes: the binary's bytes, a hole, then "tail".
fn sparse_expanded() -> Vec<u8> {
    let mut bytes = binary();
    bytes.resize(1 << 20, 0);
    bytes.extend(b"tail");
    bytes
}

/// The PAX 1.0 sparse form GNU tar writes (`--sparse --format=posix`).
fn sparse_layer() -> Vec<u8> {
    let data = binary();
    let map = padded(format!("2\n0\n{}\n{}\n4\n", data.len(), 1 << 20).as_bytes());
    let stored = [map, data, b"tail".to_vec()].concat();
    let size = format!("{}", (1 << 20) + 4);
    let mut out = tar(&[E::Pax(
        b'x',
        vec![
            ("GNU.sparse.major", b"1".to_vec()),
            ("GNU.sparse.minor", b"0".to_vec()),
            ("GNU.sparse.name", BIN.as_bytes().to_vec()),
            ("GNU.sparse.realsize", size.into_bytes()),
        ],
    )]);
    out.truncate(out.len() - 1024);
    out.extend(header(
        "GNUSparseFile.0/openshell-sandbox",
        b'0',
        stored.len(),
        "",
        0o555,
        0,
    ));
    out.extend(padded(&stored));
    out.extend([0u8; 1024]);
    out
}

fn cases() -> Vec<Case> {
    use Seen::{Absent, Dir, Refused};
    let caps = Seen::File(0o555, 0, "good", true);
    vec![
        case(
            "a_good_binary_is_accepted",
            vec![tar(&[good()])],
            [GOOD, GOOD, GOOD, GOOD],
            true,
        ),
        // False accepts.
        case(
            "whiteout_of_the_binary_after_it_in_the_same_layer",
            vec![tar(&[good(), file(".wh.openshell-sandbox", b"", 0o644)])],
            [GOOD, Absent, Refused, Refused],
            false,
        ),
        case(
            "whiteout_under_the_binary_in_a_later_layer",
            vec![
                tar(&[good()]),
                tar(&[file("openshell-sandbox/.wh.x", b"", 0o644)]),
            ],
            [GOOD, Refused, Dir, Dir],
            false,
        ),
        case(
            "opaque_marker_under_the_binary_in_a_later_layer",
            vec![
                tar(&[good()]),
                tar(&[file("openshell-sandbox/.wh..wh..opq", b"", 0o644)]),
            ],
            [GOOD, GOOD, Dir, Dir],
            false,
        ),
        case(
            "symlinked_folder_below_the_binary_in_an_upper_layer",
            vec![
                tar(&[E::Symlink("d", ".")]),
                tar(&[file("d/openshell-sandbox", &binary(), 0o555)]),
            ],
            [GOOD, GOOD, Absent, Absent],
            false,
        ),
        case(
            "hard_link_across_layers",
            vec![
                tar(&[file("real", &binary(), 0o555)]),
                tar(&[E::Link(BIN, "real", 0o555, 0)]),
            ],
            [GOOD, GOOD, Refused, Refused],
            false,
        ),
        case(
            "hard_link_header_makes_the_binary_0644",
            vec![tar(&[good(), E::Link("alias", BIN, 0o644, 0)])],
            [
                GOOD,
                Seen::File(0o644, 0, "good", false),
                Seen::File(0o644, 0, "good", false),
                Seen::File(0o644, 0, "good", false),
            ],
            false,
        ),
        case(
            "hard_link_header_gives_the_binary_to_1000_with_0700",
            vec![tar(&[good(), E::Link("alias", BIN, 0o700, 1000)])],
            [
                GOOD,
                Seen::File(0o700, 1000, "good", false),
                Seen::File(0o700, 1000, "good", false),
                Seen::File(0o700, 1000, "good", false),
            ],
            false,
        ),
        case(
            "folder_then_file_of_the_same_name",
            vec![tar(&[E::Dir("openshell-sandbox/"), good()])],
            [GOOD, Refused, GOOD, Refused],
            false,
        ),
        case(
            "duplicate_paths_in_one_layer",
            vec![tar(&[good(), good()])],
            [GOOD, Refused, GOOD, Refused],
            false,
        ),
        case(
            "file_capabilities_on_the_binary",
            vec![tar(&[
                E::Pax(
                    b'x',
                    vec![("SCHILY.xattr.security.capability", capability())],
                ),
                good(),
            ])],
            [caps.clone(), caps.clone(), caps.clone(), caps],
            false,
        ),
        // False rejects.
        case(
            "hard_link_whose_target_is_later_whited_out",
            vec![
                tar(&[
                    file("real", &binary(), 0o555),
                    E::Link(BIN, "real", 0o555, 0),
                ]),
                tar(&[file(".wh.real", b"", 0o644)]),
            ],
            [GOOD, GOOD, GOOD, GOOD],
            true,
        ),
        case(
            "pax_global_header",
            vec![tar(&[
                E::Pax(b'g', vec![("comment", b"made by git".to_vec())]),
                good(),
            ])],
            [GOOD, GOOD, GOOD, GOOD],
            true,
        ),
        // Read as Go reads it: the file with its holes (other bytes than
        // the stand-in binary), the same in every reading.
        case(
            "pax_sparse_file",
            vec![sparse_layer()],
            [
                Seen::OtherFile(0o555),
                Seen::OtherFile(0o555),
                Seen::OtherFile(0o555),
                Seen::OtherFile(0o555),
            ],
            false,
        ),
        // overlayfs ignores an opaque xattr on a layer's root; the others
        // empty the root.
        case(
            "opaque_root_in_an_upper_layer",
            vec![
                tar(&[good()]),
                tar(&[file(".wh..wh..opq", b"", 0o644), file("x", b"x", 0o644)]),
            ],
            [Absent, Absent, GOOD, GOOD],
            false,
        ),
    ]
}

fn check_case(name: &str) {
    let case = cases().into_iter().find(|case| case.name == name).unwrap();
    let (found, disagreements) = readings(&case.layers);
    assert_eq!(found, case.expected, "{name}");
    let accepted = disagreements.is_empty() && found.umoci == GOOD;
    assert_eq!(
        accepted, case.accepted,
        "{name}: verification's verdict; disagreements: {disagreements:#?}"
    );
    for disagreement in &disagreements {
        assert!(
            disagreement.contains("shows") || disagreement.contains("cannot unpack"),
            "{disagreement}"
        );
    }
}

macro_rules! case_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_case(stringify!($name));
            }
        )*
    };
}

case_tests!(
    a_good_binary_is_accepted,
    whiteout_of_the_binary_after_it_in_the_same_layer,
    whiteout_under_the_binary_in_a_later_layer,
    opaque_marker_under_the_binary_in_a_later_layer,
    symlinked_folder_below_the_binary_in_an_upper_layer,
    hard_link_across_layers,
    hard_link_header_makes_the_binary_0644,
    hard_link_header_gives_the_binary_to_1000_with_0700,
    folder_then_file_of_the_same_name,
    duplicate_paths_in_one_layer,
    file_capabilities_on_the_binary,
    hard_link_whose_target_is_later_whited_out,
    pax_global_header,
    opaque_root_in_an_upper_layer,
    pax_sparse_file,
);

#[test]
fn pax_sparse_binary_is_read_with_its_holes() {
    let mut filesystem = Filesystem::new(Limits::default());
    filesystem.apply_layer(0, &sparse_layer()[..]).unwrap();
    let node = &filesystem.nodes[BIN];
    assert_eq!(
        node.sha256_hex().unwrap(),
        hex::encode(Sha256::digest(sparse_expanded()))
    );
    assert_eq!(node.mode, 0o555);
    assert!(filesystem.extractor_disagreements().is_empty());
}

/// What the real tool shows at `/openshell-sandbox` under `root`.
fn seen_on_disk(root: &Path) -> Seen {
    let path = root.join(BIN);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Seen::Absent;
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        return Seen::Dir;
    }
    if !kind.is_file() || kind.is_char_device() {
        return Seen::Other;
    }
    let mode = meta.mode() & 0o7777;
    let bytes = std::fs::read(&path).unwrap();
    if hex::encode(Sha256::digest(&bytes)) != good_sha() {
        return Seen::OtherFile(mode);
    }
    let caps = xattr_present(&path, "security.capability");
    Seen::File(mode, meta.uid(), "good", caps)
}

fn xattr_present(path: &Path, name: &str) -> bool {
    let output = Command::new("getfattr")
        .args(["--absolute-names", "-n", name])
        .arg(path)
        .output();
    // getfattr (Debian's attr) may be missing: then python's os.getxattr.
    match output {
        Ok(output) => output.status.success(),
        Err(_) => Command::new("python3")
            .args([
                "-c",
                "import os,sys; os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False)",
            ])
            .arg(path)
            .arg(name)
            .status()
            .is_ok_and(|status| status.success()),
    }
}

/// podman's image mount of `tag` with `driver`, in storage of its own.
fn podman_seen(containers: &Containers, driver: &str, layout: &Path, tag: &str) -> Seen {
    let root = containers.dir().join(driver);
    let storage = [
        "--root".to_string(),
        root.join("root").display().to_string(),
        "--runroot".into(),
        root.join("runroot").display().to_string(),
        "--storage-driver".into(),
        driver.into(),
    ];
    let image = format!("localhost/overlay-cases:{tag}");
    let mut copy = containers.skopeo();
    copy.args(["copy", "--quiet"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!(
            "containers-storage:[{driver}@{}+{}]{image}",
            root.join("root").display(),
            root.join("runroot").display()
        ));
    if !run(copy).status.success() {
        return Seen::Refused;
    }
    let podman = |args: &[&str]| {
        let mut command = containers.podman();
        // The fixture's own storage flags come first; these override them.
        command.args(&storage).args(args);
        let output = run(command);
        assert!(
            output.status.success(),
            "podman {args:?}: {}",
            output_text(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let mount = podman(&["image", "mount", &image]);
    let seen = seen_on_disk(Path::new(&mount));
    podman(&["image", "unmount", &image]);
    podman(&["image", "rm", &image]);
    seen
}

fn umoci_seen(layout: &Path, tag: &str, bundle: &Path) -> Seen {
    let mut unpack = Command::new("umoci");
    unpack
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle);
    if !run(unpack).status.success() {
        return Seen::Refused;
    }
    seen_on_disk(&bundle.join("rootfs"))
}

#[test]
fn every_case_matches_podman_overlay_vfs_and_umoci() {
    let test = "every_case_matches_podman_overlay_vfs_and_umoci";
    let Some(containers) = Containers::new(test) else {
        return;
    };
    if !require(test, &["skopeo", "umoci"], INSTALL_HINT) || !require_root(test) {
        return;
    }
    let started = Instant::now();
    let cases = cases();
    let layout = containers.dir().join("layout");
    let images: Vec<RawImage> = cases
        .iter()
        .map(|case| RawImage {
            tag: case.name.to_string(),
            layers: case
                .layers
                .iter()
                .map(|tar| RawLayer::from_tar(tar))
                .collect(),
        })
        .collect();
    write_layout(&layout, &images);
    let mut failures = Vec::new();
    for case in &cases {
        let (model, _) = readings(&case.layers);
        let overlay = podman_seen(&containers, "overlay", &layout, case.name);
        let vfs = podman_seen(&containers, "vfs", &layout, case.name);
        let umoci = umoci_seen(&layout, case.name, &containers.dir().join(case.name));
        for (tool, found, predicted) in [
            ("podman overlay", overlay, &model.storage_overlay),
            ("podman vfs", vfs, &model.vfs),
            ("umoci", umoci, &model.umoci),
        ] {
            // umoci refuses a PAX global header, which the runtimes ignore:
            // the model follows the runtimes there (see filesystem.rs).
            if case.name == "pax_global_header" && tool == "umoci" {
                assert_eq!(found, Seen::Refused, "umoci accepts a global header now");
                continue;
            }
            if found != *predicted {
                failures.push(format!(
                    "{}: {tool} shows {found:?}, the model predicts {predicted:?}",
                    case.name
                ));
            }
        }
    }
    eprintln!(
        "{} cases against podman overlay, podman vfs and umoci in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_readings_hold_symlink_paths_within_their_budget() {
    use openshell_verify::filesystem::READING_BUDGET;
    // 9,000 symlinks under 1,000-byte paths: 9 MB of paths that can each
    // redirect a later entry, so the readings cannot drop them.
    let mut entries = Vec::new();
    let folder = [
        "s".repeat(240),
        "t".repeat(240),
        "u".repeat(240),
        "v".repeat(240),
    ]
    .join("/");
    let names: Vec<&'static str> = (0..9000)
        .map(|index| &*Box::leak(format!("{folder}/{index:05}").into_boxed_str()))
        .collect();
    for name in &names {
        entries.push(E::Pax(b'x', vec![("path", name.as_bytes().to_vec())]));
        entries.push(E::Symlink("x", "target"));
    }
    entries.push(good());
    let (found, disagreements) = readings(&[tar(&entries)]);
    assert_eq!(found.umoci, GOOD, "{disagreements:#?}");
    const { assert!(READING_BUDGET < 9000 * 1000) };
    assert!(
        disagreements
            .iter()
            .any(|reason| reason.contains("expected a supervisor image of one file")),
        "{disagreements:#?}"
    );
    // A few hundred are well within it.
    let (found, disagreements) = readings(&[tar(&entries[entries.len() - 601..])]);
    assert_eq!(found.umoci, GOOD);
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn gnu_tar_pax_sparse_files_of_every_format_are_read_with_their_holes() {
    let test = "gnu_tar_pax_sparse_files_of_every_format_are_read_with_their_holes";
    if !require(test, &["tar"], "apt-get install tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(BIN);
    // Data, a 1 MiB hole, data: GNU tar stores it sparse.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&binary()).unwrap();
        file.seek(SeekFrom::Start(1 << 20)).unwrap();
        file.write_all(b"tail").unwrap();
    }
    let expected = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
    for version in ["0.0", "0.1", "1.0"] {
        let archive = dir.path().join(format!("sparse-{version}.tar"));
        let output = Command::new("tar")
            .args(["--sparse", "--format=posix", "--owner=0", "--group=0"])
            .arg(format!("--sparse-version={version}"))
            .arg("-C")
            .arg(dir.path())
            .arg("-cf")
            .arg(&archive)
            .arg(BIN)
            .bounded_output();
        assert!(output.status.success(), "{}", output_text(&output));
        let mut filesystem = Filesystem::new(Limits::default());
        filesystem
            .apply_layer(0, &std::fs::read(&archive).unwrap()[..])
            .unwrap_or_else(|err| panic!("sparse {version}: {err}"));
        assert_eq!(
            filesystem.nodes[BIN].sha256_hex().unwrap(),
            expected,
            "sparse {version}"
        );
        assert!(filesystem.extractor_disagreements().is_empty());
    }
}
