//! The driver's configuration: from flags, environment variables and a
//! config file (in that order of precedence; see [`crate::settings`], where
//! every setting is declared), checked as a whole at start so that a wrong
//! or misspelled setting, or a method the cluster cannot run, fails before
//! any sandbox is created.

use std::fmt;

use openshell_contract::sideload::{
    ENV_PIN_SUPERVISOR_DIGEST, FLAG_NODES_JSON, FLAG_PIN_SUPERVISOR_DIGEST,
    FLAG_SUPERVISOR_IMAGE_FROM,
};
use serde_json::{Map, Value, json};

use crate::build_output::{BuildOutput, BuildOutputError};
use crate::cluster::Node;
use crate::image::{PullPolicy, SupervisorImage};
use crate::kubernetes_version::KubernetesVersion;
use crate::method::SupervisorSideloadMethod;
use crate::plan::{self, Facts, Plan, PlanError};
use crate::platform::{self, Platform};
use crate::security::SecurityProfile;
pub use crate::settings::{DriverArgs, Origin, RawSettings, Setting, SettingError};
use crate::settings::{
    IMAGE_PULL_SECRETS, IMAGE_VOLUME_FEATURE_GATE, KUBERNETES_VERSION, KUBERNETES_VERSION_JSON,
    NODES_JSON, PIN_SUPERVISOR_DIGEST, SECURITY_PROFILE, SUPERVISOR_IMAGE, SUPERVISOR_IMAGE_FROM,
    SUPERVISOR_IMAGE_PULL_POLICY, SUPERVISOR_SIDELOAD_METHOD,
};
use crate::sideload::Sideload;

/// A configuration that cannot be used; each names where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting does not parse, or the config file is unusable.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// No image could be taken from build-image's output.
    #[error("{origin}: {error}")]
    BuildOutput {
        /// Where it came from.
        origin: Origin,
        /// What is wrong (boxed: it is large and rare).
        error: Box<BuildOutputError>,
    },
    /// The method does not fit the cluster.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A node the supervisor image has no binary for.
    #[error(transparent)]
    PlatformMissing(Box<PlatformMissing>),
}

/// A node the supervisor image has no binary for.
#[derive(Debug, thiserror::Error)]
#[error(
    "node {node} is {os}/{architecture} ({nodes_origin}), but the supervisor image {image} has only {platforms} ({platforms_origin}); a sandbox there would fail with \"exec format error\". Build and push the image for {os}/{architecture} too (build-image --binary {os}/{architecture}=PATH ...), or keep sandboxes off that node"
)]
pub struct PlatformMissing {
    /// The node.
    pub node: String,
    /// Its operating system.
    pub os: String,
    /// Its architecture.
    pub architecture: String,
    /// Where the nodes came from.
    pub nodes_origin: String,
    /// The image.
    pub image: String,
    /// Its platforms.
    pub platforms: String,
    /// Where they were read.
    pub platforms_origin: String,
}

/// The checked configuration the driver renders pods with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// How the supervisor reaches the sandbox.
    pub sideload_method: Setting<SupervisorSideloadMethod>,
    /// Why that method, node by node.
    pub plan: Plan,
    /// The supervisor image.
    pub supervisor_image: Setting<SupervisorImage>,
    /// The platforms the image has, when they are known (from a build
    /// output, or from the registry when pinning).
    pub image_platforms: Option<Setting<Vec<Platform>>>,
    /// The pull policy, when one was given.
    pub supervisor_image_pull_policy: Option<Setting<PullPolicy>>,
    /// The cluster's server version, when given.
    pub kubernetes_version: Option<Setting<KubernetesVersion>>,
    /// The cluster's nodes, when given.
    pub nodes: Option<Setting<Vec<Node>>>,
    /// Whether the `ImageVolume` gate is declared on.
    pub image_volume_feature_gate: Setting<bool>,
    /// Whether to pin the image by digest at start.
    pub pin_supervisor_digest: Setting<bool>,
    /// The public key the pinned image's signature must verify with.
    pub supervisor_public_key: Option<Setting<String>>,
    /// What the check of the pinned image's signature proved, once made
    /// (at start, after pinning).
    pub supervisor_signature: Option<openshell_signing::oci_check::SignatureReport>,
    /// Pull secrets added to every pod (no duplicates).
    pub image_pull_secrets: Setting<Vec<String>>,
    /// How much hardening the pods get.
    pub security_profile: Setting<SecurityProfile>,
}

/// A setting's value, or its default (every setting used this way has one;
/// a declaration without one is a programming error reported as such).
fn required<T>(
    raw: &RawSettings,
    declaration: &crate::settings::Declaration<T>,
) -> Result<Setting<T>, ConfigError> {
    raw.get_or_default(declaration)?.ok_or_else(|| {
        ConfigError::Setting(SettingError::Invalid {
            origin: Origin::Default,
            reason: format!("setting {} has no default", declaration.meta.key),
        })
    })
}

