//! Images made to break the reader rather than the sandbox: nested and
//! oversized indexes, documents that are not UTF-8, other digest
//! algorithms, sizes that lie. Each gets a clear verdict, within bounded
//! time and memory, and never a crash.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use openshell_testsupport::BoundedOutput;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{HandImage, build_image, tempdir, verify_json};
use openshell_contract::annotations::oci::REF_NAME;
use openshell_testsupport::rss::run_measured;
use serde_json::{Value, json};
use sha2::Digest as _;

/// The memory bound of the issue: verify of any hostile image stays under it.
const RSS_LIMIT: u64 = 64 * 1024 * 1024;

fn supervisor_bytes() -> Vec<u8> {
    std::fs::read(openshell_testsupport::static_supervisor_binary()).expect("read supervisor")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A hand-made layout to edit: put blobs, rewrite index.json.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The good image, written by hand.
    fn good(parent: &Path) -> Self {
        let dir = parent.join("layout");
        HandImage::good(&supervisor_bytes()).write_layout(&dir);
        Self { dir }
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).unwrap()).unwrap()
    }

    fn set_index(&self, index: &Value) {
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(index).unwrap(),
        )
        .unwrap();
    }

    /// The manifest entry of index.json (the hand-made image has one).
    fn manifest_entry(&self) -> Value {
        self.index()["manifests"][0].clone()
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        let (algorithm, hex) = digest.split_once(':').unwrap();
        std::fs::read(self.dir.join("blobs").join(algorithm).join(hex)).unwrap()
    }

    /// Stores `bytes` as a sha256 blob; returns the digest.
    fn put(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        std::fs::write(
            self.dir
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
            bytes,
        )
        .unwrap();
        digest
    }

    /// Stores a JSON document; returns its descriptor with `media_type`.
    fn put_json(&self, document: &Value, media_type: &str) -> Value {
        let bytes = serde_json::to_vec(document).unwrap();
        json!({
            "mediaType": media_type,
            "digest": self.put(&bytes),
            "size": bytes.len(),
        })
    }

    /// Makes index.json name `top` as `latest`.
    fn tag_latest(&self, mut top: Value) {
        top["annotations"] = json!({ REF_NAME: "latest" });
        self.set_index(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [top],
        }));
    }

    fn source(&self) -> String {
        format!("oci:{}:latest", self.dir.display())
    }
}

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Wraps the manifest entry in `depth` indexes, each listing the one below.
fn nest(layout: &Layout, depth: usize) -> Value {
    let mut entry = layout.manifest_entry();
    entry.as_object_mut().unwrap().remove("annotations");
    entry["platform"] = json!({ "os": "linux", "architecture": "amd64" });
    for _ in 0..depth {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [entry],
        });
        entry = layout.put_json(&index, INDEX);
    }
    entry
}

/// `build-image verify` of `source`, measured: exit status, stderr text,
/// peak RSS, wall time.
fn verify_measured(source: &str, extra: &[&str]) -> (bool, String, u64, Duration) {
    let mut command = build_image();
    command.args(["verify", "--quiet", source]).args(extra);
    let run = run_measured(command, Duration::from_secs(120));
    (
        run.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ),
        run.peak_rss,
        run.elapsed,
    )
}

#[test]
fn a_nested_index_is_verified_like_umoci_unpacks_it() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    // index.json > index > index > manifest
    let top = nest(&layout, 2);
    layout.tag_latest(top);
    let (ok, report) = verify_json(&layout.source(), &[]);
    assert!(ok, "{report:#}");
    assert_eq!(report["nested_indexes"].as_array().unwrap().len(), 1);
    assert_eq!(
        report["platforms"][0]["binary_in_sandbox"],
        openshell_contract::INSTALLED_BINARY_PATH
    );
    assert!(
        report["platforms"][0]["index_path"]
            .as_str()
            .unwrap()
            .starts_with("index > index sha256:"),
        "{report:#}"
    );

    // umoci, the reference extractor, reads the same nesting to the same
    // binary.
    if !openshell_testsupport::require(
        "a_nested_index_is_verified_like_umoci_unpacks_it",
        &["umoci"],
        "apt-get install umoci",
    ) {
        return;
    }
    let bundle = dir.path().join("bundle");
    let output = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.dir.display()))
        .arg(&bundle)
        .bounded_output();
    assert!(
        output.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/openshell-sandbox")).unwrap(),
        supervisor_bytes()
    );
}

