//! Documents that containerd, CRI-O and the distribution registry (Go's
//! `encoding/json`: keys matched without regard to case, the last of a
//! duplicate winning) would read differently from verify (serde: exact
//! keys, the first winning) are refused, in every transport they can come
//! through: an OCI layout, a docker-archive and a registry. So are the
//! files and answers that would make a reader block or grow: a FIFO or
//! device in a layout, a referrers listing of 20,000 entries or with no
//! end, a token service that never stops. Every run is bounded in time
//! and memory (under 64 MiB, measured from the kernel's accounting).

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{HandImage, build_image, supervisor_copy, tempdir};
use openshell_contract::annotations::oci::REF_NAME;
use openshell_contract::build_result::BuildResult;
use openshell_testsupport::podman::{output_text, run as run_tool};
use openshell_testsupport::rss::run_measured;
use openshell_testsupport::{Action, Fault, FaultRegistry};
use serde_json::{Value, json};
use sha2::Digest as _;

/// The issue's memory bound: no input may take more.
const RSS_LIMIT: u64 = 64 * 1024 * 1024;

/// Longest any verify here may take (the deadline it is killed at).
const DEADLINE: Duration = Duration::from_secs(120);

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A finished verify: whether it passed, all it printed, peak RSS, time.
struct Verified {
    ok: bool,
    text: String,
    rss: u64,
    elapsed: Duration,
}

impl Verified {
    /// Asserts a refusal within the bounds whose output has every needle.
    fn refused(&self, needles: &[&str]) {
        assert!(!self.ok, "verify passed:\n{}", self.text);
        for needle in needles {
            assert!(
                self.text.contains(needle),
                "no {needle:?} in:\n{}",
                self.text
            );
        }
        assert!(!self.text.contains("serde failed"), "{}", self.text);
        self.bounded();
    }

    fn bounded(&self) {
        assert!(self.rss <= RSS_LIMIT, "peak RSS {} bytes", self.rss);
        assert!(self.elapsed < DEADLINE, "took {:?}", self.elapsed);
    }
}

/// `build-image verify SOURCE EXTRA...`, measured.
fn verify(source: &str, extra: &[&str]) -> Verified {
    let mut command = build_image();
    command.args(["verify", "--quiet", source]).args(extra);
    let run = run_measured(command, DEADLINE);
    Verified {
        ok: run.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ),
        rss: run.peak_rss,
        elapsed: run.elapsed,
    }
}

fn supervisor_bytes() -> Vec<u8> {
    std::fs::read(openshell_testsupport::static_supervisor_binary()).expect("read supervisor")
}

// ---- OCI layouts ----

/// A hand-made layout to edit.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn good(parent: &Path) -> Self {
        let dir = parent.join("layout");
        HandImage::good(&supervisor_bytes()).write_layout(&dir);
        Self { dir }
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).unwrap()).unwrap()
    }

    /// Writes index.json as given (text, so that keys may repeat).
    fn set_index_text(&self, text: &str) {
        std::fs::write(self.dir.join("index.json"), text).unwrap();
    }

    fn entry(&self) -> Value {
        self.index()["manifests"][0].clone()
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').unwrap();
        self.dir.join("blobs").join(algorithm).join(hex)
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.blob_path(digest)).unwrap()
    }

    fn manifest(&self) -> Value {
        serde_json::from_slice(&self.blob(self.entry()["digest"].as_str().unwrap())).unwrap()
    }

    /// Stores `text` as a blob; returns a descriptor of it.
    fn put(&self, text: &str, media_type: &str) -> Value {
        let digest = sha256(text.as_bytes());
        std::fs::write(self.blob_path(&digest), text).unwrap();
        json!({ "mediaType": media_type, "digest": digest, "size": text.len() })
    }

    /// Makes index.json list `top` alone, tagged `latest`.
    fn tag_latest(&self, mut top: Value) {
        top["annotations"] = json!({ REF_NAME: "latest" });
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top] });
        self.set_index_text(&index.to_string());
    }

    /// Replaces the manifest by `text` (under `media_type` in index.json).
    fn set_manifest_text(&self, text: &str, media_type: &str) {
        self.tag_latest(self.put(text, media_type));
    }

    fn source(&self) -> String {
        format!("oci:{}:latest", self.dir.display())
    }
}

