//! The image's root filesystem, as the extractors build it from the layers.
//!
//! Layers are applied in order to an in-memory tree of metadata (paths,
//! types, modes, owners, link targets, sizes and sha256 of every file),
//! keeping file contents only for files named like the supervisor binary.
//! The rules are those of umoci 0.4 (`oci/layer/tar_extract.go`), which the
//! differential test checks this model against on hundreds of generated
//! layer stacks; containerd and containers/storage (podman, CRI-O) agree
//! with umoci except where noted. The places where containers/storage
//! differs are listed at [`Filesystem::with_extractor`], which predicts it
//! too (checked against podman's image mount); verification follows umoci.
//!
//! - **Parsing**: layers are read as Go's `archive/tar` reads them (see
//!   [`gotar`]), since all three extractors use it.
//! - **Names**: a name is cleaned lexically, rooted at the image root
//!   (umoci's `CleanPath`): `/etc/passwd` and `a/../../etc/passwd` both land
//!   at `etc/passwd`. Such entries are still reported as unsafe.
//! - **Parent folders are resolved inside the root**, following symlinks the
//!   way `filepath-securejoin` does: an absolute link target restarts at the
//!   image root, `..` never climbs above it, a missing component is taken
//!   literally, and more than 255 links is an error. The entry's own last
//!   component is never followed. So with `d -> .`, the entry
//!   `d/openshell-sandbox` replaces `/openshell-sandbox`.
//! - **Missing parents** are created as folders, mode 0755 (umoci: 0777
//!   minus its umask, 0755 under the usual 022; containerd and
//!   containers/storage: 0755), owned 0:0; inside a setgid folder they take
//!   its group and setgid bit, as Linux's `mkdir` does.
//! - **Replacing**: whatever sits at the entry's path is removed first
//!   (a folder with everything under it), unless both are folders: then the
//!   folder stays and takes the new entry's mode and owner. A parent folder's
//!   own metadata is left as it was.
//! - **The root entry** (`./`) must be a folder; its mode and owner become
//!   the root folder's (containerd ignores it).
//! - **Hard links** are resolved like parents (the link target's folder
//!   inside the root, its last component not followed); linking to nothing,
//!   to a folder, or to the entry itself is an error. A link shares its
//!   target's inode: a later replacement or whiteout of the target leaves
//!   the link as it was. umoci ignores the link header's own mode and
//!   owner; containerd and containers/storage apply them to the inode, and
//!   the readings that follow them (see [`Filesystem::new`]) do so too.
//! - **Symbolic links** get mode 0777 whatever the header says; only owners
//!   are set on them.
//! - **Whiteouts** `.wh.NAME` remove NAME in the (resolved) folder, an opaque
//!   marker `.wh..wh..opq` empties the folder, both sparing paths this same
//!   layer wrote (and their ancestors), as the OCI spec says. umoci does
//!   this; containerd and containers/storage remove a same-layer path named
//!   by a plain whiteout too. A whiteout in a folder that is missing, or is
//!   not a folder, removes nothing.
//! - **PAX global headers** are read as Go's `archive/tar` hands them
//!   over, an entry of type `g` named by the header, and applied as
//!   containerd and containers/storage apply them: what sits at that name
//!   is removed, nothing is created. (umoci refuses such a layer; the
//!   runtimes that mount images do not.)
//! - **Anything an extractor stops on** (a parent that is a file, a symlink
//!   loop, a dangling hard link, a contiguous-file entry, a name longer
//!   than Linux allows) fails the layer with
//!   [`FilesystemError::Extraction`]: the image cannot be unpacked.
//!
//! Entries that are unsafe in an image volume are reported in
//! [`Filesystem::unsafe_entries`] and still applied as the extractor applies
//! them: absolute or `..` paths, device nodes and fifos, links whose target
//! leaves the image root, names that are not UTF-8.
//!
//! Resources are bounded by [`Limits`]: the layer count, each path's depth
//! and length (after symlinks in its folders are followed), each link
//! target's length and all targets together, and a declared size checked before
//! any of its data is read, nothing is allocated from a declared size, and
//! kept contents live in memory only up to [`contents::MEMORY_BUDGET`] in
//! all, beyond that in one anonymous temporary file.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::io::{self, Read};
use std::sync::Arc;

use openshell_contract::{BINARY_NAME, MOUNT_PATH, path_under_mount};
use sha2::{Digest, Sha256};

pub mod contents;
pub mod gotar;
pub mod limits;
pub mod overlay;

pub use contents::{ContentsReader, FileContents};
pub use limits::{
    Limit, Limits, MAX_BINARY_SIZE_FLAG, MAX_ENTRIES_FLAG, MAX_LAYERS_FLAG, MAX_PATH_DEPTH_FLAG,
    MAX_PATH_LENGTH_FLAG, MAX_SYMLINK_TARGET_FLAG, MAX_SYMLINK_TARGETS_TOTAL_FLAG,
    MAX_UNCOMPRESSED_SIZE_FLAG, parse_size,
};

use contents::{MEMORY_BUDGET, Spill};
use gotar::types;
pub use overlay::READING_BUDGET;
use overlay::Shadow;

/// In a refusal, marks what makes containers/storage hang rather than fail.
pub const CONTAINERS_STORAGE_HANGS: &str = "containers/storage hangs here";

/// Mode of the folders extractors create for parents a layer leaves out.
pub const IMPLICIT_DIR_MODE: u32 = 0o755;

/// Mode of the image root before any `./` entry: umoci creates it 0755.
pub const ROOT_DIR_MODE: u32 = 0o755;

/// Symlinks `filepath-securejoin` follows while resolving one path.
const MAX_LINK_FOLLOWS: usize = 255;

/// Unsafe entries listed one by one; more are counted in a last entry.
pub const MAX_LISTED_UNSAFE: usize = 100;

/// Removals of at most this many paths take them out one by one; larger
/// ones split the map.
const SMALL_REMOVAL: usize = 64;

/// Linux's `NAME_MAX`: longer path components cannot be created.
const NAME_MAX: usize = 255;

/// Linux's `PATH_MAX` (with its NUL): longer paths cannot be created.
const PATH_MAX: usize = 4095;

/// What kind of thing sits at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// sha256 of its bytes.
        sha256: [u8; 32],
        /// Contents, kept for files named like the binary (shared, so hard
        /// links and copies of the tree do not copy tens of MiB).
        contents: Option<Arc<FileContents>>,
    },
    /// A folder.
    Dir,
    /// A symbolic link and its target.
    Symlink(String),
    /// A character device.
    CharDevice {
        /// Major number.
        major: i64,
        /// Minor number.
        minor: i64,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: i64,
        /// Minor number.
        minor: i64,
    },
    /// A named pipe.
    Fifo,
}

impl NodeKind {
    /// "a regular file", "a folder", ..., for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::File { .. } => "a regular file",
            Self::Dir => "a folder",
            Self::Symlink(_) => "a symlink",
            Self::CharDevice { .. } => "a character device",
            Self::BlockDevice { .. } => "a block device",
            Self::Fifo => "a fifo",
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self, Self::Dir)
    }
}

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Type and type-specific data.
    pub kind: NodeKind,
    /// Permission bits including setuid/setgid/sticky (0777 for symlinks).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Index of the layer that last wrote it.
    pub layer: usize,
    /// Identity of the underlying inode: hard links share it.
    pub inode: u64,
    /// Whether its header sets the `security.capability` extended
    /// attribute (file capabilities), which containerd and
    /// containers/storage apply.
    pub file_capabilities: bool,
}

impl Node {
    /// sha256 of a regular file's bytes, lowercase hex.
    pub fn sha256_hex(&self) -> Option<String> {
        match &self.kind {
            NodeKind::File { sha256, .. } => Some(hex::encode(sha256)),
            _ => None,
        }
    }
}

/// A whiteout that removed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Index of the layer with the whiteout.
    pub layer: usize,
    /// The whiteout entry's path (shared by everything it removed).
    pub whiteout: Arc<str>,
}

/// An entry that is unsafe in an image volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeEntry {
    /// Index of its layer.
    pub layer: usize,
    /// Its path as written in the tar.
    pub path: String,
    /// Why it is unsafe, and where the extractor puts it.
    pub reason: String,
}

/// A layer that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum FilesystemError {
    /// Not a tar archive Go's `archive/tar` reads.
    #[error("layer {layer} is not a readable tar: {source}")]
    Tar {
        /// Index of the layer.
        layer: usize,
        /// What the reader found.
        #[source]
        source: gotar::TarError,
    },
    /// An entry the extractors stop on: the image cannot be unpacked.
    #[error("layer {layer}: {path}: {reason}; extractors stop unpacking the image there")]
    Extraction {
        /// Index of the layer.
        layer: usize,
        /// The entry's path as written in the tar.
        path: String,
        /// What goes wrong.
        reason: String,
    },
    /// A limit was reached.
    #[error(
        "layer {layer}: {what}: more than the {limit} of {} allows (raise it with {})",
        limit.show(*max),
        limit.flag()
    )]
    Limit {
        /// Index of the layer.
        layer: usize,
        /// Which limit.
        limit: Limit,
        /// Its value.
        max: u64,
        /// What exceeded it.
        what: String,
    },
    /// A kept file could not be written to the temporary spill file.
    #[error("layer {layer}: could not keep the contents of {path} in a temporary file: {source}")]
    Spill {
        /// Index of the layer.
        layer: usize,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The filesystem after the layers applied so far.
#[derive(Debug, Clone)]
pub struct Filesystem {
    /// Paths relative to the root (no leading `/`), every ancestor a folder
    /// in the tree, no component a symlink.
    pub nodes: BTreeMap<String, Node>,
    /// The root folder itself.
    pub root: Node,
    /// Paths removed by whiteouts, and by which.
    pub removed: BTreeMap<String, Removal>,
    /// Entries that are unsafe in an image volume: the first
    /// [`MAX_LISTED_UNSAFE`], then one entry counting the rest.
    pub unsafe_entries: Vec<UnsafeEntry>,
    unsafe_omitted: u64,
    limits: Limits,
    extractor: Extractor,
    /// Entries read, and folders created for them, in all layers.
    entries: u64,
    /// Uncompressed bytes read in all layers.
    uncompressed: u64,
    /// Kept contents held in memory, in bytes.
    in_memory: u64,
    next_inode: u64,
    spill: Arc<Spill>,
    /// Whiteouts become 0/0 character devices and opaque markers an xattr,
    /// as the overlay snapshotters apply a layer into its own folder; a
    /// hard link's header applies to its inode (containerd does this too).
    overlay: bool,
    /// Bytes of all symlink and hard link targets so far.
    link_target_bytes: u64,
    /// Sizes of all PAX sparse files so far, holes included.
    sparse_expanded: u64,
    /// The other extractors' readings of the same layers.
    shadows: Vec<Shadow>,
    /// In a reading beside umoci's: files dropped from `nodes` because
    /// they cannot reach the binary's path, kept by a hash of their path
    /// for hard links that name them.
    pruned_files: Option<PrunedFiles>,
    /// Whether a symlink (or a hard link, which may be one) was ever
    /// applied: until then every path resolves literally.
    has_symlinks: bool,
}

/// Files a reading dropped from its tree, by a keyed 64-bit hash of their
/// paths (see [`PathSet`]).
#[derive(Debug, Default, Clone)]
struct PrunedFiles {
    hasher: RandomState,
    nodes: std::collections::HashMap<u64, Node>,
}

impl Default for Filesystem {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// Counts what a layer's stream yields, refusing past the uncompressed
/// size limit (extension headers and trailing data included).
struct Counted<'a, R> {
    inner: R,
    count: &'a Cell<u64>,
    allowed: u64,
    exceeded: &'a Cell<bool>,
}

impl<R: gotar::Input> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.account(read as u64)?;
        Ok(read)
    }
}

