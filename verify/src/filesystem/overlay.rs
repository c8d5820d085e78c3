//! The other extractors' readings of the same layers, so verification
//! judges an image by the strictest of them.
//!
//! Beside the umoci model (what [`Filesystem`] itself holds), three more
//! readings are kept while the layers are applied:
//!
//! - **containers/storage's vfs driver** (podman, CRI-O with vfs): the
//!   whole tree, as [`Extractor::ContainersStorage`] builds it;
//! - **containerd's overlayfs snapshotter**: each layer applied alone into
//!   an empty folder (`diff/apply/apply_linux.go` applies into the upper
//!   folder, not through the mount) by `applyNaive` (`pkg/archive/tar.go`):
//!   paths resolved inside that folder, missing parents made (also for
//!   whiteouts), whiteouts turned into 0/0 character devices and opaque
//!   markers into the `trusted.overlay.opaque` xattr
//!   (`OverlayConvertWhiteout`), and a hard link's header applied to the
//!   inode it shares;
//! - **containers/storage's overlay driver** (CRI-O, podman with overlay):
//!   the same, with containers/storage's path rules (`pkg/archive`'s
//!   `UnpackLayer` with `overlayWhiteoutConverter`).
//!
//! The overlay folders are then merged as overlayfs does
//! (`fs/overlayfs/namei.c`): a name in the merged root is what the topmost
//! layer holding it has there; a 0/0 character device there is a whiteout,
//! so the name is gone; an opaque marker at a layer's root hides nothing.
//! Only the root entry named like the binary is kept from each layer's
//! folder. A hard link to a file of a lower layer fails, since the folder
//! it is applied into does not hold that file.
//!
//! **Memory**: a reading keeps only the paths that can lead to the binary.
//! While no symlink (or hard link) has been applied, a regular file away
//! from the binary's path is not put in its tree at all: its folders are
//! made and it is remembered by a hash of its path (a file in the way of a
//! later folder or whiteout, or a hard link's target).
//! Once its tree grows past [`PRUNE_AT`] nodes it drops every node but
//! symlinks (which redirect later entries), what lies at the binary's path
//! and the folders above those; dropped files stay findable by a hash of
//! their path, for hard links. What is left may hold at most
//! [`READING_BUDGET`] bytes of paths, else the image is refused. A layer
//! pruned while it is applied skips containers/storage's final check of
//! its folders away from the binary's path. Checked against podman's
//! overlay driver on the differential test's generated stacks (500, none
//! differing) and issue 16's cases (`build/tests/overlay_extractors.rs`);
//! containerd's reading follows its source, as containerd does not run
//! here.

use openshell_contract::LAYER_BINARY_PATH;

use super::{Extractor, FileData, Filesystem, LayerState, Limits, Node, NodeKind, gotar};

/// A reading drops what cannot reach the binary's path once its tree
/// holds more nodes than this (and twice what it kept the last time).
pub const PRUNE_AT: usize = 1024;

/// Most bytes of paths a reading may still hold once pruned (symlinks and
/// what lies at the binary's path): beyond it the image is refused, since
/// verification could no longer compare the extractors within its memory
/// bound.
pub const READING_BUDGET: u64 = 8 * 1024 * 1024;

/// `limits` for a reading: umoci's model counts the entries, and a reading
/// re-creates folders it pruned, which must not count again.
fn uncounted(limits: Limits) -> Limits {
    Limits {
        max_entries: u64::MAX,
        ..limits
    }
}

/// One layer's contribution to the merged root: what its folder holds at
/// the binary's path. An opaque marker at a layer's root is not kept:
/// overlayfs ignores the opaque xattr on a layer's root folder (podman's
/// overlay driver shows a lower layer's binary through it, where umoci and
/// the vfs driver empty the root).
#[derive(Debug, Clone)]
struct Top {
    binary: Option<Node>,
}

#[derive(Debug, Clone)]
enum Reading {
    /// The whole tree.
    Whole(Box<Filesystem>),
    /// One folder per layer, merged at the root.
    Overlay {
        /// How paths are resolved inside a layer's folder.
        resolution: Extractor,
        /// The folder of the layer being applied.
        folder: Box<Filesystem>,
        /// The layers applied so far, bottom first.
        tops: Vec<Top>,
    },
}

