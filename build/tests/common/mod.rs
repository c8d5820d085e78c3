//! Helpers shared by the integration tests: running the CLI, and writing
//! images (good and deliberately broken) into OCI layouts.

// Test helpers: a failure to run a tool is a test failure, so panicking is right.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use build_image::image::canonical_json;
use oci_spec::image::{
    ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder,
    MediaType, RootFsBuilder, SCHEMA_VERSION,
};
use openshell_contract::annotations::oci::REF_NAME;
use openshell_contract::digest::sha256_digest;

pub mod raw_layout;
pub mod referrers;
pub mod signed;

/// The `build-image` executable under test.
pub fn build_image() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_build-image"));
    command.env_remove("SOURCE_DATE_EPOCH").stdin(Stdio::null());
    command
}

/// Runs `build-image ARGS`, returning its output (within testsupport's
/// deadline for any tool a test runs).
pub fn run(args: &[&str]) -> Output {
    let mut command = build_image();
    command.args(args);
    openshell_testsupport::podman::run(command)
}

/// Runs `build-image ARGS` with `stdin` as standard input.
pub fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut command = build_image();
    command.args(args);
    output_with_stdin(command, stdin)
}

/// Runs `command` with `stdin` as standard input, returning its output
/// (within testsupport's deadline for any tool a test runs).
pub fn output_with_stdin(command: Command, stdin: &str) -> Output {
    openshell_testsupport::podman::run_with_stdin(command, stdin.as_bytes())
}

/// Status, stdout and stderr of an output, for assertion messages.
pub use openshell_testsupport::podman::output_text as text;

