//! Method auto and `explain`, from `kubectl version -o json` and `kubectl
//! get nodes -o json` of clusters that mix runtimes (containerd 1.7 and
//! 2.1, CRI-O 1.30 and 1.31, k3s's bundled containerd), versions and
//! architectures (`tests/data/cluster/`).

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{config_json, data, render_json, run_err, run_ok};
use openshell_contract::build_result::{BuildResult, PlatformImage, Publication};
use openshell_contract::sideload::ENV_NODES_JSON;

fn cluster(name: &str) -> String {
    data(&format!("cluster/{name}")).display().to_string()
}

/// The method `render` picks with these facts (and extra arguments).
fn method(extra: &[&str]) -> String {
    let mut args = vec!["--sandbox-image", "alpine"];
    args.extend_from_slice(extra);
    let pod = render_json(&args, &[]);
    if pod["spec"]["initContainers"].is_array() {
        "init-container".to_string()
    } else {
        assert!(
            pod["spec"]["volumes"][0]["image"].is_object(),
            "neither method: {pod:#}"
        );
        "image-volume".to_string()
    }
}

fn explain(extra: &[&str]) -> String {
    let mut args = vec!["explain"];
    args.extend_from_slice(extra);
    run_ok(&args, &[]).0
}

/// The explain line of one node.
fn node_line<'a>(text: &'a str, node: &str) -> &'a str {
    text.lines()
        .find(|line| line.trim_start().starts_with(&format!("{node}: ")))
        .unwrap_or_else(|| panic!("no line for node {node}:\n{text}"))
}

#[test]
fn auto_picks_image_volumes_when_the_server_and_every_node_support_them() {
    let facts = [
        "--kubernetes-version-json",
        &cluster("version-1.35.json"),
        "--nodes-json",
        &cluster("nodes-supported.json"),
    ];
    assert_eq!(method(&facts), "image-volume");
    let mut auto = vec!["--supervisor-sideload-method", "auto"];
    auto.extend(facts);
    assert_eq!(method(&auto), "image-volume");

    let text = explain(&facts);
    assert!(
        text.contains("method: image-volume (chosen by auto (the default with cluster facts): every fact says image volumes work)"),
        "{text}"
    );
    assert!(
        text.contains("server: v1.35.2 has image volumes on by default"),
        "{text}"
    );
    assert!(
        text.contains("nodes: 3 of 3 can mount image volumes"),
        "{text}"
    );
    for node in ["worker-a1", "worker-a2", "worker-arm"] {
        assert!(
            node_line(&text, node).contains("image-volume works"),
            "{text}"
        );
    }
    assert!(
        node_line(&text, "worker-a2").contains("cri-o://1.31.3 (amd64): image-volume works: cri-o://1.31.3: image volumes since CRI-O 1.31"),
        "{text}"
    );
    assert!(
        text.contains("source: containerd v2.1.0 release notes"),
        "{text}"
    );
}

#[test]
fn auto_falls_back_to_the_init_container_and_names_each_node_that_cannot() {
    let facts = [
        "--kubernetes-version-json",
        &cluster("version-1.35.json"),
        "--nodes-json",
        &cluster("nodes-mixed.json"),
    ];
    assert_eq!(method(&facts), "init-container");
    let text = explain(&facts);
    assert!(
        text.contains("method: init-container (chosen by auto (the default with cluster facts): not every fact says image volumes work)"),
        "{text}"
    );
    assert!(
        text.contains("nodes: 3 of 5 can mount image volumes"),
        "{text}"
    );
    for (node, works, why) in [
        (
            "worker-a1",
            true,
            "containerd://2.1.4: image volumes since containerd 2.1.0",
        ),
        (
            "worker-old",
            false,
            "containerd://1.7.27: containerd before 2.1 has no image volume support",
        ),
        (
            "worker-crio",
            true,
            "cri-o://1.31.0: image volumes since CRI-O 1.31",
        ),
        (
            "worker-crio-old",
            false,
            "cri-o://1.30.12: CRI-O before 1.31 has no image volume support; kubelet v1.34.3 has image volumes in beta but off by default",
        ),
        ("worker-arm", true, "containerd://2.1.1"),
    ] {
        let line = node_line(&text, node);
        let verdict = if works {
            "image-volume works"
        } else {
            "image-volume does not work"
        };
        assert!(line.contains(verdict), "{line}");
        assert!(line.contains(why), "{line}");
    }
}

