//! `oci:DIR[:TAG]`: an OCI image layout folder.

use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageIndex};
use openshell_contract::annotations::oci::REF_NAME;

use super::{ImageSource, SourceError};
use crate::publish::oci_layout::{INDEX_FILE, blob_path};

/// An image in an OCI layout, chosen by tag (or the only one there).
#[derive(Debug, Clone)]
pub struct OciLayoutSource {
    dir: PathBuf,
    tag: Option<String>,
}

impl OciLayoutSource {
    /// The image tagged `tag` in the layout at `dir`.
    pub fn new(dir: PathBuf, tag: Option<String>) -> Self {
        Self { dir, tag }
    }
}

impl ImageSource for OciLayoutSource {
    fn describe(&self) -> String {
        match &self.tag {
            Some(tag) => format!("oci:{}:{tag}", self.dir.display()),
            None => format!("oci:{}", self.dir.display()),
        }
    }

    fn top(&mut self) -> Result<(Option<Descriptor>, Vec<u8>), SourceError> {
        let index_path = self.dir.join(INDEX_FILE);
        let bytes = std::fs::read(&index_path).map_err(|source| SourceError::Io {
            path: index_path.clone(),
            source,
        })?;
        let index = ImageIndex::from_reader(&bytes[..]).map_err(|err| {
            SourceError::Missing(format!(
                "{} is not a valid image index: {err}",
                index_path.display()
            ))
        })?;
        let tag_of = |entry: &Descriptor| {
            entry
                .annotations()
                .as_ref()
                .and_then(|annotations| annotations.get(REF_NAME).cloned())
        };
        let entry = match &self.tag {
            Some(tag) => index
                .manifests()
                .iter()
                .find(|entry| tag_of(entry).as_deref() == Some(tag.as_str())),
            None if index.manifests().len() == 1 => index.manifests().first(),
            None => None,
        };
        let Some(entry) = entry else {
            let tags: Vec<String> = index.manifests().iter().filter_map(tag_of).collect();
            return Err(SourceError::Missing(match &self.tag {
                Some(tag) => format!(
                    "{} has no image tagged {tag:?} (tags there: {})",
                    index_path.display(),
                    if tags.is_empty() {
                        "none".to_string()
                    } else {
                        tags.join(", ")
                    }
                ),
                None => format!(
                    "{} holds {} images: name one with oci:{}:TAG (tags there: {})",
                    index_path.display(),
                    index.manifests().len(),
                    self.dir.display(),
                    tags.join(", ")
                ),
            }));
        };
        let bytes = self.blob(entry)?;
        Ok((Some(entry.clone()), bytes.to_vec()))
    }

    fn blob(&mut self, descriptor: &Descriptor) -> Result<Arc<Vec<u8>>, SourceError> {
        let digest = descriptor.digest().to_string();
        let path = blob_path(&self.dir, &digest).ok_or_else(|| {
            SourceError::Missing(format!("descriptor digest {digest:?} is not algorithm:hex"))
        })?;
        std::fs::read(&path)
            .map(Arc::new)
            .map_err(|source| SourceError::Io { path, source })
    }
}
