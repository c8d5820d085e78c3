//! Facts about the cluster, as `kubectl` prints them: the server's version
//! (`kubectl version -o json`) and each node's kubelet, container runtime
//! and architecture (`kubectl get nodes -o json`).
//!
//! Only the few fields the driver decides on are read, with small serde
//! structs rather than k8s-openapi's `Node`: `kubectl get nodes -o json`
//! prints a `kind: List`, which the typed `NodeList` refuses, and the driver
//! must not fail on the many node fields it does not use.

use std::path::Path;

use serde::Deserialize;

use crate::kubernetes_version::KubernetesVersion;

/// One node, as far as the supervisor's delivery is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `metadata.name`.
    pub name: String,
    /// `status.nodeInfo.containerRuntimeVersion`, like `containerd://2.1.4`.
    pub container_runtime: String,
    /// `status.nodeInfo.kubeletVersion`, when it parses.
    pub kubelet_version: Option<KubernetesVersion>,
    /// `status.nodeInfo.architecture`, like `amd64` or `arm64`.
    pub architecture: String,
    /// `status.nodeInfo.operatingSystem`, like `linux`.
    pub operating_system: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionOutput {
    server_version: Option<VersionInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    git_version: String,
}

#[derive(Deserialize)]
struct NodeListOutput {
    kind: Option<String>,
    items: Option<Vec<NodeOutput>>,
}

#[derive(Deserialize)]
struct NodeOutput {
    metadata: Option<NodeMetadata>,
    status: Option<NodeStatus>,
}

#[derive(Deserialize)]
struct NodeMetadata {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeStatus {
    node_info: Option<NodeInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeInfo {
    container_runtime_version: Option<String>,
    kubelet_version: Option<String>,
    architecture: Option<String>,
    operating_system: Option<String>,
}

/// The server's version from the text of `kubectl version -o json`.
pub fn parse_server_version(text: &str) -> Result<KubernetesVersion, String> {
    let output: VersionOutput = serde_json::from_str(text)
        .map_err(|err| format!("not the output of `kubectl version -o json`: {err}"))?;
    let Some(server) = output.server_version else {
        return Err(
            "it has no serverVersion (was kubectl connected to the cluster? `kubectl version -o json` prints the server's version only when it can reach it)"
                .to_string(),
        );
    };
    server
        .git_version
        .parse()
        .map_err(|err| format!("serverVersion.gitVersion: {err}"))
}

/// Reads [`parse_server_version`]'s input from a file; errors name it.
pub fn read_server_version(path: &Path) -> Result<KubernetesVersion, String> {
    let text = crate::input::read_text(path, crate::input::SMALL_JSON_SIZE_LIMIT)
        .map_err(|err| format!("{}: {err}", path.display()))?;
    parse_server_version(&text).map_err(|err| format!("{}: {err}", path.display()))
}

/// The nodes from the text of `kubectl get nodes -o json` (a `List` or a
/// `NodeList`; a single `Node` from `kubectl get node NAME -o json` too).
pub fn parse_nodes(text: &str) -> Result<Vec<Node>, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| format!("not the output of `kubectl get nodes -o json`: {err}"))?;
    let items = if value.get("kind").and_then(serde_json::Value::as_str) == Some("Node") {
        vec![
            serde_json::from_value::<NodeOutput>(value)
                .map_err(|err| format!("not a Node: {err}"))?,
        ]
    } else {
        let list: NodeListOutput = serde_json::from_value(value)
            .map_err(|err| format!("not the output of `kubectl get nodes -o json`: {err}"))?;
        match (list.kind.as_deref(), list.items) {
            (Some("List" | "NodeList"), Some(items)) => items,
            (kind, _) => {
                return Err(format!(
                    "expected kind List or NodeList with items (from `kubectl get nodes -o json`), found kind {}",
                    kind.unwrap_or("(none)")
                ));
            }
        }
    };
    if items.is_empty() {
        return Err("it lists no nodes".to_string());
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let name = item
                .metadata
                .and_then(|metadata| metadata.name)
                .ok_or_else(|| format!("items[{index}] has no metadata.name"))?;
            let info = item
                .status
                .and_then(|status| status.node_info)
                .ok_or_else(|| format!("node {name} has no status.nodeInfo"))?;
            let field = |value: Option<String>, field: &str| {
                value
                    .filter(|value| !value.is_empty())
                    .ok_or_else(|| format!("node {name} has no status.nodeInfo.{field}"))
            };
            Ok(Node {
                container_runtime: field(
                    info.container_runtime_version,
                    "containerRuntimeVersion",
                )?,
                architecture: field(info.architecture, "architecture")?,
                operating_system: info.operating_system.unwrap_or_else(|| "linux".to_string()),
                kubelet_version: info
                    .kubelet_version
                    .and_then(|version| version.parse().ok()),
                name,
            })
        })
        .collect()
}