/// Another extractor's reading of the layers.
#[derive(Debug, Clone)]
pub(super) struct Shadow {
    /// Who reads the layers this way, for messages.
    name: &'static str,
    reading: Reading,
    /// Why it could not apply the layers; nothing more is applied then.
    failure: Option<String>,
    state: LayerState,
    /// Prune when the tree holds more nodes than this.
    prune_at: usize,
    /// Whether the tree was pruned while this layer was applied (its
    /// folder entries may then be gone from the tree, not from the disk).
    pruned_in_layer: bool,
}

impl Shadow {
    /// The three readings verification compares with umoci's.
    pub(super) fn all(limits: Limits) -> Vec<Self> {
        let limits = uncounted(limits);
        let shadow = |name, reading| Self {
            name,
            reading,
            failure: None,
            state: LayerState::default(),
            prune_at: PRUNE_AT,
            pruned_in_layer: false,
        };
        let overlay = |resolution| Reading::Overlay {
            resolution,
            folder: Box::new(Filesystem::overlay_folder(limits, resolution)),
            tops: Vec::new(),
        };
        vec![
            shadow(
                "containers/storage's vfs driver (podman, CRI-O)",
                Reading::Whole(Box::new(Filesystem::with_extractor(
                    limits,
                    Extractor::ContainersStorage,
                ))),
            ),
            shadow(
                "containerd's overlayfs snapshotter",
                overlay(Extractor::Umoci),
            ),
            shadow(
                "containers/storage's overlay driver (CRI-O, podman)",
                overlay(Extractor::ContainersStorage),
            ),
        ]
    }

    fn filesystem(&mut self) -> &mut Filesystem {
        match &mut self.reading {
            Reading::Whole(filesystem) => filesystem,
            Reading::Overlay { folder, .. } => folder,
        }
    }

    /// A new layer starts: an overlay reading gets an empty folder.
    pub(super) fn begin_layer(&mut self, limits: Limits) {
        self.state = LayerState::default();
        self.pruned_in_layer = false;
        if let Reading::Overlay {
            resolution, folder, ..
        } = &mut self.reading
        {
            **folder = Filesystem::overlay_folder(uncounted(limits), *resolution);
        }
    }

    /// Applies one entry, unless an earlier one failed.
    pub(super) fn entry(
        &mut self,
        layer: usize,
        header: &gotar::Header,
        raw_path: &str,
        cleaned: &[&str],
        data: Option<FileData>,
    ) {
        if self.failure.is_some() {
            return;
        }
        let mut state = std::mem::take(&mut self.state);
        let filesystem = self.filesystem();
        if filesystem.skip_unreachable(layer, header, raw_path, cleaned, data.as_ref(), &mut state)
        {
            self.state = state;
            return;
        }
        let result = filesystem.apply_entry(layer, header, raw_path, cleaned, data, &mut state);
        self.state = state;
        if let Err(err) = result {
            self.failure = Some(err.to_string());
            return;
        }
        if self.filesystem().nodes.len() > self.prune_at {
            self.pruned_in_layer = true;
            self.prune(layer);
        }
    }

    /// Drops what cannot reach the binary's path; fails the reading when
    /// what is left is over [`READING_BUDGET`].
    fn prune(&mut self, layer: usize) {
        let filesystem = self.filesystem();
        // Folders first stay (re-creating them costs time on every entry
        // below them); they go too when they alone are over half the
        // budget.
        let mut held = filesystem.prune(false);
        if held > READING_BUDGET / 2 {
            held = filesystem.prune(true);
        }
        let kept = filesystem.nodes.len();
        self.prune_at = PRUNE_AT.max(kept.saturating_mul(2));
        if held > READING_BUDGET {
            self.failure = Some(format!(
                "layer {layer}: the symlinks and the paths at the binary's path hold {held} bytes of paths, more than the {READING_BUDGET} bytes verification compares extractors within (expected a supervisor image of one file)"
            ));
        }
    }

    /// The layer's entries are all applied.
    pub(super) fn end_layer(&mut self, layer: usize) {
        if self.failure.is_some() {
            return;
        }
        let mut state = std::mem::take(&mut self.state);
        if self.pruned_in_layer {
            // Folders pruned from the tree are still there on disk: only
            // those at the binary's path are checked.
            state.dirs.retain(|dir| {
                dir.trim_start_matches('/').split('/').next() == Some(LAYER_BINARY_PATH)
            });
        }
        if let Err(err) = self.filesystem().finish_layer(layer, &state) {
            self.failure = Some(err.to_string());
            return;
        }
        if let Reading::Overlay { folder, tops, .. } = &mut self.reading {
            tops.push(Top {
                binary: folder.nodes.get(LAYER_BINARY_PATH).cloned(),
            });
        }
        if self.filesystem().nodes.len() > PRUNE_AT {
            self.prune(layer);
        }
    }