/// The JSON text of `value` with `extra` (`"key": value` text) added as
/// the object's last member.
fn with_member(value: &Value, extra: &str) -> String {
    let text = value.to_string();
    assert!(text.ends_with('}'));
    format!("{},{extra}}}", &text[..text.len() - 1])
}

#[test]
fn the_hand_made_layout_and_archive_pass() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let verified = verify(&layout.source(), &[]);
    assert!(verified.ok, "{}", verified.text);
    verified.bounded();
    let archive = dir.path().join("image.tar");
    write_archive(&layout, &archive_manifest(&layout, "Layers"), &archive);
    let verified = verify(&format!("docker-archive:{}", archive.display()), &[]);
    assert!(verified.ok, "{}", verified.text);
}

#[test]
fn layout_manifest_with_layers_and_layers_in_another_case_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    // Go reads the empty list (the last), serde the binary's layer.
    let text = with_member(&layout.manifest(), r#""Layers":[]"#);
    layout.set_manifest_text(&text, OCI_MANIFEST);
    verify(&layout.source(), &[]).refused(&[
        r#"the keys "layers" and "Layers""#,
        "one key to Go's decoders",
    ]);
}

#[test]
fn layout_manifest_with_a_long_s_key_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    // `layerſ` is `layers` to Go (U+017F folds to S).
    let text = with_member(&layout.manifest(), r#""layer\u017f":[]"#);
    layout.set_manifest_text(&text, OCI_MANIFEST);
    verify(&layout.source(), &[]).refused(&[r#""layerſ""#, "one key to Go's decoders"]);
}

#[test]
fn layout_config_with_a_kelvin_sign_key_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    // `HealthchecK` with U+212A KELVIN SIGN is `Healthcheck` to Go, and
    // nothing to serde.
    let mut manifest = layout.manifest();
    let config: Value =
        serde_json::from_slice(&layout.blob(manifest["config"]["digest"].as_str().unwrap()))
            .unwrap();
    let mut runtime = config["config"].clone();
    let runtime_text = with_member(&runtime, r#""Healthchec\u212a":{"Test":["CMD","false"]}"#);
    runtime = Value::Null;
    let mut config_value = config.clone();
    config_value["config"] = runtime;
    let config_text = config_value
        .to_string()
        .replace(r#""config":null"#, &format!(r#""config":{runtime_text}"#));
    manifest["config"] = layout.put(&config_text, "application/vnd.oci.image.config.v1+json");
    layout.set_manifest_text(&manifest.to_string(), OCI_MANIFEST);
    verify(&layout.source(), &[])
        .refused(&[r#"is read by Go's decoders as "Healthcheck""#, "$.config"]);
}

#[test]
fn layout_manifest_with_a_duplicate_annotation_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let mut manifest = layout.manifest();
    manifest["annotations"] = json!({ "org.opencontainers.image.version": "1" });
    let text = manifest.to_string().replace(
        r#""org.opencontainers.image.version":"1""#,
        r#""org.opencontainers.image.version":"1","org.opencontainers.image.version":"2""#,
    );
    layout.set_manifest_text(&text, OCI_MANIFEST);
    verify(&layout.source(), &[]).refused(&["appears twice", "$.annotations"]);
}

#[test]
fn layout_index_json_with_manifests_in_another_case_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let text = with_member(&layout.index(), r#""Manifests":[]"#);
    layout.set_index_text(&text);
    verify(&layout.source(), &[]).refused(&["index.json", r#""Manifests""#]);
}

#[test]
fn layout_descriptor_with_digest_in_another_case_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let entry = with_member(
        &layout.entry(),
        &format!(r#""Digest":"{}""#, sha256(b"another")),
    );
    layout.set_index_text(&format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{entry}]}}"#
    ));
    verify(&layout.source(), &[]).refused(&["$.manifests[0]", r#""Digest""#]);
}

#[test]
fn layout_manifest_that_also_carries_manifests_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let text = with_member(&layout.manifest(), r#""manifests":[]"#);
    layout.set_manifest_text(&text, OCI_MANIFEST);
    verify(&layout.source(), &[]).refused(&["also has `manifests`"]);
}

/// The image as an index of one manifest; `extra` members added to it.
fn as_index(layout: &Layout, extra: Option<&str>, media_type: &str) {
    let mut entry = layout.entry();
    entry.as_object_mut().unwrap().remove("annotations");
    entry["platform"] = json!({ "os": "linux", "architecture": "amd64" });
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry] });
    let text = match extra {
        Some(extra) => with_member(&index, extra),
        None => index.to_string(),
    };
    let top = layout.put(&text, media_type);
    layout.tag_latest(top);
}

#[test]
fn layout_index_that_also_carries_config_and_layers_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let manifest = layout.manifest();
    let extra = format!(
        r#""config":{},"layers":{}"#,
        manifest["config"], manifest["layers"]
    );
    as_index(&layout, Some(&extra), OCI_INDEX);
    verify(&layout.source(), &[]).refused(&["also has `config`"]);
}