#[test]
fn indexes_nested_deeper_than_the_limit_are_refused_naming_the_flag() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let top = nest(&layout, 6);
    layout.tag_latest(top);
    let (ok, text, _, _) = verify_measured(&layout.source(), &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("the nesting of indexes"), "{text}");
    assert!(text.contains("--max-index-depth raises it"), "{text}");
    let (ok, report) = verify_json(&layout.source(), &["--max-index-depth", "6"]);
    assert!(ok, "{report:#}");
}

#[test]
fn an_index_of_ten_thousand_manifests_is_refused_quickly_in_bounded_memory() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let mut entry = layout.manifest_entry();
    entry.as_object_mut().unwrap().remove("annotations");
    let many: Vec<Value> = (0..10_000).map(|_| entry.clone()).collect();
    let top = layout.put_json(
        &json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": many }),
        INDEX,
    );
    layout.tag_latest(top);
    let (ok, text, rss, elapsed) = verify_measured(&layout.source(), &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("at least 10000"), "{text}");
    assert!(text.contains("--max-index-manifests raises it"), "{text}");
    assert!(rss <= RSS_LIMIT, "peak RSS {rss} bytes");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[test]
fn a_200_mb_index_json_is_refused_without_reading_it_whole() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    // A valid start, then 200 MB of spaces, written in pieces: this test
    // process must stay small, since its peak counts in the child's (see
    // run_measured).
    let mut index = serde_json::to_vec(&layout.index()).unwrap();
    index.pop();
    let mut file = std::fs::File::create(layout.dir.join("index.json")).unwrap();
    std::io::Write::write_all(&mut file, &index).unwrap();
    let spaces = vec![b' '; 1024 * 1024];
    for _ in 0..200 {
        std::io::Write::write_all(&mut file, &spaces).unwrap();
    }
    std::io::Write::write_all(&mut file, b"}").unwrap();
    drop(file);
    let (ok, text, rss, _) = verify_measured(&layout.source(), &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("index.json size is 4194305 bytes"), "{text}");
    assert!(text.contains("--max-manifest-size raises it"), "{text}");
    assert!(rss <= RSS_LIMIT, "peak RSS {rss} bytes");
}

#[test]
fn invalid_utf8_in_index_json_is_named_with_its_position() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let mut index = std::fs::read(layout.dir.join("index.json")).unwrap();
    let at = index.windows(6).position(|w| w == b"latest").unwrap();
    index[at] = 0xff;
    std::fs::write(layout.dir.join("index.json"), &index).unwrap();
    let (ok, text, _, _) = verify_measured(&format!("oci:{}", layout.dir.display()), &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("index.json: invalid UTF-8 at byte {at}")),
        "{text}"
    );
    assert!(!text.contains("serde failed"), "{text}");
}

#[test]
fn invalid_utf8_in_a_manifest_fails_the_manifest_check_with_its_position() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let entry = layout.manifest_entry();
    let mut manifest = layout.blob(entry["digest"].as_str().unwrap());
    let at = manifest.windows(9).position(|w| w == b"mediaType").unwrap();
    manifest[at] = 0xc3;
    let mut top = entry.clone();
    top["digest"] = json!(layout.put(&manifest));
    top["size"] = json!(manifest.len());
    layout.tag_latest(top);
    let (ok, report) = verify_json(&layout.source(), &[]);
    assert!(!ok);
    let manifest_check = common::details(&report, "manifest");
    assert!(
        manifest_check.contains(&format!("invalid UTF-8 at byte {at}")),
        "{manifest_check}"
    );
    // The checks that need a readable manifest say why they did not run.
    assert_eq!(common::check(&report, "config")["outcome"], "skipped");
    assert!(common::details(&report, "config").contains("needs manifest, which failed"));
}

