//! The sideload plan: which method the pods get, and why, node by node.
//!
//! Image volumes need three things at once: an API server that accepts
//! them, kubelets that mount them (1.35+, or 1.33-1.34 with the
//! `ImageVolume` gate), and a container runtime that implements them
//! ([`crate::cluster::RUNTIMES`]). A runtime without support does not fail
//! the pod: it mounts nothing or an empty folder, and the sandbox dies with
//! "no such file". So method `auto` picks image-volume only when every fact
//! says it works, and an explicit image-volume on a node known not to
//! support it is refused before any pod is rendered.

use std::fmt::Write as _;

use openshell_contract::sideload::{
    FLAG_IMAGE_VOLUME_FEATURE_GATE, FLAG_KUBERNETES_VERSION_JSON, FLAG_NODES_JSON,
    FLAG_SUPERVISOR_SIDELOAD_METHOD, IMAGE_VOLUME_BETA_SINCE_MINOR,
    IMAGE_VOLUME_DEFAULT_SINCE_MINOR,
};

use crate::cluster::{ImageVolumeSupport, Node, RuntimeVerdict, runtime_verdict};
use crate::kubernetes_version::KubernetesVersion;
use crate::method::{MethodChoice, SupervisorSideloadMethod};
use crate::settings::{Origin, Setting};

/// First minor version of Kubernetes 1.x with image volumes at all (alpha,
/// behind the `ImageVolume` feature gate).
pub const IMAGE_VOLUME_ALPHA_SINCE_MINOR: u64 = 31;

/// The facts the plan is made from.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The server's version, when known.
    pub server_version: Option<&'a Setting<KubernetesVersion>>,
    /// The nodes, when known.
    pub nodes: Option<&'a Setting<Vec<Node>>>,
    /// Whether the operator declared the `ImageVolume` gate on.
    pub feature_gate: &'a Setting<bool>,
}

impl Facts<'_> {
    /// Whether any fact about the cluster was given.
    pub fn any(&self) -> bool {
        self.server_version.is_some() || self.nodes.is_some()
    }
}

/// What a Kubernetes version (server or kubelet) does with image volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSupport {
    /// Before 1.31: no image volumes.
    None,
    /// 1.31-1.32: alpha, behind the gate.
    Alpha,
    /// 1.33-1.34: beta, off unless the gate is on.
    GatedBeta,
    /// 1.35 on: on by default.
    OnByDefault,
}

impl VersionSupport {
    /// The level of `version`.
    pub fn of(version: &KubernetesVersion) -> Self {
        match version.minor {
            minor if minor >= IMAGE_VOLUME_DEFAULT_SINCE_MINOR => Self::OnByDefault,
            minor if minor >= IMAGE_VOLUME_BETA_SINCE_MINOR => Self::GatedBeta,
            minor if minor >= IMAGE_VOLUME_ALPHA_SINCE_MINOR => Self::Alpha,
            _ => Self::None,
        }
    }

    /// Whether method auto may count on image volumes at this level.
    pub fn usable(self, gate_declared: bool) -> bool {
        match self {
            Self::OnByDefault => true,
            Self::GatedBeta => gate_declared,
            Self::Alpha | Self::None => false,
        }
    }

    fn describe(self, version: &KubernetesVersion, gate: bool) -> String {
        match self {
            Self::OnByDefault => format!("{version} has image volumes on by default"),
            Self::GatedBeta if gate => format!(
                "{version} has image volumes in beta, and the ImageVolume gate is declared on (--{FLAG_IMAGE_VOLUME_FEATURE_GATE})"
            ),
            Self::GatedBeta => format!(
                "{version} has image volumes in beta but off by default (declare the ImageVolume gate on with --{FLAG_IMAGE_VOLUME_FEATURE_GATE} if it is)"
            ),
            Self::Alpha => {
                format!("{version} has image volumes only in alpha, behind the ImageVolume gate")
            }
            Self::None => format!("{version} has no image volumes (alpha from 1.31)"),
        }
    }
}

/// One node's assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAssessment {
    /// The node's name.
    pub node: String,
    /// Its `containerRuntimeVersion`.
    pub runtime: String,
    /// Its architecture.
    pub architecture: String,
    /// The runtime table's verdict.
    pub verdict: RuntimeVerdict,
    /// Whether image volumes work there, all facts considered.
    pub image_volume: bool,
    /// Why, in one line.
    pub reason: String,
}