impl DriverConfig {
    /// Checks every setting and makes the sideload plan; the first unusable
    /// setting is the error.
    pub fn resolve(raw: RawSettings) -> Result<Self, ConfigError> {
        let kubernetes_version = plan::server_version(
            raw.get(&KUBERNETES_VERSION)?,
            raw.get(&KUBERNETES_VERSION_JSON)?,
        )?;
        let nodes = raw.get(&NODES_JSON)?;
        let image_volume_feature_gate = required(&raw, &IMAGE_VOLUME_FEATURE_GATE)?;
        let choice = raw.get(&SUPERVISOR_SIDELOAD_METHOD)?;
        let plan = plan::decide(
            choice.as_ref(),
            Facts {
                server_version: kubernetes_version.as_ref(),
                nodes: nodes.as_ref(),
                feature_gate: &image_volume_feature_gate,
            },
        )?;

        let given_image = raw.get(&SUPERVISOR_IMAGE)?;
        let (supervisor_image, image_platforms) = match raw.get(&SUPERVISOR_IMAGE_FROM)? {
            Some(from) => image_from_build(given_image, from)?,
            None => match given_image {
                Some(image) => (image, None),
                None => (required(&raw, &SUPERVISOR_IMAGE)?, None),
            },
        };

        let config = Self {
            sideload_method: plan.method.clone(),
            plan,
            supervisor_image,
            image_platforms,
            supervisor_image_pull_policy: raw.get(&SUPERVISOR_IMAGE_PULL_POLICY)?,
            kubernetes_version,
            nodes,
            image_volume_feature_gate,
            pin_supervisor_digest: required(&raw, &PIN_SUPERVISOR_DIGEST)?,
            supervisor_public_key: raw.get(&crate::settings::SUPERVISOR_PUBLIC_KEY)?,
            supervisor_signature: None,
            image_pull_secrets: required(&raw, &IMAGE_PULL_SECRETS)?,
            security_profile: required(&raw, &SECURITY_PROFILE)?,
        };
        config.check_platforms()?;
        Ok(config)
    }

    /// Checks that the supervisor image has a binary for every node, when
    /// both are known; run again after pinning, which learns the platforms.
    pub fn check_platforms(&self) -> Result<(), ConfigError> {
        let (Some(platforms), Some(nodes)) = (&self.image_platforms, &self.nodes) else {
            return Ok(());
        };
        match platform::uncovered(&platforms.value, &nodes.value).first() {
            Some(node) => Err(ConfigError::PlatformMissing(Box::new(PlatformMissing {
                node: node.name.clone(),
                os: node.operating_system.clone(),
                architecture: node.architecture.clone(),
                nodes_origin: nodes.origin.to_string(),
                image: self.supervisor_image.value.to_string(),
                platforms: platform::list(&platforms.value),
                platforms_origin: platforms.origin.to_string(),
            }))),
            None => Ok(()),
        }
    }

    /// The pull policy pods get: the one given, else Kubernetes' default for
    /// the (possibly pinned) image.
    pub fn pull_policy(&self) -> Setting<PullPolicy> {
        self.supervisor_image_pull_policy
            .clone()
            .unwrap_or_else(|| {
                Setting::new(
                    self.supervisor_image.value.default_pull_policy(),
                    Origin::Derived(format!(
                        "Kubernetes' default for {}",
                        self.supervisor_image.value
                    )),
                )
            })
    }

    /// What to add to every sandbox pod.
    pub fn sideload(&self) -> Sideload {
        Sideload {
            method: self.sideload_method.value,
            image: self.supervisor_image.value.clone(),
            pull_policy: self.pull_policy().value,
            image_pull_secrets: self.image_pull_secrets.value.clone(),
            security: self.security_profile.value,
        }
    }

    /// Uses `image` (the digest-pinned form of the configured image) from
    /// now on, with the platforms the registry lists for it.
    pub fn use_pinned_image(&mut self, image: SupervisorImage, platforms: Vec<Platform>) {
        let origin = Origin::Derived(format!(
            "{} pinned by the registry ({})",
            self.supervisor_image.value, self.pin_supervisor_digest.origin
        ));
        self.image_platforms = Some(Setting::new(
            platforms,
            Origin::Derived(format!("the registry's manifest of {image}")),
        ));
        self.supervisor_image = Setting::new(image, origin);
    }

