//! The image just built, as a source to verify before it is published, and
//! as an image to write.
//!
//! Blobs come from memory; a layer built in this run hands over its
//! uncompressed tar (no decompression), and a layer reused from an earlier
//! run is not read again: it was verified when it was written, and its blob
//! was hashed again when this run chose to reuse it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use oci_spec::image::Descriptor;
use openshell_transport::{ImageSource, ImageToWrite, ReadLimits, TransportError};

use crate::image::BuiltImage;
use openshell_verify::verify::{KnownLayer, KnownLayers};

/// A [`BuiltImage`] as a source.
pub struct BuiltSource<'a> {
    image: &'a BuiltImage,
}

impl<'a> BuiltSource<'a> {
    /// A source over `image`.
    pub fn new(image: &'a BuiltImage) -> Self {
        Self { image }
    }
}

impl ImageSource for BuiltSource<'_> {
    fn describe(&self) -> String {
        "the image just built".into()
    }

    fn top(
        &mut self,
        limits: &ReadLimits,
    ) -> Result<(Option<Descriptor>, Vec<u8>), TransportError> {
        let top = self.image.top.descriptor.clone();
        let bytes = self.manifest(&top, limits)?;
        Ok((Some(top), bytes))
    }

    fn referrers(
        &mut self,
        subject: &Descriptor,
        _limits: &ReadLimits,
    ) -> Result<Option<Vec<Descriptor>>, TransportError> {
        let subject = subject.digest().to_string();
        Ok(Some(
            self.image
                .referrers
                .iter()
                .filter(|referrer| referrer.subject == subject)
                .map(|referrer| referrer.manifest.descriptor.clone())
                .collect(),
        ))
    }

    fn open_blob(
        &mut self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        let digest = descriptor.digest().to_string();
        let blob = self
            .image
            .blobs()
            .into_iter()
            .find(|blob| blob.digest() == digest)
            .ok_or_else(|| {
                TransportError::Missing(format!("the built image has no blob {digest}"))
            })?;
        let bytes = blob.read_verified()?;
        Ok(Box::new(std::io::Cursor::new(SharedBytes(bytes))))
    }
}

/// Bytes shared with the image, readable through a cursor.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// What the builder knows about its own layers.
pub struct BuiltLayers {
    known: HashMap<String, KnownLayer>,
}

impl BuiltLayers {
    /// The layers of `image`.
    pub fn of(image: &BuiltImage) -> Self {
        let known = image
            .platforms
            .iter()
            .map(|platform| {
                let layer = &platform.layer;
                let known = match &layer.tar {
                    Some(tar) => KnownLayer::Tar {
                        tar: Arc::clone(tar),
                        diff_id: layer.diff_id.clone(),
                        applied: layer.applied.clone(),
                    },
                    None => KnownLayer::VerifiedEarlier(
                        "reused from the output layout, where it was verified when first written; its blob was hashed again for this run".into(),
                    ),
                };
                (layer.blob.digest(), known)
            })
            .collect();
        Self { known }
    }
}

impl KnownLayers for BuiltLayers {
    fn known(&self, descriptor: &Descriptor) -> KnownLayer {
        self.known
            .get(&descriptor.digest().to_string())
            .cloned()
            .unwrap_or(KnownLayer::Unknown)
    }
}

impl BuiltImage {
    /// The image, as destinations take it.
    pub fn to_write(&self) -> ImageToWrite {
        let mut blobs = Vec::new();
        for platform in &self.platforms {
            for blob in [&platform.layer.blob, &platform.config] {
                if !blobs
                    .iter()
                    .any(|known: &openshell_transport::Blob| known.digest() == blob.digest())
                {
                    blobs.push(blob.clone());
                }
            }
        }
        let manifests = match &self.index {
            Some(_) => self
                .platforms
                .iter()
                .map(|platform| platform.manifest.clone())
                .collect(),
            None => Vec::new(),
        };
        let mut referrer_blobs: Vec<openshell_transport::Blob> = Vec::new();
        for blob in self
            .referrers
            .iter()
            .flat_map(|referrer| &referrer.blobs)
            .chain(
                self.attachments
                    .iter()
                    .flat_map(|attachment| &attachment.blobs),
            )
        {
            if !referrer_blobs
                .iter()
                .any(|known| known.digest() == blob.digest())
            {
                referrer_blobs.push(blob.clone());
            }
        }
        ImageToWrite {
            blobs,
            manifests,
            top: self.top.clone(),
            referrers: self
                .referrers
                .iter()
                .map(|referrer| referrer.manifest.clone())
                .collect(),
            referrer_blobs,
            attachments: self
                .attachments
                .iter()
                .map(|attachment| openshell_transport::Attachment {
                    tag: attachment.tag.clone(),
                    manifest: attachment.manifest.clone(),
                })
                .collect(),
        }
    }
}