/// Asserts success and returns stdout.
pub fn ok(output: Output) -> String {
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts failure and returns stderr.
pub fn fails(output: Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure:\n{}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A unique temporary folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("build-image-test-")
        .tempdir()
        .expect("tempdir")
}

/// The static supervisor, copied into `dir` (so tests may change its stat
/// or bytes freely).
pub fn supervisor_copy(dir: &Path) -> PathBuf {
    let path = dir.join("openshell-sandbox");
    std::fs::copy(openshell_testsupport::static_supervisor_binary(), &path)
        .expect("copy supervisor");
    path
}

/// A copy of the real arm64 supervisor (built for aarch64-unknown-linux-musl),
/// which runs here under qemu-user.
pub fn arm64_supervisor_copy(dir: &Path) -> PathBuf {
    let path = dir.join("openshell-sandbox-arm64-real");
    std::fs::copy(
        openshell_testsupport::arm64_static_supervisor_binary(),
        &path,
    )
    .expect("copy the arm64 supervisor");
    path
}

/// A copy of the static supervisor whose ELF header says aarch64: the
/// static rules pass (machine aside, it is the same file), and it stands for
/// a second architecture without a cross toolchain. It cannot run.
pub fn aarch64_copy(dir: &Path) -> PathBuf {
    let mut bytes =
        std::fs::read(openshell_testsupport::static_supervisor_binary()).expect("read supervisor");
    // e_machine: 2 bytes at offset 18 (after e_ident and e_type).
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    let path = dir.join("openshell-sandbox-arm64");
    std::fs::write(&path, bytes).expect("write aarch64 copy");
    path
}

/// One tar entry of a hand-made layer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub kind: tar::EntryType,
    pub link: String,
    pub contents: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

impl Entry {
    pub fn file(path: &str, contents: &[u8], mode: u32) -> Self {
        Self {
            path: path.into(),
            kind: tar::EntryType::Regular,
            link: String::new(),
            contents: contents.to_vec(),
            mode,
            uid: 0,
            gid: 0,
        }
    }

    pub fn dir(path: &str) -> Self {
        Self {
            kind: tar::EntryType::Directory,
            ..Self::file(path, b"", 0o755)
        }
    }

    pub fn symlink(path: &str, target: &str) -> Self {
        Self {
            kind: tar::EntryType::Symlink,
            link: target.into(),
            ..Self::file(path, b"", 0o777)
        }
    }

    pub fn device(path: &str) -> Self {
        Self {
            kind: tar::EntryType::Char,
            ..Self::file(path, b"", 0o666)
        }
    }
}

/// A tar of `entries`, names written raw so unsafe paths can be stored.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let name = entry.path.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(entry.kind);
        header.set_size(entry.contents.len() as u64);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        if !entry.link.is_empty() {
            header.set_link_name(&entry.link).expect("link name");
        }
        header.set_cksum();
        builder
            .append(&header, &entry.contents[..])
            .expect("append");
    }
    builder.into_inner().expect("tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

/// An image to write by hand: layers bottom first, and its config.
#[derive(Debug, Clone)]
pub struct HandImage {
    pub layers: Vec<Vec<Entry>>,
    pub architecture: String,
    pub entrypoint: Option<Vec<String>>,
    pub annotations: HashMap<String, String>,
    /// Added to the layer size in the manifest (a wrong-size descriptor).
    pub layer_size_delta: i64,
}

impl HandImage {
    /// The right image: the supervisor at /openshell-sandbox.
    pub fn good(binary: &[u8]) -> Self {
        Self {
            layers: vec![vec![Entry::file("openshell-sandbox", binary, 0o555)]],
            architecture: "amd64".into(),
            entrypoint: Some(vec!["/openshell-sandbox".into()]),
            annotations: HashMap::new(),
            layer_size_delta: 0,
        }
    }

    /// Writes the image into a new layout at `dir`, tagged `latest`;
    /// returns the layer blob paths.
    pub fn write_layout(&self, dir: &Path) -> Vec<PathBuf> {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).expect("mkdir blobs");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        let put = |bytes: &[u8]| -> (String, PathBuf) {
            let digest = sha256_digest(bytes);
            let path = blobs.join(digest.trim_start_matches("sha256:"));
            std::fs::write(&path, bytes).expect("write blob");
            (digest, path)
        };
        let mut layer_descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        let mut layer_paths = Vec::new();
        for entries in &self.layers {
            let tar = tar_of(entries);
            diff_ids.push(sha256_digest(&tar));
            let gz = gzip(&tar);
            let (digest, path) = put(&gz);
            let size = (gz.len() as i64 + self.layer_size_delta) as u64;
            layer_descriptors.push(Descriptor::new(
                MediaType::ImageLayerGzip,
                size,
                digest.parse::<oci_spec::image::Digest>().expect("digest"),
            ));
            layer_paths.push(path);
        }
        let mut runtime = ConfigBuilder::default();
        if let Some(entrypoint) = &self.entrypoint {
            runtime = runtime.entrypoint(entrypoint.clone());
        }
        let config = ImageConfigurationBuilder::default()
            .os(oci_spec::image::Os::Linux)
            .architecture(oci_spec::image::Arch::from(self.architecture.as_str()))
            .config(runtime.build().expect("runtime config"))
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(diff_ids)
                    .build()
                    .expect("rootfs"),
            )
            .build()
            .expect("config");
        let config = canonical_json(&config).expect("config json");
        let (config_digest, _) = put(&config);
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                config.len() as u64,
                config_digest
                    .parse::<oci_spec::image::Digest>()
                    .expect("digest"),
            ))
            .layers(layer_descriptors)
            .annotations(self.annotations.clone())
            .build()
            .expect("manifest");
        let manifest = canonical_json(&manifest).expect("manifest json");
        let (manifest_digest, _) = put(&manifest);
        let mut entry = Descriptor::new(
            MediaType::ImageManifest,
            manifest.len() as u64,
            manifest_digest
                .parse::<oci_spec::image::Digest>()
                .expect("digest"),
        );
        entry.set_annotations(Some(HashMap::from([(
            REF_NAME.to_string(),
            "latest".to_string(),
        )])));
        let index = ImageIndexBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .manifests(vec![entry])
            .build()
            .expect("index");
        std::fs::write(
            dir.join("index.json"),
            canonical_json(&index).expect("index json"),
        )
        .expect("index.json");
        layer_paths
    }
}

/// `build-image verify --json oci:DIR:latest`: the exit status and report.
pub fn verify_json(source: &str, extra: &[&str]) -> (bool, serde_json::Value) {
    let mut args = vec!["verify", "--json", "--quiet", source];
    args.extend_from_slice(extra);
    let output = run(&args);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("verify printed no JSON report ({err}):\n{}", text(&output)));
    (output.status.success(), report)
}

/// The named check of the first platform in a JSON report.
pub fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["platforms"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|check| check["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

/// The names of the failed checks of the first platform.
pub fn failed_checks(report: &serde_json::Value) -> Vec<String> {
    report["platforms"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|check| check["outcome"] == "failed")
        .map(|check| check["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// All details of a check joined, for `contains` assertions.
pub fn details(report: &serde_json::Value, name: &str) -> String {
    check(report, name)["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|detail| detail.as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}
