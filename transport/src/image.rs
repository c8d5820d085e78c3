//! An image ready to be written to any destination: its blobs, the
//! manifests below its top, its top-level manifest or index, and the
//! artifacts that refer to it (OCI 1.1 referrers).

use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::Descriptor;

use crate::TransportError;
use crate::digest::check_bytes;

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub enum BlobData {
    /// In memory.
    Memory(Arc<Vec<u8>>),
    /// In a file that should hold exactly the blob (a layout's blob from
    /// an earlier run). It is read and checked against the digest every
    /// time it is used, so a tampered file is never published.
    File(PathBuf),
    /// A file of an OCI layout that this run has just read and checked
    /// against the digest while holding that layout's lock: writing the
    /// image back into the same layout keeps it without reading it again.
    /// Anywhere else (a push, another layout) it is read and checked like
    /// [`BlobData::File`].
    VerifiedFile(PathBuf),
}

/// A blob and the descriptor that names it.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Media type, digest and size.
    pub descriptor: Descriptor,
    /// The bytes.
    pub data: BlobData,
}

impl Blob {
    /// A blob held in memory.
    pub fn in_memory(descriptor: Descriptor, bytes: Arc<Vec<u8>>) -> Self {
        Self {
            descriptor,
            data: BlobData::Memory(bytes),
        }
    }

    /// The bytes, checked against the descriptor's digest and size.
    pub fn read_verified(&self) -> Result<Arc<Vec<u8>>, TransportError> {
        let bytes = match &self.data {
            BlobData::Memory(bytes) => return Ok(Arc::clone(bytes)),
            BlobData::File(path) | BlobData::VerifiedFile(path) => {
                Arc::new(std::fs::read(path).map_err(TransportError::io("read", path))?)
            }
        };
        let what = match &self.data {
            BlobData::File(path) | BlobData::VerifiedFile(path) => {
                format!("blob file {}", path.display())
            }
            BlobData::Memory(_) => "blob".to_string(),
        };
        check_bytes(&what, &self.descriptor, &bytes)?;
        Ok(bytes)
    }

    /// Checks the bytes against the descriptor's digest and size without
    /// holding them: a file is streamed through the hash.
    pub fn check(&self) -> Result<(), TransportError> {
        let path = match &self.data {
            BlobData::Memory(_) => return Ok(()),
            BlobData::File(path) | BlobData::VerifiedFile(path) => path,
        };
        let what = format!("blob file {}", path.display());
        let file = std::fs::File::open(path).map_err(TransportError::io("read", path))?;
        let digester = crate::digest::digester_for(&what, self.descriptor.digest())?;
        let (actual, size) = openshell_contract::digest::DigestingReader::new(
            std::io::BufReader::with_capacity(256 * 1024, file),
            digester,
        )
        .finish()
        .map_err(TransportError::io("read", path))?;
        let expected = self.descriptor.digest().to_string();
        if actual != expected {
            return Err(TransportError::DigestMismatch {
                what,
                expected,
                actual,
            });
        }
        if size != self.descriptor.size() {
            return Err(TransportError::DigestMismatch {
                what,
                expected: format!("{} bytes", self.descriptor.size()),
                actual: format!("{size} bytes"),
            });
        }
        Ok(())
    }

    /// The digest, as text.
    pub fn digest(&self) -> String {
        self.descriptor.digest().to_string()
    }
}

/// An image to write.
#[derive(Debug, Clone)]
pub struct ImageToWrite {
    /// Layers and configs, each once, in the order they are uploaded.
    pub blobs: Vec<Blob>,
    /// Manifests an index at the top lists, uploaded by digest before it.
    pub manifests: Vec<Blob>,
    /// The top-level manifest or index, which tags name.
    pub top: Blob,
    /// Manifests whose `subject` is a manifest of this image (an SBOM, a
    /// signature), uploaded by digest after the top.
    pub referrers: Vec<Blob>,
    /// Blobs the referrers need (their configs and layers).
    pub referrer_blobs: Vec<Blob>,
    /// Manifests a registry keeps under a tag of their own: cosign's
    /// `sha256-<hex>.sig` signatures and `.att` attestations, which cosign
    /// v2, Kyverno and containers/image look up by that tag. Pushed after
    /// the referrers; their blobs are among `referrer_blobs`. Layouts and
    /// archives leave them out (a second tagged image would make an
    /// untagged `oci:DIR` ambiguous): there the referrer forms carry the
    /// same signatures.
    pub attachments: Vec<Attachment>,
}

/// A manifest stored under its own tag next to the image.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The tag (`sha256-<hex>.sig`).
    pub tag: String,
    /// The manifest.
    pub manifest: Blob,
}

impl ImageToWrite {
    /// Every blob, dependencies first: blobs, manifests, top, referrers'
    /// blobs, referrers.
    pub fn all_blobs(&self) -> impl Iterator<Item = &Blob> {
        self.blobs
            .iter()
            .chain(&self.manifests)
            .chain(std::iter::once(&self.top))
            .chain(&self.referrer_blobs)
            .chain(&self.referrers)
            .chain(
                self.attachments
                    .iter()
                    .map(|attachment| &attachment.manifest),
            )
    }

    /// The blob with this digest, if the image has it.
    pub fn blob(&self, digest: &str) -> Option<&Blob> {
        self.all_blobs().find(|blob| blob.digest() == digest)
    }
}
