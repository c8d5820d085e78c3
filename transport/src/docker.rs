//! `docker://REF`: an image in a registry, read and written through
//! [`openshell_registry::RegistryClient`], with the project's credentials,
//! deadlines, retries and error messages.

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType, SCHEMA_VERSION};
use openshell_registry::{Access, Reference, RegistryClient, RegistryError, RegistryOptions};
use serde::Deserialize;

use crate::TransportError;
use crate::destination::{Destination, Published};
use crate::document::canonical_json;
use crate::image::{Blob, ImageToWrite};
use crate::limits::ReadLimits;
use crate::progress::{Progress, human_size};
use crate::source::{ImageSource, referrer_facts};

/// The tag under which the OCI 1.1 referrers tag schema keeps the index of
/// the referrers of `digest` (`sha256:HEX` becomes `sha256-HEX`), for
/// registries without the referrers API.
pub fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The `manifests` of an index, all that a referrers listing needs.
#[derive(Debug, Deserialize)]
struct Listing {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// Lists the referrers of the manifest `subject_digest` in the client's
/// repository: through the distribution spec's referrers API
/// (`GET /v2/NAME/referrers/DIGEST`) where the registry has it, else,
/// when the registry answers 404 there as distribution 2.8 does, through
/// the tag-schema fallback (the index tagged `sha256-HEX`), empty when that
/// tag is missing. Both reads are bounded by the document limit and go
/// through the client's deadlines and retries.
pub async fn list_referrers(
    client: &RegistryClient,
    subject_digest: &str,
    limits: &ReadLimits,
) -> Result<Vec<Descriptor>, TransportError> {
    let subject = client.at_digest(subject_digest);
    let bytes = match client
        .referrers(subject_digest, limits.max_document_size)
        .await?
    {
        Some(bytes) => bytes,
        None => {
            let fallback = Reference::with_tag(
                subject.registry().to_string(),
                subject.repository().to_string(),
                referrers_tag(subject_digest),
            );
            match client
                .pull_manifest(&fallback, limits.max_document_size)
                .await
            {
                Ok(pulled) => pulled.bytes,
                Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
                Err(err) => return Err(err.into()),
            }
        }
    };
    let listing: Listing =
        crate::document::parse(&format!("the referrers of {}", subject.whole()), &bytes)?;
    limits.check_referrers(&subject.whole(), listing.manifests.len())?;
    Ok(listing.manifests)
}

fn runtime() -> Result<tokio::runtime::Runtime, TransportError> {
    // Two workers: a blob download parks one while the reader catches up,
    // and the connection must still make progress on the other.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(TransportError::io(
            "start the network runtime for",
            "the registry client",
        ))
}

/// An image in a registry.
pub struct RegistrySource {
    text: String,
    reference: Reference,
    client: Arc<RegistryClient>,
    runtime: tokio::runtime::Runtime,
    authenticated: bool,
}

impl RegistrySource {
    /// The image at `text` (`HOST/REPO[:TAG][@DIGEST]`).
    pub fn new(
        text: &str,
        reference: Reference,
        options: &RegistryOptions,
    ) -> Result<Self, TransportError> {
        let client = Arc::new(RegistryClient::new(&reference, options)?);
        Ok(Self {
            text: text.to_string(),
            reference,
            client,
            runtime: runtime()?,
            authenticated: false,
        })
    }

    fn authenticate(&mut self) -> Result<(), TransportError> {
        if !self.authenticated {
            self.runtime
                .block_on(self.client.authenticate(Access::Pull))?;
            self.authenticated = true;
        }
        Ok(())
    }
}