#[test]
fn k3s_bundled_containerd_is_not_trusted_with_image_volumes() {
    let facts = [
        "--kubernetes-version-json",
        &cluster("version-1.36-k3s.json"),
        "--nodes-json",
        &cluster("nodes-k3s.json"),
    ];
    assert_eq!(method(&facts), "init-container");
    let text = explain(&facts);
    let line = node_line(&text, "k3s-server");
    assert!(line.contains("image-volume does not work"), "{line}");
    assert!(line.contains("mounts an empty folder"), "{line}");
    assert!(text.contains("source: k3s-io/k3s#14323"), "{text}");

    // Asked for image-volume explicitly: refused, with the node, its
    // runtime and the fix.
    let mut args = vec![
        "render",
        "--sandbox-image",
        "alpine",
        "--supervisor-sideload-method",
        "image-volume",
    ];
    args.extend(facts);
    let err = run_err(&args, &[]);
    assert!(
        err.contains(
            "error: --supervisor-sideload-method chooses image-volume, but node k3s-server (--nodes-json) runs containerd://2.2.3-k3s1, which cannot mount image volumes: k3s's bundled containerd does not advertise image volumes to the kubelet, which then mounts an empty folder without any error [source: k3s-io/k3s#14323 (k3s v1.36.1+k3s1 with containerd v2.2.3-k3s1)]; a sandbox there would start without its supervisor (\"no such file\"). Fix: use --supervisor-sideload-method init-container (or auto), or run k3s with a containerd that implements image volumes"
        ),
        "{err}"
    );
}

#[test]
fn an_explicit_image_volume_on_an_old_runtime_is_refused_naming_node_runtime_and_fix() {
    let err = run_err(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-sideload-method",
            "image-volume",
            "--nodes-json",
            &cluster("nodes-mixed.json"),
        ],
        &[],
    );
    assert!(
        err.contains("node worker-old (--nodes-json) runs containerd://1.7.27, which cannot mount image volumes: containerd before 2.1 has no image volume support"),
        "{err}"
    );
    assert!(
        err.contains("Fix: use --supervisor-sideload-method init-container (or auto), or upgrade containerd to 2.1 or later on node worker-old, or keep sandboxes off it"),
        "{err}"
    );
    // From the environment, the origin says so.
    let err = run_err(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-sideload-method",
            "image-volume",
        ],
        &[(ENV_NODES_JSON, &cluster("nodes-mixed.json"))],
    );
    assert!(
        err.contains("node worker-old (OPENSHELL_NODES_JSON)"),
        "{err}"
    );
    // CRI-O 1.30 alone: the CRI-O fix.
    let dir = tempfile::tempdir().unwrap();
    let crio_old = dir.path().join("nodes.json");
    std::fs::write(
        &crio_old,
        r#"{"kind":"List","items":[{"metadata":{"name":"crio-1"},"status":{"nodeInfo":{"architecture":"amd64","operatingSystem":"linux","containerRuntimeVersion":"cri-o://1.30.4","kubeletVersion":"v1.35.0"}}}]}"#,
    )
    .unwrap();
    let err = run_err(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-sideload-method",
            "image-volume",
            "--nodes-json",
            &crio_old.display().to_string(),
        ],
        &[],
    );
    assert!(err.contains("node crio-1"), "{err}");
    assert!(
        err.contains("upgrade CRI-O to 1.31 or later on node crio-1"),
        "{err}"
    );
}

#[test]
fn kubernetes_1_34_needs_the_declared_feature_gate() {
    let facts = [
        "--kubernetes-version-json",
        &cluster("version-1.34.json"),
        "--nodes-json",
        &cluster("nodes-1.34.json"),
    ];
    assert_eq!(method(&facts), "init-container");
    let text = explain(&facts);
    assert!(text.contains("has image volumes in beta but off by default (declare the ImageVolume gate on with --image-volume-feature-gate if it is)"), "{text}");

    let mut gated = facts.to_vec();
    gated.push("--image-volume-feature-gate");
    assert_eq!(method(&gated), "image-volume");
    let report = config_json(&gated, &[]);
    assert_eq!(
        report["supervisor-sideload-method"]["value"],
        "image-volume"
    );
    assert_eq!(report["image-volume-feature-gate"]["value"], true);
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
}

