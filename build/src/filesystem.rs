//! The image's root filesystem, as the layers build it up.
//!
//! Layers are applied in order to a small in-memory tree of metadata (paths,
//! types, modes, owners, link targets), keeping file contents only for files
//! named like the supervisor binary. Whiteouts (`.wh.NAME`) delete what lower
//! layers put at NAME, an opaque marker (`.wh..wh..opq`) empties its folder
//! of lower layers' entries, and hard links copy their target's node. Entries
//! that are unsafe in an image volume are refused and reported instead of
//! applied: absolute or `..` paths, device nodes and fifos, and links whose
//! target leaves the image root.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;

use openshell_contract::{BINARY_NAME, MOUNT_PATH, path_under_mount};

/// The kept contents of a file, and their sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContents {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// sha256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// What kind of thing sits at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file, with its contents when kept.
    File {
        /// Size in bytes.
        size: u64,
        /// Contents, kept for files named like the binary (shared, so
        /// hard links and copies of the tree do not copy tens of MiB).
        contents: Option<Arc<FileContents>>,
    },
    /// A folder.
    Dir,
    /// A symbolic link and its target.
    Symlink(String),
}

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Type and type-specific data.
    pub kind: NodeKind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Index of the layer that last wrote it.
    pub layer: usize,
}

/// A whiteout that removed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Index of the layer with the whiteout.
    pub layer: usize,
    /// The whiteout entry's path.
    pub whiteout: String,
}

/// An entry that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeEntry {
    /// Index of its layer.
    pub layer: usize,
    /// Its path as written in the tar.
    pub path: String,
    /// Why it is refused.
    pub reason: String,
}

/// The filesystem after all layers.
#[derive(Debug, Clone, Default)]
pub struct Filesystem {
    /// Paths relative to the root, without leading `/` or `./`.
    pub nodes: BTreeMap<String, Node>,
    /// Paths removed by whiteouts, and by which.
    pub removed: BTreeMap<String, Removal>,
    /// Entries refused as unsafe.
    pub unsafe_entries: Vec<UnsafeEntry>,
}

/// A layer that cannot be read as a tar.
#[derive(Debug, thiserror::Error)]
#[error("layer {layer} is not a readable tar: {detail}")]
pub struct FilesystemError {
    /// Index of the layer.
    pub layer: usize,
    /// What went wrong.
    pub detail: String,
}

