//! Rendering a complete sandbox Pod: from scratch or from an operator's
//! template, with the sideload applied.

use std::fmt;
use std::path::Path;

use openshell_contract::{AGENT_CONTAINER_NAME, BINARY_NAME};
use serde_json::{Map, Value, json};

use crate::image::{ImageError, pod_reference};
use crate::input::{TEMPLATE_SIZE_LIMIT, parse_yaml, read_text};
use crate::names::check_dns_subdomain;
use crate::sideload::{Sideload, SideloadError};

/// Pod name when neither `--name` nor the template gives one.
pub const DEFAULT_POD_NAME: &str = BINARY_NAME;

/// Label on every rendered pod, so the driver's sandboxes can be listed.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "openshell-driver-kubernetes";

/// What to render.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRequest {
    /// Pod name (overrides the template's).
    pub name: Option<String>,
    /// The agent image (overrides the template agent container's).
    pub sandbox_image: Option<String>,
    /// The agent's command and arguments (override the template's).
    pub command: Vec<String>,
}

/// Why no pod could be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The template file could not be read or parsed.
    #[error("template {path}: {reason}")]
    Template {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The template is not a Pod or pod template.
    #[error(
        "template: {reason} (expected a Pod, kind: Pod with apiVersion: v1, or a pod template with metadata and spec)"
    )]
    NotAPod {
        /// What is wrong.
        reason: String,
    },
    /// The pod name is not a Kubernetes name.
    #[error(
        "invalid pod name {name:?} ({origin}): {reason} (expected a DNS subdomain name like openshell-sandbox-1)"
    )]
    Name {
        /// The name.
        name: String,
        /// Where it came from.
        origin: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The sandbox image reference is invalid.
    #[error("--sandbox-image: {0}")]
    SandboxImage(Box<ImageError>),
    /// The template's agent image reference is invalid.
    #[error("{path}: {source}")]
    TemplateImage {
        /// Where, like `spec.containers[0].image`.
        path: String,
        /// Why.
        source: Box<ImageError>,
    },
    /// No agent image anywhere.
    #[error(
        "the agent container {path} has no image: pass --sandbox-image IMAGE (or set its image in the template)"
    )]
    NoSandboxImage {
        /// The container's path.
        path: String,
    },
    /// The sideload could not be applied.
    #[error(transparent)]
    Sideload(#[from] SideloadError),
    /// Serialising the pod failed.
    #[error("could not write the pod as {format}: {reason}")]
    Output {
        /// The format.
        format: OutputFormat,
        /// What went wrong.
        reason: String,
    },
}

/// How the pod is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Pretty-printed JSON.
    #[default]
    Json,
    /// YAML.
    Yaml,
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::Yaml => "yaml",
        })
    }
}

/// The bare sandbox pod, before the sideload: one agent container, never
/// restarted (a sandbox that ends is done; its state must not be silently
/// reset by a restart), and no service account token (the agent runs
/// arbitrary code and needs no access to the Kubernetes API).
pub fn base_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": DEFAULT_POD_NAME,
            "labels": { MANAGED_BY_LABEL: MANAGED_BY },
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [{ "name": AGENT_CONTAINER_NAME }],
        },
    })
}

/// Reads a pod template file, YAML or JSON (JSON is YAML too).
pub fn read_template(path: &Path) -> Result<Value, PodError> {
    let fail = |reason: String| PodError::Template {
        path: path.display().to_string(),
        reason,
    };
    let text = read_text(path, TEMPLATE_SIZE_LIMIT).map_err(|err| fail(err.to_string()))?;
    parse_yaml(&text).map_err(fail)
}

/// Renders the complete pod: `template` (a Pod or pod template; the bare
/// sandbox pod when `None`) with the request's name, image and command, and
/// the sideload applied.
pub fn render(
    template: Option<Value>,
    request: &PodRequest,
    sideload: &Sideload,
) -> Result<Value, PodError> {
    let mut pod = match template {
        Some(template) => complete_template(template)?,
        None => base_pod(),
    };
    let Some(pod_map) = pod.as_object_mut() else {
        return Err(PodError::NotAPod {
            reason: "it is not an object".to_string(),
        });
    };
    set_name(pod_map, request.name.as_deref())?;
    let spec = pod_map.get_mut("spec").ok_or_else(|| PodError::NotAPod {
        reason: "it has no spec".to_string(),
    })?;
    set_agent(spec, request)?;
    rewrite_references(spec)?;
    sideload.apply(spec)?;
    Ok(pod)
}

