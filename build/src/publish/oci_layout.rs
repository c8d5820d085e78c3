//! Publishing into an OCI image layout folder.
//!
//! Blobs are content-addressed, so each is written under a temporary name and
//! renamed into place, and `index.json` is replaced last: a run that stops
//! half-way leaves the previous image fully usable, with at worst some
//! unreferenced blobs. Other tags in `index.json` are kept; the same tag
//! moves to the new image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, ImageIndex, ImageIndexBuilder, MediaType, OciLayoutBuilder, SCHEMA_VERSION,
};
use openshell_contract::annotations::oci::REF_NAME;
use sha2::{Digest as _, Sha256};

use super::{Destination, PublishError, Published};
use crate::atomic;
use crate::image::{BlobData, BuiltImage, canonical_json, with_annotations};
use crate::progress::{Progress, human_size};

/// Name of the layout marker file.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// Name of the layout's index.
pub const INDEX_FILE: &str = "index.json";

/// The path of a blob inside a layout.
pub fn blob_path(layout: &Path, digest: &str) -> Option<PathBuf> {
    let (algorithm, hex) = digest.split_once(':')?;
    let safe = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
    };
    (safe(algorithm) && safe(hex)).then(|| layout.join("blobs").join(algorithm).join(hex))
}

/// Checks that `dir` can receive a layout: missing, empty, or a layout
/// already. Nothing is written by this check.
pub fn check_output(dir: &Path) -> Result<(), PublishError> {
    let refuse = |reason: &str| PublishError::NotALayout {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    match std::fs::metadata(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(PublishError::Io {
            what: format!("inspect the output folder {}", dir.display()),
            source: err,
        }),
        Ok(meta) if !meta.is_dir() => Err(refuse("it is not a folder")),
        Ok(_) => {
            if dir.join(OCI_LAYOUT_FILE).is_file() {
                return Ok(());
            }
            let mut entries = std::fs::read_dir(dir).map_err(|err| PublishError::Io {
                what: format!("list the output folder {}", dir.display()),
                source: err,
            })?;
            if entries.next().is_some() {
                Err(refuse(
                    "it has files but no oci-layout file, so it is not an OCI image layout",
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// An OCI image layout folder and the tag to give the image there.
#[derive(Debug, Clone)]
pub struct OciLayout {
    /// The layout folder.
    pub dir: PathBuf,
    /// Tag (`org.opencontainers.image.ref.name`).
    pub tag: String,
}

impl OciLayout {
    fn io(&self, what: String) -> impl Fn(std::io::Error) -> PublishError {
        move |source| PublishError::Io {
            what: what.clone(),
            source,
        }
    }

    /// Writes one blob unless the layout already holds exactly it.
    /// Returns whether it was written.
    fn put_blob(&self, descriptor: &Descriptor, data: &BlobData) -> Result<bool, PublishError> {
        let digest = descriptor.digest().to_string();
        let path = blob_path(&self.dir, &digest).ok_or_else(|| PublishError::Io {
            what: format!("store blob {digest}"),
            source: std::io::Error::other("not an algorithm:hex digest"),
        })?;
        if let BlobData::File(source) = data {
            if source == &path {
                return Ok(false);
            }
        }
        let bytes = data
            .load()
            .map_err(self.io(format!("read blob {digest}")))?;
        // Content-addressed: a file of the right size whose hash matches is
        // the same blob (hashing 10 MB takes 4 ms; a torn or tampered file
        // is replaced).
        if let Ok(existing) = std::fs::read(&path) {
            if existing.len() == bytes.len()
                && format!("sha256:{}", hex::encode(Sha256::digest(&existing))) == digest
            {
                return Ok(false);
            }
        }
        let dir = atomic::parent(&path);
        std::fs::create_dir_all(dir).map_err(self.io(format!("create {}", dir.display())))?;
        atomic::write_file(&path, &bytes).map_err(self.io(format!("write {}", path.display())))?;
        Ok(true)
    }

    /// The layout's `index.json` with the image under this tag, other tags
    /// kept.
    fn updated_index(&self, top: &Descriptor) -> Result<ImageIndex, PublishError> {
        let index_path = self.dir.join(INDEX_FILE);
        let mut manifests: Vec<Descriptor> = if index_path.is_file() {
            let existing =
                ImageIndex::from_file(&index_path).map_err(|err| PublishError::Corrupt {
                    path: index_path.clone(),
                    detail: err.to_string(),
                })?;
            existing
                .manifests()
                .iter()
                .filter(|entry| {
                    entry
                        .annotations()
                        .as_ref()
                        .and_then(|annotations| annotations.get(REF_NAME))
                        .is_none_or(|name| name != &self.tag)
                })
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let entry = with_annotations(
            top,
            HashMap::from([(REF_NAME.to_string(), self.tag.clone())]),
        )
        .map_err(|err| PublishError::Assemble(err.to_string()))?;
        manifests.push(entry);
        ImageIndexBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .map_err(|err| PublishError::Assemble(err.to_string()))
    }
}

impl Destination for OciLayout {
    fn describe(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }

    fn publish(&self, image: &BuiltImage, progress: &Progress) -> Result<Published, PublishError> {
        check_output(&self.dir)?;
        std::fs::create_dir_all(&self.dir)
            .map_err(self.io(format!("create {}", self.dir.display())))?;

        let marker = self.dir.join(OCI_LAYOUT_FILE);
        if !marker.is_file() {
            let layout = OciLayoutBuilder::default()
                .image_layout_version("1.0.0")
                .build()
                .map_err(|err| PublishError::Assemble(err.to_string()))?;
            let bytes =
                canonical_json(&layout).map_err(|err| PublishError::Assemble(err.to_string()))?;
            atomic::write_file(&marker, &bytes)
                .map_err(self.io(format!("write {}", marker.display())))?;
        }

        let mut written = Vec::new();
        let mut written_bytes = 0;
        for blob in image.blobs() {
            if self.put_blob(&blob.descriptor, &blob.data)? {
                written.push(blob.descriptor.digest().to_string());
                written_bytes += blob.descriptor.size();
            }
        }
        let blobs_dir = self.dir.join("blobs").join("sha256");
        if blobs_dir.is_dir() {
            atomic::sync_dir(&blobs_dir)
                .map_err(self.io(format!("sync {}", blobs_dir.display())))?;
        }

        let index = self.updated_index(&image.top)?;
        let bytes =
            canonical_json(&index).map_err(|err| PublishError::Assemble(err.to_string()))?;
        let index_path = self.dir.join(INDEX_FILE);
        if std::fs::read(&index_path).ok().as_deref() != Some(&bytes[..]) {
            atomic::write_file(&index_path, &bytes)
                .map_err(self.io(format!("write {}", index_path.display())))?;
            atomic::sync_dir(&self.dir).map_err(self.io(format!("sync {}", self.dir.display())))?;
        }
        progress.note(format!(
            "wrote {}: {} new blob(s), {}",
            self.describe(),
            written.len(),
            human_size(written_bytes)
        ));
        Ok(Published::Layout {
            path: self.dir.clone(),
            tag: self.tag.clone(),
            written,
        })
    }
}