    /// What this reading shows at the binary's path: `Err` when it cannot
    /// apply the layers at all.
    fn binary(&self) -> Result<Option<Node>, &str> {
        if let Some(failure) = &self.failure {
            return Err(failure);
        }
        Ok(match &self.reading {
            Reading::Whole(filesystem) => filesystem.nodes.get(LAYER_BINARY_PATH).cloned(),
            Reading::Overlay { tops, .. } => merged_root_entry(tops),
        })
    }

    /// How this reading differs from `main` (umoci's node at the binary's
    /// path), in words; `None` when it agrees.
    fn disagreement(&self, main: Option<&Node>) -> Option<String> {
        let name = self.name;
        let path = format!("/{LAYER_BINARY_PATH}");
        let other = match self.binary() {
            Err(failure) => return Some(format!("{name} cannot unpack the image: {failure}")),
            Ok(other) => other,
        };
        match (main, other.as_ref()) {
            (None, None) => None,
            (None, Some(other)) => Some(format!(
                "{name} shows {path} as {} where umoci has nothing there",
                other.kind.describe()
            )),
            (Some(_), None) => Some(format!(
                "{name} shows no {path}: a whiteout, or a lower layer's file hidden, removes it there"
            )),
            (Some(main), Some(other)) => differences(main, other)
                .map(|what| format!("{name} shows {path} differently: {what}")),
        }
    }
}

/// What the merged root holds at the binary's path: the topmost layer with
/// an entry there decides (a 0/0 character device is a whiteout, so
/// nothing).
fn merged_root_entry(tops: &[Top]) -> Option<Node> {
    let node = tops.iter().rev().find_map(|top| top.binary.as_ref())?;
    match node.kind {
        NodeKind::CharDevice { major: 0, minor: 0 } => None,
        _ => Some(node.clone()),
    }
}

/// How two nodes at the binary's path differ, as far as running it cares.
fn differences(main: &Node, other: &Node) -> Option<String> {
    let mut found = Vec::new();
    match (&main.kind, &other.kind) {
        (
            NodeKind::File {
                size, sha256: hash, ..
            },
            NodeKind::File {
                size: other_size,
                sha256: other_hash,
                ..
            },
        ) if size != other_size || hash != other_hash => {
            found.push(format!(
                "other contents ({other_size} bytes, sha256 {}) than umoci's ({size} bytes, sha256 {})",
                hex::encode(other_hash),
                hex::encode(hash)
            ));
        }
        (NodeKind::File { .. }, NodeKind::File { .. }) => {}
        (main_kind, other_kind) if main_kind != other_kind => {
            found.push(format!(
                "{} where umoci has {}",
                other_kind.describe(),
                main_kind.describe()
            ));
        }
        _ => {}
    }
    if (main.mode, main.uid, main.gid) != (other.mode, other.uid, other.gid) {
        found.push(format!(
            "mode {:04o} owner {}:{} where umoci has mode {:04o} owner {}:{}",
            other.mode, other.uid, other.gid, main.mode, main.uid, main.gid
        ));
    }
    if main.file_capabilities != other.file_capabilities {
        found.push("a different security.capability xattr".into());
    }
    (!found.is_empty()).then(|| found.join("; "))
}

impl Filesystem {
    /// Where containers/storage's vfs driver, containerd's overlayfs
    /// snapshotter or containers/storage's overlay driver cannot unpack
    /// the layers, or show the binary's path otherwise than this (umoci's)
    /// model: one sentence each, empty when all agree. Empty too for a
    /// filesystem made by [`Filesystem::with_extractor`], which reads the
    /// layers one way only.
    pub fn extractor_disagreements(&self) -> Vec<String> {
        let main = self.nodes.get(LAYER_BINARY_PATH);
        self.shadows
            .iter()
            .filter_map(|shadow| shadow.disagreement(main))
            .collect()
    }

    /// What the named reading shows at the binary's path (for tests):
    /// `Err` with its failure, or the node.
    pub fn reading_of_binary(&self, name_contains: &str) -> Option<Result<Option<Node>, String>> {
        self.shadows
            .iter()
            .find(|shadow| shadow.name.contains(name_contains))
            .map(|shadow| shadow.binary().map_err(str::to_string))
    }
}
