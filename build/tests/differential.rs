//! verify's filesystem model against the real extractors, on generated
//! layer stacks.
//!
//! Each case is a random stack of 1 to 4 layers (seeded, reproducible)
//! mixing files, folders, symlinks to folders (`.`, `..`, absolute and
//! climbing targets), hard links, whiteouts, opaque markers, replaced types,
//! unsafe paths, fifos and devices. The model's predicted tree (path, type,
//! mode, owner, size, content hash, link target; the root folder too) must
//! equal the rootfs `umoci unpack` makes, and where umoci refuses the stack
//! the model must refuse it too. A sample is also compared with podman's
//! image mount (containers/storage, as CRI-O uses).
//!
//! The overlay reading (each layer applied alone into an empty folder,
//! whiteouts as 0/0 devices, merged as overlayfs merges) is compared with
//! podman's image mount under the **overlay** driver on a seeded sample:
//! what sits at `/openshell-sandbox` must match.
//!
//! All 500 seeded stacks are compared with the overlay driver, in four
//! tests of 125 (so each stays well inside the per-test deadline and two
//! run at once), and a sample of the 3,000-stack sweep beyond them.
//!
//! `OPENSHELL_DIFF_SEED=N` runs the one case with seed N (as a failure
//! prints it); `OPENSHELL_DIFF_CASES=N` runs N cases from the base seed.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::raw_layout::{RawImage, RawLayer, sha256_hex, write_layout};
use openshell_testsupport::podman::{INSTALL_HINT, output_text, run};
use openshell_testsupport::{Containers, require, require_root};
use openshell_verify::filesystem::{
    CONTAINERS_STORAGE_HANGS, Extractor, Filesystem, Limits, NodeKind,
};

/// The first seed; case `i` uses `BASE_SEED + i`.
const BASE_SEED: u64 = 0x0051_ed0f_f5ee_d000;
/// Cases run by default.
const DEFAULT_CASES: u64 = 500;
/// Cases compared with podman by default (about half load; the rest are
/// refused by both).
const PODMAN_CASES: u64 = 40;
/// Runs one seed.
const SEED_VAR: &str = "OPENSHELL_DIFF_SEED";
/// Runs this many cases.
const CASES_VAR: &str = "OPENSHELL_DIFF_CASES";
/// Runs this many cases against podman.
const PODMAN_CASES_VAR: &str = "OPENSHELL_DIFF_PODMAN_CASES";
/// The stacks compared with the overlay driver per test: a quarter of the
/// 500.
const OVERLAY_QUARTER: u64 = DEFAULT_CASES / 4;
/// The stacks of the 3,000-stack sweep beyond the first 500 compared with
/// the overlay driver: every 50th.
const OVERLAY_SWEEP_STEP: u64 = 50;
/// The size of the whole sweep.
const SWEEP_CASES: u64 = 3000;
/// Parallel unpacks (the machines have 2 cores; umoci waits on the disk
/// much of the time).
const WORKERS: usize = 3;
/// Images written into one layout.
const BATCH: usize = 25;

/// SplitMix64. Written out rather than taken from `rand`: a seed printed by
/// a failure must reproduce the same case forever, which `rand`'s seeded
/// generators do not promise across versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn percent(&mut self, chance: usize) -> bool {
        self.below(100) < chance
    }
}

/// One generated tar entry.
#[derive(Debug, Clone)]
enum GenKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    Fifo,
    Char(u32, u32),
}