impl RegistrySource {
    /// The media type the registry served `pulled` as, which must be a
    /// manifest or index type, the one the document states (when it
    /// states one) and the one its descriptor gives (`declared`, when
    /// there is one): a manifest served as `text/plain`, or as another
    /// kind than it says, could be read two ways.
    fn served_as(
        &self,
        pulled: &openshell_registry::PulledManifest,
        declared: Option<&str>,
    ) -> Result<String, TransportError> {
        let refuse = |detail: String| TransportError::Malformed {
            document: format!("{} manifest {}", self.describe(), pulled.digest),
            detail,
        };
        let accepted = openshell_registry::ACCEPTED_MANIFEST_TYPES;
        let Some(served) = pulled.content_type.as_deref() else {
            return Err(refuse(format!(
                "was served without a Content-Type (expected one of {})",
                accepted.join(", ")
            )));
        };
        if !accepted.contains(&served) {
            return Err(refuse(format!(
                "was served as {served} (expected one of {})",
                accepted.join(", ")
            )));
        }
        if let Some(stated) = pulled
            .media_type
            .as_deref()
            .filter(|stated| *stated != served)
        {
            return Err(refuse(format!(
                "states media type {stated} but was served as {served} (expected the two to agree)"
            )));
        }
        if let Some(declared) =
            declared.filter(|declared| !declared.is_empty() && *declared != served)
        {
            return Err(refuse(format!(
                "was served as {served}, but its descriptor says {declared} (expected the two to agree)"
            )));
        }
        Ok(served.to_string())
    }
}

impl ImageSource for RegistrySource {
    fn describe(&self) -> String {
        format!("docker://{}", self.text)
    }

    fn top(
        &mut self,
        limits: &ReadLimits,
    ) -> Result<(Option<Descriptor>, Vec<u8>), TransportError> {
        self.authenticate()?;
        let pulled = self.runtime.block_on(
            self.client
                .pull_manifest(&self.reference, limits.max_document_size),
        )?;
        // A pinned reference names the digest to expect; otherwise the
        // registry's own Docker-Content-Digest does. Either way verify checks
        // the bytes against it.
        let digest = self
            .reference
            .digest()
            .map_or_else(|| pulled.digest.clone(), str::to_string);
        // The registry's Content-Type is the media type the top is read as
        // (containerd takes it from there); a document stating another is
        // refused when the image is planned.
        let media_type = MediaType::from(self.served_as(&pulled, None)?.as_str());
        let parsed = digest.parse::<oci_spec::image::Digest>().map_err(|err| {
            TransportError::Missing(format!(
                "{}: the registry gave the manifest digest {digest:?}, which is not a digest: {err}",
                self.describe()
            ))
        })?;
        let expected = Descriptor::new(media_type, pulled.bytes.len() as u64, parsed);
        Ok((Some(expected), pulled.bytes))
    }

    fn manifest(
        &mut self,
        descriptor: &Descriptor,
        limits: &ReadLimits,
    ) -> Result<Vec<u8>, TransportError> {
        let what = format!("manifest {}", descriptor.digest());
        limits.check_document(&what, descriptor.size())?;
        self.authenticate()?;
        let reference = self.client.at_digest(descriptor.digest().as_ref());
        let pulled = self.runtime.block_on(
            self.client
                .pull_manifest(&reference, limits.max_document_size),
        )?;
        self.served_as(&pulled, Some(descriptor.media_type().as_ref()))?;
        Ok(pulled.bytes)
    }

    fn referrers(
        &mut self,
        subject: &Descriptor,
        limits: &ReadLimits,
    ) -> Result<Option<Vec<Descriptor>>, TransportError> {
        let listed = self.runtime.block_on(list_referrers(
            &self.client,
            subject.digest().as_ref(),
            limits,
        ))?;
        Ok(Some(listed))
    }

    fn tagged_manifest(
        &mut self,
        tag: &str,
        limits: &ReadLimits,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        self.authenticate()?;
        let reference = Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            tag.to_string(),
        );
        match self.runtime.block_on(
            self.client
                .pull_manifest(&reference, limits.max_document_size),
        ) {
            Ok(pulled) => Ok(Some(pulled.bytes)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    fn open_blob(
        &mut self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        self.authenticate()?;
        let (sender, receiver) = sync_channel::<Chunk>(8);
        let client = Arc::clone(&self.client);
        let digest = descriptor.digest().to_string();
        self.runtime.spawn(async move {
            let data_sender = sender.clone();
            let mut sink = move |bytes: &[u8]| {
                data_sender
                    .send(Chunk::Data(bytes.to_vec()))
                    .map_err(|_| std::io::Error::other("the reader stopped"))
            };
            // The reader stops reading at its own limits; the registry
            // client's limit only guards against an endless stream.
            let outcome = client.pull_blob(&digest, u64::MAX, &mut sink).await;
            let last = match outcome {
                Ok(_) => Chunk::End,
                Err(err) => Chunk::Failed(err.to_string()),
            };
            let _ = sender.send(last);
        });
        Ok(Box::new(ChannelReader {
            receiver,
            current: Vec::new(),
            position: 0,
            finished: false,
        }))
    }
}

enum Chunk {
    Data(Vec<u8>),
    End,
    Failed(String),
}

/// The reading end of a blob download running on the network runtime.
struct ChannelReader {
    receiver: Receiver<Chunk>,
    current: Vec<u8>,
    position: usize,
    finished: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position == self.current.len() {
            if self.finished {
                return Ok(0);
            }
            match self.receiver.recv() {
                Ok(Chunk::Data(bytes)) => {
                    self.current = bytes;
                    self.position = 0;
                }
                Ok(Chunk::End) => self.finished = true,
                Ok(Chunk::Failed(message)) => return Err(std::io::Error::other(message)),
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the download ended without saying why",
                    ));
                }
            }
        }
        let count = buf.len().min(self.current.len() - self.position);
        buf[..count].copy_from_slice(&self.current[self.position..self.position + count]);
        self.position += count;
        Ok(count)
    }
}