impl<R: gotar::Input> gotar::Input for Counted<'_, R> {
    fn skip_bytes(&mut self, count: u64) -> io::Result<u64> {
        let skipped = self.inner.skip_bytes(count)?;
        self.account(skipped)?;
        Ok(skipped)
    }
}

impl<R> Counted<'_, R> {
    fn account(&mut self, bytes: u64) -> io::Result<()> {
        let total = self.count.get().saturating_add(bytes);
        self.count.set(total);
        if total > self.allowed {
            self.exceeded.set(true);
            return Err(io::Error::other("the uncompressed size limit is reached"));
        }
        Ok(())
    }
}

/// What a regular file entry carried.
#[derive(Clone)]
struct FileData {
    sha256: [u8; 32],
    contents: Option<Arc<FileContents>>,
}

/// Where a layer's file data can be found without reading it again.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Only through the stream.
    Stream,
    /// The whole tar is this buffer.
    Shared(&'a Arc<Vec<u8>>),
}

/// umoci's `CleanPath`, rooted: the components of `path` once `.` and
/// empty components are dropped and `..` is applied lexically, never
/// climbing above the root.
fn clean(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts
}

fn join(parts: &[impl AsRef<str>]) -> String {
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part.as_ref());
    }
    out
}

fn child(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Keys strictly below `dir`, from the ordered map: `dir/` up to `dir0`
/// (`'0'` follows `'/'`).
fn keys_below<V>(map: &BTreeMap<String, V>, dir: &str) -> Vec<String> {
    if dir.is_empty() {
        return map.keys().cloned().collect();
    }
    let start = format!("{dir}/");
    let end = format!("{dir}0");
    map.range(start..end).map(|(key, _)| key.clone()).collect()
}

/// Which extractor's behaviour the model follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Extractor {
    /// umoci 0.4, which containerd follows too except where the module
    /// documentation says: what verification checks.
    #[default]
    Umoci,
    /// containers/storage 1.43 (podman 4.3, CRI-O), which applies layers
    /// through the kernel inside a chroot and differs from umoci in a few
    /// documented places (see [`Filesystem::with_extractor`]).
    ContainersStorage,
}

/// Why a path operation fails, as the kernel would say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Errno {
    /// A component is missing.
    NoEnt,
    /// A component is not a folder.
    NotDir,
    /// Too many symlinks.
    Loop,
}

impl Errno {
    fn describe(self) -> &'static str {
        match self {
            Self::NoEnt => "a folder on the way does not exist",
            Self::NotDir => "a component on the way is not a folder",
            Self::Loop => "too many levels of symbolic links",
        }
    }
}

/// A set of paths kept as 64-bit keyed hashes: a hostile layer's thousands
/// of 4 KiB paths cost 8 bytes each. The key is random per set, so no layer
/// can be built to collide (the odds are about 2^-64 per pair otherwise).
#[derive(Debug, Default, Clone)]
struct PathSet {
    hasher: RandomState,
    hashes: HashSet<u64>,
}

impl PathSet {
    /// Adds `path`; false when it was there already.
    fn insert(&mut self, path: &str) -> bool {
        let hash = self.hasher.hash_one(path);
        self.hashes.insert(hash)
    }

    fn contains(&self, path: &str) -> bool {
        self.hashes.contains(&self.hasher.hash_one(path))
    }
}

/// What the layer being applied has written so far.
#[derive(Debug, Default, Clone)]
struct LayerState {
    /// umoci's `upperPaths`: resolved paths written, and their ancestors.
    upper: PathSet,
    /// containers/storage's `unpackedPaths`: entry paths as written,
    /// cleaned and rooted (`/a/b`), ancestors not included.
    unpacked: PathSet,
    /// tar-split's duplicate check: names as Go's `filepath.Clean` spells
    /// them.
    names: PathSet,
    /// containers/storage sets folder times once the layer is applied: the
    /// folder entries of the layer, as spelled.
    dirs: Vec<String>,
}

/// One entry being applied, its name cleaned and split.
struct Entry<'a> {
    layer: usize,
    header: &'a gotar::Header,
    raw_path: &'a str,
    /// The last component of the cleaned path.
    name: &'a str,
    /// The cleaned path's folder components (not resolved).
    parent: &'a [&'a str],
    mode: u32,
    uid: u64,
    gid: u64,
}

impl Entry<'_> {
    /// The layer fails on this entry.
    fn fail(&self, reason: String) -> FilesystemError {
        FilesystemError::Extraction {
            layer: self.layer,
            path: self.raw_path.to_string(),
            reason,
        }
    }
}

/// Reads until `buf` is full or the data ends; how much was read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// A path for a message: at most 80 characters of it.
fn shortened(path: &str) -> String {
    if path.chars().count() <= 80 {
        return path.to_string();
    }
    format!("{}...", path.chars().take(77).collect::<String>())
}

/// Go's `filepath.Clean`, lexical and unrooted (tar-split compares names
/// this way).
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
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

impl Filesystem {
    /// An empty filesystem (a root folder, mode 0755, owned 0:0) that
    /// applies `limits` and follows umoci, while containers/storage's vfs
    /// driver and the two overlay snapshotters read the same layers beside
    /// it: [`Filesystem::extractor_disagreements`] says where any of them
    /// fails or shows the binary differently, so verification judges by
    /// the strictest.
    pub fn new(limits: Limits) -> Self {
        let mut filesystem = Self::with_extractor(limits, Extractor::Umoci);
        filesystem.shadows = Shadow::all(limits);
        filesystem
    }

    /// An empty folder that one layer is applied into, as the overlay
    /// snapshotters do, resolving paths as `resolution` does.
    fn overlay_folder(limits: Limits, resolution: Extractor) -> Self {
        let mut filesystem = Self::with_extractor(limits, resolution);
        filesystem.overlay = true;
        filesystem
    }

    /// An empty filesystem that follows `extractor`. Where
    /// containers/storage differs from umoci it:
    ///
    /// - refuses a layer holding two entries of the same name (as Go's
    ///   `filepath.Clean` spells it: tar-split's "duplicates of file paths
    ///   not supported");
    /// - resolves paths through the kernel: a dangling symlink (or a `..`
    ///   after a missing folder) in an entry's folder fails the layer where
    ///   umoci creates the missing folders;
    /// - creates missing folders for whiteouts too;
    /// - removes a path named by a plain whiteout even when the same layer
    ///   wrote it;
    /// - walks an opaque marker's folder as written: through a symlink it
    ///   removes nothing, and it spares only entries written under that
    ///   very spelling (not their ancestors);
    /// - fails a layer on a plain whiteout (or an opaque marker two levels
    ///   down) under a file, where umoci ignores it;
    /// - applies a hard link's header owner, and its mode unless the target
    ///   is a symlink, to the inode the link shares with its target;
    /// - sets the times of a layer's folders once the layer is applied, and
    ///   fails it when one is gone by then (whited out or replaced later in
    ///   the same layer, or now behind a dangling symlink);
    /// - hangs on a plain whiteout in a fifo (`a` a fifo, then `a/.wh.x`):
    ///   `os.RemoveAll` opens the fifo as a folder and blocks forever. The
    ///   model refuses such a layer with [`CONTAINERS_STORAGE_HANGS`] in the
    ///   reason.
    ///
    /// The root folder's own mode is the storage driver's (vfs makes a
    /// read-only layer's root 0555) until a `./` entry sets it.
    pub fn with_extractor(limits: Limits, extractor: Extractor) -> Self {
        Self {
            nodes: BTreeMap::new(),
            root: Node {
                kind: NodeKind::Dir,
                mode: ROOT_DIR_MODE,
                uid: 0,
                gid: 0,
                layer: 0,
                inode: 0,
                file_capabilities: false,
            },
            removed: BTreeMap::new(),
            unsafe_entries: Vec::new(),
            unsafe_omitted: 0,
            limits,
            extractor,
            entries: 0,
            uncompressed: 0,
            in_memory: 0,
            next_inode: 1,
            spill: Arc::new(Spill::default()),
            overlay: false,
            link_target_bytes: 0,
            sparse_expanded: 0,
            shadows: Vec::new(),
            pruned_files: None,
            has_symlinks: false,
        }
    }

    /// The limits it applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The extractor it follows.
    pub fn extractor(&self) -> Extractor {
        self.extractor
    }

    /// Uncompressed bytes read in all layers so far.
    pub fn uncompressed_size(&self) -> u64 {
        self.uncompressed
    }

    /// Entries read (and folders created for them) in all layers so far.
    pub fn entry_count(&self) -> u64 {
        self.entries
    }

    /// The node at `path` (relative, no leading `/`; `""` is the root).
    pub fn node(&self, path: &str) -> Option<&Node> {
        if path.is_empty() {
            Some(&self.root)
        } else {
            self.nodes.get(path)
        }
    }

    /// Applies one layer's uncompressed tar stream on top of what is there,
    /// then reads the stream to its end (so a caller hashing it sees every
    /// byte, and the size limit covers trailing data too).
    pub fn apply_layer(&mut self, layer: usize, tar: impl Read) -> Result<(), FilesystemError> {
        self.apply(layer, gotar::Stream(tar), Source::Stream)
    }

    /// Applies a tar held in memory; kept contents point into `tar` instead
    /// of being copied.
    pub fn apply_layer_shared(
        &mut self,
        layer: usize,
        tar: &Arc<Vec<u8>>,
    ) -> Result<(), FilesystemError> {
        self.apply(layer, &tar[..], Source::Shared(tar))
    }

    fn apply<R: gotar::Input>(
        &mut self,
        layer: usize,
        input: R,
        source: Source<'_>,
    ) -> Result<(), FilesystemError> {
        if layer as u64 >= self.limits.max_layers {
            return Err(FilesystemError::Limit {
                layer,
                limit: Limit::Layers,
                max: self.limits.max_layers,
                what: format!(
                    "the image has more than {} layers (overlayfs stacks at most 500, so containerd and CRI-O cannot mount it)",
                    self.limits.max_layers
                ),
            });
        }
        let count = Cell::new(0u64);
        let exceeded = Cell::new(false);
        let allowed = self
            .limits
            .max_uncompressed_size
            .saturating_sub(self.uncompressed);
        let counted = Counted {
            inner: input,
            count: &count,
            allowed,
            exceeded: &exceeded,
        };
        let mut reader = gotar::Reader::new(counted);
        let result = self.apply_entries(layer, &mut reader, source, allowed);
        let result = result.and_then(|()| {
            // What follows the end of the archive: counted, and read for the
            // caller's digest.
            let mut rest = reader.into_inner();
            io::copy(&mut rest, &mut io::sink())
                .map(|_| ())
                .map_err(|source| FilesystemError::Tar {
                    layer,
                    source: gotar::TarError::Io {
                        offset: count.get(),
                        source,
                    },
                })
        });
        self.uncompressed = self.uncompressed.saturating_add(count.get());
        match result {
            Err(FilesystemError::Tar { .. }) if exceeded.get() => Err(FilesystemError::Limit {
                layer,
                limit: Limit::UncompressedSize,
                max: self.limits.max_uncompressed_size,
                what: format!(
                    "the layers' tar streams go on past {} bytes",
                    self.limits.max_uncompressed_size
                ),
            }),
            other => other,
        }
    }

