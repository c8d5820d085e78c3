//! Publishing as a docker-archive tarball (`docker load`, `podman load`).
//!
//! The format is `docker save`'s: a tar holding `manifest.json`, the config
//! as `<hex>.json` and each layer as a file. Layers stay gzipped: both
//! `docker load` and containers/image (podman) detect and decompress them,
//! and the config's diff IDs name the uncompressed tars as usual.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Destination, PublishError, Published};
use crate::atomic;
use crate::epoch::Epoch;
use crate::image::BuiltImage;
use crate::progress::{Progress, human_size};

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

/// A docker-archive file to write.
#[derive(Debug, Clone)]
pub struct DockerArchive {
    /// The tarball's path.
    pub path: PathBuf,
    /// `name:tag` the image gets when loaded.
    pub repo_tag: String,
    /// Time stamp of the tar entries.
    pub epoch: Epoch,
}

fn hex_of(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

impl Destination for DockerArchive {
    fn describe(&self) -> String {
        format!("docker-archive:{}", self.path.display())
    }

    fn publish(&self, image: &BuiltImage, progress: &Progress) -> Result<Published, PublishError> {
        let [platform] = image.platforms.as_slice() else {
            return Err(PublishError::Assemble(format!(
                "a docker-archive holds one image, but {} platforms were built; write it from a single --binary",
                image.platforms.len()
            )));
        };
        let config_digest = platform.config.descriptor.digest().to_string();
        let layer_digest = platform.layer.blob.descriptor.digest().to_string();
        let config_name = format!("{}.json", hex_of(&config_digest));
        let layer_name = format!("{}.tar.gz", hex_of(&layer_digest));
        let manifest = vec![ArchiveManifestEntry {
            config: config_name.clone(),
            repo_tags: Some(vec![self.repo_tag.clone()]),
            layers: vec![layer_name.clone()],
        }];
        let manifest =
            serde_json::to_vec(&manifest).map_err(|err| PublishError::Assemble(err.to_string()))?;
        let io = |what: &str| {
            let what = format!("{what} {}", self.path.display());
            move |source| PublishError::Io { what, source }
        };
        let config = platform
            .config
            .data
            .load()
            .map_err(io("read the config for"))?;
        let layer = platform
            .layer
            .blob
            .data
            .load()
            .map_err(io("read the layer for"))?;

        let step = progress.step(format!("writing {}", self.describe()));
        atomic::write_with(&self.path, |file| {
            let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
            for (name, bytes) in [
                (config_name.as_str(), &config[..]),
                (layer_name.as_str(), &layer[..]),
                ("manifest.json", &manifest[..]),
            ] {
                let mut header = tar::Header::new_ustar();
                header.set_path(name)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_uid(0);
                header.set_gid(0);
                header.set_mtime(self.epoch.seconds());
                header.set_cksum();
                builder.append(&header, bytes)?;
            }
            builder.into_inner()?.flush()
        })
        .map_err(io("write"))?;
        step.done(human_size(layer.len() as u64 + config.len() as u64));
        Ok(Published::DockerArchive {
            path: self.path.clone(),
        })
    }
}
