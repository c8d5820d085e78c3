//! `explain`: the sideload plan in words, then what can still go wrong on
//! the cluster, with its cause and fix.
//!
//! The failures of a sideload show up far from their cause: a runtime that
//! cannot mount image volumes gives an empty mount and then "no such file"
//! when the agent container starts; a missing pull secret or architecture
//! gives ErrImagePull on a volume nobody looks at. The table ties each
//! symptom to the facts the driver checks.

use std::fmt::Write as _;

use openshell_contract::sideload::{
    FLAG_IMAGE_VOLUME_FEATURE_GATE, FLAG_SUPERVISOR_SIDELOAD_METHOD,
};
use openshell_contract::{INSTALLED_BINARY_PATH, MOUNT_PATH};

use crate::cluster::{ImageVolumeSupport, RUNTIMES};
use crate::config::DriverConfig;

/// One row of the troubleshooting table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symptom {
    /// What the operator sees.
    pub symptom: &'static str,
    /// Why it happens.
    pub cause: &'static str,
    /// What to do.
    pub fix: &'static str,
}

/// The symptoms of a failed sideload, their causes and fixes.
pub const SYMPTOMS: [Symptom; 6] = [
    Symptom {
        symptom: "empty mount: /opt/openshell/bin exists but is empty",
        cause: "the node's container runtime cannot mount image volumes (containerd before 2.1, CRI-O before 1.31, k3s's bundled containerd: k3s-io/k3s#14323) and mounted an empty folder",
        fix: "upgrade the runtime, keep sandboxes off the node, or use --supervisor-sideload-method init-container (auto does this from --nodes-json)",
    },
    Symptom {
        symptom: "empty mount: the image volume is not there at all",
        cause: "the ImageVolume feature gate is off for the API server or the kubelet (Kubernetes 1.33-1.34, or 1.31-1.32 alpha), which then ignores the volume silently (kind#3745)",
        fix: "turn the gate on for the API server and every kubelet and declare it with --image-volume-feature-gate, or use init-container",
    },
    Symptom {
        symptom: "\"no such file or directory\" when the agent container starts /opt/openshell/bin/openshell-sandbox",
        cause: "the binary is not at /openshell-sandbox in the supervisor image (e.g. built at /usr/local/bin, so it appears at /opt/openshell/bin/usr/local/bin/...), or the mount is empty (above)",
        fix: "rebuild with build-image (or Dockerfile.scratch) and check it with `build-image verify docker://REF`; check the rows above",
    },
    Symptom {
        symptom: "ErrImagePull / ImagePullBackOff on the supervisor volume or init container",
        cause: "the supervisor image is private and the pod has no pull secret for it (image volumes are pulled with the pod's imagePullSecrets)",
        fix: "create a docker-registry Secret in the sandbox namespace and pass --image-pull-secret NAME",
    },
    Symptom {
        symptom: "ErrImagePull: \"no matching manifest for linux/ARCH\"",
        cause: "the supervisor image has no platform for the node's architecture",
        fix: "build and push it for every node architecture (build-image --binary linux/ARCH=PATH ...); --pin-supervisor-digest or --supervisor-image-from with --nodes-json checks this at start",
    },
    Symptom {
        symptom: "\"exec format error\" when the agent container starts the supervisor",
        cause: "the binary is for another architecture than the node",
        fix: "as above: an image with a platform per node architecture",
    },
];

/// The plan and the troubleshooting table, as text.
pub fn explain(config: &DriverConfig) -> String {
    let mut out = String::new();
    let plan = &config.plan;
    let _ = writeln!(out, "Sideload plan");
    let _ = writeln!(
        out,
        "  method: {} ({})",
        config.sideload_method.value, config.sideload_method.origin
    );
    for reason in &plan.reasons {
        let _ = writeln!(out, "  - {reason}");
    }
    if !plan.nodes.is_empty() {
        let _ = writeln!(out, "\nNodes");
        for node in &plan.nodes {
            let verdict = if node.image_volume {
                "image-volume works"
            } else {
                "image-volume does not work"
            };
            let _ = writeln!(
                out,
                "  {}: {} ({}): {verdict}: {}",
                node.node, node.runtime, node.architecture, node.reason
            );
            if let Some(source) = node.verdict.source {
                let _ = writeln!(out, "      source: {source}");
            }
        }
    }
    let _ = writeln!(out, "\nSupervisor image");
    let _ = writeln!(
        out,
        "  {} ({}), pull policy {}",
        config.supervisor_image.value,
        config.supervisor_image.origin,
        config.pull_policy().value
    );
    let _ = writeln!(out, "  {}", config.platform_summary());
    let _ = writeln!(
        out,
        "  the agent container starts {INSTALLED_BINARY_PATH} from the volume at {MOUNT_PATH}"
    );
    let warnings = config.warnings();
    if !warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings");
        for warning in &warnings {
            let _ = writeln!(out, "  - {warning}");
        }
    }
    let _ = writeln!(out, "\nIf a sandbox does not start");
    for row in &SYMPTOMS {
        let _ = writeln!(out, "  - {}", row.symptom);
        let _ = writeln!(out, "      cause: {}", row.cause);
        let _ = writeln!(out, "      fix:   {}", row.fix);
    }
    let _ = writeln!(
        out,
        "\nRuntimes known to the driver (--{FLAG_SUPERVISOR_SIDELOAD_METHOD} auto uses this table; declare the gate with --{FLAG_IMAGE_VOLUME_FEATURE_GATE})"
    );
    for row in &RUNTIMES {
        let support = match row.support {
            ImageVolumeSupport::Supported => "supported",
            ImageVolumeSupport::Unsupported => "not supported",
            ImageVolumeSupport::Unknown => "unknown",
        };
        let build = row
            .build_marker
            .map(|marker| format!(" ({marker} builds)"))
            .unwrap_or_default();
        let since = if row.since.iter().all(|number| *number == 0) {
            ", any version".to_string()
        } else {
            let version: Vec<String> = row.since.iter().map(u64::to_string).collect();
            format!(" >= {}", version.join("."))
        };
        let _ = writeln!(
            out,
            "  {}{build}{since}: {support}: {} [{}]",
            row.runtime, row.note, row.source
        );
    }
    out
}
