//! The supervisor image taken from build-image's output: its result JSON or
//! its OCI image layout, pinned by digest only (`REPO@sha256:...`), with its
//! platforms checked against the nodes; and every combination that cannot
//! name an image, refused with what is missing.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::oci_layout::{write_image, write_index};
use common::{render_json, run_err, run_ok};
use openshell_contract::build_result::{BuildResult, PlatformImage, Publication};
use openshell_driver_kubernetes::SupervisorImage;
use openshell_driver_kubernetes::build_output::{BuildOutput, BuiltImage};
use openshell_driver_kubernetes::platform::Platform;

const DIGEST_A: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const DIGEST_B: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn build_result(pushed: &[String], layout: Option<&str>) -> BuildResult {
    BuildResult {
        digest: DIGEST_A.to_string(),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_string(),
        size: 512,
        platforms: vec![PlatformImage {
            platform: "linux/amd64".to_string(),
            manifest_digest: DIGEST_A.to_string(),
            layer_digest: DIGEST_B.to_string(),
            layer_size: 1024,
            binary_sha256: "ab".repeat(32),
            binary_size: 2048,
            target: None,
            libc: None,
            sbom_manifest_digest: None,
        }],
        destinations: layout
            .map(|path| Publication::oci_layout(path.to_string(), Some("latest".to_string())))
            .into_iter()
            .chain(pushed.iter().cloned().map(Publication::registry))
            .collect(),
        tags: vec!["latest".to_string()],
    }
}

fn write_result(dir: &Path, result: &BuildResult) -> PathBuf {
    let path = dir.join("build-result.json");
    std::fs::write(&path, serde_json::to_string_pretty(result).unwrap()).unwrap();
    path
}

fn image(text: &str) -> SupervisorImage {
    SupervisorImage::parse(text).unwrap()
}

fn built(spec: &str, repository: Option<&str>) -> Result<BuiltImage, String> {
    let repository = repository.map(image);
    BuildOutput::locate(spec)
        .and_then(|output| output.image(repository.as_ref()))
        .map_err(|err| err.to_string())
}

fn from(spec: &str, repository: Option<&str>) -> Result<SupervisorImage, String> {
    built(spec, repository).map(|built| built.image)
}

/// `kubectl get nodes -o json` for nodes of these architectures (all
/// linux, containerd 2.1.4, kubelet 1.35).
fn nodes_json(dir: &Path, architectures: &[&str]) -> String {
    let items: Vec<serde_json::Value> = architectures
        .iter()
        .enumerate()
        .map(|(index, architecture)| {
            serde_json::json!({
                "metadata": { "name": format!("node-{index}-{architecture}") },
                "status": { "nodeInfo": {
                    "architecture": architecture,
                    "operatingSystem": "linux",
                    "containerRuntimeVersion": "containerd://2.1.4",
                    "kubeletVersion": "v1.35.0",
                } },
            })
        })
        .collect();
    let path = dir.join(format!("nodes-{}.json", architectures.join("-")));
    std::fs::write(
        &path,
        serde_json::json!({ "kind": "List", "items": items }).to_string(),
    )
    .unwrap();
    path.display().to_string()
}

// ---- build result JSON ----

#[test]
fn a_build_result_gives_its_first_pushed_reference() {
    let dir = tempfile::tempdir().unwrap();
    let pushed = vec![
        format!("registry.example/openshell/supervisor:1.0@{DIGEST_A}"),
        format!("mirror.example/openshell/supervisor@{DIGEST_A}"),
    ];
    let path = write_result(dir.path(), &build_result(&pushed, None));
    let spec = path.display().to_string();
    // Digest only: the tag of the push is dropped (CRI-O 1.31.0 refuses
    // REPO:TAG@sha256:...).
    assert_eq!(
        from(&spec, None).unwrap().as_str(),
        format!("registry.example/openshell/supervisor@{DIGEST_A}")
    );
    assert_eq!(
        built(&spec, None).unwrap().platforms,
        [Platform::parse("linux/amd64").unwrap()]
    );
    // --supervisor-image picks the push to its repository.
    assert_eq!(
        from(&spec, Some("mirror.example/openshell/supervisor"))
            .unwrap()
            .as_str(),
        pushed[1]
    );
}

#[test]
fn a_build_result_not_pushed_to_the_given_repository_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pushed = vec![format!(
        "registry.example/openshell/supervisor:1.0@{DIGEST_A}"
    )];
    let path = write_result(dir.path(), &build_result(&pushed, None));
    let err = from(
        &path.display().to_string(),
        Some("quay.io/openshell/supervisor"),
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}: the build was pushed to {}, not to quay.io/openshell/supervisor (given with --supervisor-image); pass one of those repositories, or drop --supervisor-image to use the first",
            path.display(),
            pushed[0]
        )
    );
}