    fn apply_entries<R: gotar::Input>(
        &mut self,
        layer: usize,
        reader: &mut gotar::Reader<Counted<'_, R>>,
        source: Source<'_>,
        allowed: u64,
    ) -> Result<(), FilesystemError> {
        let mut state = LayerState::default();
        let mut shadows = std::mem::take(&mut self.shadows);
        for shadow in &mut shadows {
            shadow.begin_layer(self.limits);
        }
        let result =
            self.apply_entries_with(layer, reader, source, allowed, &mut state, &mut shadows);
        let result = result.and_then(|()| self.finish_layer(layer, &state));
        if result.is_ok() {
            for shadow in &mut shadows {
                shadow.end_layer(layer);
            }
        }
        self.shadows = shadows;
        result
    }

    fn apply_entries_with<R: gotar::Input>(
        &mut self,
        layer: usize,
        reader: &mut gotar::Reader<Counted<'_, R>>,
        source: Source<'_>,
        allowed: u64,
        state: &mut LayerState,
        shadows: &mut [Shadow],
    ) -> Result<(), FilesystemError> {
        while let Some(header) = reader
            .next_entry()
            .map_err(|source| FilesystemError::Tar { layer, source })?
        {
            self.count_entry(layer)?;
            self.check_link_target(layer, &header)?;
            let raw_path = String::from_utf8_lossy(&header.name).into_owned();
            let cleaned = clean(&raw_path);
            let name = cleaned.last().copied().unwrap_or("");
            let is_whiteout = name.starts_with(".wh.");
            let data = if header.typeflag == types::REGULAR && !is_whiteout {
                let kept = name == BINARY_NAME;
                if kept && header.size > self.limits.max_binary_size {
                    return Err(FilesystemError::Limit {
                        layer,
                        limit: Limit::BinarySize,
                        max: self.limits.max_binary_size,
                        what: format!(
                            "{raw_path} declares {} bytes in its tar header (refused before reading it)",
                            header.size
                        ),
                    });
                }
                // A sparse file's holes are read (as zeros) and hashed too:
                // they count against the limit like stored bytes.
                let reach = reader
                    .offset()
                    .saturating_add(header.size)
                    .saturating_add(self.sparse_expanded);
                if header.sparse {
                    self.sparse_expanded = self.sparse_expanded.saturating_add(header.size);
                }
                if reach > allowed {
                    let total = self.uncompressed.saturating_add(reach);
                    return Err(FilesystemError::Limit {
                        layer,
                        limit: Limit::UncompressedSize,
                        max: self.limits.max_uncompressed_size,
                        what: format!(
                            "{raw_path} declares {} bytes in its tar header, which would bring the layers to {total} bytes (refused before reading it)",
                            header.size
                        ),
                    });
                }
                Some(self.read_file(layer, &raw_path, &header, reader, source, kept)?)
            } else {
                None
            };
            for shadow in shadows.iter_mut() {
                shadow.entry(layer, &header, &raw_path, &cleaned, data.clone());
            }
            self.apply_entry(layer, &header, &raw_path, &cleaned, data, state)?;
        }
        Ok(())
    }

    /// Refuses a symlink or hard link target over its limit, or one that
    /// brings all targets over theirs.
    fn check_link_target(
        &mut self,
        layer: usize,
        header: &gotar::Header,
    ) -> Result<(), FilesystemError> {
        if header.typeflag != types::SYMLINK && header.typeflag != types::LINK {
            return Ok(());
        }
        let length = header.linkname.len() as u64;
        let path = String::from_utf8_lossy(&header.name);
        if length > self.limits.max_symlink_target {
            return Err(FilesystemError::Limit {
                layer,
                limit: Limit::SymlinkTarget,
                max: self.limits.max_symlink_target,
                what: format!("{path} has a link target of {length} bytes"),
            });
        }
        self.link_target_bytes = self.link_target_bytes.saturating_add(length);
        if self.link_target_bytes > self.limits.max_symlink_targets_total {
            return Err(FilesystemError::Limit {
                layer,
                limit: Limit::SymlinkTargetsTotal,
                max: self.limits.max_symlink_targets_total,
                what: format!(
                    "{path} brings the link targets of all layers to {} bytes",
                    self.link_target_bytes
                ),
            });
        }
        Ok(())
    }

    /// Refuses a path deeper or longer than the limits allow.
    fn check_path(
        &self,
        layer: usize,
        raw_path: &str,
        parts: &[impl AsRef<str>],
    ) -> Result<(), FilesystemError> {
        let depth = parts.len() as u64;
        if depth > self.limits.max_path_depth {
            return Err(FilesystemError::Limit {
                layer,
                limit: Limit::PathDepth,
                max: self.limits.max_path_depth,
                what: format!("{raw_path} lands {depth} components deep"),
            });
        }
        let length = parts
            .iter()
            .map(|part| part.as_ref().len() as u64 + 1)
            .sum::<u64>();
        if length > self.limits.max_path_length {
            return Err(FilesystemError::Limit {
                layer,
                limit: Limit::PathLength,
                max: self.limits.max_path_length,
                what: format!(
                    "{} lands at a path of {length} bytes, which with the node's storage prefix nears or passes Linux's PATH_MAX",
                    shortened(raw_path)
                ),
            });
        }
        Ok(())
    }

    /// What an extractor does once a layer's entries are applied.
    fn finish_layer(&mut self, layer: usize, state: &LayerState) -> Result<(), FilesystemError> {
        // containers/storage then sets each folder entry's times, through
        // the path as spelled: one that is gone by now fails the layer.
        for dir in &state.dirs {
            let parts = clean(dir);
            let there = self
                .resolve_kernel(&parts, true)
                .map(|stack| self.node(&join(&stack)).is_some());
            if !matches!(there, Ok(true)) {
                let why = match there {
                    Err(errno) => errno.describe(),
                    Ok(_) => "it is no longer there",
                };
                return Err(FilesystemError::Extraction {
                    layer,
                    path: dir.clone(),
                    reason: format!(
                        "containers/storage sets the times of this layer's folders last, and this one fails: {why}"
                    ),
                });
            }
        }
        Ok(())
    }