#[derive(Debug, Clone)]
struct GenEntry {
    path: String,
    kind: GenKind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Folder names, and names of everything else: they overlap, so types get
/// replaced, but not so much that most stacks put files where folders go.
const DIR_NAMES: [&str; 4] = ["a", "b", "c", "d"];
const LEAF_NAMES: [&str; 4] = ["openshell-sandbox", "e", "f", "a"];
const LINK_TARGETS: [&str; 16] = [
    ".",
    "..",
    "/",
    "a",
    "b",
    "a/b",
    "../a",
    "/a",
    "/b/c",
    "../../..",
    "missing",
    "missing/deeper",
    "./c",
    "openshell-sandbox",
    "/openshell-sandbox",
    "a/../d",
];
const FILE_MODES: [u32; 7] = [0o644, 0o600, 0o755, 0o555, 0o4755, 0o2711, 0o777];
const DIR_MODES: [u32; 5] = [0o755, 0o700, 0o1777, 0o2775, 0o555];
const OWNERS: [u64; 5] = [0, 0, 1, 1000, 65534];

/// A path of `depth` components: folders, then a name from `last`.
fn gen_path(rng: &mut Rng, depth: usize, last: &[&str]) -> String {
    let mut parts: Vec<&str> = (1..depth).map(|_| *rng.pick(&DIR_NAMES)).collect();
    if depth > 0 {
        parts.push(*rng.pick(last));
    }
    parts.join("/")
}

/// Spells a path the ways tars do: `./a`, `/a` (unsafe), `a/../b`
/// (unsafe), or plain.
fn spell(rng: &mut Rng, path: &str) -> String {
    match rng.below(100) {
        0..=9 => format!("./{path}"),
        10..=13 => format!("/{path}"),
        14..=16 => format!("{}/../{path}", rng.pick(&DIR_NAMES)),
        _ => path.to_string(),
    }
}

/// The layer stack for `seed`. With `unique_names`, an entry whose name
/// (as Go's `filepath.Clean` spells it) an earlier entry of its layer had
/// is left out: containers/storage refuses such layers whole.
fn generate(seed: u64, unique_names: bool) -> Vec<Vec<GenEntry>> {
    let mut rng = Rng(seed);
    // Paths of the files, symlinks and fifos written so far: hard link
    // targets.
    let mut linkable: Vec<String> = Vec::new();
    let layer_count = 1 + rng.below(4);
    let mut layers = Vec::new();
    for _ in 0..layer_count {
        let mut entries: Vec<GenEntry> = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..1 + rng.below(8) {
            let uid = *rng.pick(&OWNERS);
            let gid = *rng.pick(&OWNERS);
            let depth = 1 + rng.below(3).min(rng.below(3));
            let roll = rng.below(100);
            let last: &[&str] = match roll {
                33..=46 => &DIR_NAMES,
                47..=64 if rng.percent(60) => &DIR_NAMES,
                _ => &LEAF_NAMES,
            };
            let path = gen_path(&mut rng, depth, last);
            let entry = match roll {
                0..=32 => {
                    let len = rng.below(48);
                    let contents = (0..len).map(|_| rng.next() as u8).collect();
                    GenEntry {
                        path: spell(&mut rng, &path),
                        kind: GenKind::File(contents),
                        mode: *rng.pick(&FILE_MODES),
                        uid,
                        gid,
                    }
                }
                33..=46 => {
                    let slash = if rng.percent(50) { "/" } else { "" };
                    GenEntry {
                        path: format!("{}{slash}", spell(&mut rng, &path)),
                        kind: GenKind::Dir,
                        mode: *rng.pick(&DIR_MODES),
                        uid,
                        gid,
                    }
                }
                47..=64 => GenEntry {
                    path: spell(&mut rng, &path),
                    kind: GenKind::Symlink(rng.pick(&LINK_TARGETS).to_string()),
                    mode: 0o777,
                    uid,
                    gid,
                },
                65..=69 => {
                    let target = if linkable.is_empty() || rng.percent(5) {
                        let depth = 1 + rng.below(2);
                        gen_path(&mut rng, depth, &LEAF_NAMES)
                    } else {
                        rng.pick(&linkable).clone()
                    };
                    let target = if rng.percent(10) {
                        format!("/{target}")
                    } else {
                        target
                    };
                    GenEntry {
                        path: spell(&mut rng, &path),
                        kind: GenKind::Hardlink(target),
                        mode: *rng.pick(&FILE_MODES),
                        uid,
                        gid,
                    }
                }
                70..=83 => {
                    let depth = rng.below(3);
                    let parent = gen_path(&mut rng, depth, &DIR_NAMES);
                    let hidden = if rng.percent(50) {
                        &DIR_NAMES[..]
                    } else {
                        &LEAF_NAMES[..]
                    };
                    let name = format!(".wh.{}", rng.pick(hidden));
                    let path = if parent.is_empty() {
                        name
                    } else {
                        format!("{parent}/{name}")
                    };
                    GenEntry {
                        path: spell(&mut rng, &path),
                        kind: GenKind::File(Vec::new()),
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                    }
                }
                84..=90 => {
                    let depth = rng.below(3);
                    let parent = gen_path(&mut rng, depth, &DIR_NAMES);
                    let path = if parent.is_empty() {
                        ".wh..wh..opq".to_string()
                    } else {
                        format!("{parent}/.wh..wh..opq")
                    };
                    GenEntry {
                        path: spell(&mut rng, &path),
                        kind: GenKind::File(Vec::new()),
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                    }
                }
                91..=93 => GenEntry {
                    path: spell(&mut rng, &path),
                    kind: GenKind::Fifo,
                    mode: *rng.pick(&FILE_MODES) & 0o777,
                    uid,
                    gid,
                },
                94..=95 => GenEntry {
                    path: spell(&mut rng, &path),
                    kind: GenKind::Char(1, *rng.pick(&[3, 5, 7])),
                    mode: 0o666,
                    uid,
                    gid,
                },
                _ => GenEntry {
                    path: "./".to_string(),
                    kind: GenKind::Dir,
                    mode: *rng.pick(&DIR_MODES),
                    uid,
                    gid,
                },
            };
            if unique_names && !names.insert(go_clean(&entry.path)) {
                continue;
            }
            if !entry.path.contains(".wh.")
                && !matches!(entry.kind, GenKind::Dir | GenKind::Hardlink(_))
            {
                linkable.push(path);
            }
            entries.push(entry);
        }
        layers.push(entries);
    }
    layers
}

/// A tar of `entries`; names are written raw, so unsafe ones survive.
fn tar_of(entries: &[GenEntry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let name = entry.path.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(1_700_000_000);
        let mut data: &[u8] = &[];
        match &entry.kind {
            GenKind::File(contents) => {
                header.set_entry_type(tar::EntryType::Regular);
                data = contents;
            }
            GenKind::Dir => header.set_entry_type(tar::EntryType::Directory),
            GenKind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_link_name(target).unwrap();
            }
            GenKind::Hardlink(target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_link_name(target).unwrap();
            }
            GenKind::Fifo => header.set_entry_type(tar::EntryType::Fifo),
            GenKind::Char(major, minor) => {
                header.set_entry_type(tar::EntryType::Char);
                header.set_device_major(*major).unwrap();
                header.set_device_minor(*minor).unwrap();
            }
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// What sits at a path, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File { size: u64, sha256: String },
    Dir,
    Symlink(String),
    Char(u64, u64),
    Block(u64, u64),
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Path (`/` for the root) to what sits there.
type Tree = BTreeMap<String, Seen>;

/// A case's result: the tree, or why the stack could not be unpacked.
type Outcome = Result<Tree, String>;

/// The model's prediction for `layers` (uncompressed tars).
fn predict(layers: &[Vec<u8>], extractor: Extractor) -> Outcome {
    let mut fs = Filesystem::with_extractor(Limits::default(), extractor);
    for (index, tar) in layers.iter().enumerate() {
        fs.apply_layer(index, &tar[..])
            .map_err(|err| err.to_string())?;
    }
    let mut tree = Tree::new();
    tree.insert("/".into(), seen(&fs.root));
    for (path, node) in &fs.nodes {
        tree.insert(format!("/{path}"), seen(node));
    }
    Ok(tree)
}

/// A node of the model, as compared.
fn seen(node: &openshell_verify::filesystem::Node) -> Seen {
    Seen {
        kind: match &node.kind {
            NodeKind::File { size, .. } => Kind::File {
                size: *size,
                sha256: node.sha256_hex().unwrap(),
            },
            NodeKind::Dir => Kind::Dir,
            NodeKind::Symlink(target) => Kind::Symlink(target.clone()),
            NodeKind::CharDevice { major, minor } => Kind::Char(*major as u64, *minor as u64),
            NodeKind::BlockDevice { major, minor } => Kind::Block(*major as u64, *minor as u64),
            NodeKind::Fifo => Kind::Fifo,
        },
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
    }
}

/// glibc's `major()`/`minor()`.
fn split_dev(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

/// What sits at `path` on disk (its `lstat` is `meta`).
fn seen_on_disk(path: &Path, meta: &std::fs::Metadata) -> Seen {
    let kind = meta.file_type();
    let seen_kind = if kind.is_dir() {
        Kind::Dir
    } else if kind.is_symlink() {
        Kind::Symlink(
            std::fs::read_link(path)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        )
    } else if kind.is_file() {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        Kind::File {
            size: meta.len(),
            sha256: sha256_hex(&bytes),
        }
    } else if kind.is_char_device() {
        let (major, minor) = split_dev(meta.rdev());
        Kind::Char(major, minor)
    } else if kind.is_block_device() {
        let (major, minor) = split_dev(meta.rdev());
        Kind::Block(major, minor)
    } else {
        Kind::Fifo
    };
    Seen {
        kind: seen_kind,
        mode: meta.mode() & 0o7777,
        uid: u64::from(meta.uid()),
        gid: u64::from(meta.gid()),
    }
}

/// The tree found on disk under `root`.
fn walk(root: &Path) -> Tree {
    fn visit(path: &Path, name: String, tree: &mut Tree) {
        let meta = std::fs::symlink_metadata(path).unwrap();
        let kind = meta.file_type();
        tree.insert(name.clone(), seen_on_disk(path, &meta));
        if kind.is_dir() {
            let mut children: Vec<_> = std::fs::read_dir(path)
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            children.sort();
            for child in children {
                let child_name = child.to_string_lossy().into_owned();
                let full = if name == "/" {
                    format!("/{child_name}")
                } else {
                    format!("{name}/{child_name}")
                };
                visit(&path.join(&child), full, tree);
            }
        }
    }
    let mut tree = Tree::new();
    visit(root, "/".into(), &mut tree);
    tree
}

/// Differences between an expected and a found outcome, one per line.
fn differences(predicted: &Outcome, found: &Outcome) -> Vec<String> {
    match (predicted, found) {
        (Err(_), Err(_)) => Vec::new(),
        (Ok(_), Err(err)) => vec![format!(
            "the model applies it, the extractor refuses: {err}"
        )],
        (Err(err), Ok(_)) => vec![format!(
            "the extractor applies it, the model refuses: {err}"
        )],
        (Ok(predicted), Ok(found)) => {
            let mut out = Vec::new();
            for (path, expected) in predicted {
                match found.get(path) {
                    None => out.push(format!("{path}: predicted {expected:?}, absent")),
                    Some(seen) if seen != expected => {
                        out.push(format!("{path}: predicted {expected:?}, found {seen:?}"));
                    }
                    Some(_) => {}
                }
            }
            for (path, seen) in found {
                if !predicted.contains_key(path) {
                    out.push(format!("{path}: not predicted, found {seen:?}"));
                }
            }
            out
        }
    }
}

/// The seeds to run: one from the environment, or a count from the base.
fn seeds(default_cases: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var(SEED_VAR) {
        let seed = seed
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={seed:?} is not a number"));
        return vec![seed];
    }
    let cases = match std::env::var(CASES_VAR) {
        Ok(cases) => cases
            .parse()
            .unwrap_or_else(|_| panic!("{CASES_VAR}={cases:?} is not a number")),
        Err(_) => default_cases,
    };
    (0..cases).map(|case| BASE_SEED + case).collect()
}

fn describe_case(layers: &[Vec<GenEntry>]) -> String {
    let mut out = String::new();
    for (index, layer) in layers.iter().enumerate() {
        out.push_str(&format!("  layer {index}:\n"));
        for entry in layer {
            out.push_str(&format!(
                "    {:?} {:?} mode {:o} owner {}:{}\n",
                entry.path, entry.kind, entry.mode, entry.uid, entry.gid
            ));
        }
    }
    out
}

/// A generated case ready to write.
struct Case {
    name: String,
    tars: Vec<Vec<u8>>,
    description: String,
}

/// Go's `filepath.Clean`.
fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn generated(seed: u64, unique_names: bool) -> Case {
    let layers = generate(seed, unique_names);
    Case {
        name: format!("seed {seed}"),
        tars: layers.iter().map(|layer| tar_of(layer)).collect(),
        description: describe_case(&layers),
    }
}

/// A raw ustar/GNU header block, for the parser cases.
fn raw_header(name: &[u8], typeflag: u8, size: u64, link: &[u8], mode: u32) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    block[..name.len()].copy_from_slice(name);
    block[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[136..148].copy_from_slice(b"14500000000\0");
    block[156] = typeflag;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..265].copy_from_slice(b"ustar\x0000");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&byte| u32::from(byte)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

/// One PAX record, `"%d %s=%s\n"`, its length counting its own digits.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut length = body + 1;
    while body + length.to_string().len() != length {
        length = body + length.to_string().len();
    }
    format!("{length} {key}={value}\n").into_bytes()
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut data = data.to_vec();
    data.resize(data.len().div_ceil(512) * 512, 0);
    data
}

/// Tars that Go's archive/tar and the `tar` crate read differently: the
/// model must read them as umoci (Go) does.
fn parser_cases() -> Vec<Case> {
    let end = vec![0u8; 1024];
    let script = b"#!/bin/sh\necho not the supervisor\n";
    let hidden = [
        raw_header(b"openshell-sandbox", b'0', script.len() as u64, b"", 0o755),
        padded(script),
    ]
    .concat();
    let long = b"openshell-sandbox\0ignored";
    let pax = [
        pax_record("path", "pax/long-name"),
        pax_record("size", "1024000"),
    ]
    .concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a folder whose declared data hides an entry",
            [
                raw_header(b"d/", b'5', hidden.len() as u64, b"", 0o755),
                hidden.clone(),
                end.clone(),
            ]
            .concat(),
        ),
        (
            "a legacy entry ending in a slash",
            [raw_header(b"x/", 0, 0, b"", 0o700), end.clone()].concat(),
        ),
        (
            "a GNU long name with a NUL inside",
            [
                raw_header(b"././@LongLink", b'L', long.len() as u64, b"", 0o644),
                padded(long),
                raw_header(b"short", b'0', 3, b"", 0o555),
                padded(b"abc"),
                end.clone(),
            ]
            .concat(),
        ),
        (
            "a PAX path and a PAX size on a symlink",
            [
                raw_header(b"PaxHeader", b'x', pax.len() as u64, b"", 0o644),
                padded(&pax),
                raw_header(b"s", b'2', 0, b"t", 0o777),
                raw_header(b"after", b'0', 1, b"", 0o644),
                padded(b"A"),
                end.clone(),
            ]
            .concat(),
        ),
        (
            "a lone zero block before another entry",
            [
                raw_header(b"one", b'0', 1, b"", 0o644),
                padded(b"1"),
                vec![0u8; 512],
                raw_header(b"two", b'0', 1, b"", 0o644),
                padded(b"2"),
                end.clone(),
            ]
            .concat(),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, tar)| Case {
            name: name.to_string(),
            description: format!("  one layer: {name}\n"),
            tars: vec![tar],
        })
        .collect()
}

/// `umoci unpack` of `tag` in `layout`: the rootfs found, or why it failed.
fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> Outcome {
    // umoci creates missing parents with 0777 minus its umask.
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "umask 022 && exec umoci unpack --image \"$1\" \"$2\"",
            "sh",
        ])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle);
    let output = run(command);
    let outcome = if output.status.success() {
        Ok(walk(&bundle.join("rootfs")))
    } else {
        Err(output_text(&output))
    };
    let _ = std::fs::remove_dir_all(bundle);
    outcome
}