#[test]
fn layout_index_under_the_manifest_media_type_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    as_index(&layout, None, OCI_MANIFEST);
    verify(&layout.source(), &[]).refused(&[&format!("states media type {OCI_INDEX}")]);
}

#[test]
fn layout_manifest_whose_media_type_disagrees_with_its_descriptor_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let text = layout.manifest().to_string();
    layout.set_manifest_text(&text, DOCKER_MANIFEST);
    verify(&layout.source(), &[]).refused(&[&format!(
        "states media type {OCI_MANIFEST}, but its descriptor says {DOCKER_MANIFEST}"
    )]);
}

#[test]
fn layout_with_one_tag_on_two_entries_the_first_docker_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let good = layout.entry();
    // First a Docker manifest tagged latest (what skopeo would pick), then
    // the good image under the same tag.
    let mut docker = layout.manifest();
    docker["mediaType"] = json!(DOCKER_MANIFEST);
    let mut first = layout.put(&docker.to_string(), DOCKER_MANIFEST);
    first["annotations"] = json!({ REF_NAME: "latest" });
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [first, good] });
    layout.set_index_text(&index.to_string());
    verify(&layout.source(), &[])
        .refused(&[r#"the tag "latest" is on 2 entries"#, DOCKER_MANIFEST]);
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn layout_index_json_that_is_a_fifo_is_refused_at_once() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    mkfifo(&layout.dir.join("index.json"));
    let verified = verify(&layout.source(), &[]);
    verified.refused(&["index.json", "a FIFO (named pipe), not a regular file"]);
    assert!(
        verified.elapsed < Duration::from_secs(20),
        "{:?}",
        verified.elapsed
    );
}

#[test]
fn layout_blob_that_is_a_fifo_is_refused_at_once() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let layer = layout.manifest()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    mkfifo(&layout.blob_path(&layer));
    let verified = verify(&layout.source(), &[]);
    verified.refused(&[
        layer.trim_start_matches("sha256:"),
        "a FIFO (named pipe), not a regular file",
    ]);
    assert!(
        verified.elapsed < Duration::from_secs(20),
        "{:?}",
        verified.elapsed
    );
}

#[test]
fn layout_blob_that_is_a_character_device_is_refused_at_once() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let config = layout.manifest()["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // A symlink to an endless device: opened, it would never end.
    let path = layout.blob_path(&config);
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    verify(&layout.source(), &[]).refused(&[
        config.trim_start_matches("sha256:"),
        "a character device, not a regular file",
    ]);
}

// ---- docker-archive ----