/// The chosen method, why, and each node's assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The method pods get, with where the choice came from.
    pub method: Setting<SupervisorSideloadMethod>,
    /// Why, one line per fact.
    pub reasons: Vec<String>,
    /// Each node, when the nodes are known.
    pub nodes: Vec<NodeAssessment>,
    /// What the operator should know before the first pod.
    pub warnings: Vec<String>,
}

/// Why the plan could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `auto` without a single fact.
    #[error(
        "{origin} asks for auto, but no facts about the cluster were given: pass --{FLAG_KUBERNETES_VERSION_JSON} FILE (kubectl version -o json) and --{FLAG_NODES_JSON} FILE (kubectl get nodes -o json), or choose image-volume or init-container"
    )]
    AutoWithoutFacts {
        /// Where `auto` came from.
        origin: String,
    },
    /// Image volumes on a cluster version that has none.
    #[error(
        "{method_origin} chooses image-volume, but {version_origin} says the cluster runs Kubernetes {version}, which has no image volumes (alpha from 1.31, on by default from 1.35); use init-container"
    )]
    VersionTooOld {
        /// Where the method came from.
        method_origin: String,
        /// Where the version came from.
        version_origin: String,
        /// The version.
        version: String,
    },
    /// Image volumes on a node whose runtime or kubelet cannot mount them.
    #[error(
        "{method_origin} chooses image-volume, but node {node} ({nodes_origin}) {problem}; a sandbox there would start without its supervisor (\"no such file\"). Fix: use --{FLAG_SUPERVISOR_SIDELOAD_METHOD} init-container (or auto), or {fix}"
    )]
    UnsupportedNode {
        /// Where the method came from.
        method_origin: String,
        /// Where the nodes came from.
        nodes_origin: String,
        /// The node.
        node: String,
        /// What is wrong there, with the runtime and the source.
        problem: String,
        /// What would make image volumes work there.
        fix: String,
    },
    /// The two version facts disagree.
    #[error(
        "{first_origin} says Kubernetes {first} but {second_origin} says {second}; give one, or make them agree"
    )]
    VersionsDisagree {
        /// Where the first came from.
        first_origin: String,
        /// The first.
        first: String,
        /// Where the second came from.
        second_origin: String,
        /// The second.
        second: String,
    },
}

fn assess(node: &Node, gate: bool) -> NodeAssessment {
    let verdict = runtime_verdict(&node.container_runtime);
    let runtime_part = match verdict.support {
        ImageVolumeSupport::Supported => format!("{}: {}", node.container_runtime, verdict.note),
        ImageVolumeSupport::Unsupported => {
            format!("{}: {}", node.container_runtime, verdict.note)
        }
        ImageVolumeSupport::Unknown => format!(
            "{}: not known to support image volumes ({})",
            node.container_runtime, verdict.note
        ),
    };
    let kubelet = node
        .kubelet_version
        .as_ref()
        .map(|version| (version, VersionSupport::of(version)));
    let kubelet_ok = kubelet.is_none_or(|(_, level)| level.usable(gate));
    let runtime_ok = verdict.support == ImageVolumeSupport::Supported;
    let mut reason = runtime_part;
    if let Some((version, level)) = kubelet
        && !level.usable(gate)
    {
        let _ = write!(reason, "; kubelet {}", level.describe(version, gate));
    }
    NodeAssessment {
        node: node.name.clone(),
        runtime: node.container_runtime.clone(),
        architecture: node.architecture.clone(),
        verdict,
        image_volume: runtime_ok && kubelet_ok,
        reason,
    }
}

/// The server version from the two ways it can be given; they must agree on
/// 1.MINOR when both are.
pub fn server_version(
    given: Option<Setting<KubernetesVersion>>,
    from_json: Option<Setting<KubernetesVersion>>,
) -> Result<Option<Setting<KubernetesVersion>>, PlanError> {
    match (given, from_json) {
        (Some(first), Some(second)) if first.value.minor != second.value.minor => {
            Err(PlanError::VersionsDisagree {
                first_origin: first.origin.to_string(),
                first: first.value.to_string(),
                second_origin: second.origin.to_string(),
                second: second.value.to_string(),
            })
        }
        (_, Some(from_json)) => Ok(Some(from_json)),
        (given, None) => Ok(given),
    }
}