/// Reads [`parse_nodes`]' input from a file; errors name it.
pub fn read_nodes(path: &Path) -> Result<Vec<Node>, String> {
    let text = crate::input::read_text(path, crate::input::NODES_SIZE_LIMIT)
        .map_err(|err| format!("{}: {err}", path.display()))?;
    parse_nodes(&text).map_err(|err| format!("{}: {err}", path.display()))
}

/// A container runtime as a node reports it: `NAME://VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// `containerd`, `cri-o`, `docker`, ...
    pub name: String,
    /// The numbers of the version (`2.1.4` is `[2, 1, 4]`).
    pub numbers: Vec<u64>,
    /// What follows the numbers (`-k3s1` in `2.2.3-k3s1`).
    pub suffix: String,
}

impl RuntimeVersion {
    /// Parses `containerd://2.1.4`, `cri-o://1.31.0`, `docker://28.0.1`,
    /// `containerd://v2.0.0`; `None` when it is not `NAME://VERSION` with a
    /// numeric version.
    pub fn parse(text: &str) -> Option<Self> {
        let (name, version) = text.split_once("://")?;
        let version = version.strip_prefix('v').unwrap_or(version);
        let core_len = version
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(version.len());
        let (core, suffix) = version.split_at(core_len);
        let numbers = core
            .split('.')
            .map(str::parse::<u64>)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some(Self {
            name: name.to_ascii_lowercase(),
            numbers,
            suffix: suffix.to_string(),
        })
    }

    /// Whether the version is at least `minimum` (missing numbers count as
    /// 0).
    pub fn at_least(&self, minimum: &[u64]) -> bool {
        let padded = |numbers: &[u64], at: usize| numbers.get(at).copied().unwrap_or(0);
        let width = self.numbers.len().max(minimum.len());
        for at in 0..width {
            let (have, need) = (padded(&self.numbers, at), padded(minimum, at));
            if have != need {
                return have > need;
            }
        }
        true
    }
}

/// What a runtime does with an image volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageVolumeSupport {
    /// Mounts the image.
    Supported,
    /// Has no image volume support: the pod fails or, worse, starts with an
    /// empty or missing mount.
    Unsupported,
    /// Not in the table: not known to work.
    Unknown,
}

/// One row of the table of runtimes.
#[derive(Debug)]
pub struct RuntimeRow {
    /// Runtime name as in `containerRuntimeVersion` (before `://`).
    pub runtime: &'static str,
    /// The row applies when the version's suffix contains this (`-k3s`),
    /// whatever the number; `None` for any build.
    pub build_marker: Option<&'static str>,
    /// The row applies from this version on (and the row before it, of the
    /// same runtime, below it).
    pub since: &'static [u64],
    /// What the runtime does.
    pub support: ImageVolumeSupport,
    /// What happens, in a few words.
    pub note: &'static str,
    /// Where this is known from.
    pub source: &'static str,
}