#[test]
fn a_build_result_that_was_not_pushed_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_result(
        dir.path(),
        &build_result(&[], Some("target/oci/supervisor")),
    );
    let err = from(&path.display().to_string(), None).unwrap_err();
    let shown = path.display();
    assert_eq!(
        err,
        format!(
            "{shown}: the build was not pushed (its \"pushed\" list is empty), so it names no registry reference; push it with `build-image --push REF --metadata-file {shown}`, or pass the OCI layout folder (target/oci/supervisor) as --supervisor-image-from together with --supervisor-image REPOSITORY (where the image was pushed)"
        )
    );
}

#[test]
fn a_pushed_reference_without_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_result(
        dir.path(),
        &build_result(
            &["registry.example/openshell/supervisor:1.0".to_string()],
            None,
        ),
    );
    let err = from(&path.display().to_string(), None).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}: pushed reference 'registry.example/openshell/supervisor:1.0' is not pinned by digest (expected REPO[:TAG]@sha256:...)",
            path.display()
        )
    );
}

#[test]
fn a_file_that_is_not_a_build_result_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("result.json");
    std::fs::write(&path, r#"{"digest": "sha256:00"}"#).unwrap();
    let err = from(&path.display().to_string(), None).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{}: not a build-image result JSON: missing field `media_type`",
            path.display()
        )),
        "{err}"
    );
}

// ---- OCI image layout ----

#[test]
fn a_layout_with_a_repository_gives_the_repository_pinned_to_the_tags_digest() {
    let dir = tempfile::tempdir().unwrap();
    let latest = write_image(dir.path(), "latest", "one");
    let other = write_image(dir.path(), "v2", "two");
    assert_ne!(latest, other);
    let spec = dir.path().display().to_string();
    let repository = Some("registry.example/openshell/supervisor");
    assert_eq!(
        from(&spec, repository).unwrap().as_str(),
        format!("registry.example/openshell/supervisor@{latest}")
    );
    assert_eq!(
        from(&format!("{spec}:v2"), repository).unwrap().as_str(),
        format!("registry.example/openshell/supervisor@{other}")
    );
    // skopeo's transport name works too; a tag in the repository goes.
    assert_eq!(
        from(&format!("oci:{spec}:v2"), Some("registry.example/sup:2.0"))
            .unwrap()
            .as_str(),
        format!("registry.example/sup@{other}")
    );
    // The platform is read from the image's config.
    assert_eq!(
        built(&spec, repository).unwrap().platforms,
        [Platform::parse("linux/amd64").unwrap()]
    );
}

#[test]
fn a_layout_index_gives_every_platform_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let amd = write_image(dir.path(), "amd", "one");
    let other = write_image(dir.path(), "other", "two");
    let index = write_index(
        dir.path(),
        "multi",
        &[("linux", "amd64", &amd), ("linux", "arm64", &other)],
    );
    let spec = format!("{}:multi", dir.path().display());
    let built = built(&spec, Some("registry.example/sup")).unwrap();
    assert_eq!(
        built.image.as_str(),
        format!("registry.example/sup@{index}")
    );
    assert_eq!(
        built.platforms,
        [
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap()
        ]
    );
}

#[test]
fn a_build_result_with_an_unreadable_platform_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut result = build_result(&[format!("registry.example/sup@{DIGEST_A}")], None);
    result.platforms[0].platform = "amd64".to_string();
    let path = write_result(dir.path(), &result);
    let err = from(&path.display().to_string(), None).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}: platform \"amd64\" is not OS/ARCHITECTURE[/VARIANT]",
            path.display()
        )
    );
}

#[test]
fn a_build_without_a_nodes_architecture_is_refused_naming_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let pushed = format!("registry.example/openshell/supervisor@{DIGEST_A}");
    let result = write_result(
        dir.path(),
        &build_result(std::slice::from_ref(&pushed), None),
    );
    let result = result.display().to_string();
    let mixed = nodes_json(dir.path(), &["amd64", "arm64"]);
    let err = run_err(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-image-from",
            &result,
            "--nodes-json",
            &mixed,
        ],
        &[],
    );
    assert!(
        err.contains(&format!(
            "error: node node-1-arm64 is linux/arm64 (--nodes-json), but the supervisor image {pushed} has only linux/amd64 (build output {result} (--supervisor-image-from))"
        )),
        "{err}"
    );
    assert!(
        err.contains("build-image --binary linux/arm64=PATH"),
        "{err}"
    );

    // The layout's platform, read from its config, is checked the same way.
    let layout = dir.path().join("layout");
    write_image(&layout, "latest", "one");
    let err = run_err(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-image-from",
            &layout.display().to_string(),
            "--supervisor-image",
            "registry.example/sup",
            "--nodes-json",
            &mixed,
        ],
        &[],
    );
    assert!(err.contains("node node-1-arm64 is linux/arm64"), "{err}");

    // Every node covered: rendered.
    let amd = nodes_json(dir.path(), &["amd64", "amd64"]);
    run_ok(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-image-from",
            &result,
            "--nodes-json",
            &amd,
        ],
        &[],
    );
}