#[test]
fn kubernetes_1_30_gets_the_init_container_and_refuses_image_volumes() {
    let version = cluster("version-1.30.json");
    assert_eq!(
        method(&["--kubernetes-version-json", &version]),
        "init-container"
    );
    let err = run_err(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-sideload-method",
            "image-volume",
            "--kubernetes-version-json",
            &version,
        ],
        &[],
    );
    assert!(
        err.contains(
            "error: --supervisor-sideload-method chooses image-volume, but --kubernetes-version-json says the cluster runs Kubernetes v1.30.14, which has no image volumes"
        ),
        "{err}"
    );
}

#[test]
fn the_newest_kubelet_bounds_an_unknown_server_version() {
    // No version file: every kubelet is 1.35 and no kubelet may be newer
    // than its server, so the server is at least 1.35.
    let nodes = cluster("nodes-supported.json");
    assert_eq!(method(&["--nodes-json", &nodes]), "image-volume");
    let text = explain(&["--nodes-json", &nodes]);
    assert!(
        text.contains("server: version not given, but at least v1.35.2, its newest kubelet's"),
        "{text}"
    );
    // Nodes unknown: no runtime is known to work.
    let text = explain(&["--kubernetes-version-json", &cluster("version-1.35.json")]);
    assert!(text.contains("method: init-container"), "{text}");
    assert!(
        text.contains("nodes: unknown (give --nodes-json)"),
        "{text}"
    );
}

#[test]
fn two_versions_that_disagree_are_refused() {
    let err = run_err(
        &[
            "config",
            "--kubernetes-version",
            "1.34",
            "--kubernetes-version-json",
            &cluster("version-1.35.json"),
        ],
        &[],
    );
    assert!(
        err.contains("error: --kubernetes-version says Kubernetes v1.34 but --kubernetes-version-json says v1.35.2"),
        "{err}"
    );
}

#[test]
fn unusable_fact_files_are_refused_naming_the_flag_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let no_server = write(
        "client-only.json",
        r#"{"clientVersion":{"gitVersion":"v1.36.0"}}"#,
    );
    let err = run_err(&["config", "--kubernetes-version-json", &no_server], &[]);
    assert!(
        err.contains(&format!(
            "error: --kubernetes-version-json: {no_server}: it has no serverVersion"
        )),
        "{err}"
    );
    let pods = write("pods.json", r#"{"kind":"PodList","items":[]}"#);
    let err = run_err(&["config", "--nodes-json", &pods], &[]);
    assert!(
        err.contains(&format!(
            "error: --nodes-json: {pods}: expected kind List or NodeList"
        )),
        "{err}"
    );
    let not_json = write("nodes.txt", "NAME STATUS\nnode-1 Ready\n");
    let err = run_err(&["config", "--nodes-json", &not_json], &[]);
    assert!(
        err.contains(&format!(
            "error: --nodes-json: {not_json}: not the output of `kubectl get nodes -o json`"
        )),
        "{err}"
    );
    let missing = dir.path().join("absent.json").display().to_string();
    let err = run_err(&["explain", "--nodes-json", &missing], &[]);
    assert!(
        err.contains(&format!("error: --nodes-json: {missing}: No such file")),
        "{err}"
    );
}

#[test]
fn an_unknown_runtime_is_warned_about_and_not_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes.json");
    std::fs::write(
        &nodes,
        r#"{"kind":"List","items":[{"metadata":{"name":"odd-1"},"status":{"nodeInfo":{"architecture":"amd64","operatingSystem":"linux","containerRuntimeVersion":"rkt://1.30.0","kubeletVersion":"v1.35.0"}}}]}"#,
    )
    .unwrap();
    let nodes = nodes.display().to_string();
    assert_eq!(method(&["--nodes-json", &nodes]), "init-container");
    let (_, stderr) = run_ok(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-sideload-method",
            "image-volume",
            "--nodes-json",
            &nodes,
        ],
        &[],
    );
    assert!(
        stderr.contains(
            "warning: node odd-1 runs rkt://1.30.0, which is not known to support image volumes"
        ),
        "{stderr}"
    );
}

