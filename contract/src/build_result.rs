//! What `build-image` reports about the image it built, as JSON.
//!
//! `build-image --json` prints it and `--metadata-file FILE` writes it; the
//! driver reads the same file to use a freshly built image pinned by digest,
//! so nobody copies digests by hand.

use serde::{Deserialize, Serialize};

/// Transport name of an OCI image layout folder (`oci:DIR[:TAG]`), as
/// skopeo, podman and buildah write it.
pub const OCI_TRANSPORT: &str = "oci";
/// Transport name of a `docker save` / `podman save` tarball
/// (`docker-archive:FILE[:NAME:TAG]`).
pub const DOCKER_ARCHIVE_TRANSPORT: &str = "docker-archive";
/// Transport name of a registry (`docker://REF`).
pub const DOCKER_TRANSPORT: &str = "docker";

/// The outcome of one `build-image` run.
///
/// In JSON it also carries `layout`, `docker_archive`, `pushed` and
/// `references`, derived from [`BuildResult::destinations`], so that
/// readers of the fields that came before the list keep working; a file
/// without `destinations` (written before it) is read from those fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "BuildResultJson", from = "BuildResultJson")]
pub struct BuildResult {
    /// Digest (`sha256:...`) of the top-level manifest: the image manifest,
    /// or the image index for a multi-platform build.
    pub digest: String,
    /// Media type of that top-level manifest.
    pub media_type: String,
    /// Size in bytes of that top-level manifest.
    pub size: u64,
    /// Per-platform images, in the order they were built.
    pub platforms: Vec<PlatformImage>,
    /// Where the image was published, in the order it was written.
    pub destinations: Vec<Publication>,
    /// Tags the image was given where its destination named none.
    pub tags: Vec<String>,
}

/// One place an image was published to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// The transport's name: [`OCI_TRANSPORT`], [`DOCKER_ARCHIVE_TRANSPORT`]
    /// or [`DOCKER_TRANSPORT`].
    pub transport: String,
    /// What the transport wrote to: the layout folder, the tarball, or the
    /// registry repository (`HOST/REPO`).
    pub location: String,
    /// The tag the image carries there, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Every reference written, in transport form (`oci:DIR:TAG`,
    /// `docker-archive:FILE:NAME:TAG`, `docker://HOST/REPO:TAG`).
    #[serde(default)]
    pub references: Vec<String>,
    /// The digest-pinned reference (`REPO@sha256:...`, digest only: CRI-O
    /// 1.31.0 refuses `REPO:TAG@sha256:...`), for a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
}

impl BuildResult {
    /// The first OCI image layout written, if any.
    pub fn layout(&self) -> Option<LayoutOutput> {
        self.first_of(OCI_TRANSPORT).map(|layout| LayoutOutput {
            path: layout.location.clone(),
            tag: layout.tag.clone().unwrap_or_default(),
        })
    }

    /// The first docker-archive tarball written, if any.
    pub fn docker_archive(&self) -> Option<String> {
        self.first_of(DOCKER_ARCHIVE_TRANSPORT)
            .map(|archive| archive.location.clone())
    }

    /// The digest-pinned references of every registry pushed to.
    pub fn pushed(&self) -> Vec<String> {
        self.destinations
            .iter()
            .filter_map(|destination| destination.pinned.clone())
            .collect()
    }

    /// Every reference written, in transport form.
    pub fn references(&self) -> Vec<String> {
        self.destinations
            .iter()
            .flat_map(|destination| destination.references.iter().cloned())
            .collect()
    }

    fn first_of(&self, transport: &str) -> Option<&Publication> {
        self.destinations
            .iter()
            .find(|destination| destination.transport == transport)
    }
}

/// [`BuildResult`] as JSON: the list, and the fields derived from it that
/// readers written before the list rely on.
#[derive(Serialize, Deserialize)]
struct BuildResultJson {
    digest: String,
    media_type: String,
    size: u64,
    platforms: Vec<PlatformImage>,
    /// The OCI image layout written, if any.
    #[serde(default)]
    layout: Option<LayoutOutput>,
    /// The docker-archive tarball written, if any.
    #[serde(default)]
    docker_archive: Option<String>,
    /// Digest-pinned references of the registries pushed to.
    #[serde(default)]
    pushed: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    references: Vec<String>,
    /// Absent from files written before the list.
    #[serde(default)]
    destinations: Option<Vec<Publication>>,
}

impl From<BuildResult> for BuildResultJson {
    fn from(result: BuildResult) -> Self {
        Self {
            layout: result.layout(),
            docker_archive: result.docker_archive(),
            pushed: result.pushed(),
            references: result.references(),
            digest: result.digest,
            media_type: result.media_type,
            size: result.size,
            platforms: result.platforms,
            tags: result.tags,
            destinations: Some(result.destinations),
        }
    }
}

impl From<BuildResultJson> for BuildResult {
    fn from(json: BuildResultJson) -> Self {
        let destinations = match json.destinations {
            Some(destinations) => destinations,
            // Written before the list: what the old fields say (their
            // references, not kept per destination, are dropped).
            None => legacy_destinations(json.layout, json.docker_archive, json.pushed),
        };
        Self {
            digest: json.digest,
            media_type: json.media_type,
            size: json.size,
            platforms: json.platforms,
            destinations,
            tags: json.tags,
        }
    }
}

