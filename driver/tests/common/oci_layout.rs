//! A small but complete supervisor image in an OCI layout, written with
//! oci-spec types: one gzip layer holding the static supervisor at
//! `/openshell-sandbox`, the contract's entrypoint and binary annotation.
//! Enough for skopeo to push it, for the driver to read its index, and for
//! `--pin-supervisor-digest`'s verification to pass.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::{
    ConfigBuilder, Descriptor, DescriptorBuilder, Digest, ImageConfigurationBuilder, ImageIndex,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, RootFsBuilder,
};
use openshell_contract::annotations::BINARY_SHA256;
use openshell_contract::annotations::oci::REF_NAME;
use openshell_contract::digest::sha256_digest as sha256;
use openshell_contract::{BINARY_NAME, IMAGE_ENTRYPOINT};

/// Writes `bytes` as a blob and returns its descriptor.
fn blob(dir: &Path, media_type: MediaType, bytes: &[u8]) -> Descriptor {
    let digest = sha256(bytes);
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(Digest::from_str(&digest).unwrap())
        .size(bytes.len() as u64)
        .build()
        .unwrap()
}

/// Adds a supervisor image to the layout in `dir` (created if needed),
/// tagged `tag`; returns the manifest digest. Its binary is the static
/// supervisor with `content` after its last byte (still the same static
/// ELF), so different contents give different digests.
pub fn write_image(dir: &Path, tag: &str, content: &str) -> String {
    let mut binary = std::fs::read(openshell_testsupport::static_supervisor_binary()).unwrap();
    binary.extend_from_slice(content.as_bytes());
    write_image_of(dir, tag, BINARY_NAME, &binary)
}

/// Adds an image like [`write_image`]'s, but whose one file, at `/name`,
/// holds `binary`: with another name or contents it is not a supervisor
/// image.
pub fn write_image_of(dir: &Path, tag: &str, name: &str, binary: &[u8]) -> String {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, binary).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&tar).unwrap();
    let layer = blob(dir, MediaType::ImageLayerGzip, &gzip.finish().unwrap());

    let config = ImageConfigurationBuilder::default()
        .architecture("amd64")
        .os("linux")
        .config(
            ConfigBuilder::default()
                .entrypoint(IMAGE_ENTRYPOINT.map(String::from).to_vec())
                .build()
                .unwrap(),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![sha256(&tar)])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config = blob(
        dir,
        MediaType::ImageConfig,
        config.to_string().unwrap().as_bytes(),
    );
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .annotations(
            [(
                BINARY_SHA256.to_string(),
                sha256(binary).trim_start_matches("sha256:").to_string(),
            )]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .unwrap();
    let mut manifest = blob(
        dir,
        MediaType::ImageManifest,
        manifest.to_string().unwrap().as_bytes(),
    );
    manifest.set_annotations(Some([(REF_NAME.to_string(), tag.to_string())].into()));
    let digest = manifest.digest().to_string();

    let index_path = dir.join("index.json");
    let mut manifests = if index_path.is_file() {
        ImageIndex::from_file(&index_path)
            .unwrap()
            .manifests()
            .clone()
    } else {
        Vec::new()
    };
    manifests.push(manifest);
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .unwrap()
        .to_file(&index_path)
        .unwrap();
    OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .unwrap()
        .to_file(dir.join("oci-layout"))
        .unwrap();
    digest
}

/// Adds an image index tagged `tag` to the layout in `dir`, listing the
/// manifests `entries` (`(os, architecture, manifest digest)`, written
/// before with [`write_image`]); returns the index digest.
pub fn write_index(dir: &Path, tag: &str, entries: &[(&str, &str, &str)]) -> String {
    let index_path = dir.join("index.json");
    let top = ImageIndex::from_file(&index_path).unwrap();
    let manifests: Vec<Descriptor> = entries
        .iter()
        .map(|(os, architecture, digest)| {
            let found = top
                .manifests()
                .iter()
                .find(|descriptor| descriptor.digest().to_string() == *digest)
                .unwrap();
            let mut entry = DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .digest(found.digest().clone())
                .size(found.size())
                .build()
                .unwrap();
            entry.set_platform(Some(
                oci_spec::image::PlatformBuilder::default()
                    .os(*os)
                    .architecture(*architecture)
                    .build()
                    .unwrap(),
            ));
            entry
        })
        .collect();
    let nested = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .unwrap();
    let mut descriptor = blob(
        dir,
        MediaType::ImageIndex,
        nested.to_string().unwrap().as_bytes(),
    );
    descriptor.set_annotations(Some([(REF_NAME.to_string(), tag.to_string())].into()));
    let digest = descriptor.digest().to_string();
    let mut all = top.manifests().clone();
    all.push(descriptor);
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(all)
        .build()
        .unwrap()
        .to_file(&index_path)
        .unwrap();
    digest
}