#[test]
fn a_layout_without_a_repository_is_refused_with_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    write_image(dir.path(), "latest", "one");
    let err = from(&dir.path().display().to_string(), None).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}: an OCI image layout gives the digest but not the registry the image lives in; also pass --supervisor-image REPOSITORY (where this image was pushed, e.g. registry.example/openshell/supervisor), or pass build-image's result JSON (--metadata-file) of a push instead",
            dir.path().display()
        )
    );
}

#[test]
fn a_layout_with_an_already_pinned_repository_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_image(dir.path(), "latest", "one");
    let pinned = format!("registry.example/sup@{DIGEST_A}");
    let err = from(&dir.path().display().to_string(), Some(&pinned)).unwrap_err();
    assert_eq!(
        err,
        format!(
            "--supervisor-image '{pinned}' is already pinned by digest, so it cannot take the digest from the OCI layout {}; pass the repository without @sha256:..., or drop --supervisor-image-from",
            dir.path().display()
        )
    );
}

#[test]
fn an_unknown_tag_in_a_layout_is_refused_with_the_tags_there() {
    let dir = tempfile::tempdir().unwrap();
    write_image(dir.path(), "latest", "one");
    write_image(dir.path(), "v2", "two");
    let err = from(
        &format!("{}:v3", dir.path().display()),
        Some("registry.example/sup"),
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}/index.json has no image tagged \"v3\" (tags there: latest, v2)",
            dir.path().display()
        )
    );
}

#[test]
fn a_folder_that_is_not_a_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = from(
        &dir.path().display().to_string(),
        Some("registry.example/sup"),
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}: not an OCI image layout (no index.json; expected a folder written by build-image or `skopeo copy ... oci:DIR:TAG`)",
            dir.path().display()
        )
    );
}

#[test]
fn a_path_that_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("nothing-here").display().to_string();
    let err = from(&spec, None).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{spec}: no such file or folder (expected build-image's result JSON, as written by --metadata-file, or its OCI image layout folder, optionally with :TAG, like target/oci/supervisor:latest)"
        )
    );
}

// ---- through the binary ----

#[test]
fn render_uses_the_pushed_digest_and_does_not_warn() {
    let dir = tempfile::tempdir().unwrap();
    let pushed = format!("registry.example/openshell/supervisor:1.0@{DIGEST_A}");
    let path = write_result(
        dir.path(),
        &build_result(std::slice::from_ref(&pushed), None),
    );
    let spec = path.display().to_string();
    let pod = render_json(
        &[
            "--sandbox-image",
            "alpine",
            "--supervisor-image-from",
            &spec,
        ],
        &[],
    );
    assert_eq!(
        pod["spec"]["volumes"][0]["image"]["reference"],
        format!("registry.example/openshell/supervisor@{DIGEST_A}")
    );
    assert_eq!(
        pod["spec"]["volumes"][0]["image"]["pullPolicy"],
        "IfNotPresent"
    );
    let (_, stderr) = run_ok(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-image-from",
            &spec,
        ],
        &[],
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn render_from_a_layout_names_the_flag_when_the_repository_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    write_image(dir.path(), "latest", "one");
    let spec = dir.path().display().to_string();
    let stderr = run_err(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-image-from",
            &spec,
        ],
        &[],
    );
    assert!(
        stderr.contains(&format!(
            "error: --supervisor-image-from: {spec}: an OCI image layout gives the digest but not the registry"
        )),
        "{stderr}"
    );
    let pod = render_json(
        &[
            "--sandbox-image",
            "alpine",
            "--supervisor-image-from",
            &spec,
            "--supervisor-image",
            "registry.example/sup",
            "--supervisor-sideload-method",
            "init-container",
        ],
        &[],
    );
    let reference = pod["spec"]["initContainers"][0]["image"].as_str().unwrap();
    assert!(
        reference.starts_with("registry.example/sup@sha256:"),
        "{reference}"
    );
}