    fn count_entry(&mut self, layer: usize) -> Result<(), FilesystemError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(FilesystemError::Limit {
                layer,
                limit: Limit::Entries,
                max: self.limits.max_entries,
                what: format!(
                    "the layers hold {} entries (tar entries and the folders extractors create for them)",
                    self.entries
                ),
            });
        }
        Ok(())
    }

    /// Hashes a regular file's data, keeping it when it is named like the
    /// binary: in memory within the budget, else in the spill file.
    fn read_file<R: gotar::Input>(
        &mut self,
        layer: usize,
        raw_path: &str,
        header: &gotar::Header,
        reader: &mut gotar::Reader<Counted<'_, R>>,
        source: Source<'_>,
        kept: bool,
    ) -> Result<FileData, FilesystemError> {
        let start = reader.offset();
        let io_error = |err: io::Error| FilesystemError::Tar {
            layer,
            source: gotar::TarError::Io {
                offset: start,
                source: err,
            },
        };
        // A sparse file's bytes are not a range of the tar.
        if let (Source::Shared(buffer), false) = (source, header.sparse) {
            let start = usize::try_from(reader.offset()).ok();
            let len = usize::try_from(header.size).ok();
            if let Some(contents) = start
                .zip(len)
                .and_then(|(start, len)| FileContents::shared(Arc::clone(buffer), start, len))
            {
                let sha256 = contents.sha256_bytes();
                // The reader skips the data when it moves to the next entry.
                // What is kept is what a stream keeps (see below).
                let elf = contents
                    .in_memory()
                    .is_some_and(|bytes| bytes.starts_with(b"\x7fELF"))
                    && header.size <= self.limits.max_binary_size;
                return Ok(FileData {
                    sha256,
                    contents: (kept || elf).then(|| Arc::new(contents)),
                });
            }
        }
        let mut first = Vec::new();
        if !kept {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut data = reader.data();
            let read = read_up_to(&mut data, &mut buf).map_err(&io_error)?;
            // An ELF file of a size the binary may have is kept too: a hard
            // link named like the binary may name it later, and then its
            // bytes are what runs.
            if buf[..read].starts_with(b"\x7fELF") && header.size <= self.limits.max_binary_size {
                first = buf[..read].to_vec();
            } else {
                hasher.update(&buf[..read]);
                loop {
                    let read = data.read(&mut buf).map_err(&io_error)?;
                    if read == 0 {
                        break;
                    }
                    hasher.update(&buf[..read]);
                }
                return Ok(FileData {
                    sha256: hasher.finalize().into(),
                    contents: None,
                });
            }
        }
        let size = header.size;
        let contents = if self.in_memory.saturating_add(size) <= MEMORY_BUDGET {
            self.in_memory += size;
            // Within the budget, so the capacity is bounded by it.
            let capacity = usize::try_from(size).unwrap_or(0);
            let mut data = io::Cursor::new(first).chain(reader.data());
            FileContents::read_to_memory(&mut data, capacity).map_err(&io_error)?
        } else {
            let spill = Arc::clone(&self.spill);
            let mut data = io::Cursor::new(first).chain(reader.data());
            FileContents::spill(&spill, &mut data, size).map_err(|source| match source.kind() {
                io::ErrorKind::UnexpectedEof | io::ErrorKind::Other => io_error(source),
                _ => FilesystemError::Spill {
                    layer,
                    path: raw_path.to_string(),
                    source,
                },
            })?
        };
        Ok(FileData {
            sha256: contents.sha256_bytes(),
            contents: Some(Arc::new(contents)),
        })
    }

    fn report(&mut self, layer: usize, raw_path: &str, reason: String) {
        // Past the first ones, a count: the list stays small whatever a
        // hostile layer holds.
        if self.unsafe_entries.len() < MAX_LISTED_UNSAFE {
            self.unsafe_entries.push(UnsafeEntry {
                layer,
                path: raw_path.to_string(),
                reason,
            });
            return;
        }
        self.unsafe_omitted += 1;
        let summary = UnsafeEntry {
            layer,
            path: "...".into(),
            reason: format!(
                "and {} more unsafe entries, not listed",
                self.unsafe_omitted
            ),
        };
        if self.unsafe_entries.len() == MAX_LISTED_UNSAFE {
            self.unsafe_entries.push(summary);
        } else if let Some(last) = self.unsafe_entries.last_mut() {
            *last = summary;
        }
    }

    fn new_inode(&mut self) -> u64 {
        self.next_inode += 1;
        self.next_inode
    }

    /// Resolves `parts` inside the root as `filepath-securejoin` does
    /// (umoci): symlinks followed, an absolute target restarting at the
    /// root, `..` lexical and never above the root, missing components
    /// taken literally, more than 255 links an error.
    fn resolve<S: AsRef<str>>(&self, parts: &[S]) -> Result<Vec<String>, Errno> {
        let pending = parts.iter().map(|part| part.as_ref().to_string()).collect();
        self.follow(pending, MAX_LINK_FOLLOWS, false)
    }

    /// Resolves `parts` as the kernel does inside a chroot
    /// (containers/storage): every component but the last must be a folder
    /// once symlinks are followed (at most 40), `..` is physical, and the
    /// last component is followed only when `follow_last`. The last
    /// component may be missing; the caller looks it up.
    fn resolve_kernel<S: AsRef<str>>(
        &self,
        parts: &[S],
        follow_last: bool,
    ) -> Result<Vec<String>, Errno> {
        const MAX_KERNEL_FOLLOWS: usize = 40;
        let Some((last, init)) = parts.split_last() else {
            return Ok(Vec::new());
        };
        let mut pending: VecDeque<String> =
            init.iter().map(|part| part.as_ref().to_string()).collect();
        if follow_last {
            pending.push_back(last.as_ref().to_string());
        }
        let mut stack = self.follow(pending, MAX_KERNEL_FOLLOWS, true)?;
        if !follow_last {
            self.check_dir(&stack)?;
            stack.push(last.as_ref().to_string());
        }
        Ok(stack)
    }

    /// Walks `pending` components from the root, following symlinks (at
    /// most `max_follows`; an absolute target restarts at the root) and
    /// never rising above the root. With `require_dirs`, as the kernel
    /// does, what has been walked must be a folder before each further
    /// component; without, a missing or non-folder parent is taken
    /// literally, as securejoin does.
    fn follow(
        &self,
        mut pending: VecDeque<String>,
        max_follows: usize,
        require_dirs: bool,
    ) -> Result<Vec<String>, Errno> {
        let mut stack: Vec<String> = Vec::new();
        let mut follows = 0;
        while let Some(part) = pending.pop_front() {
            if require_dirs {
                self.check_dir(&stack)?;
            }
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let key = child(&join(&stack), &part);
            if let Some(Node {
                kind: NodeKind::Symlink(target),
                ..
            }) = self.nodes.get(&key)
            {
                follows += 1;
                if follows > max_follows {
                    return Err(Errno::Loop);
                }
                if target.starts_with('/') {
                    stack.clear();
                }
                for piece in target.split('/').rev() {
                    pending.push_front(piece.to_string());
                }
                continue;
            }
            stack.push(part);
        }
        Ok(stack)
    }

    /// `ENOTDIR` or `ENOENT` unless `stack` names a folder.
    fn check_dir(&self, stack: &[String]) -> Result<(), Errno> {
        let key = join(stack);
        match self.node(&key).or_else(|| self.pruned(&key)) {
            Some(node) if node.kind.is_dir() => Ok(()),
            Some(_) => Err(Errno::NotDir),
            None => Err(Errno::NoEnt),
        }
    }

    /// `lstat` of `parts` through the kernel: the key of what is there, or
    /// `None` when the path does not exist.
    fn kernel_lstat(&self, parts: &[&str]) -> Result<Option<String>, Errno> {
        match self.resolve_kernel(parts, false) {
            Ok(stack) => {
                let key = join(&stack);
                Ok(self.node(&key).map(|_| key))
            }
            Err(Errno::NoEnt) => Ok(None),
            Err(errno) => Err(errno),
        }
    }

    /// Creates a missing folder at `key`: mode 0755, owned 0:0, or, inside
    /// a setgid folder, with its group and setgid bit (Linux `mkdir`).
    fn create_implicit_dir(&mut self, layer: usize, key: String) -> Result<(), FilesystemError> {
        self.count_entry(layer)?;
        let parent = key.rsplit_once('/').map_or("", |(parent, _)| parent);
        let (mode, gid) = match self.node(parent) {
            Some(parent) if parent.mode & 0o2000 != 0 => (IMPLICIT_DIR_MODE | 0o2000, parent.gid),
            _ => (IMPLICIT_DIR_MODE, 0),
        };
        let inode = self.new_inode();
        self.removed.remove(&key);
        self.nodes.insert(
            key,
            Node {
                kind: NodeKind::Dir,
                mode,
                uid: 0,
                gid,
                layer,
                inode,
                file_capabilities: false,
            },
        );
        Ok(())
    }

    /// umoci's `MkdirAll` of a resolved folder: creates what is missing,
    /// fails where a component is not a folder.
    fn make_parents(
        &mut self,
        layer: usize,
        raw_path: &str,
        dir: &[String],
    ) -> Result<(), FilesystemError> {
        for depth in 1..=dir.len() {
            let key = join(&dir[..depth]);
            match self.nodes.get(&key) {
                Some(node) if node.kind.is_dir() => {}
                Some(node) => {
                    return Err(FilesystemError::Extraction {
                        layer,
                        path: raw_path.to_string(),
                        reason: format!(
                            "its folder /{key} is {}, not a folder",
                            node.kind.describe()
                        ),
                    });
                }
                // A file a reading skipped is still in the way.
                None if self.pruned(&key).is_some() => {
                    return Err(FilesystemError::Extraction {
                        layer,
                        path: raw_path.to_string(),
                        reason: format!("its folder /{key} is a regular file, not a folder"),
                    });
                }
                None => self.create_implicit_dir(layer, key)?,
            }
        }
        Ok(())
    }

    /// Go's `os.MkdirAll` of an unresolved path, through the kernel
    /// (containers/storage), for `entry`'s folder.
    fn mkdir_all_kernel(
        &mut self,
        entry: &Entry<'_>,
        parts: &[&str],
    ) -> Result<(), FilesystemError> {
        let fail = |errno: Errno| entry.fail(format!("making its folder: {}", errno.describe()));
        if let Ok(stack) = self.resolve_kernel(parts, true) {
            match self.node(&join(&stack)) {
                Some(node) if node.kind.is_dir() => return Ok(()),
                Some(_) => return Err(fail(Errno::NotDir)),
                None => {}
            }
        }
        let Some((_, init)) = parts.split_last() else {
            return Ok(());
        };
        if !init.is_empty() {
            self.mkdir_all_kernel(entry, init)?;
        }
        // mkdir: the folder resolved, the last component not followed; an
        // existing non-folder (a dangling symlink too) makes it fail.
        let stack = self.resolve_kernel(parts, false).map_err(fail)?;
        let key = join(&stack);
        match self.node(&key) {
            Some(node) if node.kind.is_dir() => Ok(()),
            Some(_) => Err(fail(Errno::NotDir)),
            None => self.create_implicit_dir(entry.layer, key),
        }
    }

    /// Moves `path` (unless `below_only`) and everything below it out of
    /// the tree, keys and all (no copies).
    fn take_tree(&mut self, path: &str, below_only: bool) -> BTreeMap<String, Node> {
        if path.is_empty() {
            return std::mem::take(&mut self.nodes);
        }
        // The range holds `path`, `path/...`, and names that merely start
        // with `path` and a byte before '/' (`path-x`), which stay, as does
        // `path` itself when only what is below it is wanted.
        let end = format!("{path}0");
        let range = (
            std::ops::Bound::Included(path),
            std::ops::Bound::Excluded(end.as_str()),
        );
        let wanted = |key: &str| {
            if key == path {
                !below_only
            } else {
                key[path.len()..].starts_with('/')
            }
        };
        if self
            .nodes
            .range::<str, _>(range)
            .nth(SMALL_REMOVAL)
            .is_none()
        {
            // A few keys: removed one by one (splitting and re-appending
            // the map would cost its whole size for each of many small
            // removals).
            let doomed: Vec<String> = self
                .nodes
                .range::<str, _>(range)
                .map(|(key, _)| key)
                .filter(|key| wanted(key))
                .cloned()
                .collect();
            let mut taken = BTreeMap::new();
            for key in doomed {
                if let Some(node) = self.nodes.remove(&key) {
                    taken.insert(key, node);
                }
            }
            return taken;
        }
        // Many: the range is split off whole, without copying its keys.
        let mut taken = self.nodes.split_off(path);
        let mut rest = taken.split_off(end.as_str());
        self.nodes.append(&mut rest);
        let strangers: Vec<String> = taken.keys().filter(|key| !wanted(key)).cloned().collect();
        for key in strangers {
            if let Some(node) = taken.remove(&key) {
                self.nodes.insert(key, node);
            }
        }
        taken
    }

    /// Removes `path` and everything below it, recording the removals when
    /// a whiteout did it.
    fn remove_tree(&mut self, path: &str, whiteout: Option<(usize, &str)>) {
        let doomed = self.take_tree(path, false);
        if let Some((layer, whiteout)) = whiteout {
            self.record_removals(doomed, layer, whiteout);
        }
    }

    fn record_removals(&mut self, doomed: BTreeMap<String, Node>, layer: usize, whiteout: &str) {
        let whiteout: Arc<str> = Arc::from(whiteout);
        for (key, _) in doomed {
            self.removed.insert(
                key,
                Removal {
                    layer,
                    whiteout: Arc::clone(&whiteout),
                },
            );
        }
    }

    /// Applies one entry (its data, for a regular file, already read).
    /// In a reading beside umoci's: skips an entry that cannot reach the
    /// binary's path (a regular file away from it, while no symlink can
    /// redirect it), keeping only what later entries need of it: its node
    /// by a hash of its path (for hard links, and as a file in the way) and
    /// its name for containers/storage's duplicate check. True when
    /// skipped.
    fn skip_unreachable(
        &mut self,
        layer: usize,
        header: &gotar::Header,
        raw_path: &str,
        cleaned: &[&str],
        data: Option<&FileData>,
        state: &mut LayerState,
    ) -> bool {
        let binary = openshell_contract::LAYER_BINARY_PATH;
        // Only regular files: they are the bulk of an image, and a file
        // skipped is still found (by a hash of its path) where a later
        // entry would need it as a folder or a whiteout would mknod over it.
        let plain = header.typeflag == types::REGULAR;
        let (Some(first), Some(last)) = (cleaned.first(), cleaned.last()) else {
            return false;
        };
        if self.has_symlinks
            || !plain
            || *first == binary
            || *last == binary
            || last.starts_with(".wh.")
            || self.extractor == Extractor::ContainersStorage
                && !state.names.insert(&go_clean(raw_path))
        {
            // (A duplicate name is left for apply_entry to refuse: it was
            // only inserted here when the entry is skipped.)
            return false;
        }
        // Its folders are made as the extractors make them (and a file in
        // the way fails it as it fails them): no symlink can redirect them.
        let parent: Vec<String> = cleaned[..cleaned.len() - 1]
            .iter()
            .map(|part| (*part).to_string())
            .collect();
        if self.make_parents(layer, raw_path, &parent).is_err() {
            return false;
        }
        if let (types::REGULAR, Some(data)) = (header.typeflag, data) {
            let node = Node {
                kind: NodeKind::File {
                    size: header.size,
                    sha256: data.sha256,
                    contents: data.contents.clone(),
                },
                mode: u32::try_from(header.mode & 0o7777).unwrap_or(0),
                uid: u64::try_from(header.uid).unwrap_or(0),
                gid: u64::try_from(header.gid).unwrap_or(0),
                layer,
                inode: self.new_inode(),
                file_capabilities: false,
            };
            let key = join(cleaned);
            self.remove_tree(&key, None);
            let pruned = self.pruned_files.get_or_insert_with(PrunedFiles::default);
            pruned.nodes.insert(pruned.hasher.hash_one(&key), node);
        }
        true
    }

    fn apply_entry(
        &mut self,
        layer: usize,
        header: &gotar::Header,
        raw_path: &str,
        cleaned: &[&str],
        data: Option<FileData>,
        state: &mut LayerState,
    ) -> Result<(), FilesystemError> {
        let extraction = |reason: String| FilesystemError::Extraction {
            layer,
            path: raw_path.to_string(),
            reason,
        };
        if matches!(header.typeflag, types::SYMLINK | types::LINK) {
            self.has_symlinks = true;
        }
        let landing = format!("/{}", join(cleaned));
        if std::str::from_utf8(&header.name).is_err() {
            self.report(
                layer,
                raw_path,
                "the name is not UTF-8 (expected UTF-8 paths)".into(),
            );
        }
        if raw_path.starts_with('/') {
            self.report(
                layer,
                raw_path,
                format!(
                    "absolute path (expected a path relative to the image root); extractors write it at {landing}"
                ),
            );
        } else if raw_path.split('/').any(|part| part == "..") {
            self.report(
                layer,
                raw_path,
                format!(
                    "path contains '..' (expected no parent-folder steps); extractors write it at {landing}"
                ),
            );
        }
        self.check_path(layer, raw_path, cleaned)?;
        if cleaned.iter().any(|part| part.len() > NAME_MAX) || landing.len() > PATH_MAX {
            return Err(extraction(
                "the name is longer than Linux allows (NAME_MAX 255, PATH_MAX 4096)".into(),
            ));
        }
        if self.extractor == Extractor::ContainersStorage
            && !state.names.insert(&go_clean(raw_path))
        {
            return Err(extraction(
                "a second entry of the same name in one layer, which containers/storage refuses (\"duplicates of file paths not supported\")"
                    .into(),
            ));
        }
        let mode = u32::try_from(header.mode & 0o7777).unwrap_or(0);
        let owner = |id: i64, what: &str| {
            u64::try_from(id).map_err(|_| {
                extraction(format!("negative {what} {id}, which extractors do not set"))
            })
        };
        let uid = owner(header.uid, "uid")?;
        let gid = owner(header.gid, "gid")?;

        let Some((&name, parent)) = cleaned.split_last() else {
            // The root itself ("./"); containerd skips a global header
            // there.
            if header.typeflag == types::PAX_GLOBAL {
                return Ok(());
            }
            if header.typeflag != types::DIR {
                return Err(extraction(
                    "an entry for the root folder that is not a folder".into(),
                ));
            }
            self.root.mode = mode;
            self.root.uid = uid;
            self.root.gid = gid;
            self.root.layer = layer;
            return Ok(());
        };
        let entry = Entry {
            layer,
            header,
            raw_path,
            name,
            parent,
            mode,
            uid,
            gid,
        };
        match self.extractor {
            Extractor::Umoci => self.apply_umoci(&entry, data, state),
            Extractor::ContainersStorage => self.apply_containers_storage(&entry, data, state),
        }
    }

    /// An entry as umoci unpacks it.
    fn apply_umoci(
        &mut self,
        entry: &Entry<'_>,
        data: Option<FileData>,
        state: &mut LayerState,
    ) -> Result<(), FilesystemError> {
        let dir = self
            .resolve(entry.parent)
            .map_err(|errno| entry.fail(format!("its folder: {}", errno.describe())))?;
        self.check_path(entry.layer, entry.raw_path, &dir)?;
        let dir_key = join(&dir);
        if let Some(hidden) = entry.name.strip_prefix(".wh.") {
            if self.overlay {
                // containerd's applyNaive makes the folder first (mkparent),
                // then OverlayConvertWhiteout writes the device or xattr.
                self.make_parents(entry.layer, entry.raw_path, &dir)?;
                return self.whiteout_overlay(entry, &dir_key, hidden);
            }
            return self.whiteout_umoci(entry, &dir_key, hidden, &state.upper);
        }
        self.make_parents(entry.layer, entry.raw_path, &dir)?;
        let path = child(&dir_key, entry.name);
        let existing_dir = self
            .nodes
            .get(&path)
            .filter(|node| node.kind.is_dir())
            .map(|node| node.inode);
        if existing_dir.is_none() || entry.header.typeflag != types::DIR {
            self.remove_tree(&path, None);
        }
        if entry.header.typeflag == types::PAX_GLOBAL {
            // containerd and containers/storage remove what is at a global
            // header's name, then ignore it ("PAX Global Extended Headers
            // found and ignored", pkg/archive/tar.go). umoci itself refuses
            // the layer; production extractors are followed here.
            return Ok(());
        }
        let node = if entry.header.typeflag == types::LINK {
            let target = self.link_target(entry)?;
            let target_parts = clean(&target);
            let Some((&target_name, target_parent)) = target_parts.split_last() else {
                return Err(entry.fail(format!(
                    "a hard link to {target:?}, the root folder, which Linux refuses"
                )));
            };
            let target_dir = self.resolve(target_parent).map_err(|errno| {
                entry.fail(format!(
                    "the folder of its hard link target {target}: {}",
                    errno.describe()
                ))
            })?;
            let found = self.lookup(&child(&join(&target_dir), target_name));
            let node = Self::linked(entry, &target, found)?;
            if self.overlay {
                // containerd's createTarFile lchowns and lchmods the link,
                // which is the shared inode.
                self.apply_link_header(entry, node)
            } else {
                node
            }
        } else {
            self.new_node(entry, data, existing_dir, &dir)?
        };
        self.removed.remove(&path);
        self.nodes.insert(path.clone(), node);
        let mut ancestor = path.as_str();
        loop {
            state.upper.insert(ancestor);
            match ancestor.rsplit_once('/') {
                Some((parent, _)) => ancestor = parent,
                None => break,
            }
        }
        Ok(())
    }

    /// An entry as containers/storage unpacks it (see
    /// [`Filesystem::with_extractor`]).
    fn apply_containers_storage(
        &mut self,
        entry: &Entry<'_>,
        data: Option<FileData>,
        state: &mut LayerState,
    ) -> Result<(), FilesystemError> {
        // Every entry, a whiteout too, gets its folder made when `lstat`
        // says it does not exist.
        if !entry.parent.is_empty() && matches!(self.kernel_lstat(entry.parent), Ok(None)) {
            self.mkdir_all_kernel(entry, entry.parent)?;
        }
        if let Some(hidden) = entry.name.strip_prefix(".wh.") {
            if self.overlay {
                let dir = match self.resolve_kernel(entry.parent, true) {
                    Ok(dir) => dir,
                    // mknod through a file: ENOTDIR, let pass (see below).
                    Err(Errno::NotDir) if hidden != ".wh..opq" => return Ok(()),
                    Err(errno) => {
                        return Err(entry.fail(format!("its folder: {}", errno.describe())));
                    }
                };
                let key = join(&dir);
                let errno = self.check_dir(&dir).err();
                if hidden == ".wh..opq" {
                    // setxattr on the folder, following symlinks: anything
                    // there takes it (a file too); nothing there fails.
                    if self.lookup(&key).is_none() && !key.is_empty() {
                        return Err(entry.fail(format!("its folder: {}", Errno::NoEnt.describe())));
                    }
                    return Ok(());
                }
                return match errno {
                    None => self.whiteout_overlay(entry, &key, hidden),
                    // mknod under a file fails with ENOTDIR, which
                    // containers/storage's overlay converter lets pass (as
                    // podman's overlay driver shows).
                    Some(Errno::NotDir) => Ok(()),
                    Some(errno) => Err(entry.fail(format!("its folder: {}", errno.describe()))),
                };
            }
            return self.whiteout_containers_storage(entry, hidden, &state.unpacked);
        }
        let mut parts = entry.parent.to_vec();
        parts.push(entry.name);
        let mut existing_dir = None;
        if let Ok(Some(key)) = self.kernel_lstat(&parts) {
            match self.nodes.get(&key) {
                Some(node) if node.kind.is_dir() && entry.header.typeflag == types::DIR => {
                    existing_dir = Some(node.inode);
                }
                _ => self.remove_tree(&key, None),
            }
        }
        if entry.header.typeflag == types::PAX_GLOBAL {
            // Removed what was there, created nothing (UnpackLayer).
            return Ok(());
        }
        let dir = self
            .resolve_kernel(entry.parent, true)
            .and_then(|dir| match self.node(&join(&dir)) {
                Some(node) if node.kind.is_dir() => Ok(dir),
                Some(_) => Err(Errno::NotDir),
                None => Err(Errno::NoEnt),
            })
            .map_err(|errno| entry.fail(format!("its folder: {}", errno.describe())))?;
        self.check_path(entry.layer, entry.raw_path, &dir)?;
        let path = child(&join(&dir), entry.name);
        let node = if entry.header.typeflag == types::LINK {
            let target = self.link_target(entry)?;
            let target_parts = clean(&target);
            if target_parts.is_empty() {
                return Err(entry.fail(format!(
                    "a hard link to {target:?}, the root folder, which Linux refuses"
                )));
            }
            // A file a reading skipped has no folders in its tree: it is
            // found by its literal path.
            let found = self
                .resolve_kernel(&target_parts, false)
                .ok()
                .and_then(|stack| self.lookup(&join(&stack)))
                .or_else(|| self.pruned(&join(&target_parts)));
            let node = Self::linked(entry, &target, found)?;
            // The link's own header is applied to the shared inode.
            self.apply_link_header(entry, node)
        } else {
            self.new_node(entry, data, existing_dir, &dir)?
        };
        self.removed.remove(&path);
        self.nodes.insert(path, node);
        let spelled = format!("/{}", join(&parts));
        state.unpacked.insert(&spelled);
        if entry.header.typeflag == types::DIR {
            state.dirs.push(spelled);
        }
        Ok(())
    }

    /// Gives a hard link's header owner (and mode, unless the inode is a
    /// symlink) to `node` and every path sharing its inode.
    fn apply_link_header(&mut self, entry: &Entry<'_>, mut node: Node) -> Node {
        node.uid = entry.uid;
        node.gid = entry.gid;
        if !matches!(node.kind, NodeKind::Symlink(_)) {
            node.mode = entry.mode;
        }
        for other in self.nodes.values_mut() {
            if other.inode == node.inode {
                other.uid = node.uid;
                other.gid = node.gid;
                other.mode = node.mode;
            }
        }
        node
    }

    /// A whiteout as the overlay snapshotters apply it into a layer's own
    /// folder `dir` (already made): `.wh.NAME` becomes a 0/0 character
    /// device NAME (`mknod`, which fails when NAME exists), an opaque
    /// marker the `trusted.overlay.opaque` xattr on the folder
    /// (containerd's `OverlayConvertWhiteout`, containers/storage's
    /// `overlayWhiteoutConverter`).
    fn whiteout_overlay(
        &mut self,
        entry: &Entry<'_>,
        dir: &str,
        hidden: &str,
    ) -> Result<(), FilesystemError> {
        if hidden == ".wh..opq" {
            // Only the root's entries are merged here (see overlay.rs),
            // and overlayfs ignores the xattr on a layer's root.
            return Ok(());
        }
        let target = if hidden.is_empty() {
            dir.to_string()
        } else {
            child(dir, hidden)
        };
        if let Some(node) = self.node(&target).or_else(|| self.pruned(&target)) {
            return Err(entry.fail(format!(
                "the overlay snapshotters turn this whiteout into a 0/0 character device at /{target}, and mknod fails there: the same layer already holds {} at that path",
                node.kind.describe()
            )));
        }
        let inode = self.new_inode();
        self.removed.remove(&target);
        self.nodes.insert(
            target,
            Node {
                kind: NodeKind::CharDevice { major: 0, minor: 0 },
                mode: 0,
                uid: entry.uid,
                gid: entry.gid,
                layer: entry.layer,
                inode,
                file_capabilities: false,
            },
        );
        Ok(())
    }

    /// The node at `key`, or the file a reading pruned there.
    fn lookup(&self, key: &str) -> Option<&Node> {
        self.nodes.get(key).or_else(|| self.pruned(key))
    }

    /// The file a reading pruned (or skipped) at `key`.
    fn pruned(&self, key: &str) -> Option<&Node> {
        let pruned = self.pruned_files.as_ref()?;
        pruned.nodes.get(&pruned.hasher.hash_one(key))
    }

    /// Drops from the tree what cannot reach the binary's path: every node
    /// but folders (unless `folders_too`), symlinks (which redirect later
    /// entries), what lies at or below the binary's path, and the folders
    /// above those. Files dropped are remembered by a hash of their path,
    /// for hard links. Returns the bytes of the paths still held.
    fn prune(&mut self, folders_too: bool) -> u64 {
        let binary = openshell_contract::LAYER_BINARY_PATH;
        let mut keep: HashSet<&str> = HashSet::new();
        for (key, node) in &self.nodes {
            let relevant = key.split('/').next() == Some(binary)
                || matches!(node.kind, NodeKind::Symlink(_))
                || (!folders_too && node.kind.is_dir());
            if relevant {
                keep.insert(key);
                let mut ancestor = key.as_str();
                while let Some((parent, _)) = ancestor.rsplit_once('/') {
                    if !keep.insert(parent) {
                        break;
                    }
                    ancestor = parent;
                }
            }
        }
        let dropped: Vec<String> = self
            .nodes
            .keys()
            .filter(|key| !keep.contains(key.as_str()))
            .cloned()
            .collect();
        let held = keep.iter().map(|key| key.len() as u64 + 1).sum();
        let pruned = self.pruned_files.get_or_insert_with(PrunedFiles::default);
        for key in dropped {
            if let Some(node) = self.nodes.remove(&key) {
                if matches!(node.kind, NodeKind::File { .. }) {
                    pruned.nodes.insert(pruned.hasher.hash_one(&key), node);
                }
            }
        }
        held
    }

    /// A hard link's target, reported when it leaves the image.
    fn link_target(&mut self, entry: &Entry<'_>) -> Result<String, FilesystemError> {
        let target = String::from_utf8_lossy(&entry.header.linkname).into_owned();
        if target.starts_with('/') || target.split('/').any(|part| part == "..") {
            self.report(
                entry.layer,
                entry.raw_path,
                format!(
                    "hard link to {target}, which leaves the image root (extractors link to /{} instead)",
                    join(&clean(&target))
                ),
            );
        }
        Ok(target)
    }

    /// The node a hard link to `found` makes.
    fn linked(
        entry: &Entry<'_>,
        target: &str,
        found: Option<&Node>,
    ) -> Result<Node, FilesystemError> {
        match found {
            None => Err(entry.fail(format!(
                "a hard link to {target}, which does not exist at that point"
            ))),
            Some(found) if found.kind.is_dir() => Err(entry.fail(format!(
                "a hard link to {target}, which is a folder (Linux refuses)"
            ))),
            Some(found) => Ok(Node {
                layer: entry.layer,
                ..found.clone()
            }),
        }
    }

    /// The node for an entry that is not a hard link, in the resolved
    /// folder `dir`; `existing_dir` is the inode of a folder it updates.
    fn new_node(
        &mut self,
        entry: &Entry<'_>,
        data: Option<FileData>,
        existing_dir: Option<u64>,
        dir: &[String],
    ) -> Result<Node, FilesystemError> {
        let (layer, raw_path, header) = (entry.layer, entry.raw_path, entry.header);
        let kind = match header.typeflag {
            types::REGULAR => {
                let FileData { sha256, contents } = data.unwrap_or(FileData {
                    sha256: Sha256::digest([]).into(),
                    contents: None,
                });
                NodeKind::File {
                    size: header.size,
                    sha256,
                    contents,
                }
            }
            types::DIR => NodeKind::Dir,
            types::SYMLINK => {
                let target = String::from_utf8_lossy(&header.linkname).into_owned();
                if target.is_empty() {
                    return Err(
                        entry.fail("a symlink with an empty target, which Linux refuses".into())
                    );
                }
                self.check_symlink(layer, raw_path, dir, &target);
                NodeKind::Symlink(target)
            }
            types::CHAR | types::BLOCK => {
                self.report(
                    layer,
                    raw_path,
                    "device node (expected only files, folders and links)".into(),
                );
                let (major, minor) = (header.devmajor, header.devminor);
                if header.typeflag == types::CHAR {
                    NodeKind::CharDevice { major, minor }
                } else {
                    NodeKind::BlockDevice { major, minor }
                }
            }
            types::FIFO => {
                self.report(
                    layer,
                    raw_path,
                    "fifo (expected only files, folders and links)".into(),
                );
                NodeKind::Fifo
            }
            other => {
                return Err(entry.fail(format!(
                    "tar entry type {:?}, which extractors do not unpack",
                    char::from(other)
                )));
            }
        };
        let mode = if matches!(kind, NodeKind::Symlink(_)) {
            // Linux symlinks have no mode of their own.
            0o777
        } else {
            entry.mode
        };
        let inode = match existing_dir {
            Some(inode) => inode,
            None => self.new_inode(),
        };
        Ok(Node {
            kind,
            mode,
            uid: entry.uid,
            gid: entry.gid,
            layer,
            inode,
            file_capabilities: header
                .xattrs
                .iter()
                .any(|name| name == "security.capability"),
        })
    }

    /// Reports a symlink whose target leaves the image.
    fn check_symlink(&mut self, layer: usize, raw_path: &str, dir: &[String], target: &str) {
        if target.starts_with('/') {
            let resolved = path_under_mount(MOUNT_PATH, target);
            self.report(
                layer,
                raw_path,
                format!(
                    "symlink to the absolute path {target}: in an image volume it resolves against the agent container's root ({target} there, not {resolved}), so it leaves the image"
                ),
            );
            return;
        }
        let mut depth = dir.len();
        for part in target.split('/') {
            match part {
                ".." if depth == 0 => {
                    self.report(
                        layer,
                        raw_path,
                        format!("symlink to {target}, which climbs above the image root"),
                    );
                    return;
                }
                ".." => depth -= 1,
                "" | "." => {}
                _ => depth += 1,
            }
        }
    }

    /// A whiteout as umoci applies it, in the resolved folder `dir`:
    /// `hidden` is the name it removes (`.wh..opq` for an opaque marker).
    fn whiteout_umoci(
        &mut self,
        entry: &Entry<'_>,
        dir: &str,
        hidden: &str,
        upper: &PathSet,
    ) -> Result<(), FilesystemError> {
        let opaque = hidden == ".wh..opq";
        let target = if opaque || hidden.is_empty() {
            dir.to_string()
        } else {
            child(dir, hidden)
        };
        // A folder that is not there (or a file in the way) leaves nothing
        // to remove.
        let Some(node) = self.node(&target) else {
            return Ok(());
        };
        let is_dir = node.kind.is_dir();
        let whiteout_path = join(&clean(entry.raw_path));
        if !opaque && !upper.contains(&target) {
            if target.is_empty() || hidden.is_empty() {
                // `.wh.` alone names its own folder: umoci removes it, then
                // fails restoring that folder's metadata.
                return Err(entry
                    .fail("a whiteout with an empty name, which removes its own folder".into()));
            }
            self.remove_tree(&target, Some((entry.layer, &whiteout_path)));
            return Ok(());
        }
        if !is_dir {
            return Ok(());
        }
        // Everything below that this layer did not write goes; what it wrote
        // (and their ancestors) stays. Upper paths include their ancestors,
        // so a path not written means nothing below it was written either.
        let below = self.take_tree(&target, true);
        let mut doomed = BTreeMap::new();
        for (key, node) in below {
            if upper.contains(&key) {
                self.nodes.insert(key, node);
            } else {
                doomed.insert(key, node);
            }
        }
        self.record_removals(doomed, entry.layer, &whiteout_path);
        Ok(())
    }

    /// A whiteout as containers/storage applies it (its folder already
    /// made when missing).
    fn whiteout_containers_storage(
        &mut self,
        entry: &Entry<'_>,
        hidden: &str,
        unpacked: &PathSet,
    ) -> Result<(), FilesystemError> {
        let whiteout_path = join(&clean(entry.raw_path));
        let record = Some((entry.layer, whiteout_path.as_str()));
        if hidden == ".wh..opq" {
            let dir = match self.kernel_lstat(entry.parent) {
                Ok(Some(dir)) => dir,
                Ok(None) => return Err(entry.fail(Errno::NoEnt.describe().into())),
                Err(errno) => return Err(entry.fail(errno.describe().into())),
            };
            // WalkDir does not descend into a symlink or a file.
            if !self.node(&dir).is_some_and(|node| node.kind.is_dir()) {
                return Ok(());
            }
            let spelled = format!("/{}", join(entry.parent));
            for key in keys_below(&self.nodes, &dir) {
                if !self.nodes.contains_key(&key) {
                    continue;
                }
                let relative = if dir.is_empty() {
                    key.as_str()
                } else {
                    &key[dir.len() + 1..]
                };
                let walked = if spelled == "/" {
                    format!("/{relative}")
                } else {
                    format!("{spelled}/{relative}")
                };
                if !unpacked.contains(&walked) {
                    self.remove_tree(&key, record);
                }
            }
            return Ok(());
        }
        if hidden.is_empty() {
            return Err(
                entry.fail("a whiteout with an empty name, which removes its own folder".into())
            );
        }
        // os.RemoveAll: a missing folder on the way means nothing to remove;
        // a file (or a loop) on the way is an error.
        let mut parts = entry.parent.to_vec();
        parts.push(hidden);
        match self.resolve_kernel(&parts, false) {
            Ok(stack) => {
                let key = join(&stack);
                self.remove_tree(&key, record);
                Ok(())
            }
            Err(Errno::NoEnt) => Ok(()),
            Err(errno) => {
                // RemoveAll then opens the folder to unlink from it: a fifo
                // there blocks that open forever.
                let folder = self
                    .resolve_kernel(entry.parent, true)
                    .ok()
                    .and_then(|stack| self.node(&join(&stack)));
                if matches!(
                    folder,
                    Some(Node {
                        kind: NodeKind::Fifo,
                        ..
                    })
                ) {
                    return Err(entry.fail(format!(
                        "a whiteout in a fifo: {CONTAINERS_STORAGE_HANGS} (it opens /{} as a folder, which blocks)",
                        join(entry.parent)
                    )));
                }
                Err(entry.fail(format!("removing it: {}", errno.describe())))
            }
        }
    }

    /// Paths of entries named `name`, anywhere.
    pub fn find_named(&self, name: &str) -> Vec<&str> {
        self.nodes
            .keys()
            .filter(|key| key.rsplit('/').next() == Some(name))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tar entry for a test layer.
    pub(crate) struct E<'a> {
        path: &'a str,
        kind: tar::EntryType,
        link: &'a str,
        contents: &'a [u8],
        mode: u32,
        uid: u64,
    }

    fn f<'a>(path: &'a str, contents: &'a [u8], mode: u32) -> E<'a> {
        E {
            path,
            kind: T::Regular,
            link: "",
            contents,
            mode,
            uid: 0,
        }
    }

    fn d(path: &str, mode: u32) -> E<'_> {
        E {
            path,
            kind: T::Directory,
            link: "",
            contents: b"",
            mode,
            uid: 0,
        }
    }

    fn l<'a>(path: &'a str, target: &'a str) -> E<'a> {
        E {
            path,
            kind: T::Symlink,
            link: target,
            contents: b"",
            mode: 0o777,
            uid: 0,
        }
    }

    fn h<'a>(path: &'a str, target: &'a str) -> E<'a> {
        E {
            path,
            kind: T::Link,
            link: target,
            contents: b"",
            mode: 0o644,
            uid: 0,
        }
    }

    fn other<'a>(path: &'a str, kind: tar::EntryType) -> E<'a> {
        E {
            path,
            kind,
            link: "",
            contents: b"",
            mode: 0o644,
            uid: 0,
        }
    }

    /// A tar of `entries`, names written raw so any path, even an unsafe
    /// one, can be stored.
    pub(crate) fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            let name = entry.path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_entry_type(entry.kind);
            header.set_size(entry.contents.len() as u64);
            header.set_mode(entry.mode);
            header.set_uid(entry.uid);
            header.set_gid(entry.uid);
            if !entry.link.is_empty() {
                header.set_link_name(entry.link).unwrap();
            }
            header.set_cksum();
            builder.append(&header, entry.contents).unwrap();
        }
        builder.into_inner().unwrap()
    }

    use tar::EntryType as T;

    fn apply(layers: &[Vec<E<'_>>]) -> Filesystem {
        apply_as(Extractor::Umoci, layers).unwrap()
    }

    fn apply_as(extractor: Extractor, layers: &[Vec<E<'_>>]) -> Result<Filesystem, String> {
        let mut fs = Filesystem::with_extractor(Limits::default(), extractor);
        for (index, layer) in layers.iter().enumerate() {
            fs.apply_layer(index, &tar_of(layer)[..])
                .map_err(|err| err.to_string())?;
        }
        Ok(fs)
    }

    const CS: Extractor = Extractor::ContainersStorage;

    fn apply_err(layers: &[Vec<E<'_>>]) -> String {
        let mut fs = Filesystem::default();
        for (index, layer) in layers.iter().enumerate() {
            if let Err(err) = fs.apply_layer(index, &tar_of(layer)[..]) {
                return err.to_string();
            }
        }
        panic!(
            "expected an error, got {:?}",
            fs.nodes.keys().collect::<Vec<_>>()
        );
    }

    fn paths(fs: &Filesystem) -> Vec<&str> {
        fs.nodes.keys().map(String::as_str).collect()
    }

    fn contents_of(fs: &Filesystem, path: &str) -> Option<Vec<u8>> {
        match &fs.nodes.get(path)?.kind {
            NodeKind::File {
                contents: Some(contents),
                ..
            } => {
                let mut bytes = Vec::new();
                contents.reader().read_to_end(&mut bytes).unwrap();
                Some(bytes)
            }
            _ => None,
        }
    }

    #[test]
    fn whiteouts_and_opaque_folders_remove_lower_entries() {
        let fs = apply(&[
            vec![
                d("bin/", 0o755),
                f("bin/a", b"a", 0o644),
                f("bin/b", b"b", 0o644),
                f("openshell-sandbox", b"ELF", 0o555),
            ],
            vec![
                f("bin/c", b"c", 0o644),
                f("bin/.wh..wh..opq", b"", 0o644),
                f(".wh.openshell-sandbox", b"", 0o644),
            ],
        ]);
        assert_eq!(paths(&fs), ["bin", "bin/c"]);
        assert_eq!(
            &*fs.removed["openshell-sandbox"].whiteout,
            ".wh.openshell-sandbox"
        );
        assert_eq!(fs.removed["openshell-sandbox"].layer, 1);
        assert_eq!(&*fs.removed["bin/a"].whiteout, "bin/.wh..wh..opq");
    }

    #[test]
    fn a_symlinked_parent_is_followed_inside_the_root() {
        // d -> . puts d/openshell-sandbox at /openshell-sandbox.
        let fs = apply(&[
            vec![f("openshell-sandbox", b"\x7fELF good", 0o555)],
            vec![l("d", "."), f("d/openshell-sandbox", b"#!/bin/sh", 0o755)],
        ]);
        assert_eq!(paths(&fs), ["d", "openshell-sandbox"]);
        assert_eq!(contents_of(&fs, "openshell-sandbox").unwrap(), b"#!/bin/sh");
        assert_eq!(fs.nodes["openshell-sandbox"].mode, 0o755);
        // Absolute and climbing targets resolve against the image root.
        let fs = apply(&[vec![
            l("abs", "/real"),
            l("up", "../../.."),
            f("abs/x", b"x", 0o644),
            f("up/y", b"y", 0o644),
        ]]);
        assert_eq!(paths(&fs), ["abs", "real", "real/x", "up", "y"]);
        assert_eq!(fs.nodes["real"].mode, IMPLICIT_DIR_MODE);
    }

    #[test]
    fn whiteouts_follow_symlinked_parents() {
        let fs = apply(&[
            vec![f("openshell-sandbox", b"ELF", 0o555)],
            vec![l("d", "."), f("d/.wh.openshell-sandbox", b"", 0o644)],
        ]);
        assert_eq!(paths(&fs), ["d"]);
        assert_eq!(
            &*fs.removed["openshell-sandbox"].whiteout,
            "d/.wh.openshell-sandbox"
        );
        // An opaque marker through a link empties the link's target.
        let fs = apply(&[
            vec![d("real/", 0o755), f("real/a", b"a", 0o644), l("d", "real")],
            vec![f("d/.wh..wh..opq", b"", 0o644)],
        ]);
        assert_eq!(paths(&fs), ["d", "real"]);
    }

    #[test]
    fn whiteouts_spare_what_the_same_layer_wrote() {
        let fs = apply(&[
            vec![
                f("a", b"lower", 0o644),
                d("dir/", 0o755),
                f("dir/x", b"x", 0o644),
            ],
            vec![
                f("a", b"upper", 0o600),
                f(".wh.a", b"", 0o644),
                f("dir/sub/y", b"y", 0o644),
                f("dir/.wh..wh..opq", b"", 0o644),
            ],
        ]);
        assert_eq!(paths(&fs), ["a", "dir", "dir/sub", "dir/sub/y"]);
        assert_eq!(fs.nodes["a"].mode, 0o600);
    }

    #[test]
    fn a_whiteout_of_a_same_layer_folder_removes_only_lower_children() {
        let fs = apply(&[
            vec![d("dir/", 0o755), f("dir/old", b"o", 0o644)],
            vec![f("dir/new", b"n", 0o644), f(".wh.dir", b"", 0o644)],
        ]);
        assert_eq!(paths(&fs), ["dir", "dir/new"]);
    }

    #[test]
    fn later_entries_replace_earlier_ones_of_any_type() {
        let fs = apply(&[
            vec![
                d("x/", 0o755),
                f("x/inner", b"i", 0o644),
                f("y", b"y", 0o644),
            ],
            vec![f("x", b"now a file", 0o640), d("y/", 0o700), l("z", "x")],
            vec![l("x", "y"), f("z", b"z", 0o644)],
        ]);
        assert_eq!(paths(&fs), ["x", "y", "z"]);
        assert_eq!(fs.nodes["x"].kind, NodeKind::Symlink("y".into()));
        assert_eq!(fs.nodes["y"].kind, NodeKind::Dir);
        assert_eq!(fs.nodes["y"].mode, 0o700);
        assert!(matches!(fs.nodes["z"].kind, NodeKind::File { size: 1, .. }));
    }

    #[test]
    fn a_folder_entry_over_a_folder_keeps_its_children_and_takes_new_metadata() {
        let mut upper = d("dir/", 0o700);
        upper.uid = 7;
        let fs = apply(&[
            vec![d("dir/", 0o755), f("dir/keep", b"k", 0o644)],
            vec![upper],
        ]);
        assert_eq!(paths(&fs), ["dir", "dir/keep"]);
        assert_eq!((fs.nodes["dir"].mode, fs.nodes["dir"].uid), (0o700, 7));
        assert_eq!(fs.nodes["dir"].layer, 1);
    }

    #[test]
    fn implicit_parents_are_0755_root_and_the_root_entry_sets_the_root() {
        let mut root = d("./", 0o700);
        root.uid = 5;
        let fs = apply(&[vec![root, f("a/b/c", b"x", 0o600)]]);
        assert_eq!(paths(&fs), ["a", "a/b", "a/b/c"]);
        for dir in ["a", "a/b"] {
            assert_eq!((fs.nodes[dir].mode, fs.nodes[dir].uid), (0o755, 0));
        }
        assert_eq!((fs.root.mode, fs.root.uid, fs.root.gid), (0o700, 5, 5));
        let err = apply_err(&[vec![f("./", b"", 0o644)]]);
        assert!(err.contains("root folder that is not a folder"), "{err}");
    }

    #[test]
    fn hard_links_share_their_target_and_are_resolved_inside_the_root() {
        let fs = apply(&[vec![
            f("usr/openshell-sandbox", b"ELF!", 0o555),
            l("u", "usr"),
            h("openshell-sandbox", "u/openshell-sandbox"),
            l("s", "target"),
            h("hs", "s"),
        ]]);
        let (link, target) = (
            &fs.nodes["openshell-sandbox"],
            &fs.nodes["usr/openshell-sandbox"],
        );
        assert_eq!(link.inode, target.inode);
        assert_eq!(link.kind, target.kind);
        assert_eq!(contents_of(&fs, "openshell-sandbox").unwrap(), b"ELF!");
        // A hard link to a symlink is that symlink.
        assert_eq!(fs.nodes["hs"].kind, NodeKind::Symlink("target".into()));
        for (layers, expected) in [
            (vec![vec![h("a", "missing")]], "does not exist"),
            (vec![vec![d("dir/", 0o755), h("a", "dir")]], "is a folder"),
            (
                vec![vec![f("a", b"a", 0o644), h("a", "a")]],
                "does not exist",
            ),
            (vec![vec![h("a", ".")]], "the root folder"),
        ] {
            let err = apply_err(&layers);
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn what_extractors_stop_on_fails_the_layer() {
        for (layers, expected) in [
            (
                vec![vec![f("a", b"a", 0o644), f("a/b", b"b", 0o644)]],
                "its folder /a is a regular file",
            ),
            (
                vec![vec![l("a", "b"), l("b", "a"), f("a/x", b"x", 0o644)]],
                "too many levels of symbolic links",
            ),
            (vec![vec![l("a", "")]], "empty target"),
            (vec![vec![other("c", T::Continuous)]], "entry type '7'"),
            (vec![vec![f(".wh.", b"", 0o644)]], "empty name"),
        ] {
            let err = apply_err(&layers);
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(err.contains("extractors stop unpacking"), "{err}");
        }
    }

    #[test]
    fn unsafe_entries_are_reported_and_applied_where_extractors_put_them() {
        let mut fs = Filesystem::default();
        let layer = tar_of(&[
            f("/etc/passwd", b"x", 0o644),
            f("a/../../escape", b"x", 0o644),
            other("dev/null", T::Char),
            other("pipe", T::Fifo),
            l("out", "../../etc"),
            l("abs", "/usr/bin/env"),
            h("hard", "/etc/passwd"),
            l("ok", "sub/file"),
        ]);
        fs.apply_layer(0, &layer[..]).unwrap();
        let reasons: Vec<(&str, &str)> = fs
            .unsafe_entries
            .iter()
            .map(|entry| (entry.path.as_str(), entry.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 7, "{reasons:?}");
        assert!(reasons[0].1.contains("absolute path"));
        assert!(reasons[0].1.contains("extractors write it at /etc/passwd"));
        assert!(reasons[1].1.contains("'..'"));
        assert!(reasons[1].1.contains("at /escape"));
        assert!(reasons[2].1.contains("device node"));
        assert!(reasons[3].1.contains("fifo"));
        assert!(reasons[4].1.contains("climbs above the image root"));
        assert!(reasons[5].1.contains("agent container's root"));
        assert!(reasons[6].1.contains("leaves the image root"));
        assert_eq!(
            paths(&fs),
            [
                "abs",
                "dev",
                "dev/null",
                "escape",
                "etc",
                "etc/passwd",
                "hard",
                "ok",
                "out",
                "pipe"
            ]
        );
        assert_eq!(fs.nodes["hard"].inode, fs.nodes["etc/passwd"].inode);
        assert_eq!(fs.nodes["pipe"].kind, NodeKind::Fifo);
        assert_eq!(
            fs.nodes["abs"].kind,
            NodeKind::Symlink("/usr/bin/env".into())
        );
    }

    #[test]
    fn a_declared_binary_size_over_the_limit_is_refused_before_reading() {
        // A header alone, declaring 1 TiB: nothing is allocated or read.
        let mut header = tar::Header::new_gnu();
        header.set_path("openshell-sandbox").unwrap();
        header.set_size(1 << 40);
        header.set_mode(0o555);
        header.set_cksum();
        let mut fs = Filesystem::default();
        let err = fs.apply_layer(0, header.as_bytes().as_slice()).unwrap_err();
        assert!(matches!(
            err,
            FilesystemError::Limit {
                limit: Limit::BinarySize,
                ..
            }
        ));
        let message = err.to_string();
        assert!(
            message.contains("declares 1099511627776 bytes"),
            "{message}"
        );
        assert!(message.contains("--max-binary-size"), "{message}");
    }

    #[test]
    fn the_uncompressed_and_entry_limits_are_enforced() {
        let limits = Limits {
            max_uncompressed_size: 4096,
            ..Limits::default()
        };
        let mut fs = Filesystem::new(limits);
        let big = vec![0u8; 8192];
        let err = fs
            .apply_layer(0, &tar_of(&[f("big", &big, 0o644)])[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--max-uncompressed-size"), "{err}");
        assert!(err.contains("refused before reading it"), "{err}");
        // Trailing data counts too.
        let mut fs = Filesystem::new(limits);
        let mut padded = tar_of(&[f("small", b"x", 0o644)]);
        padded.extend_from_slice(&[0u8; 8192]);
        let err = fs.apply_layer(0, &padded[..]).unwrap_err().to_string();
        assert!(err.contains("tar streams go on past 4096 bytes"), "{err}");

        let limits = Limits {
            max_entries: 3,
            ..Limits::default()
        };
        let mut fs = Filesystem::new(limits);
        fs.apply_layer(0, &tar_of(&[f("a/b/c", b"x", 0o644)])[..])
            .unwrap();
        let err = fs
            .apply_layer(1, &tar_of(&[f("d", b"x", 0o644)])[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("hold 4 entries"), "{err}");
        assert!(
            err.contains("more than the entry limit of 3 entries allows"),
            "{err}"
        );
        assert!(err.contains("--max-entries"), "{err}");
    }

    #[test]
    fn large_kept_contents_spill_to_disk_and_small_ones_stay_in_memory() {
        let big: Vec<u8> = (0..(MEMORY_BUDGET + 1000))
            .map(|n| (n % 253) as u8)
            .collect();
        let fs = apply(&[vec![
            f("small/openshell-sandbox", b"small", 0o555),
            f("openshell-sandbox", &big, 0o555),
            f("other", b"not kept", 0o644),
        ]]);
        let NodeKind::File {
            contents: Some(kept),
            sha256,
            ..
        } = &fs.nodes["openshell-sandbox"].kind
        else {
            panic!("no contents kept");
        };
        assert!(kept.in_memory().is_none(), "expected the big file spilled");
        assert_eq!(*sha256, <[u8; 32]>::from(Sha256::digest(&big)));
        assert_eq!(contents_of(&fs, "openshell-sandbox").unwrap(), big);
        assert_eq!(
            contents_of(&fs, "small/openshell-sandbox").unwrap(),
            b"small"
        );
        assert!(matches!(
            fs.nodes["other"].kind,
            NodeKind::File { contents: None, .. }
        ));
        assert_eq!(
            fs.nodes["other"].sha256_hex().unwrap(),
            hex::encode(Sha256::digest(b"not kept"))
        );
    }

    #[test]
    fn a_shared_tar_gives_the_same_tree_without_copying() {
        let tar = Arc::new(tar_of(&[
            d("x/", 0o755),
            f("openshell-sandbox", b"\x7fELF shared", 0o555),
        ]));
        let mut shared = Filesystem::default();
        shared.apply_layer_shared(0, &tar).unwrap();
        let mut streamed = Filesystem::default();
        streamed.apply_layer(0, &tar[..]).unwrap();
        assert_eq!(shared.nodes, streamed.nodes);
        let NodeKind::File {
            contents: Some(kept),
            ..
        } = &shared.nodes["openshell-sandbox"].kind
        else {
            panic!("no contents kept");
        };
        let bytes = kept.in_memory().unwrap();
        assert_eq!(bytes, b"\x7fELF shared");
        assert!(tar.as_ptr_range().contains(&bytes.as_ptr()));
    }

    #[test]
    fn the_whole_stream_is_read_for_the_callers_digest() {
        let mut tar = tar_of(&[f("a", b"a", 0o644)]);
        tar.extend_from_slice(&[0u8; 4096]);
        let mut reader = &tar[..];
        Filesystem::default().apply_layer(0, &mut reader).unwrap();
        assert!(reader.is_empty());
    }

    #[test]
    fn containers_storage_refuses_a_layer_with_a_name_twice() {
        let layers = [vec![f("a", b"1", 0o644), f("./a", b"2", 0o644)]];
        let err = apply_as(CS, &layers).unwrap_err();
        assert!(
            err.contains("duplicates of file paths not supported"),
            "{err}"
        );
        // umoci applies both; the second wins.
        assert_eq!(
            apply(&layers).nodes["a"].sha256_hex(),
            Some(hex::encode(Sha256::digest(b"2")))
        );
    }

    #[test]
    fn containers_storage_whiteouts_remove_what_the_same_layer_wrote() {
        let layers = [vec![f("a", b"a", 0o644), f(".wh.a", b"", 0o644)]];
        assert!(apply_as(CS, &layers).unwrap().nodes.is_empty());
        assert_eq!(paths(&apply(&layers)), ["a"]);
    }

    #[test]
    fn containers_storage_opaque_markers_do_not_follow_a_symlinked_folder() {
        let layers = [
            vec![d("real/", 0o755), f("real/x", b"x", 0o644), l("d", "real")],
            vec![f("d/.wh..wh..opq", b"", 0o644)],
        ];
        assert_eq!(
            paths(&apply_as(CS, &layers).unwrap()),
            ["d", "real", "real/x"]
        );
        assert_eq!(paths(&apply(&layers)), ["d", "real"]);
        // Nor do they spare the ancestors of what the layer wrote.
        let layers = [
            vec![d("a/", 0o755), f("a/old", b"o", 0o644)],
            vec![f("a/b/new", b"n", 0o644), f("a/.wh..wh..opq", b"", 0o644)],
        ];
        assert_eq!(paths(&apply_as(CS, &layers).unwrap()), ["a"]);
        assert_eq!(paths(&apply(&layers)), ["a", "a/b", "a/b/new"]);
    }

    #[test]
    fn containers_storage_fails_where_a_dangling_symlink_is_a_folder() {
        let layers = [vec![l("d", "missing/deeper"), f("d/x", b"x", 0o644)]];
        let err = apply_as(CS, &layers).unwrap_err();
        assert!(err.contains("a folder on the way does not exist"), "{err}");
        // umoci makes the folders the link points to.
        assert_eq!(
            paths(&apply(&layers)),
            ["d", "missing", "missing/deeper", "missing/deeper/x"]
        );
    }

    #[test]
    fn containers_storage_makes_folders_for_whiteouts() {
        let layers = [vec![f("a/b/.wh.c", b"", 0o644)]];
        assert_eq!(paths(&apply_as(CS, &layers).unwrap()), ["a", "a/b"]);
        assert!(apply(&layers).nodes.is_empty());
        // A whiteout under a file fails it; umoci ignores it.
        let layers = [vec![f("a", b"a", 0o644)], vec![f("a/.wh.x", b"", 0o644)]];
        assert!(apply_as(CS, &layers).unwrap_err().contains("removing it"));
        assert_eq!(paths(&apply(&layers)), ["a"]);
    }

    #[test]
    fn containers_storage_gives_a_hard_links_header_to_the_shared_inode() {
        let mut link = h("b", "a");
        link.mode = 0o600;
        link.uid = 7;
        let layers = [vec![f("a", b"a", 0o755), link]];
        let fs = apply_as(CS, &layers).unwrap();
        for path in ["a", "b"] {
            let node = &fs.nodes[path];
            assert_eq!((node.mode, node.uid, node.gid), (0o600, 7, 7), "{path}");
        }
        // umoci ignores a hard link's own header.
        let fs = apply(&layers);
        assert_eq!((fs.nodes["b"].mode, fs.nodes["b"].uid), (0o755, 0));
    }

    #[test]
    fn go_clean_spells_names_as_go_does() {
        for (path, clean) in [
            ("./a/", "a"),
            ("/a/../b", "/b"),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("./", "."),
            ("/..", "/"),
        ] {
            assert_eq!(go_clean(path), clean, "{path}");
        }
    }

    #[test]
    fn containers_storage_is_predicted_to_hang_on_a_whiteout_in_a_fifo() {
        let layers = [vec![other("a", T::Fifo)], vec![f("a/.wh.c", b"", 0o644)]];
        let err = apply_as(CS, &layers).unwrap_err();
        assert!(err.contains(CONTAINERS_STORAGE_HANGS), "{err}");
        // umoci finds nothing to remove there.
        assert_eq!(paths(&apply(&layers)), ["a"]);
    }

    #[test]
    fn unsafe_entries_past_the_first_hundred_are_counted() {
        let names: Vec<String> = (0..150).map(|n| format!("/abs-{n}")).collect();
        let entries: Vec<E<'_>> = names.iter().map(|name| f(name, b"", 0o644)).collect();
        let fs = apply(&[entries]);
        assert_eq!(fs.unsafe_entries.len(), MAX_LISTED_UNSAFE + 1);
        assert_eq!(fs.unsafe_entries[99].path, "/abs-99");
        assert_eq!(
            fs.unsafe_entries[100].reason,
            "and 50 more unsafe entries, not listed"
        );
        assert_eq!(fs.nodes.len(), 150);
    }

    #[test]
    fn folders_made_in_a_setgid_folder_take_its_group_and_bit() {
        let mut setgid = d("s/", 0o2770);
        setgid.uid = 9;
        let fs = apply(&[vec![
            setgid,
            f("s/a/b/c", b"x", 0o644),
            f("plain/x", b"x", 0o644),
        ]]);
        for dir in ["s/a", "s/a/b"] {
            let node = &fs.nodes[dir];
            assert_eq!((node.mode, node.uid, node.gid), (0o2755, 0, 9), "{dir}");
        }
        assert_eq!(fs.nodes["plain"].mode, 0o755);
    }

    #[test]
    fn removing_a_tree_leaves_names_that_only_share_a_prefix() {
        let fs = apply(&[
            vec![
                f("a/x", b"x", 0o644),
                f("a-b", b"", 0o644),
                f("a.c/y", b"", 0o644),
                f("a0", b"", 0o644),
            ],
            vec![f(".wh.a", b"", 0o644)],
        ]);
        assert_eq!(paths(&fs), ["a-b", "a.c", "a.c/y", "a0"]);
        let removed: Vec<&str> = fs.removed.keys().map(String::as_str).collect();
        assert_eq!(removed, ["a", "a/x"]);
    }

    #[test]
    fn containers_storage_fails_a_layer_whose_folder_is_gone_at_its_end() {
        let layers = [vec![d("a/", 0o755), f(".wh.a", b"", 0o644)]];
        let err = apply_as(CS, &layers).unwrap_err();
        assert!(
            err.contains("sets the times of this layer's folders last"),
            "{err}"
        );
        // umoci spares the folder the layer wrote.
        assert_eq!(paths(&apply(&layers)), ["a"]);
    }
}