    /// What the operator should know before the first pod is rendered: a
    /// mutable tag behind an image volume, image volumes that need a
    /// feature gate or run on a runtime not known to support them. Print
    /// each once, at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let image = &self.supervisor_image.value;
        // The warning is about image volumes, as its text says.
        let behind_image_volume = match self.sideload_method.value {
            SupervisorSideloadMethod::ImageVolume => true,
            SupervisorSideloadMethod::InitContainer => false,
        };
        if behind_image_volume && image.is_mutable() && !self.pin_supervisor_digest.value {
            warnings.push(format!(
                "the supervisor image {image} ({}) is a mutable tag behind an image volume: Kubernetes resolves it again whenever a sandbox pod is created, so sandboxes can silently run different supervisors if the tag moves; pass --{FLAG_PIN_SUPERVISOR_DIGEST} ({ENV_PIN_SUPERVISOR_DIGEST}=true), a release tag or a REPO@sha256:... reference",
                self.supervisor_image.origin
            ));
        }
        if let Some(key) = &self.supervisor_public_key {
            if !self.pin_supervisor_digest.value {
                warnings.push(format!(
                    "--{} {} ({}) checks nothing without --{FLAG_PIN_SUPERVISOR_DIGEST}: only an image pinned by digest can be checked once for every pod",
                    crate::settings::SUPERVISOR_PUBLIC_KEY.meta.flag,
                    key.value,
                    key.origin
                ));
            }
        }
        warnings.extend(self.plan.warnings.iter().cloned());
        warnings
    }

    /// What is known about the image's platforms against the nodes, in one
    /// line, for `explain`.
    pub fn platform_summary(&self) -> String {
        match (&self.image_platforms, &self.nodes) {
            (Some(platforms), Some(nodes)) => format!(
                "the supervisor image has {} ({}), which covers every node's architecture ({})",
                platform::list(&platforms.value),
                platforms.origin,
                architectures(&nodes.value)
            ),
            (Some(platforms), None) => format!(
                "the supervisor image has {} ({}); give --{FLAG_NODES_JSON} to check them against the nodes",
                platform::list(&platforms.value),
                platforms.origin
            ),
            (None, Some(nodes)) => format!(
                "the supervisor image's platforms are unknown (a tag is not looked up): pass --{FLAG_PIN_SUPERVISOR_DIGEST} or --{FLAG_SUPERVISOR_IMAGE_FROM} to check them against the nodes' {}",
                architectures(&nodes.value)
            ),
            (None, None) => {
                "the supervisor image's platforms and the nodes' architectures are unknown"
                    .to_string()
            }
        }
    }

    /// The configuration as operators read it (`config --json`): each
    /// setting, under its config-file key, as `{"value", "origin"}`, then
    /// the warnings.
    pub fn report(&self) -> Value {
        let mut report = Map::new();
        let mut put = |key: &str, value: Value, origin: &Origin| {
            report.insert(
                key.to_string(),
                json!({ "value": value, "origin": origin.to_string() }),
            );
        };
        let text = |value: &dyn fmt::Display| Value::String(value.to_string());
        put(
            SUPERVISOR_SIDELOAD_METHOD.meta.key,
            text(&self.sideload_method.value),
            &self.sideload_method.origin,
        );
        put(
            SUPERVISOR_IMAGE.meta.key,
            text(&self.supervisor_image.value),
            &self.supervisor_image.origin,
        );
        let policy = self.pull_policy();
        put(
            SUPERVISOR_IMAGE_PULL_POLICY.meta.key,
            text(&policy.value),
            &policy.origin,
        );
        put(
            SECURITY_PROFILE.meta.key,
            text(&self.security_profile.value),
            &self.security_profile.origin,
        );
        if let Some(version) = &self.kubernetes_version {
            put(
                KUBERNETES_VERSION.meta.key,
                text(&version.value),
                &version.origin,
            );
        }
        if let Some(nodes) = &self.nodes {
            let names: Vec<&str> = nodes.value.iter().map(|node| node.name.as_str()).collect();
            put(NODES_JSON.meta.key, json!(names), &nodes.origin);
        }
        put(
            IMAGE_VOLUME_FEATURE_GATE.meta.key,
            json!(self.image_volume_feature_gate.value),
            &self.image_volume_feature_gate.origin,
        );
        put(
            PIN_SUPERVISOR_DIGEST.meta.key,
            json!(self.pin_supervisor_digest.value),
            &self.pin_supervisor_digest.origin,
        );
        if let Some(key) = &self.supervisor_public_key {
            put(
                crate::settings::SUPERVISOR_PUBLIC_KEY.meta.key,
                json!(key.value),
                &key.origin,
            );
        }
        put(
            IMAGE_PULL_SECRETS.meta.key,
            json!(self.image_pull_secrets.value),
            &self.image_pull_secrets.origin,
        );
        report.insert("warnings".to_string(), json!(self.warnings()));
        Value::Object(report)
    }
}

fn architectures(nodes: &[Node]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for node in nodes {
        let platform = format!("{}/{}", node.operating_system, node.architecture);
        if !seen.contains(&platform) {
            seen.push(platform);
        }
    }
    seen.join(", ")
}

type ImageAndPlatforms = (Setting<SupervisorImage>, Option<Setting<Vec<Platform>>>);

fn image_from_build(
    repository: Option<Setting<SupervisorImage>>,
    from: Setting<String>,
) -> Result<ImageAndPlatforms, ConfigError> {
    let Setting {
        value: spec,
        origin,
    } = from;
    let built = BuildOutput::locate(&spec)
        .and_then(|output| output.image(repository.as_ref().map(|image| &image.value)))
        .map_err(|error| ConfigError::BuildOutput {
            origin: origin.clone(),
            error: Box::new(error),
        })?;
    let derived = Origin::Derived(format!("build output {spec} ({origin})"));
    let platforms = Some(Setting::new(built.platforms, derived.clone()));
    Ok((Setting::new(built.image, derived), platforms))
}
