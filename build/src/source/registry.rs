//! `docker://REF`: an image in a registry, pulled through oci-client.

use oci_client::manifest::{
    IMAGE_DOCKER_CONFIG_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use std::sync::Arc;

use oci_client::{Client, Reference, RegistryOperation};
use oci_spec::image::{Descriptor, MediaType};
use openshell_registry::{RegistryOptions, ResolvedAuth, classify, resolve_auth};

use super::{ImageSource, SourceError};
use crate::image::descriptor;

/// Manifest types asked for: OCI and Docker, single and multi-platform.
const ACCEPTED: &[&str] = &[
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
];

/// An image in a registry.
pub struct RegistrySource {
    text: String,
    reference: Reference,
    auth: ResolvedAuth,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl RegistrySource {
    /// The image at `text` (`HOST/REPO[:TAG][@DIGEST]`).
    pub fn new(text: &str, options: RegistryOptions) -> Result<Self, SourceError> {
        let reference = openshell_registry::parse_reference(text)?;
        let auth = resolve_auth(&reference, &options)?;
        let client = openshell_registry::client(&options);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| SourceError::Io {
                path: "tokio runtime".into(),
                source,
            })?;
        Ok(Self {
            text: text.to_string(),
            reference,
            auth,
            client,
            runtime,
        })
    }

    fn by_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    fn fail(&self, error: oci_client::errors::OciDistributionError) -> SourceError {
        classify(error, &self.reference, &self.auth).into()
    }
}

impl ImageSource for RegistrySource {
    fn describe(&self) -> String {
        format!("docker://{}", self.text)
    }

    fn top(&mut self) -> Result<(Option<Descriptor>, Vec<u8>), SourceError> {
        let (bytes, digest) = self
            .runtime
            .block_on(async {
                self.client
                    .auth(&self.reference, &self.auth.auth, RegistryOperation::Pull)
                    .await?;
                self.client
                    .pull_manifest_raw(&self.reference, &self.auth.auth, ACCEPTED)
                    .await
            })
            .map_err(|err| self.fail(err))?;
        // A pinned reference names the digest to expect; otherwise the
        // registry's own Docker-Content-Digest does.
        let expected_digest = self.reference.digest().map_or(digest, str::to_string);
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|value| {
                value
                    .get("mediaType")
                    .and_then(|v| v.as_str())
                    .map(MediaType::from)
            })
            .unwrap_or(MediaType::ImageManifest);
        let expected = descriptor(media_type, &expected_digest, bytes.len() as u64)
            .map_err(|err| SourceError::Missing(err.to_string()))?;
        Ok((Some(expected), bytes.to_vec()))
    }

    fn manifest(&mut self, descriptor: &Descriptor) -> Result<Vec<u8>, SourceError> {
        let reference = self.by_digest(descriptor.digest().as_ref());
        let (bytes, _) = self
            .runtime
            .block_on(
                self.client
                    .pull_manifest_raw(&reference, &self.auth.auth, ACCEPTED),
            )
            .map_err(|err| self.fail(err))?;
        Ok(bytes.to_vec())
    }

    fn blob(&mut self, descriptor: &Descriptor) -> Result<Arc<Vec<u8>>, SourceError> {
        let digest = descriptor.digest().to_string();
        let mut bytes = Vec::with_capacity(usize::try_from(descriptor.size()).unwrap_or(0));
        self.runtime
            .block_on(
                self.client
                    .pull_blob(&self.reference, digest.as_str(), &mut bytes),
            )
            .map_err(|err| self.fail(err))?;
        Ok(Arc::new(bytes))
    }
}

/// Docker's config media type, accepted alongside OCI's.
pub const DOCKER_CONFIG_MEDIA_TYPE: &str = IMAGE_DOCKER_CONFIG_MEDIA_TYPE;