/// A `manifest.json` for the layout's image, with `layers_key` as the
/// name of the layers member.
fn archive_manifest(layout: &Layout, layers_key: &str) -> String {
    let manifest = layout.manifest();
    let config = manifest["config"]["digest"].as_str().unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    format!(
        r#"[{{"Config":"{}.json","RepoTags":["openshell/supervisor:latest"],"{layers_key}":["{}.tar"]}}]"#,
        config.trim_start_matches("sha256:"),
        layer.trim_start_matches("sha256:"),
    )
}

/// Writes a docker-archive of the layout's image with `manifest_json`.
fn write_archive(layout: &Layout, manifest_json: &str, path: &Path) {
    let manifest = layout.manifest();
    let config = manifest["config"]["digest"].as_str().unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, bytes).unwrap();
    };
    add(
        &format!("{}.json", config.trim_start_matches("sha256:")),
        &layout.blob(config),
    );
    add(
        &format!("{}.tar", layer.trim_start_matches("sha256:")),
        &layout.blob(layer),
    );
    add("manifest.json", manifest_json.as_bytes());
    builder.into_inner().unwrap().flush().unwrap();
}

#[test]
fn archive_with_two_entries_for_one_tag_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let one = archive_manifest(&layout, "Layers");
    let entry = &one[1..one.len() - 1];
    let archive = dir.path().join("image.tar");
    write_archive(&layout, &format!("[{entry},{entry}]"), &archive);
    verify(
        &format!(
            "docker-archive:{}:openshell/supervisor:latest",
            archive.display()
        ),
        &[],
    )
    .refused(&[
        "manifest.json",
        r#"entries 0 and 1 are both tagged "openshell/supervisor:latest""#,
    ]);
}

