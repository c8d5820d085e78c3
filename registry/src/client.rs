//! One registry conversation for one repository: every operation the
//! project's tools perform (authenticate, pull a manifest or a blob, check
//! and push blobs, push a manifest, resolve a digest), each with the
//! credentials resolved once and failures classified the same way.
//!
//! Reading never allocates from a size the registry or a manifest declares:
//! manifests are read up to a limit, blobs are streamed to the caller.

use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::{Client, Reference, RegistryOperation};

use crate::{RegistryError, RegistryOptions, ResolvedAuth, classify, resolve_auth};

/// Manifest types asked for: OCI and Docker, single and multi-platform.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
];

/// What a registry operation is for: pulling needs read access, pushing
/// write access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read.
    Pull,
    /// Read and write.
    Push,
}

/// A manifest (or index) as the registry served it.
#[derive(Debug, Clone)]
pub struct PulledManifest {
    /// Its bytes, exactly as served.
    pub bytes: Vec<u8>,
    /// The digest the registry gives for it (`Docker-Content-Digest`, or
    /// computed from the bytes).
    pub digest: String,
    /// The media type the document states, when it states one.
    pub media_type: Option<String>,
}

/// A client for one repository of one registry.
pub struct RegistryClient {
    reference: Reference,
    auth: ResolvedAuth,
    client: Client,
}

impl RegistryClient {
    /// A client for `reference`'s repository, with credentials resolved
    /// from `options` (explicit ones, else the usual auth files).
    pub fn new(reference: &Reference, options: &RegistryOptions) -> Result<Self, RegistryError> {
        let auth = resolve_auth(reference, options)?;
        Ok(Self {
            reference: reference.clone(),
            auth,
            client: crate::client(options),
        })
    }

    /// The reference the client was made for.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// Which credentials are used, and where they came from.
    pub fn credentials(&self) -> &str {
        &self.auth.source
    }

    /// The same repository, at `digest`.
    pub fn at_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    fn fail(&self, error: oci_client::errors::OciDistributionError) -> RegistryError {
        classify(error, &self.reference, &self.auth)
    }

    /// Logs in for `access`: a wrong password fails here, before any
    /// transfer.
    pub async fn authenticate(&self, access: Access) -> Result<(), RegistryError> {
        let operation = match access {
            Access::Pull => RegistryOperation::Pull,
            Access::Push => RegistryOperation::Push,
        };
        self.client
            .auth(&self.reference, &self.auth.auth, operation)
            .await
            .map(|_| ())
            .map_err(|error| self.fail(error))
    }

    /// The manifest or index at `reference` (a tag or digest of this
    /// repository), refused when larger than `limit` bytes.
    pub async fn pull_manifest(
        &self,
        reference: &Reference,
        limit: u64,
    ) -> Result<PulledManifest, RegistryError> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(reference, &self.auth.auth, ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(|error| self.fail(error))?;
        if bytes.len() as u64 > limit {
            return Err(RegistryError::Other {
                registry: reference.registry().to_string(),
                reference: reference.whole(),
                detail: format!(
                    "the manifest is {} bytes, over the limit of {limit}",
                    bytes.len()
                ),
            });
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|value| {
                value
                    .get("mediaType")
                    .and_then(|media_type| media_type.as_str())
                    .map(str::to_string)
            });
        Ok(PulledManifest {
            bytes: bytes.to_vec(),
            digest,
            media_type,
        })
    }

    /// Streams the blob `digest` to `sink`, chunk by chunk, in order; each
    /// byte reaches the sink once. Refused once more than `limit` bytes
    /// arrive. The digest is checked by the caller, which sees every byte.
    pub async fn pull_blob(
        &self,
        digest: &str,
        limit: u64,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<u64, RegistryError> {
        use futures_util::StreamExt;
        let descriptor = oci_client::manifest::OciDescriptor {
            digest: digest.to_string(),
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(&self.reference, &descriptor)
            .await
            .map_err(|error| self.fail(error))?;
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| RegistryError::Other {
                registry: self.reference.registry().to_string(),
                reference: self.reference.whole(),
                detail: format!("reading blob {digest}: {err}"),
            })?;
            received += chunk.len() as u64;
            if received > limit {
                return Err(RegistryError::Other {
                    registry: self.reference.registry().to_string(),
                    reference: self.reference.whole(),
                    detail: format!("blob {digest} is larger than the limit of {limit} bytes"),
                });
            }
            sink(&chunk).map_err(|err| RegistryError::Other {
                registry: self.reference.registry().to_string(),
                reference: self.reference.whole(),
                detail: format!("blob {digest}: {err}"),
            })?;
        }
        Ok(received)
    }

    /// Whether the repository already has the blob `digest`.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        self.client
            .blob_exists(&self.reference, digest)
            .await
            .map_err(|error| self.fail(error))
    }

    /// Uploads a blob whose digest the caller has checked against `bytes`.
    pub async fn push_blob(&self, digest: &str, bytes: bytes::Bytes) -> Result<(), RegistryError> {
        self.client
            .push_blob(&self.reference, bytes, digest)
            .await
            .map(|_| ())
            .map_err(|error| self.fail(error))
    }

    /// Uploads a manifest or index to `reference` (a tag or digest of this
    /// repository).
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let content_type =
            http::HeaderValue::from_str(media_type).map_err(|err| RegistryError::Other {
                registry: reference.registry().to_string(),
                reference: reference.whole(),
                detail: format!("media type {media_type:?}: {err}"),
            })?;
        self.client
            .push_manifest_raw(reference, bytes, content_type)
            .await
            .map(|_| ())
            .map_err(|error| self.fail(error))
    }

    /// The digest the registry gives for `reference` now.
    pub async fn resolve_digest(&self, reference: &Reference) -> Result<String, RegistryError> {
        self.client
            .fetch_manifest_digest(reference, &self.auth.auth)
            .await
            .map_err(|error| self.fail(error))
    }
}
