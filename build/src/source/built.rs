//! The image just built, verified before it is published.
//!
//! Blobs come from memory; a layer built in this run hands over its
//! uncompressed tar (no decompression), and a layer reused from an earlier
//! run is not read again: it was verified when it was written.

use std::collections::HashMap;
use std::sync::Arc;

use oci_spec::image::Descriptor;

use super::{ImageSource, KnownLayer, SourceError};
use crate::filesystem::Filesystem;
use crate::image::{BlobData, BuiltImage};

/// A layer's tar, its digest, and its tree, when built in this run.
type KnownTar = Option<(Arc<Vec<u8>>, String, Option<Arc<Filesystem>>)>;

/// A [`BuiltImage`] as a source.
pub struct BuiltSource<'a> {
    image: &'a BuiltImage,
    blobs: HashMap<String, &'a BlobData>,
    tars: HashMap<String, KnownTar>,
}

impl<'a> BuiltSource<'a> {
    /// A source over `image`.
    pub fn new(image: &'a BuiltImage) -> Self {
        let blobs = image
            .blobs()
            .into_iter()
            .map(|blob| (blob.descriptor.digest().to_string(), &blob.data))
            .collect();
        let tars = image
            .platforms
            .iter()
            .map(|platform| {
                (
                    platform.layer.blob.descriptor.digest().to_string(),
                    platform.layer.tar.clone().map(|tar| {
                        (
                            tar,
                            platform.layer.diff_id.clone(),
                            platform.layer.applied.clone(),
                        )
                    }),
                )
            })
            .collect();
        Self { image, blobs, tars }
    }
}

impl ImageSource for BuiltSource<'_> {
    fn describe(&self) -> String {
        "the image just built".into()
    }

    fn top(&mut self) -> Result<(Option<Descriptor>, Vec<u8>), SourceError> {
        let top = self.image.top.clone();
        let bytes = self.blob(&top)?;
        Ok((Some(top), bytes.to_vec()))
    }

    fn blob(&mut self, descriptor: &Descriptor) -> Result<Arc<Vec<u8>>, SourceError> {
        let digest = descriptor.digest().to_string();
        let data = self
            .blobs
            .get(&digest)
            .ok_or_else(|| SourceError::Missing(format!("the built image has no blob {digest}")))?;
        data.load().map_err(|source| SourceError::Io {
            path: digest.into(),
            source,
        })
    }

    fn known_layer(&self, descriptor: &Descriptor) -> KnownLayer {
        match self.tars.get(&descriptor.digest().to_string()) {
            Some(Some((tar, diff_id, applied))) => KnownLayer::Tar {
                tar: Arc::clone(tar),
                diff_id: diff_id.clone(),
                applied: applied.clone(),
            },
            Some(None) => KnownLayer::VerifiedEarlier(
                "reused from the output layout, where it was verified when first written".into(),
            ),
            None => KnownLayer::Unknown,
        }
    }
}