/// Resolves `path` (relative to the image root) lexically, refusing to climb
/// above the root. Returns the normalized path without leading `/`.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Filesystem {
    /// Applies one layer's tar stream on top of what is there.
    pub fn apply_layer(&mut self, layer: usize, tar: impl Read) -> Result<(), FilesystemError> {
        let fail = |detail: String| FilesystemError { layer, detail };
        let mut archive = tar::Archive::new(tar);
        // Paths this layer wrote: an opaque marker hides lower layers only.
        let mut written: BTreeSet<String> = BTreeSet::new();
        let entries = archive.entries().map_err(|err| fail(err.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|err| fail(err.to_string()))?;
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let header = entry.header().clone();
            let refuse = |fs: &mut Self, reason: String| {
                fs.unsafe_entries.push(UnsafeEntry {
                    layer,
                    path: raw_path.clone(),
                    reason,
                });
            };
            if raw_path.starts_with('/') {
                refuse(
                    self,
                    "absolute path (expected a path relative to the image root)".into(),
                );
                continue;
            }
            if raw_path.split('/').any(|part| part == "..") {
                refuse(
                    self,
                    "path contains '..' (expected no parent-folder steps)".into(),
                );
                continue;
            }
            let Some(path) = normalize(&raw_path) else {
                continue;
            };
            if path.is_empty() {
                // The root itself ("./"): nothing to record.
                continue;
            }
            let name = path.rsplit('/').next().unwrap_or(&path);
            let mode = header.mode().unwrap_or(0);
            let uid = header.uid().unwrap_or(u64::MAX);
            let gid = header.gid().unwrap_or(u64::MAX);

            if let Some(hidden) = name.strip_prefix(".wh.") {
                let dir = parent_of(&path).to_string();
                if hidden == ".wh..opq" {
                    let lower: Vec<String> = self
                        .nodes
                        .keys()
                        .filter(|key| is_under(key, &dir) && !written.contains(*key))
                        .cloned()
                        .collect();
                    for key in lower {
                        self.remove(&key, layer, &path);
                    }
                } else {
                    let target = if dir.is_empty() {
                        hidden.to_string()
                    } else {
                        format!("{dir}/{hidden}")
                    };
                    self.remove(&target, layer, &path);
                }
                continue;
            }

            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let contents = if name == BINARY_NAME {
                        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                        entry
                            .read_to_end(&mut bytes)
                            .map_err(|err| fail(format!("{raw_path}: {err}")))?;
                        let sha256 = crate::binary::sha256_hex(&bytes);
                        Some(Arc::new(FileContents { bytes, sha256 }))
                    } else {
                        None
                    };
                    NodeKind::File { size, contents }
                }
                tar::EntryType::Directory => NodeKind::Dir,
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                        .unwrap_or_default();
                    // A link that leaves the image is refused but still
                    // recorded, so the checks on the binary see what sits at
                    // its path.
                    if target.starts_with('/') {
                        let resolved = path_under_mount(MOUNT_PATH, &target);
                        refuse(
                            self,
                            format!(
                                "symlink to the absolute path {target}: in an image volume it resolves against the agent container's root ({target} there, not {resolved}), so it leaves the image"
                            ),
                        );
                    } else if normalize(&format!("{}/{target}", parent_of(&path))).is_none() {
                        refuse(
                            self,
                            format!("symlink to {target}, which climbs above the image root"),
                        );
                    }
                    NodeKind::Symlink(target)
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                        .unwrap_or_default();
                    let resolved =
                        if target.starts_with('/') || target.split('/').any(|p| p == "..") {
                            None
                        } else {
                            normalize(&target)
                        };
                    let Some(resolved) = resolved else {
                        refuse(
                            self,
                            format!("hard link to {target}, which leaves the image root"),
                        );
                        continue;
                    };
                    match self.nodes.get(&resolved) {
                        Some(node) => {
                            let mut node = node.clone();
                            node.layer = layer;
                            written.insert(path.clone());
                            self.removed.remove(&path);
                            self.nodes.insert(path, node);
                        }
                        None => refuse(
                            self,
                            format!("hard link to {target}, which is not in the image"),
                        ),
                    }
                    continue;
                }
                tar::EntryType::Char | tar::EntryType::Block => {
                    refuse(
                        self,
                        "device node (expected only files, folders and links)".into(),
                    );
                    continue;
                }
                tar::EntryType::Fifo => {
                    refuse(self, "fifo (expected only files, folders and links)".into());
                    continue;
                }
                tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink => continue,
                other => {
                    refuse(self, format!("unsupported tar entry type {other:?}"));
                    continue;
                }
            };
            // A new non-folder entry replaces whatever was there, including
            // a folder and everything under it.
            if kind != NodeKind::Dir {
                let below: Vec<String> = self
                    .nodes
                    .keys()
                    .filter(|key| is_under(key, &path))
                    .cloned()
                    .collect();
                for key in below {
                    self.nodes.remove(&key);
                }
            }
            written.insert(path.clone());
            self.removed.remove(&path);
            self.nodes.insert(
                path,
                Node {
                    kind,
                    mode,
                    uid,
                    gid,
                    layer,
                },
            );
        }
        Ok(())
    }

    fn remove(&mut self, target: &str, layer: usize, whiteout: &str) {
        let doomed: Vec<String> = self
            .nodes
            .keys()
            .filter(|key| key.as_str() == target || is_under(key, target))
            .cloned()
            .collect();
        for key in doomed {
            self.nodes.remove(&key);
            self.removed.insert(
                key,
                Removal {
                    layer,
                    whiteout: whiteout.to_string(),
                },
            );
        }
    }

    /// Paths of regular files or links named `name`, anywhere.
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

    /// A tar from (path, type, link target, contents, mode) tuples, written
    /// with raw headers so any path, even an unsafe one, can be stored.
    pub(crate) fn tar_of(entries: &[(&str, tar::EntryType, &str, &[u8], u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, link, contents, mode) in entries {
            let mut header = tar::Header::new_gnu();
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_entry_type(*kind);
            header.set_size(contents.len() as u64);
            header.set_mode(*mode);
            header.set_uid(0);
            header.set_gid(0);
            if !link.is_empty() {
                header.set_link_name(link).unwrap();
            }
            header.set_cksum();
            builder.append(&header, *contents).unwrap();
        }
        builder.into_inner().unwrap()
    }

    use tar::EntryType as T;

    #[test]
    fn whiteouts_and_opaque_folders_remove_lower_entries() {
        let mut fs = Filesystem::default();
        let lower = tar_of(&[
            ("bin/", T::Directory, "", b"", 0o755),
            ("bin/a", T::Regular, "", b"a", 0o644),
            ("bin/b", T::Regular, "", b"b", 0o644),
            ("openshell-sandbox", T::Regular, "", b"ELF", 0o555),
        ]);
        fs.apply_layer(0, &lower[..]).unwrap();
        let upper = tar_of(&[
            ("bin/c", T::Regular, "", b"c", 0o644),
            ("bin/.wh..wh..opq", T::Regular, "", b"", 0o644),
            (".wh.openshell-sandbox", T::Regular, "", b"", 0o644),
        ]);
        fs.apply_layer(1, &upper[..]).unwrap();
        let paths: Vec<&str> = fs.nodes.keys().map(String::as_str).collect();
        assert_eq!(paths, ["bin", "bin/c"]);
        assert_eq!(
            fs.removed["openshell-sandbox"].whiteout,
            ".wh.openshell-sandbox"
        );
        assert_eq!(fs.removed["openshell-sandbox"].layer, 1);
    }

    #[test]
    fn hard_links_copy_their_target_and_keep_contents() {
        let mut fs = Filesystem::default();
        let layer = tar_of(&[
            ("usr/openshell-sandbox", T::Regular, "", b"ELF!", 0o555),
            (
                "openshell-sandbox",
                T::Link,
                "usr/openshell-sandbox",
                b"",
                0o555,
            ),
        ]);
        fs.apply_layer(0, &layer[..]).unwrap();
        assert_eq!(
            fs.nodes["openshell-sandbox"].kind,
            NodeKind::File {
                size: 4,
                contents: Some(Arc::new(FileContents {
                    bytes: b"ELF!".to_vec(),
                    sha256: crate::binary::sha256_hex(b"ELF!"),
                }))
            }
        );
        assert!(fs.unsafe_entries.is_empty());
    }

    #[test]
    fn unsafe_entries_are_refused_with_reasons() {
        let mut fs = Filesystem::default();
        let layer = tar_of(&[
            ("/etc/passwd", T::Regular, "", b"x", 0o644),
            ("a/../../escape", T::Regular, "", b"x", 0o644),
            ("dev/null", T::Char, "", b"", 0o666),
            ("pipe", T::Fifo, "", b"", 0o644),
            ("out", T::Symlink, "../../etc", b"", 0o777),
            ("abs", T::Symlink, "/usr/bin/env", b"", 0o777),
            ("hard", T::Link, "/etc/shadow", b"", 0o644),
            ("ok", T::Symlink, "sub/file", b"", 0o777),
        ]);
        fs.apply_layer(0, &layer[..]).unwrap();
        let reasons: Vec<(&str, &str)> = fs
            .unsafe_entries
            .iter()
            .map(|entry| (entry.path.as_str(), entry.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 7, "{reasons:?}");
        assert!(reasons[0].1.contains("absolute path"));
        assert!(reasons[1].1.contains("'..'"));
        assert!(reasons[2].1.contains("device node"));
        assert!(reasons[3].1.contains("fifo"));
        assert!(reasons[4].1.contains("climbs above the image root"));
        assert!(reasons[5].1.contains("agent container's root"));
        assert!(reasons[6].1.contains("leaves the image root"));
        assert!(fs.nodes.contains_key("ok"));
        assert_eq!(
            fs.nodes["abs"].kind,
            NodeKind::Symlink("/usr/bin/env".into())
        );
    }
}