/// A registry repository to push to, and the tags the image gets there.
pub struct RegistryDestination {
    /// The reference as written after `docker://`.
    pub text: String,
    /// Parsed.
    pub reference: Reference,
    /// Tags to push the top manifest under.
    pub tags: Vec<String>,
    /// How to reach the registry.
    pub options: RegistryOptions,
}

impl RegistryDestination {
    fn at_tag(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            tag.to_string(),
        )
    }

    async fn push(
        &self,
        client: &RegistryClient,
        image: &ImageToWrite,
        progress: &Progress,
    ) -> Result<Published, TransportError> {
        // Authenticate first: a wrong password fails here, before any upload.
        client.authenticate(Access::Push).await?;
        let mut published = Published {
            destination: self.describe(),
            references: Vec::new(),
            digest: image.top.digest(),
            pinned: None,
            blobs_written: 0,
            bytes_written: 0,
            blobs_present: 0,
        };
        for blob in image.blobs.iter().chain(&image.referrer_blobs) {
            let digest = blob.digest();
            if client.blob_exists(&digest).await? {
                published.blobs_present += 1;
                continue;
            }
            // Checked against its digest before it leaves: a blob file
            // changed on disk is refused, never sent.
            let bytes = blob.read_verified()?;
            client
                .push_blob(&digest, bytes::Bytes::from(bytes.to_vec()))
                .await?;
            published.blobs_written += 1;
            published.bytes_written += bytes.len() as u64;
            progress.note(format!(
                "pushed blob {digest} ({})",
                human_size(bytes.len() as u64)
            ));
        }
        let push_manifest = |reference: Reference, blob: &Blob| {
            let bytes = blob.read_verified();
            let media_type = blob.descriptor.media_type().to_string();
            async move {
                let bytes = bytes?;
                client
                    .push_manifest(&reference, bytes.to_vec(), &media_type)
                    .await
                    .map_err(TransportError::from)
            }
        };
        // Manifests below an index go up by digest first, then the top
        // under each tag, then what refers to it.
        for manifest in &image.manifests {
            push_manifest(client.at_digest(&manifest.digest()), manifest).await?;
        }
        for tag in &self.tags {
            push_manifest(self.at_tag(tag), &image.top).await?;
            published.references.push(format!(
                "docker://{}/{}:{tag}",
                self.reference.registry(),
                self.reference.repository()
            ));
        }
        for referrer in &image.referrers {
            push_manifest(client.at_digest(&referrer.digest()), referrer).await?;
        }
        self.list_referrers(client, image, progress).await?;
        for attachment in &image.attachments {
            push_manifest(self.at_tag(&attachment.tag), &attachment.manifest).await?;
        }
        published.pinned = Some(format!(
            "{}/{}@{}",
            self.reference.registry(),
            self.reference.repository(),
            published.digest
        ));
        progress.note(format!(
            "pushed {}: {} sent, {} blob(s) already there",
            self.text,
            human_size(published.bytes_written),
            published.blobs_present
        ));
        Ok(published)
    }
}