/// A Pod as is; a pod template (metadata and spec) gains apiVersion and
/// kind in front.
fn complete_template(template: Value) -> Result<Value, PodError> {
    let Value::Object(map) = template else {
        return Err(PodError::NotAPod {
            reason: "it is not an object".to_string(),
        });
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str);
    match (text("apiVersion"), text("kind")) {
        (Some("v1") | None, Some("Pod")) | (None, None) => {}
        (version, kind) => {
            return Err(PodError::NotAPod {
                reason: format!(
                    "it is apiVersion {}, kind {}",
                    version.unwrap_or("(none)"),
                    kind.unwrap_or("(none)")
                ),
            });
        }
    }
    if !map.get("spec").is_some_and(Value::is_object) {
        return Err(PodError::NotAPod {
            reason: "it has no spec object".to_string(),
        });
    }
    if map
        .get("metadata")
        .is_some_and(|metadata| !metadata.is_object())
    {
        return Err(PodError::NotAPod {
            reason: "its metadata is not an object".to_string(),
        });
    }
    let mut pod = Map::new();
    pod.insert("apiVersion".to_string(), json!("v1"));
    pod.insert("kind".to_string(), json!("Pod"));
    for (key, value) in map {
        if key != "apiVersion" && key != "kind" {
            pod.insert(key, value);
        }
    }
    Ok(Value::Object(pod))
}

fn set_name(pod: &mut Map<String, Value>, name: Option<&str>) -> Result<(), PodError> {
    let metadata = pod
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(metadata) = metadata else {
        return Err(PodError::NotAPod {
            reason: "its metadata is not an object".to_string(),
        });
    };
    let (name, origin) = match name {
        Some(name) => (name.to_string(), "--name"),
        None => match metadata.get("name").and_then(Value::as_str) {
            Some(name) => (name.to_string(), "the template's metadata.name"),
            // kubectl apply needs a name; generateName alone is refused.
            None => (DEFAULT_POD_NAME.to_string(), "the default"),
        },
    };
    check_dns_subdomain(&name).map_err(|reason| PodError::Name {
        name: name.clone(),
        origin,
        reason,
    })?;
    metadata.insert("name".to_string(), json!(name));
    Ok(())
}

/// Sets the agent container's image and command from the request, and
/// checks it ends up with an image.
fn set_agent(spec: &mut Value, request: &PodRequest) -> Result<(), PodError> {
    let containers = spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .filter(|list| !list.is_empty())
        .ok_or(SideloadError::NoContainers)?;
    let index = containers
        .iter()
        .position(|container| container["name"] == AGENT_CONTAINER_NAME)
        .unwrap_or(0);
    let path = format!("spec.containers[{index}]");
    let Some(agent) = containers[index].as_object_mut() else {
        return Err(PodError::NotAPod {
            reason: format!("{path} is not an object"),
        });
    };
    if let Some(image) = &request.sandbox_image {
        let image = pod_reference(image).map_err(|err| PodError::SandboxImage(Box::new(err)))?;
        agent.insert("image".to_string(), json!(image));
    }
    let Some(image) = agent.get("image").and_then(Value::as_str) else {
        return Err(PodError::NoSandboxImage { path });
    };
    // The template's own reference gets the same check and rewrite.
    let image = pod_reference(image).map_err(|err| PodError::TemplateImage {
        path: format!("{path}.image"),
        source: Box::new(err),
    })?;
    agent.insert("image".to_string(), json!(image));
    if !request.command.is_empty() {
        agent.insert("command".to_string(), json!(request.command));
        agent.remove("args");
    }
    Ok(())
}

/// Every other container's image reference (sidecars, init containers)
/// gets the agent's check and rewrite: `REPO:TAG@DIGEST` becomes
/// `REPO@DIGEST`, an uppercase digest is refused. A container without an
/// image is left to the API server's validation.
fn rewrite_references(spec: &mut Value) -> Result<(), PodError> {
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for (index, container) in containers.iter_mut().enumerate() {
            let Some(image) = container.get("image").and_then(Value::as_str) else {
                continue;
            };
            let image = pod_reference(image).map_err(|err| PodError::TemplateImage {
                path: format!("spec.{list}[{index}].image"),
                source: Box::new(err),
            })?;
            container["image"] = json!(image);
        }
    }
    Ok(())
}

/// The pod as text in `format`, ending with a newline.
pub fn to_text(pod: &Value, format: OutputFormat) -> Result<String, PodError> {
    let fail = |reason: String| PodError::Output { format, reason };
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(pod)
            .map(|text| text + "\n")
            .map_err(|err| fail(err.to_string())),
        OutputFormat::Yaml => Ok(crate::yaml::to_yaml(pod)),
    }
}
