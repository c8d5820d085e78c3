//! Image platforms (`linux/amd64`) and whether they cover a cluster's nodes.

use crate::cluster::Node;

/// An image platform: `openshell_contract::platform`'s one type.
pub use openshell_contract::platform::Platform;

/// Whether a node of this OS and architecture can run `platform`'s binary
/// (the variant is not in the node's facts, so it is not compared).
pub fn runs_on(platform: &Platform, node: &Node) -> bool {
    platform.os == node.operating_system && platform.architecture == node.architecture
}

/// The nodes none of `platforms` runs on.
pub fn uncovered<'a>(platforms: &[Platform], nodes: &'a [Node]) -> Vec<&'a Node> {
    nodes
        .iter()
        .filter(|node| !platforms.iter().any(|platform| runs_on(platform, node)))
        .collect()
}

/// `linux/amd64, linux/arm64`.
pub fn list(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(Platform::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, architecture: &str) -> Node {
        Node {
            name: name.to_string(),
            container_runtime: "containerd://2.1.0".to_string(),
            kubelet_version: None,
            architecture: architecture.to_string(),
            operating_system: "linux".to_string(),
        }
    }

    #[test]
    fn platforms_parse_and_print() {
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(arm.architecture, "arm64");
        assert_eq!(arm.variant.as_deref(), Some("v8"));
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn uncovered_nodes_are_named() {
        let nodes = [node("x", "amd64"), node("y", "arm64"), node("z", "s390x")];
        let platforms = [Platform::parse("linux/amd64").unwrap()];
        let missing: Vec<&str> = uncovered(&platforms, &nodes)
            .iter()
            .map(|node| node.name.as_str())
            .collect();
        assert_eq!(missing, ["y", "z"]);
        let mut windows = node("w", "amd64");
        windows.operating_system = "windows".to_string();
        assert_eq!(
            uncovered(&platforms, std::slice::from_ref(&windows)).len(),
            1
        );
    }
}