/// Makes the plan. `choice` is the configured method (`None`: not given,
/// which means auto when there are facts and image-volume otherwise).
pub fn decide(choice: Option<&Setting<MethodChoice>>, facts: Facts<'_>) -> Result<Plan, PlanError> {
    let gate = facts.feature_gate.value;
    let nodes: Vec<NodeAssessment> = facts
        .nodes
        .map(|nodes| nodes.value.iter().map(|node| assess(node, gate)).collect())
        .unwrap_or_default();
    match choice {
        Some(Setting {
            value: MethodChoice::Method(method),
            origin,
        }) => check_explicit(*method, origin, facts, nodes),
        Some(Setting {
            value: MethodChoice::Auto,
            origin,
        }) => {
            if !facts.any() {
                return Err(PlanError::AutoWithoutFacts {
                    origin: origin.to_string(),
                });
            }
            Ok(auto(facts, nodes, &format!("auto ({origin})")))
        }
        None if facts.any() => Ok(auto(facts, nodes, "auto (the default with cluster facts)")),
        None => Ok(Plan {
            method: Setting::new(SupervisorSideloadMethod::default(), Origin::Default),
            reasons: vec![format!(
                "no method and no facts about the cluster given: the default, {}",
                SupervisorSideloadMethod::default()
            )],
            nodes,
            warnings: Vec::new(),
        }),
    }
}

fn auto(facts: Facts<'_>, nodes: Vec<NodeAssessment>, how: &str) -> Plan {
    let gate = facts.feature_gate.value;
    let mut reasons = Vec::new();
    let mut usable = true;
    match facts.server_version {
        Some(version) => {
            let level = VersionSupport::of(&version.value);
            usable &= level.usable(gate);
            reasons.push(format!(
                "server: {} ({})",
                level.describe(&version.value, gate),
                version.origin
            ));
        }
        None => {
            // The version skew policy keeps every kubelet at or below the
            // server's version, so the kubelets' versions bound it.
            let newest = facts.nodes.and_then(|nodes| {
                nodes
                    .value
                    .iter()
                    .filter_map(|node| node.kubelet_version.as_ref())
                    .max_by_key(|version| version.minor)
            });
            match newest {
                Some(version) if VersionSupport::of(version).usable(gate) => reasons.push(format!(
                    "server: version not given, but at least {version}, its newest kubelet's (no kubelet may be newer than its server)"
                )),
                _ => {
                    usable = false;
                    reasons.push(format!(
                        "server: version unknown (give --{FLAG_KUBERNETES_VERSION_JSON}), so image volumes cannot be counted on"
                    ));
                }
            }
        }
    }
    match facts.nodes {
        Some(given) => {
            let unsupported = nodes.iter().filter(|node| !node.image_volume).count();
            usable &= unsupported == 0;
            reasons.push(format!(
                "nodes: {} of {} can mount image volumes ({})",
                nodes.len() - unsupported,
                nodes.len(),
                given.origin
            ));
        }
        None => {
            usable = false;
            reasons.push(format!(
                "nodes: unknown (give --{FLAG_NODES_JSON}), so no container runtime is known to mount image volumes"
            ));
        }
    }
    let method = if usable {
        SupervisorSideloadMethod::ImageVolume
    } else {
        SupervisorSideloadMethod::InitContainer
    };
    let because = if usable {
        "every fact says image volumes work".to_string()
    } else {
        "not every fact says image volumes work".to_string()
    };
    Plan {
        method: Setting::new(
            method,
            Origin::Derived(format!("chosen by {how}: {because}")),
        ),
        reasons,
        nodes,
        warnings: Vec::new(),
    }
}