#[test]
fn archive_with_layers_in_two_cases_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let one = archive_manifest(&layout, "Layers");
    let text = format!(r#"{},"layers":[]}}]"#, &one[..one.len() - 2]);
    let archive = dir.path().join("image.tar");
    write_archive(&layout, &text, &archive);
    verify(&format!("docker-archive:{}", archive.display()), &[])
        .refused(&["manifest.json", r#"the keys "Layers" and "layers""#]);
}

#[test]
fn archive_with_layers_spelled_in_lower_case_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    // Alone, `layers` is Docker's `Layers` to Go; serde finds no layers.
    let archive = dir.path().join("image.tar");
    write_archive(&layout, &archive_manifest(&layout, "layers"), &archive);
    verify(&format!("docker-archive:{}", archive.display()), &[]).refused(&["manifest.json"]);
    // And a key only Go would read: `repoTags`.
    let text = archive_manifest(&layout, "Layers").replace("RepoTags", "repoTags");
    write_archive(&layout, &text, &archive);
    verify(&format!("docker-archive:{}", archive.display()), &[])
        .refused(&["manifest.json", r#"is read by Go's decoders as "RepoTags""#]);
}

#[test]
fn archive_config_with_env_in_two_cases_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    // The config's runtime section with `Env` and `ENV`: Go takes the
    // second, serde the first.
    let mut manifest = layout.manifest();
    let config: Value =
        serde_json::from_slice(&layout.blob(manifest["config"]["digest"].as_str().unwrap()))
            .unwrap();
    let runtime = with_member(
        &config["config"],
        r#""Env":["A=1"],"ENV":["LD_PRELOAD=/x.so"]"#,
    );
    let mut outer = config.clone();
    outer["config"] = Value::Null;
    let text = outer
        .to_string()
        .replace(r#""config":null"#, &format!(r#""config":{runtime}"#));
    manifest["config"] = layout.put(&text, "application/vnd.oci.image.config.v1+json");
    layout.set_manifest_text(&manifest.to_string(), OCI_MANIFEST);
    let archive = dir.path().join("image.tar");
    write_archive(&layout, &archive_manifest(&layout, "Layers"), &archive);
    verify(&format!("docker-archive:{}", archive.display()), &[])
        .refused(&[r#"the keys "Env" and "ENV""#, "$.config"]);
}

#[test]
fn archive_whose_manifest_json_is_a_fifo_entry_is_refused() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let archive = dir.path().join("image.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    let mut header = tar::Header::new_ustar();
    header.set_size(0);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Fifo);
    builder
        .append_data(&mut header, "manifest.json", &[][..])
        .unwrap();
    builder.into_inner().unwrap().flush().unwrap();
    drop(layout);
    verify(&format!("docker-archive:{}", archive.display()), &[])
        .refused(&["manifest.json is a Fifo entry, not a regular file"]);
}

#[test]
fn archive_file_that_is_a_fifo_is_refused_at_once() {
    let dir = tempdir();
    let archive = dir.path().join("image.tar");
    mkfifo(&archive);
    let verified = verify(&format!("docker-archive:{}", archive.display()), &[]);
    verified.refused(&["image.tar", "a FIFO (named pipe), not a regular file"]);
    assert!(
        verified.elapsed < Duration::from_secs(20),
        "{:?}",
        verified.elapsed
    );
}

// ---- registries ----

/// Short network bounds, so that whatever hangs fails fast.
const NETWORK: [&str; 6] = [
    "--registry-read-timeout",
    "2s",
    "--registry-attempts",
    "2",
    "--registry-operation-timeout",
    "10s",
];

/// Pushes the supervisor image as `tag`; returns the build result.
fn push(faults: &FaultRegistry, dir: &Path, tag: &str) -> BuildResult {
    let binary = supervisor_copy(dir);
    let auth = faults.auth_file();
    let mut command = build_image();
    command
        .arg("--binary")
        .arg(&binary)
        .arg("--output")
        .arg(dir.join("layout"))
        .args([
            "--push",
            &format!("{}/openshell/supervisor:{tag}", faults.host()),
            "--plain-http",
            "--authfile",
            auth.to_str().unwrap(),
            "--json",
        ]);
    let output = run_tool(command);
    assert!(output.status.success(), "{}", output_text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn verify_registry(faults: &FaultRegistry, reference: &str) -> Verified {
    verify_registry_with(faults, reference, &[])
}

fn verify_registry_with(faults: &FaultRegistry, reference: &str, more: &[&str]) -> Verified {
    let auth = faults.auth_file();
    let mut extra = vec!["--plain-http", "--authfile", auth.to_str().unwrap()];
    extra.extend(NETWORK);
    extra.extend(more);
    verify(&format!("docker://{reference}"), &extra)
}

/// The bytes the registry holds for `reference` (tag or digest).
fn pull(faults: &FaultRegistry, reference: &str) -> Vec<u8> {
    let options = openshell_registry::RegistryOptions {
        plain_http: true,
        basic: Some(faults.credentials()),
        quiet: true,
        ..Default::default()
    };
    let reference = openshell_registry::parse_reference(&format!(
        "{}/openshell/supervisor{reference}",
        faults.host()
    ))
    .unwrap();
    let client = openshell_registry::RegistryClient::new(&reference, &options).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(client.pull_manifest(&reference, 1 << 22))
        .unwrap()
        .bytes
}

/// Pushes an index of the platform manifest of `result` as `tag` (a
/// single-platform push makes a manifest the top); returns its bytes.
fn push_index(faults: &FaultRegistry, result: &BuildResult, tag: &str) -> Vec<u8> {
    let platform = &result.platforms[0];
    let manifest = pull(faults, &format!("@{}", platform.manifest_digest));
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": platform.manifest_digest,
            "size": manifest.len(),
            "platform": { "os": "linux", "architecture": "amd64" },
        }],
    }))
    .unwrap();
    let options = openshell_registry::RegistryOptions {
        plain_http: true,
        basic: Some(faults.credentials()),
        quiet: true,
        ..Default::default()
    };
    let reference = openshell_registry::parse_reference(&format!(
        "{}/openshell/supervisor:{tag}",
        faults.host()
    ))
    .unwrap();
    let client = openshell_registry::RegistryClient::new(&reference, &options).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(client.push_manifest(&reference, index.clone(), OCI_INDEX))
        .unwrap();
    index
}

/// Serves `body` as the manifest tagged `tag`, as `content_type`.
fn serve_as(faults: &FaultRegistry, tag: &str, body: Vec<u8>, content_type: &str) {
    faults.inject(Fault::on(
        "GET",
        &format!("/manifests/{tag}"),
        Action::Respond {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        },
    ));
}

#[test]
fn registry_image_verifies_as_pushed() {
    let Some(faults) = FaultRegistry::start("registry_image_verifies_as_pushed") else {
        return;
    };
    let dir = tempdir();
    push(&faults, dir.path(), "honest");
    let verified = verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:honest", faults.host()),
    );
    assert!(verified.ok, "{}", verified.text);
    verified.bounded();
}