/// The kind of refusal a model error names, for the summary.
fn refusal_kind(error: &str) -> &'static str {
    [
        ("not a folder", "a parent is not a folder"),
        ("does not exist", "a hard link to nothing"),
        ("which is a folder", "a hard link to a folder"),
        ("the root folder,", "a hard link to the root"),
        ("too many levels", "a symlink loop"),
        (
            "root folder that is not",
            "a root entry that is not a folder",
        ),
        ("empty name", "an empty whiteout"),
        ("zero block", "a malformed tar"),
        ("same name in one layer", "duplicate names"),
        ("making its folder", "a folder that cannot be made"),
        ("removing it", "a whiteout under a file"),
        (
            "times of this layer's folders",
            "a folder gone at its layer's end",
        ),
    ]
    .iter()
    .find(|(needle, _)| error.contains(needle))
    .map_or("other", |(_, kind)| kind)
}

/// Runs `cases` against umoci on a few threads; returns the differences
/// found, how many cases umoci unpacked, and why the others were refused
/// (by kind, as the model says).
fn against_umoci(
    cases: Vec<Case>,
    dir: &Path,
) -> (Vec<String>, usize, BTreeMap<&'static str, usize>) {
    let batches: Vec<Vec<Case>> = {
        let mut batches = Vec::new();
        let mut cases = cases.into_iter().peekable();
        while cases.peek().is_some() {
            batches.push(cases.by_ref().take(BATCH).collect());
        }
        batches
    };
    let next = AtomicUsize::new(0);
    let unpacked = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let refusals = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(index) else {
                        break;
                    };
                    let layout = dir.join(format!("layout-{index}"));
                    let images: Vec<RawImage> = batch
                        .iter()
                        .enumerate()
                        .map(|(position, case)| RawImage {
                            tag: format!("case{position}"),
                            layers: case.tars.iter().map(|tar| RawLayer::from_tar(tar)).collect(),
                        })
                        .collect();
                    write_layout(&layout, &images);
                    for (position, case) in batch.iter().enumerate() {
                        let bundle = dir.join(format!("bundle-{index}-{position}"));
                        let found = umoci_unpack(&layout, &format!("case{position}"), &bundle);
                        let predicted = predict(&case.tars, Extractor::Umoci);
                        match (&predicted, &found) {
                            (_, Ok(_)) => {
                                unpacked.fetch_add(1, Ordering::Relaxed);
                            }
                            (Err(error), Err(_)) => {
                                *refusals
                                    .lock()
                                    .unwrap()
                                    .entry(refusal_kind(error))
                                    .or_insert(0) += 1;
                            }
                            (Ok(_), Err(_)) => {}
                        }
                        let differences = differences(&predicted, &found);
                        if !differences.is_empty() {
                            failures.lock().unwrap().push(format!(
                                "{} (rerun with {SEED_VAR}=N for a seed):\n{}  differences:\n    {}",
                                case.name,
                                case.description,
                                differences.join("\n    ")
                            ));
                        }
                    }
                    let _ = std::fs::remove_dir_all(&layout);
                }
            });
        }
    });
    (
        failures.into_inner().unwrap(),
        unpacked.into_inner(),
        refusals.into_inner().unwrap(),
    )
}