fn check_explicit(
    method: SupervisorSideloadMethod,
    origin: &Origin,
    facts: Facts<'_>,
    nodes: Vec<NodeAssessment>,
) -> Result<Plan, PlanError> {
    let gate = facts.feature_gate.value;
    let mut reasons = vec![format!("{method} chosen by {origin}")];
    let mut warnings = Vec::new();
    match method {
        SupervisorSideloadMethod::InitContainer => {
            reasons.push("init containers work on every runtime and version".to_string());
            return Ok(Plan {
                method: Setting::new(method, origin.clone()),
                reasons,
                nodes,
                warnings,
            });
        }
        // Checked below against the server's version and every node.
        SupervisorSideloadMethod::ImageVolume => {}
    }
    if let Some(version) = facts.server_version {
        let level = VersionSupport::of(&version.value);
        if level == VersionSupport::None {
            return Err(PlanError::VersionTooOld {
                method_origin: origin.to_string(),
                version_origin: version.origin.to_string(),
                version: version.value.to_string(),
            });
        }
        if !level.usable(gate) {
            warnings.push(format!(
                "{origin} chooses image-volume on Kubernetes {} ({}): image volumes are off by default before 1.35, so the ImageVolume feature gate must be on for the API server and every kubelet; otherwise use init-container",
                version.value, version.origin
            ));
        }
        reasons.push(format!(
            "server: {} ({})",
            level.describe(&version.value, gate),
            version.origin
        ));
    }
    if let Some(given) = facts.nodes {
        for (node, assessment) in given.value.iter().zip(&nodes) {
            let fix = match RuntimeFix::for_runtime(&node.container_runtime) {
                RuntimeFix::Upgrade(what) => format!(
                    "{what} on node {}, or keep sandboxes off it (a nodeSelector or taint in the pod template)",
                    node.name
                ),
                RuntimeFix::Other => format!(
                    "keep sandboxes off node {} (a nodeSelector or taint in the pod template)",
                    node.name
                ),
            };
            match assessment.verdict.support {
                ImageVolumeSupport::Unsupported => {
                    let source = assessment
                        .verdict
                        .source
                        .map(|source| format!(" [source: {source}]"))
                        .unwrap_or_default();
                    return Err(PlanError::UnsupportedNode {
                        method_origin: origin.to_string(),
                        nodes_origin: given.origin.to_string(),
                        node: node.name.clone(),
                        problem: format!(
                            "runs {}, which cannot mount image volumes: {}{source}",
                            node.container_runtime, assessment.verdict.note
                        ),
                        fix,
                    });
                }
                ImageVolumeSupport::Unknown => warnings.push(format!(
                    "node {} runs {}, which is not known to support image volumes ({}); if sandboxes there fail with \"no such file\", use init-container",
                    node.name, node.container_runtime, assessment.verdict.note
                )),
                ImageVolumeSupport::Supported => {}
            }
            if let Some(kubelet) = &node.kubelet_version
                && VersionSupport::of(kubelet) == VersionSupport::None
            {
                return Err(PlanError::UnsupportedNode {
                    method_origin: origin.to_string(),
                    nodes_origin: given.origin.to_string(),
                    node: node.name.clone(),
                    problem: format!(
                        "runs kubelet {kubelet}, which has no image volumes (alpha from 1.31)"
                    ),
                    fix: format!("upgrade the kubelet on node {}", node.name),
                });
            }
        }
        reasons.push(format!(
            "nodes: {} of {} known to mount image volumes ({})",
            nodes.iter().filter(|node| node.image_volume).count(),
            nodes.len(),
            given.origin
        ));
    }
    Ok(Plan {
        method: Setting::new(method, origin.clone()),
        reasons,
        nodes,
        warnings,
    })
}

enum RuntimeFix {
    Upgrade(&'static str),
    Other,
}

impl RuntimeFix {
    fn for_runtime(runtime: &str) -> Self {
        if runtime.starts_with("containerd://") && runtime.contains("-k3s") {
            Self::Upgrade(
                "run k3s with a containerd that implements image volumes (an external containerd 2.1+ through --container-runtime-endpoint)",
            )
        } else if runtime.starts_with("containerd://") {
            Self::Upgrade("upgrade containerd to 2.1 or later")
        } else if runtime.starts_with("cri-o://") {
            Self::Upgrade("upgrade CRI-O to 1.31 or later")
        } else {
            Self::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_levels() {
        let level = |text: &str| VersionSupport::of(&text.parse().unwrap());
        assert_eq!(level("v1.30.9"), VersionSupport::None);
        assert_eq!(level("v1.31.0"), VersionSupport::Alpha);
        assert_eq!(level("v1.32.4"), VersionSupport::Alpha);
        assert_eq!(level("v1.33.0"), VersionSupport::GatedBeta);
        assert_eq!(level("v1.34.2"), VersionSupport::GatedBeta);
        assert_eq!(level("v1.35.0"), VersionSupport::OnByDefault);
        assert_eq!(level("v1.37.1"), VersionSupport::OnByDefault);
        assert!(VersionSupport::GatedBeta.usable(true));
        assert!(!VersionSupport::GatedBeta.usable(false));
        assert!(!VersionSupport::Alpha.usable(true));
    }
}