#[test]
fn registry_manifest_served_as_text_plain_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_manifest_served_as_text_plain") else {
        return;
    };
    let dir = tempdir();
    push(&faults, dir.path(), "plain");
    let top = pull(&faults, ":plain");
    serve_as(&faults, "plain", top, "text/plain; charset=utf-8");
    verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:plain", faults.host()),
    )
    .refused(&["was served as text/plain", "expected one of"]);
}

#[test]
fn registry_index_served_under_the_manifest_media_type_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_index_served_under_the_manifest_type") else {
        return;
    };
    let dir = tempdir();
    let result = push(&faults, dir.path(), "single");
    let top = push_index(&faults, &result, "mislabelled");
    // As pushed, the index verifies.
    let verified = verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:mislabelled", faults.host()),
    );
    assert!(verified.ok, "{}", verified.text);
    serve_as(&faults, "mislabelled", top, OCI_MANIFEST);
    verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:mislabelled", faults.host()),
    )
    .refused(&[&format!(
        "states media type {OCI_INDEX} but was served as {OCI_MANIFEST}"
    )]);
}

#[test]
fn registry_index_with_manifests_in_another_case_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_index_with_manifests_in_another_case") else {
        return;
    };
    let dir = tempdir();
    let result = push(&faults, dir.path(), "single");
    let top: Value = serde_json::from_slice(&push_index(&faults, &result, "cased")).unwrap();
    let body = with_member(&top, r#""Manifests":[]"#).into_bytes();
    serve_as(&faults, "cased", body, OCI_INDEX);
    verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:cased", faults.host()),
    )
    .refused(&[r#"the keys "manifests" and "Manifests""#]);
}

#[test]
fn registry_manifest_with_layers_in_another_case_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_manifest_with_layers_in_another_case") else {
        return;
    };
    let dir = tempdir();
    let result = push(&faults, dir.path(), "layers");
    let manifest: Value = serde_json::from_slice(&pull(
        &faults,
        &format!("@{}", result.platforms[0].manifest_digest),
    ))
    .unwrap();
    // Served at a tag of its own, as the top: Go reads no layers.
    let body = with_member(&manifest, r#""LAYERS":[]"#).into_bytes();
    serve_as(&faults, "layers", body, OCI_MANIFEST);
    verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:layers", faults.host()),
    )
    .refused(&[r#"the keys "layers" and "LAYERS""#]);
}

/// Pushes the image, then serves its platform manifest at `tag` changed
/// by `change` (its JSON text in, the body out), as `content_type`.
fn serve_changed_manifest(
    faults: &FaultRegistry,
    dir: &Path,
    tag: &str,
    content_type: &str,
    change: impl FnOnce(&Value) -> String,
) -> String {
    let result = push(faults, dir, "base");
    let manifest: Value = serde_json::from_slice(&pull(
        faults,
        &format!("@{}", result.platforms[0].manifest_digest),
    ))
    .unwrap();
    serve_as(faults, tag, change(&manifest).into_bytes(), content_type);
    format!("{}/openshell/supervisor:{tag}", faults.host())
}

#[test]
fn registry_manifest_with_a_long_s_key_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_manifest_with_a_long_s_key") else {
        return;
    };
    let dir = tempdir();
    let reference = serve_changed_manifest(&faults, dir.path(), "longs", OCI_MANIFEST, |m| {
        with_member(m, r#""layer\u017f":[]"#)
    });
    verify_registry(&faults, &reference).refused(&[r#""layerſ""#, "one key to Go's decoders"]);
}

#[test]
fn registry_manifest_with_a_duplicate_key_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_manifest_with_a_duplicate_key") else {
        return;
    };
    let dir = tempdir();
    let reference = serve_changed_manifest(&faults, dir.path(), "twice", OCI_MANIFEST, |m| {
        // An annotation twice: Go keeps the second, serde the first.
        let mut m = m.clone();
        m.as_object_mut().unwrap().remove("annotations");
        with_member(
            &m,
            r#""annotations":{"org.opencontainers.image.version":"1","org.opencontainers.image.version":"2"}"#,
        )
    });
    verify_registry(&faults, &reference).refused(&[
        r#"the key "org.opencontainers.image.version" appears twice"#,
        "$.annotations",
    ]);
}