/// The runtimes known to the driver, first matching row wins. This is the
/// one place the driver's knowledge of runtimes lives; each row names its
/// source.
pub static RUNTIMES: [RuntimeRow; 7] = [
    RuntimeRow {
        runtime: "containerd",
        build_marker: Some("-k3s"),
        since: &[0],
        support: ImageVolumeSupport::Unsupported,
        note: "k3s's bundled containerd does not advertise image volumes to the kubelet, which then mounts an empty folder without any error",
        source: "k3s-io/k3s#14323 (k3s v1.36.1+k3s1 with containerd v2.2.3-k3s1)",
    },
    RuntimeRow {
        runtime: "containerd",
        build_marker: None,
        since: &[2, 1, 0],
        support: ImageVolumeSupport::Supported,
        note: "image volumes since containerd 2.1.0",
        source: "containerd v2.1.0 release notes: \"Add OCI/Image Volume Source support\" (containerd/containerd#10579)",
    },
    RuntimeRow {
        runtime: "containerd",
        build_marker: None,
        since: &[0],
        support: ImageVolumeSupport::Unsupported,
        note: "containerd before 2.1 has no image volume support",
        source: "containerd/containerd#10496, released in v2.1.0; kubernetes/test-infra#36313 (containerd 1.7.24 fails the ImageVolume tests)",
    },
    RuntimeRow {
        runtime: "cri-o",
        build_marker: None,
        since: &[1, 31, 0],
        support: ImageVolumeSupport::Supported,
        note: "image volumes since CRI-O 1.31",
        source: "Kubernetes blog \"v1.33: Image Volumes graduate to beta\": CRI-O supports the feature since v1.31",
    },
    RuntimeRow {
        runtime: "cri-o",
        build_marker: None,
        since: &[0],
        support: ImageVolumeSupport::Unsupported,
        note: "CRI-O before 1.31 has no image volume support",
        source: "Kubernetes blog \"v1.33: Image Volumes graduate to beta\"",
    },
    RuntimeRow {
        runtime: "docker",
        build_marker: None,
        since: &[0],
        support: ImageVolumeSupport::Unsupported,
        note: "cri-dockerd has no image volume support",
        source: "Mirantis/cri-dockerd#526 (open); k3s-io/k3s#14452 (image volumes fail with --docker)",
    },
    RuntimeRow {
        runtime: "cri-dockerd",
        build_marker: None,
        since: &[0],
        support: ImageVolumeSupport::Unsupported,
        note: "cri-dockerd has no image volume support",
        source: "Mirantis/cri-dockerd#526 (open)",
    },
];

/// The verdict on one node's runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVerdict {
    /// What it does with image volumes.
    pub support: ImageVolumeSupport,
    /// Why, in a few words.
    pub note: String,
    /// The table row's source, when a row matched.
    pub source: Option<&'static str>,
}

