//! Writing an image: one [`Destination`] per transport (after ko's
//! publishers), and one [`Published`] result for all of them.

use serde::Serialize;

use crate::TransportError;
use crate::image::ImageToWrite;
use crate::progress::Progress;

/// Where an image went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The destination as given (`oci:DIR:TAG,...`, `docker-archive:FILE`,
    /// `docker://REF`).
    pub destination: String,
    /// Every reference written, one per tag (`oci:DIR:TAG`,
    /// `docker-archive:FILE:NAME:TAG`, `docker://HOST/REPO:TAG`).
    pub references: Vec<String>,
    /// Digest of the top-level manifest or index.
    pub digest: String,
    /// `HOST/REPO@sha256:...`, for a registry.
    pub pinned: Option<String>,
    /// Blobs written or uploaded.
    pub blobs_written: usize,
    /// Their bytes.
    pub bytes_written: u64,
    /// Blobs the destination already held (checked, not written again).
    pub blobs_present: usize,
}

/// A place an image can be written to.
pub trait Destination {
    /// The destination, as a transport reference.
    fn describe(&self) -> String;

    /// Writes the image.
    fn publish(
        &self,
        image: &ImageToWrite,
        progress: &Progress,
    ) -> Result<Published, TransportError>;
}