#[test]
fn registry_manifest_that_also_carries_manifests_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_manifest_that_also_carries_manifests") else {
        return;
    };
    let dir = tempdir();
    let reference = serve_changed_manifest(&faults, dir.path(), "both", OCI_MANIFEST, |m| {
        with_member(m, r#""manifests":[]"#)
    });
    verify_registry(&faults, &reference).refused(&["also has `manifests`"]);
}

#[test]
fn registry_manifest_whose_media_type_disagrees_with_its_content_type_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_manifest_media_type_against_content_type")
    else {
        return;
    };
    let dir = tempdir();
    let reference = serve_changed_manifest(&faults, dir.path(), "docker", OCI_MANIFEST, |m| {
        let mut m = m.clone();
        m["mediaType"] = json!(DOCKER_MANIFEST);
        m.to_string()
    });
    verify_registry(&faults, &reference).refused(&[&format!(
        "states media type {DOCKER_MANIFEST} but was served as {OCI_MANIFEST}"
    )]);
}

#[test]
fn registry_index_that_also_carries_config_and_layers_is_refused() {
    let Some(faults) = FaultRegistry::start("registry_index_that_also_carries_config") else {
        return;
    };
    let dir = tempdir();
    let result = push(&faults, dir.path(), "single");
    let top: Value = serde_json::from_slice(&push_index(&faults, &result, "plain")).unwrap();
    let manifest: Value = serde_json::from_slice(&pull(
        &faults,
        &format!("@{}", result.platforms[0].manifest_digest),
    ))
    .unwrap();
    let body = with_member(
        &top,
        &format!(
            r#""config":{},"layers":{}"#,
            manifest["config"], manifest["layers"]
        ),
    );
    serve_as(&faults, "mixed", body.into_bytes(), OCI_INDEX);
    verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:mixed", faults.host()),
    )
    .refused(&["also has `config`"]);
}

/// A referrers listing (an index) of `count` SBOM manifests.
fn referrers_listing(count: usize) -> Vec<u8> {
    let entry = json!({
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "size": 1000,
    });
    let manifests: Vec<Value> = (0..count)
        .map(|n| {
            let mut entry = entry.clone();
            entry["digest"] = json!(sha256(&n.to_le_bytes()));
            entry
        })
        .collect();
    serde_json::to_vec(
        &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }),
    )
    .unwrap()
}

#[test]
fn registry_referrers_listing_20000_sboms_is_refused_without_fetching_them() {
    let Some(faults) = FaultRegistry::start("registry_referrers_listing_20000_sboms") else {
        return;
    };
    let dir = tempdir();
    push(&faults, dir.path(), "many");
    let listing = referrers_listing(20_000);
    assert!(listing.len() < 4 * 1024 * 1024, "under the document limit");
    faults.inject(Fault::on(
        "GET",
        "/referrers/",
        Action::Respond {
            status: 200,
            headers: vec![("Content-Type".into(), OCI_INDEX.into())],
            body: listing,
        },
    ));
    faults.forget_seen();
    let reference = format!("{}/openshell/supervisor:many", faults.host());
    // Without --require-sbom the SBOM check is skipped, saying why.
    let verified = verify_registry(&faults, &reference);
    assert!(verified.ok, "{}", verified.text);
    assert!(
        verified.text.contains("--max-referrers"),
        "{}",
        verified.text
    );
    verified.bounded();
    let verified = verify_registry_with(&faults, &reference, &["--require-sbom"]);
    verified.refused(&[
        "the number of referrers listed for",
        "is 20000, over the limit of 64",
        "--max-referrers",
    ]);
    // Not one of them was fetched.
    let fetched = faults.seen_matching("GET", "/manifests/sha256:");
    assert!(
        fetched.len() < 5,
        "{} manifests fetched: {fetched:?}",
        fetched.len()
    );
}