fn build_result(dir: &Path, platforms: &[&str]) -> String {
    let digest = format!("sha256:{}", "1".repeat(64));
    let result = BuildResult {
        digest: digest.clone(),
        media_type: "application/vnd.oci.image.index.v1+json".to_string(),
        size: 512,
        platforms: platforms
            .iter()
            .map(|platform| PlatformImage {
                platform: platform.to_string(),
                manifest_digest: digest.clone(),
                layer_digest: digest.clone(),
                layer_size: 1,
                binary_sha256: "ab".repeat(32),
                binary_size: 1,
                target: None,
                libc: None,
                sbom_manifest_digest: None,
            })
            .collect(),
        destinations: vec![Publication::registry(format!(
            "registry.example/openshell/supervisor:0.1.0@{digest}"
        ))],
        tags: Vec::new(),
    };
    let path = dir.join(format!("result-{}.json", platforms.len()));
    std::fs::write(&path, serde_json::to_string(&result).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn explain_checks_the_image_platforms_against_the_nodes_architectures() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster("nodes-amd64-arm64.json");
    let both = build_result(dir.path(), &["linux/amd64", "linux/arm64"]);
    let text = explain(&["--nodes-json", &nodes, "--supervisor-image-from", &both]);
    assert!(
        text.contains("the supervisor image has linux/amd64, linux/arm64 (build output"),
        "{text}"
    );
    assert!(
        text.contains("which covers every node's architecture (linux/amd64, linux/arm64)"),
        "{text}"
    );
    // The pin drops the tag of the push.
    assert!(
        text.contains(&format!(
            "registry.example/openshell/supervisor@sha256:{}",
            "1".repeat(64)
        )),
        "{text}"
    );

    let amd64_only = build_result(dir.path(), &["linux/amd64"]);
    let err = run_err(
        &[
            "explain",
            "--nodes-json",
            &nodes,
            "--supervisor-image-from",
            &amd64_only,
        ],
        &[],
    );
    assert!(
        err.contains("error: node gpu-1 is linux/arm64 (--nodes-json), but the supervisor image registry.example/openshell/supervisor@sha256:"),
        "{err}"
    );

    // A tag alone: the platforms are unknown, and explain says how to check.
    let text = explain(&["--nodes-json", &nodes]);
    assert!(
        text.contains("the supervisor image's platforms are unknown (a tag is not looked up): pass --pin-supervisor-digest or --supervisor-image-from"),
        "{text}"
    );
}

#[test]
fn explain_ends_with_symptoms_causes_and_fixes() {
    let text = explain(&[
        "--kubernetes-version-json",
        &cluster("version-1.35.json"),
        "--nodes-json",
        &cluster("nodes-mixed.json"),
    ]);
    let table = text
        .split("If a sandbox does not start")
        .nth(1)
        .unwrap_or_else(|| panic!("no table:\n{text}"));
    for (symptom, cause) in [
        (
            "empty mount",
            "cannot mount image volumes (containerd before 2.1, CRI-O before 1.31",
        ),
        ("empty mount", "the ImageVolume feature gate is off"),
        (
            "\"no such file or directory\"",
            "the binary is not at /openshell-sandbox",
        ),
        ("ErrImagePull", "no pull secret"),
        ("ErrImagePull", "no platform for the node's architecture"),
    ] {
        let found = table
            .split("\n  - ")
            .any(|row| row.starts_with(symptom) && row.contains(cause));
        assert!(found, "no row {symptom:?} with cause {cause:?}:\n{table}");
    }
    for row in table.split("\n  - ").skip(1) {
        assert!(row.contains("cause: ") && row.contains("fix: "), "{row}");
    }
    // The runtime table, with its sources, closes the output.
    assert!(text.contains("Runtimes known to the driver"), "{text}");
    assert!(text.contains("cri-o >= 1.31.0: supported"), "{text}");
    assert!(
        text.contains("containerd (-k3s builds), any version: not supported"),
        "{text}"
    );
}
