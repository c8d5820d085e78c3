//! `docker-archive:FILE[:NAME:TAG]`: a `docker save` / `podman save`
//! tarball, read and written.
//!
//! A docker-archive has no OCI manifest: the reader writes one (through
//! oci-spec) from `manifest.json`, naming the config by the digest in its
//! file name when it has one (so a changed config is caught) and the layers
//! by the digests of their files. Files are found by their offsets in the
//! tarball and streamed from there, so reading a large archive takes little
//! memory.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};

use crate::destination::{Destination, Published};
use crate::document::{self, canonical_json};
use crate::go_json::Schema;
use crate::image::ImageToWrite;
use crate::limits::{ReadLimits, read_bounded};
use crate::progress::{Progress, human_size};
use crate::source::ImageSource;
use crate::{TransportError, atomic};
use openshell_contract::digest::{Digester, DigestingReader};

/// Name of the archive's index of images.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Most files an archive may hold: an image has a config and a few layers,
/// so this is only a guard against a tarball made to exhaust memory.
pub const MAX_ARCHIVE_FILES: usize = 100_000;

/// One entry of docker-archive's `manifest.json`.
///
/// This file is Docker's own format, not an OCI document, so oci-spec has no
/// type for it: this small struct is its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveManifestEntry {
    /// Path of the config file inside the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// `name:tag` references the image gets when loaded.
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer files, bottom first.
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// Refuses a `manifest.json` that gives one tag to two images: `docker
/// load` tags the last, other readers pick the first.
fn check_unique_tags(what: &str, entries: &[ArchiveManifestEntry]) -> Result<(), TransportError> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        for tag in entry.repo_tags.iter().flatten() {
            if let Some(earlier) = first.insert(tag, index) {
                return Err(TransportError::Malformed {
                    document: what.to_string(),
                    detail: format!(
                        "entries {earlier} and {index} are both tagged {tag:?}, so readers disagree on which image it names (expected each tag on one entry)"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Where a file's bytes sit in the tarball.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    size: u64,
}

/// An image in a docker-archive tarball.
#[derive(Debug)]
pub struct DockerArchiveSource {
    path: PathBuf,
    manifest: Vec<u8>,
    /// Blob digest → where its bytes are.
    blobs: HashMap<String, Span>,
}

/// The digest a file name states: `<hex>.json`, `<hex>.tar`, `blobs/sha256/<hex>`.
fn digest_in_name(name: &str) -> Option<String> {
    let base = name.rsplit('/').next()?;
    let hex = base.split('.').next()?;
    (hex.len() == 64 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

fn layer_media_type(magic: &[u8]) -> MediaType {
    match magic {
        [0x1f, 0x8b, ..] => MediaType::ImageLayerGzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => MediaType::ImageLayerZstd,
        _ => MediaType::ImageLayer,
    }
}

fn descriptor(
    media_type: MediaType,
    digest: &str,
    size: u64,
) -> Result<Descriptor, TransportError> {
    let parsed = digest
        .parse::<oci_spec::image::Digest>()
        .map_err(|err| TransportError::Missing(format!("invalid digest {digest}: {err}")))?;
    Ok(Descriptor::new(media_type, size, parsed))
}

impl DockerArchiveSource {
    /// Reads the archive at `path`; `name` picks an image by its RepoTags
    /// entry when the archive holds several.
    pub fn open(
        path: &Path,
        name: Option<String>,
        limits: &ReadLimits,
    ) -> Result<Self, TransportError> {
        let file = crate::files::open_regular(path)?;
        let mut spans: HashMap<String, Span> = HashMap::new();
        let mut irregular: HashMap<String, tar::EntryType> = HashMap::new();
        let mut archive = tar::Archive::new(std::io::BufReader::new(file));
        for entry in archive
            .entries()
            .map_err(TransportError::io("read", path))?
        {
            let entry = entry.map_err(TransportError::io("read", path))?;
            let name = String::from_utf8_lossy(&entry.path_bytes())
                .trim_start_matches("./")
                .to_string();
            let entry_type = entry.header().entry_type();
            if entry_type != tar::EntryType::Regular {
                // Remembered so that a file the image needs is refused as
                // what it is, not reported missing; later a regular entry
                // of the same name replaces it, as extraction would.
                if entry_type != tar::EntryType::Directory && irregular.len() < MAX_ARCHIVE_FILES {
                    irregular.insert(name.clone(), entry_type);
                }
                continue;
            }
            irregular.remove(&name);
            spans.insert(
                name,
                Span {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
            );
            if spans.len() > MAX_ARCHIVE_FILES {
                return Err(TransportError::Missing(format!(
                    "{}: more than {MAX_ARCHIVE_FILES} files, which is no docker-archive of an image",
                    path.display()
                )));
            }
        }
        let missing = |what: String| TransportError::Missing(format!("{}: {what}", path.display()));
        // A name the image needs whose entry is a FIFO, device, link...
        let irregular_entry = |name: &str| {
            irregular.get(name).map(|entry_type| {
                missing(format!(
                    "{name} is a {entry_type:?} entry, not a regular file (expected the files of a docker-archive to be regular files)"
                ))
            })
        };
        let open_span = |span: Span| -> Result<std::io::Take<std::fs::File>, TransportError> {
            let mut file = crate::files::open_regular(path)?;
            file.seek(SeekFrom::Start(span.offset))
                .map_err(TransportError::io("read", path))?;
            Ok(file.take(span.size))
        };
        let manifest_span = spans.get(MANIFEST_FILE).copied().ok_or_else(|| {
            irregular_entry(MANIFEST_FILE).unwrap_or_else(|| missing(format!("no {MANIFEST_FILE} (expected a docker-archive written by docker save, podman save or build-image)")))
        })?;
        let what = format!("{} {MANIFEST_FILE}", path.display());
        let manifest_json = read_bounded(
            &mut open_span(manifest_span)?,
            &what,
            limits,
            TransportError::io("read", path),
        )?;
        let entries: Vec<ArchiveManifestEntry> =
            document::parse_as(Schema::DockerArchive, &what, &manifest_json)?;
        check_unique_tags(&what, &entries)?;
        let entry = match &name {
            Some(name) => entries.iter().find(|entry| {
                entry
                    .repo_tags
                    .as_ref()
                    .is_some_and(|tags| tags.iter().any(|tag| tag == name))
            }),
            None if entries.len() == 1 => entries.first(),
            None => None,
        }
        .ok_or_else(|| {
            missing(match &name {
                Some(name) => format!("no image named {name} in {MANIFEST_FILE}"),
                None => format!(
                    "{MANIFEST_FILE} lists {} images: name one with docker-archive:FILE:NAME:TAG",
                    entries.len()
                ),
            })
        })?;

        let mut blobs = HashMap::new();
        let config_span = spans.get(&entry.config).copied().ok_or_else(|| {
            irregular_entry(&entry.config).unwrap_or_else(|| {
                missing(format!(
                    "the config {} listed in {MANIFEST_FILE} is not in the archive",
                    entry.config
                ))
            })
        })?;
        let config_digest = match digest_in_name(&entry.config) {
            Some(digest) => digest,
            None => {
                DigestingReader::new(open_span(config_span)?, Digester::sha256())
                    .finish()
                    .map_err(TransportError::io("read", path))?
                    .0
            }
        };
        let config_descriptor =
            descriptor(MediaType::ImageConfig, &config_digest, config_span.size)?;
        blobs.insert(config_digest, config_span);
        let mut layers = Vec::new();
        for layer_name in &entry.layers {
            let span = spans.get(layer_name).copied().ok_or_else(|| {
                irregular_entry(layer_name).unwrap_or_else(|| {
                    missing(format!(
                        "the layer {layer_name} listed in {MANIFEST_FILE} is not in the archive"
                    ))
                })
            })?;
            let mut magic = Vec::with_capacity(4);
            open_span(span)?
                .take(4)
                .read_to_end(&mut magic)
                .map_err(TransportError::io("read", path))?;
            let (digest, _) = DigestingReader::new(open_span(span)?, Digester::sha256())
                .finish()
                .map_err(TransportError::io("read", path))?;
            layers.push(descriptor(layer_media_type(&magic), &digest, span.size)?);
            blobs.insert(digest, span);
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(config_descriptor)
            .layers(layers)
            .build()
            .map_err(|err| missing(err.to_string()))?;
        let manifest = canonical_json(&manifest).map_err(|err| missing(err.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            manifest,
            blobs,
        })
    }
}

impl ImageSource for DockerArchiveSource {
    fn describe(&self) -> String {
        format!("docker-archive:{}", self.path.display())
    }

    fn top(
        &mut self,
        _limits: &ReadLimits,
    ) -> Result<(Option<Descriptor>, Vec<u8>), TransportError> {
        Ok((None, self.manifest.clone()))
    }

    fn open_blob(
        &mut self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        let digest = descriptor.digest().to_string();
        let span = self.blobs.get(&digest).copied().ok_or_else(|| {
            TransportError::Missing(format!("{}: no blob {digest}", self.path.display()))
        })?;
        let mut file = crate::files::open_regular(&self.path)?;
        file.seek(SeekFrom::Start(span.offset))
            .map_err(TransportError::io("read", &self.path))?;
        Ok(Box::new(std::io::BufReader::with_capacity(
            256 * 1024,
            file.take(span.size),
        )))
    }

    fn has_media_types(&self) -> bool {
        false
    }
}

/// A docker-archive file to write.
#[derive(Debug, Clone)]
pub struct DockerArchiveDestination {
    /// The tarball's path.
    pub file: PathBuf,
    /// `name:tag` references the image gets when loaded.
    pub repo_tags: Vec<String>,
    /// Time stamp of the tar entries (seconds since the epoch).
    pub mtime: u64,
}

fn hex_of(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

fn layer_extension(media_type: &str) -> &'static str {
    if media_type.ends_with("gzip") {
        "tar.gz"
    } else if media_type.ends_with("zstd") {
        "tar.zst"
    } else {
        "tar"
    }
}

impl Destination for DockerArchiveDestination {
    fn describe(&self) -> String {
        format!("docker-archive:{}", self.file.display())
    }

    fn publish(
        &self,
        image: &ImageToWrite,
        progress: &Progress,
    ) -> Result<Published, TransportError> {
        let unsupported = |reason: String| TransportError::Unsupported {
            destination: self.describe(),
            reason,
        };
        if !image.manifests.is_empty() {
            return Err(unsupported(format!(
                "a docker-archive holds one platform's image, but this image is an index over {} platforms; write it from a single --binary (or --platform)",
                image.manifests.len()
            )));
        }
        let top_bytes = image.top.read_verified()?;
        let manifest: ImageManifest = document::parse("the image manifest", &top_bytes)?;
        let blob = |descriptor: &Descriptor| {
            image
                .blob(descriptor.digest().as_ref())
                .ok_or_else(|| unsupported(format!("the image lacks blob {}", descriptor.digest())))
                .and_then(|blob| blob.read_verified())
        };
        let config_name = format!("{}.json", hex_of(manifest.config().digest().as_ref()));
        let config = blob(manifest.config())?;
        let mut files: Vec<(String, std::sync::Arc<Vec<u8>>)> = vec![(config_name.clone(), config)];
        let mut layer_names = Vec::new();
        for layer in manifest.layers() {
            let name = format!(
                "{}.{}",
                hex_of(layer.digest().as_ref()),
                layer_extension(layer.media_type().as_ref())
            );
            files.push((name.clone(), blob(layer)?));
            layer_names.push(name);
        }
        let entries = vec![ArchiveManifestEntry {
            config: config_name,
            repo_tags: Some(self.repo_tags.clone()),
            layers: layer_names,
        }];
        let manifest_json =
            serde_json::to_vec(&entries).map_err(|err| unsupported(err.to_string()))?;
        files.push((
            MANIFEST_FILE.to_string(),
            std::sync::Arc::new(manifest_json),
        ));

        let step = progress.step(format!("writing {}", self.describe()));
        let mut total = 0u64;
        atomic::write_with(&self.file, |file| {
            let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
            for (name, bytes) in &files {
                let mut header = tar::Header::new_ustar();
                header.set_path(name)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_uid(0);
                header.set_gid(0);
                header.set_mtime(self.mtime);
                header.set_cksum();
                builder.append(&header, &bytes[..])?;
                total += bytes.len() as u64;
            }
            builder.into_inner()?.flush()
        })
        .map_err(TransportError::io("write", &self.file))?;
        step.done(human_size(total));
        Ok(Published {
            destination: self.describe(),
            references: self
                .repo_tags
                .iter()
                .map(|tag| format!("docker-archive:{}:{tag}", self.file.display()))
                .collect(),
            digest: image.top.digest(),
            pinned: None,
            blobs_written: files.len() - 1,
            bytes_written: total,
            blobs_present: 0,
        })
    }
}