/// Looks `container_runtime` (`containerd://2.1.4`) up in [`RUNTIMES`].
pub fn runtime_verdict(container_runtime: &str) -> RuntimeVerdict {
    let Some(version) = RuntimeVersion::parse(container_runtime) else {
        return RuntimeVerdict {
            support: ImageVolumeSupport::Unknown,
            note: format!("{container_runtime:?} is not NAME://VERSION"),
            source: None,
        };
    };
    let row = RUNTIMES.iter().find(|row| {
        row.runtime == version.name
            && row
                .build_marker
                .is_none_or(|marker| version.suffix.contains(marker))
            && version.at_least(row.since)
    });
    match row {
        Some(row) => RuntimeVerdict {
            support: row.support,
            note: row.note.to_string(),
            source: Some(row.source),
        },
        None => RuntimeVerdict {
            support: ImageVolumeSupport::Unknown,
            note: format!(
                "runtime {} is not in the driver's table of runtimes",
                version.name
            ),
            source: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_versions_parse() {
        let containerd = RuntimeVersion::parse("containerd://2.2.3-k3s1").unwrap();
        assert_eq!(containerd.name, "containerd");
        assert_eq!(containerd.numbers, [2, 2, 3]);
        assert_eq!(containerd.suffix, "-k3s1");
        let v = RuntimeVersion::parse("containerd://v2.0.0").unwrap();
        assert_eq!(v.numbers, [2, 0, 0]);
        assert!(RuntimeVersion::parse("containerd").is_none());
        assert!(RuntimeVersion::parse("containerd://abc").is_none());
    }

    #[test]
    fn versions_compare_number_by_number() {
        let version = |text| RuntimeVersion::parse(text).unwrap();
        assert!(version("containerd://2.1.0").at_least(&[2, 1, 0]));
        assert!(version("containerd://2.10.0").at_least(&[2, 1, 0]));
        assert!(version("containerd://2.1").at_least(&[2, 1, 0]));
        assert!(!version("containerd://2.0.9").at_least(&[2, 1, 0]));
        assert!(!version("containerd://1.7.27").at_least(&[2, 1, 0]));
        assert!(version("cri-o://1.31.0").at_least(&[1, 31, 0]));
        assert!(!version("cri-o://1.30.12").at_least(&[1, 31, 0]));
    }

    #[test]
    fn the_table_gives_each_runtime_its_verdict() {
        use ImageVolumeSupport::{Supported, Unknown, Unsupported};
        for (runtime, expected) in [
            ("containerd://2.1.0", Supported),
            ("containerd://2.1.4", Supported),
            ("containerd://2.2.0", Supported),
            ("containerd://2.0.5", Unsupported),
            ("containerd://1.7.27", Unsupported),
            ("containerd://2.2.3-k3s1", Unsupported),
            ("containerd://1.7.23-k3s2", Unsupported),
            ("cri-o://1.31.0", Supported),
            ("cri-o://1.33.2", Supported),
            ("cri-o://1.30.4", Unsupported),
            ("docker://28.0.1", Unsupported),
            ("rkt://1.0.0", Unknown),
            ("garbage", Unknown),
        ] {
            assert_eq!(runtime_verdict(runtime).support, expected, "{runtime}");
        }
        assert!(
            runtime_verdict("containerd://2.2.3-k3s1")
                .source
                .is_some_and(|source| source.contains("k3s-io/k3s#14323"))
        );
    }

    #[test]
    fn every_row_names_its_source() {
        for row in &RUNTIMES {
            assert!(!row.source.is_empty(), "{row:?}");
            assert!(!row.note.is_empty(), "{row:?}");
        }
    }

    #[test]
    fn server_version_is_read_from_kubectl_json() {
        let text = r#"{"clientVersion":{"major":"1","minor":"36","gitVersion":"v1.36.0"},"kustomizeVersion":"v5","serverVersion":{"major":"1","minor":"34","gitVersion":"v1.34.2-gke.1","platform":"linux/amd64"}}"#;
        let version = parse_server_version(text).unwrap();
        assert_eq!(version.minor, 34);
        let err =
            parse_server_version(r#"{"clientVersion":{"gitVersion":"v1.36.0"}}"#).unwrap_err();
        assert!(err.contains("no serverVersion"), "{err}");
        assert!(parse_server_version("[]").is_err());
    }

    #[test]
    fn nodes_are_read_from_kubectl_json() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"metadata":{"name":"a"},"status":{"nodeInfo":{"architecture":"arm64","containerRuntimeVersion":"containerd://2.1.4","kubeletVersion":"v1.35.1","operatingSystem":"linux"}}}]}"#;
        let nodes = parse_nodes(text).unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "a");
        assert_eq!(nodes[0].architecture, "arm64");
        assert_eq!(nodes[0].kubelet_version.as_ref().unwrap().minor, 35);
        let err = parse_nodes(r#"{"kind":"List","items":[{"metadata":{"name":"a"},"status":{"nodeInfo":{"architecture":"amd64"}}}]}"#).unwrap_err();
        assert_eq!(err, "node a has no status.nodeInfo.containerRuntimeVersion");
        let err = parse_nodes(r#"{"kind":"PodList","items":[]}"#).unwrap_err();
        assert!(err.contains("found kind PodList"), "{err}");
        let err = parse_nodes(r#"{"kind":"List","items":[]}"#).unwrap_err();
        assert_eq!(err, "it lists no nodes");
    }
}