impl RegistryDestination {
    /// Makes the referrers just pushed findable from their subjects: a
    /// registry with the referrers API lists them by itself; for one
    /// without it (distribution 2.8 answers 404 there and ignores
    /// `subject`), they are added to the OCI 1.1 tag-schema index, the
    /// index tagged `sha256-HEX` after the subject's digest, keeping what
    /// others listed there.
    async fn list_referrers(
        &self,
        client: &RegistryClient,
        image: &ImageToWrite,
        progress: &Progress,
    ) -> Result<(), TransportError> {
        // Referrers by subject, in the order pushed.
        let mut by_subject: Vec<(String, Vec<&Blob>)> = Vec::new();
        for referrer in &image.referrers {
            let bytes = referrer.read_verified()?;
            let Some(subject) = referrer_facts(&bytes).and_then(|facts| facts.subject) else {
                continue;
            };
            match by_subject.iter_mut().find(|(known, _)| *known == subject) {
                Some((_, referrers)) => referrers.push(referrer),
                None => by_subject.push((subject, vec![referrer])),
            }
        }
        for (subject, referrers) in by_subject {
            let listed = list_referrers(client, &subject, &ReadLimits::default()).await?;
            let missing: Vec<Descriptor> = referrers
                .iter()
                .filter(|referrer| {
                    !listed
                        .iter()
                        .any(|entry| entry.digest() == referrer.descriptor.digest())
                })
                .map(|referrer| referrer.descriptor.clone())
                .collect();
            if missing.is_empty() {
                progress.note(format!(
                    "registry {} lists the {} referrer(s) of {subject} (through its referrers API, or the tag-schema index of an earlier push)",
                    self.reference.registry(),
                    referrers.len()
                ));
                continue;
            }
            let tag = referrers_tag(&subject);
            let fallback = self.at_tag(&tag);
            let mut entries = match client
                .pull_manifest(&fallback, ReadLimits::default().max_document_size)
                .await
            {
                Ok(pulled) => {
                    serde_json::from_slice::<Listing>(&pulled.bytes)
                        .map_err(|err| {
                            TransportError::Missing(format!(
                                "{}: the referrers index tagged {tag} is not an OCI index ({err}); remove the tag or fix it by hand",
                                self.describe()
                            ))
                        })?
                        .manifests
                }
                Err(RegistryError::NotFound { .. }) => Vec::new(),
                Err(err) => return Err(err.into()),
            };
            entries.retain(|entry| !missing.iter().any(|ours| ours.digest() == entry.digest()));
            entries.extend(missing);
            let index = ImageIndexBuilder::default()
                .schema_version(SCHEMA_VERSION)
                .media_type(MediaType::ImageIndex)
                .manifests(entries)
                .build()
                .map_err(|err| {
                    TransportError::Missing(format!(
                        "could not assemble the referrers index: {err}"
                    ))
                })?;
            let bytes = canonical_json(&index).map_err(|err| {
                TransportError::Missing(format!("could not write the referrers index: {err}"))
            })?;
            client
                .push_manifest(&fallback, bytes, MediaType::ImageIndex.as_ref())
                .await?;
            progress.note(format!(
                "registry {} has no referrers API: listed the referrer(s) of {subject} under the tag {tag} (OCI 1.1 tag schema)",
                self.reference.registry()
            ));
        }
        Ok(())
    }
}

impl Destination for RegistryDestination {
    fn describe(&self) -> String {
        format!("docker://{}", self.text)
    }

    fn publish(
        &self,
        image: &ImageToWrite,
        progress: &Progress,
    ) -> Result<Published, TransportError> {
        let Some(first_tag) = self.tags.first() else {
            return Err(TransportError::Unsupported {
                destination: self.describe(),
                reason: "no tag to push the image under".into(),
            });
        };
        // The client's reference names the repository in every message: at
        // the first tag pushed, not at the `latest` that parsing a
        // reference without a tag supplies.
        let client = RegistryClient::new(&self.at_tag(first_tag), &self.options)?;
        let step = progress.step(format!("pushing to {}", self.describe()));
        let published = runtime()?.block_on(self.push(&client, image, progress))?;
        step.done(published.pinned.clone().unwrap_or_default());
        Ok(published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_schema_tag_replaces_the_first_colon() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            referrers_tag(&digest),
            format!("sha256-{}", "ab".repeat(32))
        );
        // A valid tag: at most 128 characters of [A-Za-z0-9_.-].
        let tag = referrers_tag(&digest);
        assert!(crate::reference::check_tag(&tag).is_ok(), "{tag}");
    }
}