/// Rewrites the layer descriptor of the manifest with a sha512 digest (the
/// blob stored under blobs/sha512/); returns the new top descriptor.
fn with_sha512_layer(layout: &Layout, tamper: bool) -> Value {
    let entry = layout.manifest_entry();
    let mut manifest: Value =
        serde_json::from_slice(&layout.blob(entry["digest"].as_str().unwrap())).unwrap();
    let mut layer = layout.blob(manifest["layers"][0]["digest"].as_str().unwrap());
    let digest = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&layer)));
    if tamper {
        let last = layer.len() - 1;
        layer[last] ^= 1;
    }
    let blobs = layout.dir.join("blobs/sha512");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(digest.trim_start_matches("sha512:")), &layer).unwrap();
    manifest["layers"][0]["digest"] = json!(digest);
    layout.put_json(&manifest, "application/vnd.oci.image.manifest.v1+json")
}

#[test]
fn a_sha512_layer_descriptor_is_checked_with_sha512() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let top = with_sha512_layer(&layout, false);
    layout.tag_latest(top);
    let (ok, report) = verify_json(&layout.source(), &[]);
    assert!(ok, "{report:#}");

    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let top = with_sha512_layer(&layout, true);
    layout.tag_latest(top);
    let (ok, report) = verify_json(&layout.source(), &[]);
    assert!(!ok);
    let text = common::details(&report, "blob-digests");
    assert!(text.contains("layer 0 has digest sha512:"), "{text}");
    assert!(text.contains("but its descriptor says sha512:"), "{text}");
}

#[test]
fn an_unknown_digest_algorithm_is_refused_as_unsupported() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let entry = layout.manifest_entry();
    let mut manifest: Value =
        serde_json::from_slice(&layout.blob(entry["digest"].as_str().unwrap())).unwrap();
    manifest["layers"][0]["digest"] = json!("blake9:0123456789abcdef");
    let top = layout.put_json(&manifest, "application/vnd.oci.image.manifest.v1+json");
    layout.tag_latest(top);
    let (ok, report) = verify_json(&layout.source(), &[]);
    assert!(!ok);
    let text = common::details(&report, "blob-digests");
    assert!(
        text.contains("digest blake9:0123456789abcdef, whose algorithm is not supported"),
        "{text}"
    );
}

#[test]
fn a_manifest_claiming_a_one_tib_layer_is_refused_without_allocating_it() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let entry = layout.manifest_entry();
    let mut manifest: Value =
        serde_json::from_slice(&layout.blob(entry["digest"].as_str().unwrap())).unwrap();
    manifest["layers"][0]["size"] = json!(1u64 << 40);
    let top = layout.put_json(&manifest, "application/vnd.oci.image.manifest.v1+json");
    layout.tag_latest(top);
    let mut command = build_image();
    command.args(["verify", "--json", "--quiet", &layout.source()]);
    let run = run_measured(command, Duration::from_secs(120));
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let text = common::details(&report, "blob-digests");
    assert!(
        text.contains("bytes, but its descriptor says 1099511627776"),
        "{text}"
    );
    assert!(run.peak_rss <= RSS_LIMIT, "peak RSS {}", run.peak_rss);
}

#[test]
fn a_config_claiming_more_than_the_document_limit_is_refused_before_reading() {
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let entry = layout.manifest_entry();
    let mut manifest: Value =
        serde_json::from_slice(&layout.blob(entry["digest"].as_str().unwrap())).unwrap();
    manifest["config"]["size"] = json!(1u64 << 40);
    let top = layout.put_json(&manifest, "application/vnd.oci.image.manifest.v1+json");
    layout.tag_latest(top);
    let (ok, report) = verify_json(&layout.source(), &[]);
    assert!(!ok);
    let text = common::details(&report, "config");
    assert!(text.contains("size is 1099511627776 bytes"), "{text}");
    assert!(text.contains("--max-manifest-size"), "{text}");
}

#[test]
fn layout_tags_pointing_at_one_image_need_no_tag_to_read() {
    // build-image gives an image two tags (the release and latest); reading
    // the layout without a tag still finds the one image.
    let dir = tempdir();
    let layout = Layout::good(dir.path());
    let mut index = layout.index();
    let mut second = index["manifests"][0].clone();
    second["annotations"] = json!({ REF_NAME: "v1" });
    index["manifests"].as_array_mut().unwrap().push(second);
    layout.set_index(&index);
    let (ok, report) = verify_json(&format!("oci:{}", layout.dir.display()), &[]);
    assert!(ok, "{report:#}");
}