#[test]
fn registry_referrers_listing_that_never_ends_is_refused_in_bounded_memory() {
    let Some(faults) = FaultRegistry::start("registry_referrers_listing_that_never_ends") else {
        return;
    };
    let dir = tempdir();
    push(&faults, dir.path(), "endless");
    faults.inject(Fault::on(
        "GET",
        "/referrers/",
        Action::Endless {
            prefix: Vec::new(),
            headers: vec![("Content-Type".into(), OCI_INDEX.into())],
            chunk: referrers_listing(100),
            every: Duration::ZERO,
        },
    ));
    verify_registry_with(
        &faults,
        &format!("{}/openshell/supervisor:endless", faults.host()),
        &["--require-sbom"],
    )
    .refused(&["referrers listing (over 4194304 bytes)"]);
}

#[test]
fn registry_token_service_that_never_ends_is_refused_in_bounded_memory() {
    let Some(faults) = FaultRegistry::start("registry_token_service_that_never_ends") else {
        return;
    };
    let dir = tempdir();
    push(&faults, dir.path(), "token");
    faults.inject(Fault::exact(
        "GET",
        "/v2/",
        Action::Respond {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!(
                    "Bearer realm=\"http://{}/token\",service=\"fault-registry\"",
                    faults.host()
                ),
            )],
            body: b"{}".to_vec(),
        },
    ));
    faults.inject(Fault::on(
        "GET",
        "/token",
        Action::Endless {
            prefix: Vec::new(),
            headers: Vec::new(),
            chunk: vec![b'x'; 64 * 1024],
            every: Duration::ZERO,
        },
    ));
    verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:token", faults.host()),
    )
    .refused(&["token service's answer (over 1048576 bytes)"]);
}

#[test]
fn registry_blob_trickling_under_a_huge_content_length_ends_at_the_deadline() {
    let Some(faults) = FaultRegistry::start("registry_blob_trickling_under_a_huge_length") else {
        return;
    };
    let dir = tempdir();
    let result = push(&faults, dir.path(), "trickle");
    let layer = &result.platforms[0].layer_digest;
    // A terabyte announced, 4 KiB every 100 ms: never idle for the read
    // timeout, and the deadline must not grow with the announcement. The
    // bytes are a layer that reads well as far as it goes: a gzip member
    // holding a tar header for a 64 MiB file, then gzip members of its
    // zeros (concatenated members are one gzip stream).
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let mut header = tar::Header::new_ustar();
    header.set_path("padding").unwrap();
    header.set_size(64 << 20);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    faults.inject(Fault::on(
        "GET",
        &format!("/blobs/{layer}"),
        Action::Endless {
            prefix: gzip(header.as_bytes()),
            headers: vec![
                ("Content-Length".into(), (1u64 << 40).to_string()),
                ("Content-Type".into(), "application/octet-stream".into()),
            ],
            chunk: gzip(&[0u8; 4096]),
            every: Duration::from_millis(100),
        },
    ));
    let verified = verify_registry(
        &faults,
        &format!("{}/openshell/supervisor:trickle", faults.host()),
    );
    verified.refused(&[layer.as_str(), "did not complete it within"]);
    // The operation timeout is 10 s (NETWORK), and the blob is tried once
    // more after it at most.
    assert!(
        verified.elapsed < Duration::from_secs(45),
        "took {:?}",
        verified.elapsed
    );
}