#[test]
fn the_model_agrees_with_umoci_on_generated_layer_stacks() {
    let test = "the_model_agrees_with_umoci_on_generated_layer_stacks";
    if !require(test, &["umoci"], INSTALL_HINT) || !require_root(test) {
        return;
    }
    let seeds = seeds(DEFAULT_CASES);
    let count = seeds.len();
    let started = Instant::now();
    let dir = common::tempdir();
    let cases: Vec<Case> = seeds.iter().map(|&seed| generated(seed, false)).collect();
    if std::env::var(SEED_VAR).is_ok() {
        eprintln!("{}:\n{}", cases[0].name, cases[0].description);
    }
    let (failures, unpacked, refusals) = against_umoci(cases, dir.path());
    eprintln!(
        "{count} generated cases (seeds {}..={}): umoci unpacked {unpacked}, both refused {refusals:?}, {} differ; {:.1} s",
        seeds[0],
        seeds[count - 1],
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {count} cases differ from umoci:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The cases must mostly unpack, or the comparison proves little.
    if count >= 100 {
        assert!(
            unpacked * 2 > count,
            "only {unpacked} of {count} cases unpacked: the generator makes too many broken stacks"
        );
    }
}

#[test]
fn tars_that_parsers_disagree_on_are_read_as_umoci_reads_them() {
    let test = "tars_that_parsers_disagree_on_are_read_as_umoci_reads_them";
    if !require(test, &["umoci"], INSTALL_HINT) || !require_root(test) {
        return;
    }
    let dir = common::tempdir();
    let cases = parser_cases();
    let count = cases.len();
    let (failures, unpacked, _) = against_umoci(cases, dir.path());
    assert!(
        failures.is_empty(),
        "{} of {count} cases differ from umoci:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // Four unpack; the lone zero block is refused by both.
    assert_eq!(unpacked, count - 1);
}

/// The tree podman's image mount shows for `tag` of `layout`, loaded into
/// the fixture's private storage; or why the load failed.
fn podman_mount(containers: &Containers, layout: &Path, tag: &str) -> Outcome {
    let image = format!("localhost/differential:{tag}");
    let mut copy = containers.skopeo();
    copy.args(["copy", "--quiet"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(containers.storage_reference(&image));
    let output = run(copy);
    if !output.status.success() {
        return Err(output_text(&output));
    }
    let mount = containers.podman_ok(["image", "mount", &image]);
    let tree = walk(Path::new(mount.trim()));
    containers.podman_ok(["image", "unmount", &image]);
    containers.podman_ok(["image", "rm", &image]);
    Ok(tree)
}

#[test]
fn a_sample_agrees_with_podmans_image_mount() {
    let test = "a_sample_agrees_with_podmans_image_mount";
    let Some(containers) = Containers::new(test) else {
        return;
    };
    if !require(test, &["skopeo"], INSTALL_HINT) || !require_root(test) {
        return;
    }
    let cases = match std::env::var(PODMAN_CASES_VAR) {
        Ok(cases) => cases
            .parse()
            .unwrap_or_else(|_| panic!("{PODMAN_CASES_VAR}={cases:?} is not a number")),
        Err(_) => PODMAN_CASES,
    };
    let seeds: Vec<u64> = match std::env::var(SEED_VAR) {
        Ok(_) => seeds(1),
        Err(_) => (0..cases).map(|case| BASE_SEED + case * 25).collect(),
    };
    let started = Instant::now();
    let cases: Vec<Case> = seeds.iter().map(|&seed| generated(seed, true)).collect();
    if std::env::var(SEED_VAR).is_ok() {
        eprintln!("{}:\n{}", cases[0].name, cases[0].description);
    }
    let layout = containers.dir().join("layout");
    let images: Vec<RawImage> = cases
        .iter()
        .enumerate()
        .map(|(position, case)| RawImage {
            tag: format!("case{position}"),
            layers: case
                .tars
                .iter()
                .map(|tar| RawLayer::from_tar(tar))
                .collect(),
        })
        .collect();
    write_layout(&layout, &images);
    let mut failures = Vec::new();
    let mut mounted = 0;
    let mut refusals: BTreeMap<&str, usize> = BTreeMap::new();
    let mut hangs = 0;
    for (position, case) in cases.iter().enumerate() {
        // The root folder's mode is the storage driver's (vfs makes a
        // read-only layer's root 0555), not the extractor's: left out.
        let without_root = |outcome: Outcome| {
            outcome.map(|mut tree| {
                tree.remove("/");
                tree
            })
        };
        let predicted = without_root(predict(&case.tars, Extractor::ContainersStorage));
        if let Err(error) = &predicted {
            if error.contains(CONTAINERS_STORAGE_HANGS) {
                // podman would block for good: not run (see the test
                // `containers_storage_hangs_on_a_whiteout_in_a_fifo`).
                hangs += 1;
                continue;
            }
        }
        let found = without_root(podman_mount(
            &containers,
            &layout,
            &format!("case{position}"),
        ));
        mounted += usize::from(found.is_ok());
        if let (Err(error), Err(_)) = (&predicted, &found) {
            *refusals.entry(refusal_kind(error)).or_insert(0) += 1;
        }
        let differences = differences(&predicted, &found);
        if !differences.is_empty() {
            failures.push(format!(
                "{}:\n{}  differences:\n    {}",
                case.name,
                case.description,
                differences.join("\n    ")
            ));
        }
    }
    eprintln!(
        "{} cases against podman: {mounted} mounted, both refused {refusals:?}, {hangs} predicted to hang (not run), {} differ; {:.1} s",
        cases.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from podman:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn containers_storage_hangs_on_a_whiteout_in_a_fifo() {
    use std::os::unix::process::CommandExt;

    let test = "containers_storage_hangs_on_a_whiteout_in_a_fifo";
    let Some(containers) = Containers::new(test) else {
        return;
    };
    if !require(test, &["skopeo", "umoci"], INSTALL_HINT) || !require_root(test) {
        return;
    }
    let fifo = GenEntry {
        path: "a".into(),
        kind: GenKind::Fifo,
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let whiteout = GenEntry {
        path: "a/.wh.c".into(),
        kind: GenKind::File(Vec::new()),
        ..fifo.clone()
    };
    let tars = vec![tar_of(&[fifo]), tar_of(&[whiteout])];
    let predicted = predict(&tars, Extractor::ContainersStorage).unwrap_err();
    assert!(predicted.contains(CONTAINERS_STORAGE_HANGS), "{predicted}");
    let layout = containers.dir().join("layout");
    write_layout(
        &layout,
        &[RawImage {
            tag: "fifo".into(),
            layers: tars.iter().map(|tar| RawLayer::from_tar(tar)).collect(),
        }],
    );
    // umoci unpacks it: it finds nothing to remove under a fifo.
    let bundle = containers.dir().join("bundle");
    let unpacked = umoci_unpack(&layout, "fifo", &bundle).unwrap();
    assert_eq!(unpacked, predict(&tars, Extractor::Umoci).unwrap());

    // skopeo (containers/storage) blocks opening the fifo; its own process
    // group so the whole of it can be stopped.
    let mut copy = containers.skopeo();
    copy.args(["copy", "--quiet"])
        .arg(format!("oci:{}:fifo", layout.display()))
        .arg(containers.storage_reference("localhost/fifo:test"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    let mut child = copy.spawn().unwrap();
    let pgid = child.id();
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let finished = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
    let _ = child.wait();
    assert_eq!(
        finished, None,
        "skopeo copy finished ({finished:?}): containers/storage no longer hangs on a whiteout in a fifo, so the model's prediction is out of date"
    );
}

/// What podman's overlay driver shows at `/openshell-sandbox` for `tag`,
/// in storage of its own under `storage`; `Err` when the load fails.
fn podman_overlay_binary(
    containers: &Containers,
    storage: &Path,
    layout: &Path,
    tag: &str,
) -> Result<Option<Seen>, String> {
    let flags = [
        "--root".to_string(),
        storage.join("root").display().to_string(),
        "--runroot".into(),
        storage.join("runroot").display().to_string(),
        "--storage-driver".into(),
        "overlay".into(),
    ];
    let image = format!("localhost/differential-overlay:{tag}");
    let mut copy = containers.skopeo();
    copy.args(["copy", "--quiet"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!(
            "containers-storage:[overlay@{}+{}]{image}",
            storage.join("root").display(),
            storage.join("runroot").display()
        ));
    let output = run(copy);
    if !output.status.success() {
        return Err(output_text(&output));
    }
    let podman = |args: &[&str]| {
        // The fixture's vfs flags come first; these override them.
        let mut command = containers.podman();
        command.args(&flags).args(args);
        let output = run(command);
        assert!(
            output.status.success(),
            "podman {args:?}: {}",
            output_text(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let mount = podman(&["image", "mount", &image]);
    let root = Path::new(&mount);
    let binary = root.join("openshell-sandbox");
    let found = std::fs::symlink_metadata(&binary)
        .ok()
        .map(|meta| seen_on_disk(&binary, &meta));
    podman(&["image", "unmount", &image]);
    podman(&["image", "rm", &image]);
    Ok(found)
}

/// The seeds of quarter `quarter` (0 to 3) of the 500 stacks; with
/// `OPENSHELL_DIFF_SEED` the first quarter runs that one seed and the
/// others none.
fn overlay_quarter(quarter: u64) -> Vec<u64> {
    if std::env::var(SEED_VAR).is_ok() {
        return if quarter == 0 { seeds(1) } else { Vec::new() };
    }
    (quarter * OVERLAY_QUARTER..(quarter + 1) * OVERLAY_QUARTER)
        .map(|case| BASE_SEED + case)
        .collect()
}

#[test]
fn the_500_stacks_agree_with_podmans_overlay_driver_1_of_4() {
    compare_with_podmans_overlay_driver(
        "the_500_stacks_agree_with_podmans_overlay_driver_1_of_4",
        &overlay_quarter(0),
    );
}

#[test]
fn the_500_stacks_agree_with_podmans_overlay_driver_2_of_4() {
    compare_with_podmans_overlay_driver(
        "the_500_stacks_agree_with_podmans_overlay_driver_2_of_4",
        &overlay_quarter(1),
    );
}

#[test]
fn the_500_stacks_agree_with_podmans_overlay_driver_3_of_4() {
    compare_with_podmans_overlay_driver(
        "the_500_stacks_agree_with_podmans_overlay_driver_3_of_4",
        &overlay_quarter(2),
    );
}

#[test]
fn the_500_stacks_agree_with_podmans_overlay_driver_4_of_4() {
    compare_with_podmans_overlay_driver(
        "the_500_stacks_agree_with_podmans_overlay_driver_4_of_4",
        &overlay_quarter(3),
    );
}

#[test]
fn a_sample_of_the_3000_agrees_with_podmans_overlay_driver() {
    let seeds: Vec<u64> = if std::env::var(SEED_VAR).is_ok() {
        Vec::new()
    } else {
        (DEFAULT_CASES..SWEEP_CASES)
            .step_by(OVERLAY_SWEEP_STEP as usize)
            .map(|case| BASE_SEED + case)
            .collect()
    };
    compare_with_podmans_overlay_driver(
        "a_sample_of_the_3000_agrees_with_podmans_overlay_driver",
        &seeds,
    );
}

/// Compares the model's overlay reading of each seeded stack with what
/// podman's overlay driver mounts at `/openshell-sandbox`.
fn compare_with_podmans_overlay_driver(test: &str, seeds: &[u64]) {
    if seeds.is_empty() {
        eprintln!("{test}: no seeds (OPENSHELL_DIFF_SEED runs in the first quarter only)");
        return;
    }
    let Some(containers) = Containers::new(test) else {
        return;
    };
    if !require(test, &["skopeo"], INSTALL_HINT) || !require_root(test) {
        return;
    }
    let started = Instant::now();
    let cases: Vec<Case> = seeds.iter().map(|&seed| generated(seed, false)).collect();
    let layout = containers.dir().join("layout");
    let images: Vec<RawImage> = cases
        .iter()
        .enumerate()
        .map(|(position, case)| RawImage {
            tag: format!("case{position}"),
            layers: case
                .tars
                .iter()
                .map(|tar| RawLayer::from_tar(tar))
                .collect(),
        })
        .collect();
    write_layout(&layout, &images);
    let storage = containers.dir().join("overlay");
    let mut failures = Vec::new();
    let (mut compared, mut umoci_refuses, mut both_refuse, mut present) = (0, 0, 0, 0);
    for (position, case) in cases.iter().enumerate() {
        let mut model = Filesystem::new(Limits::default());
        let applied = case
            .tars
            .iter()
            .enumerate()
            .try_for_each(|(index, tar)| model.apply_layer(index, &tar[..]));
        if applied.is_err() {
            // verify refuses these whatever the overlay driver does.
            umoci_refuses += 1;
            continue;
        }
        let predicted = model
            .reading_of_binary("overlay driver")
            .unwrap()
            .map(|node| node.as_ref().map(seen));
        let found =
            podman_overlay_binary(&containers, &storage, &layout, &format!("case{position}"));
        compared += 1;
        match (&predicted, &found) {
            (Err(_), Err(_)) => both_refuse += 1,
            (Ok(predicted), Ok(found)) if predicted == found => {
                present += usize::from(found.is_some());
            }
            _ => failures.push(format!(
                "{}:\n{}  the model's overlay reading: {predicted:?}\n  podman's overlay driver: {found:?}",
                case.name, case.description
            )),
        }
    }
    eprintln!(
        "{} cases against podman's overlay driver: {compared} compared ({present} with a binary, {both_refuse} refused by both), {umoci_refuses} refused by umoci's model (not run), {} differ; {:.1} s",
        cases.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} cases differ from podman's overlay driver:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
