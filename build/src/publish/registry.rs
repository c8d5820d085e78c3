//! Publishing to a registry through oci-client (via `openshell-registry`,
//! which finds credentials and explains refusals the same way for every tool
//! of the project).

use oci_client::{Reference, RegistryOperation};
use openshell_registry::{RegistryError, RegistryOptions, ResolvedAuth, classify, resolve_auth};

use super::{Destination, PublishError, Published};
use crate::image::BuiltImage;
use crate::progress::{Progress, human_size};

/// A registry repository and tag to push to.
#[derive(Debug, Clone)]
pub struct RegistryPush {
    /// The reference as the user wrote it (`HOST/REPO:TAG`).
    pub text: String,
    /// The parsed reference.
    pub reference: Reference,
    /// How to reach the registry.
    pub options: RegistryOptions,
}

impl RegistryPush {
    /// Parses `text` (a tag, not a digest: the digest is the outcome).
    pub fn new(text: &str, options: RegistryOptions) -> Result<Self, PublishError> {
        let reference = openshell_registry::parse_reference(text)?;
        if reference.digest().is_some() {
            return Err(RegistryError::InvalidReference {
                reference: text.to_string(),
                reason: "--push takes a repository and tag; the digest is what the push produces"
                    .into(),
            }
            .into());
        }
        Ok(Self {
            text: text.to_string(),
            reference,
            options,
        })
    }

    fn by_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    async fn push(&self, image: &BuiltImage, progress: &Progress) -> Result<String, RegistryError> {
        let auth: ResolvedAuth = resolve_auth(&self.reference, &self.options)?;
        let client = openshell_registry::client(&self.options);
        let fail = |error| classify(error, &self.reference, &auth);
        // Authenticate first: a wrong password fails here, before any upload.
        client
            .auth(&self.reference, &auth.auth, RegistryOperation::Push)
            .await
            .map_err(fail)?;
        let mut sent = 0u64;
        let mut skipped = 0u64;
        for platform in &image.platforms {
            for blob in [&platform.layer.blob, &platform.config] {
                let digest = blob.descriptor.digest().to_string();
                if client
                    .blob_exists(&self.reference, &digest)
                    .await
                    .map_err(fail)?
                {
                    skipped += blob.descriptor.size();
                    continue;
                }
                let bytes = blob.data.load().map_err(|err| RegistryError::Other {
                    registry: self.reference.registry().to_string(),
                    reference: self.text.clone(),
                    detail: format!("could not read blob {digest}: {err}"),
                })?;
                client
                    .push_blob(&self.reference, bytes.to_vec(), &digest)
                    .await
                    .map_err(fail)?;
                sent += blob.descriptor.size();
                progress.note(format!(
                    "pushed blob {digest} ({})",
                    human_size(blob.descriptor.size())
                ));
            }
        }
        // With an index, each platform's manifest goes up by digest first,
        // then the index under the tag.
        if image.index.is_some() {
            for platform in &image.platforms {
                let digest = platform.manifest.descriptor.digest().to_string();
                push_manifest(&client, &self.by_digest(&digest), &platform.manifest)
                    .await
                    .map_err(fail)?;
            }
        }
        let top = image.index.as_ref().map_or_else(
            || image.platforms.first().map(|platform| &platform.manifest),
            Some,
        );
        let Some(top) = top else {
            return Err(RegistryError::Other {
                registry: self.reference.registry().to_string(),
                reference: self.text.clone(),
                detail: "the image has no manifest to push".into(),
            });
        };
        push_manifest(&client, &self.reference, top)
            .await
            .map_err(fail)?;
        progress.note(format!(
            "pushed {}: {} sent, {} already there",
            self.text,
            human_size(sent),
            human_size(skipped)
        ));
        Ok(top.descriptor.digest().to_string())
    }
}

async fn push_manifest(
    client: &oci_client::Client,
    reference: &Reference,
    blob: &crate::image::Blob,
) -> Result<(), oci_client::errors::OciDistributionError> {
    let bytes = blob.data.load().map_err(|err| {
        oci_client::errors::OciDistributionError::GenericError(Some(err.to_string()))
    })?;
    let content_type =
        http::HeaderValue::from_str(blob.descriptor.media_type().as_ref()).map_err(|err| {
            oci_client::errors::OciDistributionError::GenericError(Some(err.to_string()))
        })?;
    client
        .push_manifest_raw(reference, bytes.to_vec(), content_type)
        .await?;
    Ok(())
}

impl Destination for RegistryPush {
    fn describe(&self) -> String {
        format!("docker://{}", self.text)
    }

    fn publish(&self, image: &BuiltImage, progress: &Progress) -> Result<Published, PublishError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| PublishError::Io {
                what: "start the network runtime".into(),
                source: err,
            })?;
        let step = progress.step(format!("pushing to {}", self.describe()));
        let digest = runtime.block_on(self.push(image, progress))?;
        let pinned = format!("{}@{digest}", self.text);
        step.done(&pinned);
        Ok(Published::Pushed { pinned })
    }
}
