//! `docker://REF`: an image in a registry, read and written through
//! [`openshell_registry::RegistryClient`] (oci-client underneath, with the
//! project's credentials, timeouts, retries and error messages).

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use oci_spec::image::{Descriptor, MediaType};
use openshell_registry::{Access, Reference, RegistryClient, RegistryOptions};

use crate::TransportError;
use crate::destination::{Destination, Published};
use crate::image::{Blob, ImageToWrite};
use crate::limits::ReadLimits;
use crate::progress::{Progress, human_size};
use crate::source::ImageSource;

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
        let media_type = pulled
            .media_type
            .as_deref()
            .map_or(MediaType::ImageManifest, MediaType::from);
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
        Ok(pulled.bytes)
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

impl Destination for RegistryDestination {
    fn describe(&self) -> String {
        format!("docker://{}", self.text)
    }

    fn publish(
        &self,
        image: &ImageToWrite,
        progress: &Progress,
    ) -> Result<Published, TransportError> {
        if self.tags.is_empty() {
            return Err(TransportError::Unsupported {
                destination: self.describe(),
                reason: "no tag to push the image under".into(),
            });
        }
        let client = RegistryClient::new(&self.reference, &self.options)?;
        let step = progress.step(format!("pushing to {}", self.describe()));
        let published = runtime()?.block_on(self.push(&client, image, progress))?;
        step.done(published.pinned.clone().unwrap_or_default());
        Ok(published)
    }
}