fn legacy_destinations(
    layout: Option<LayoutOutput>,
    docker_archive: Option<String>,
    pushed: Vec<String>,
) -> Vec<Publication> {
    let layout = layout.map(|layout| {
        Publication::oci_layout(layout.path, Some(layout.tag).filter(|tag| !tag.is_empty()))
    });
    let archive = docker_archive.map(Publication::docker_archive);
    layout
        .into_iter()
        .chain(archive)
        .chain(pushed.into_iter().map(Publication::registry))
        .collect()
}

impl Publication {
    fn new(transport: &str, location: String) -> Self {
        Self {
            transport: transport.to_string(),
            location,
            tag: None,
            references: Vec::new(),
            pinned: None,
        }
    }

    /// An OCI image layout at `path`, the image tagged `tag` there.
    pub fn oci_layout(path: String, tag: Option<String>) -> Self {
        Self {
            tag,
            ..Self::new(OCI_TRANSPORT, path)
        }
    }

    /// A docker-archive tarball.
    pub fn docker_archive(file: String) -> Self {
        Self::new(DOCKER_ARCHIVE_TRANSPORT, file)
    }

    /// A registry push, by its pinned reference `REPO@sha256:...`.
    pub fn registry(pinned: String) -> Self {
        let repository = pinned.split('@').next().unwrap_or(&pinned).to_string();
        Self {
            pinned: Some(pinned),
            ..Self::new(DOCKER_TRANSPORT, repository)
        }
    }
}

/// One platform's image inside a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformImage {
    /// `os/architecture[/variant]`, e.g. `linux/amd64`.
    pub platform: String,
    /// Digest of this platform's image manifest.
    pub manifest_digest: String,
    /// Digest of the single layer (compressed).
    pub layer_digest: String,
    /// Size in bytes of the compressed layer.
    pub layer_size: u64,
    /// sha256 (hex, no prefix) of the supervisor binary in the layer.
    pub binary_sha256: String,
    /// Size in bytes of the supervisor binary.
    pub binary_size: u64,
    /// Rust target the binary was built for, when build-image built it
    /// (none for a `--binary` given to it).
    #[serde(default)]
    pub target: Option<String>,
    /// C library the binary was built against, when build-image built it:
    /// `musl`, or `gnu` after the loud fallback to glibc with `+crt-static`.
    #[serde(default)]
    pub libc: Option<crate::version::Libc>,
    /// Digest of the SBOM attached to this platform's manifest: the OCI 1.1
    /// referrer manifest whose `subject` is `manifest_digest`, as
    /// `oras discover` or the registry's referrers API list it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_manifest_digest: Option<String>,
}

/// An OCI image layout on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutOutput {
    /// Folder of the layout.
    pub path: String,
    /// Tag (`org.opencontainers.image.ref.name`) the image carries there.
    pub tag: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(destinations: Vec<Publication>) -> BuildResult {
        BuildResult {
            digest: "sha256:aa".into(),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 100,
            platforms: Vec::new(),
            destinations,
            tags: vec!["0.1.0".into()],
        }
    }

    fn layout_and_registry() -> Vec<Publication> {
        vec![
            Publication {
                transport: OCI_TRANSPORT.into(),
                location: "/out".into(),
                tag: Some("0.1.0".into()),
                references: vec!["oci:/out:0.1.0".into()],
                pinned: None,
            },
            Publication {
                transport: DOCKER_TRANSPORT.into(),
                location: "127.0.0.1:5000/supervisor".into(),
                tag: Some("0.1.0".into()),
                references: vec!["docker://127.0.0.1:5000/supervisor:0.1.0".into()],
                pinned: Some("127.0.0.1:5000/supervisor@sha256:aa".into()),
            },
        ]
    }

    #[test]
    fn the_fields_before_the_list_are_written_from_it() {
        let json = serde_json::to_value(result(layout_and_registry())).unwrap();
        assert_eq!(
            json["layout"],
            serde_json::json!({"path": "/out", "tag": "0.1.0"})
        );
        assert_eq!(json["docker_archive"], serde_json::Value::Null);
        assert_eq!(
            json["pushed"],
            serde_json::json!(["127.0.0.1:5000/supervisor@sha256:aa"])
        );
        assert_eq!(
            json["references"],
            serde_json::json!(["oci:/out:0.1.0", "docker://127.0.0.1:5000/supervisor:0.1.0"])
        );
        assert_eq!(json["destinations"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_result_reads_back_as_written() {
        let written = result(layout_and_registry());
        let text = serde_json::to_string(&written).unwrap();
        let read: BuildResult = serde_json::from_str(&text).unwrap();
        assert_eq!(read, written);
    }

    #[test]
    fn a_file_written_before_the_list_is_read_from_its_old_fields() {
        let text = r#"{
            "digest": "sha256:aa",
            "media_type": "application/vnd.oci.image.index.v1+json",
            "size": 100,
            "platforms": [],
            "layout": {"path": "/out", "tag": "latest"},
            "docker_archive": "/out.tar",
            "pushed": ["127.0.0.1:5000/supervisor@sha256:aa"]
        }"#;
        let read: BuildResult = serde_json::from_str(text).unwrap();
        assert_eq!(
            read.layout(),
            Some(LayoutOutput {
                path: "/out".into(),
                tag: "latest".into()
            })
        );
        assert_eq!(read.docker_archive().as_deref(), Some("/out.tar"));
        assert_eq!(read.pushed(), ["127.0.0.1:5000/supervisor@sha256:aa"]);
        assert_eq!(read.destinations[2].location, "127.0.0.1:5000/supervisor");
        assert!(read.tags.is_empty());
    }
}
