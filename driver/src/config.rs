//! The driver's configuration: from flags, environment variables and a
//! config file (in that order of precedence), checked as a whole at start so
//! that a wrong or misspelled setting fails before any sandbox is created.

use std::fmt;
use std::path::{Path, PathBuf};

use openshell_contract::DEFAULT_SUPERVISOR_IMAGE;
use openshell_contract::sideload::{
    ENV_DRIVER_CONFIG, ENV_IMAGE_PULL_SECRETS, ENV_KUBERNETES_VERSION, ENV_PIN_SUPERVISOR_DIGEST,
    ENV_SUPERVISOR_IMAGE, ENV_SUPERVISOR_IMAGE_FROM, ENV_SUPERVISOR_IMAGE_PULL_POLICY,
    ENV_SUPERVISOR_SIDELOAD_METHOD, FLAG_DRIVER_CONFIG, FLAG_IMAGE_PULL_SECRET,
    FLAG_KUBERNETES_VERSION, FLAG_PIN_SUPERVISOR_DIGEST, FLAG_SUPERVISOR_IMAGE,
    FLAG_SUPERVISOR_IMAGE_FROM, FLAG_SUPERVISOR_IMAGE_PULL_POLICY, FLAG_SUPERVISOR_SIDELOAD_METHOD,
};
use serde::{Deserialize, Serialize, Serializer};

use crate::build_output::{BuildOutput, BuildOutputError};
use crate::image::{ImageError, PullPolicy, SupervisorImage, UnknownPullPolicy};
use crate::kubernetes_version::{KubernetesVersion, VersionError};
use crate::method::{SupervisorSideloadMethod, UnknownMethod};
use crate::names::check_dns_subdomain;
use crate::sideload::Sideload;

/// First minor version of Kubernetes 1.x with image volumes at all (alpha,
/// behind the `ImageVolume` feature gate).
pub const IMAGE_VOLUME_ALPHA_SINCE_MINOR: u64 = 31;

/// Where a setting's value came from, so every refusal names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag (name without the dashes).
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the config file.
    ConfigFile {
        /// The config file.
        path: PathBuf,
        /// The key (named like the flag).
        key: &'static str,
    },
    /// Worked out from other settings; says from which.
    Derived(String),
    /// The built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "--{flag}"),
            Self::Env(variable) => f.write_str(variable),
            Self::ConfigFile { path, key } => write!(f, "{key} in {}", path.display()),
            Self::Derived(how) => f.write_str(how),
            Self::Default => f.write_str("the default"),
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub origin: Origin,
}

impl<T> Setting<T> {
    /// A value with its origin.
    pub fn new(value: T, origin: Origin) -> Self {
        Self { value, origin }
    }
}

/// The settings as given, before they are checked. Each layer (flags and
/// environment, config file) fills one; [`RawSettings::over`] stacks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings {
    /// `--supervisor-image`.
    pub supervisor_image: Option<Setting<String>>,
    /// `--supervisor-image-pull-policy`.
    pub supervisor_image_pull_policy: Option<Setting<String>>,
    /// `--supervisor-sideload-method`.
    pub supervisor_sideload_method: Option<Setting<String>>,
    /// `--kubernetes-version`.
    pub kubernetes_version: Option<Setting<String>>,
    /// `--supervisor-image-from`.
    pub supervisor_image_from: Option<Setting<String>>,
    /// `--pin-supervisor-digest`.
    pub pin_supervisor_digest: Option<Setting<bool>>,
    /// `--image-pull-secret` (all from the same layer).
    pub image_pull_secrets: Option<Setting<Vec<String>>>,
}

impl RawSettings {
    /// These settings, with `lower` filling what they leave unset.
    pub fn over(self, lower: RawSettings) -> RawSettings {
        RawSettings {
            supervisor_image: self.supervisor_image.or(lower.supervisor_image),
            supervisor_image_pull_policy: self
                .supervisor_image_pull_policy
                .or(lower.supervisor_image_pull_policy),
            supervisor_sideload_method: self
                .supervisor_sideload_method
                .or(lower.supervisor_sideload_method),
            kubernetes_version: self.kubernetes_version.or(lower.kubernetes_version),
            supervisor_image_from: self.supervisor_image_from.or(lower.supervisor_image_from),
            pin_supervisor_digest: self.pin_supervisor_digest.or(lower.pin_supervisor_digest),
            image_pull_secrets: self.image_pull_secrets.or(lower.image_pull_secrets),
        }
    }
}

/// The driver's settings on the command line, each with its environment
/// variable; flatten it into a command (`#[command(flatten)]`). A flag wins
/// over its environment variable, and both over the config file.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Supervisor options")]
pub struct DriverArgs {
    /// Supervisor image, `[REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST]`, written
    /// into pods exactly as given [default: openshell/supervisor:latest].
    /// With --supervisor-image-from it names the repository the build was
    /// pushed to.
    #[arg(long = FLAG_SUPERVISOR_IMAGE, env = ENV_SUPERVISOR_IMAGE, value_name = "REF")]
    pub supervisor_image: Option<String>,

    /// Pull policy of the supervisor image: Always, IfNotPresent or Never.
    /// When not given, Kubernetes' own rule is applied and written out:
    /// Always for the tag latest (or no tag), IfNotPresent otherwise.
    #[arg(
        long = FLAG_SUPERVISOR_IMAGE_PULL_POLICY,
        env = ENV_SUPERVISOR_IMAGE_PULL_POLICY,
        value_name = "POLICY"
    )]
    pub supervisor_image_pull_policy: Option<String>,

    /// How the supervisor reaches the sandbox: image-volume (an image volume
    /// mounts the supervisor image; Kubernetes 1.35+, or 1.33-1.34 with the
    /// ImageVolume feature gate) or init-container (an init container copies
    /// it into an emptyDir). Default: picked by --kubernetes-version, else
    /// image-volume.
    #[arg(
        long = FLAG_SUPERVISOR_SIDELOAD_METHOD,
        env = ENV_SUPERVISOR_SIDELOAD_METHOD,
        value_name = "METHOD"
    )]
    pub supervisor_sideload_method: Option<String>,

    /// The cluster's Kubernetes version (v1.34.2, 1.35, v1.33.5-gke.1, ...):
    /// picks the sideload method when none is given (init-container below
    /// 1.35, image-volume from 1.35 on) and checks an explicit one.
    #[arg(long = FLAG_KUBERNETES_VERSION, env = ENV_KUBERNETES_VERSION, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,

    /// Take the supervisor image, pinned by digest, from what build-image
    /// produced: its result JSON (--metadata-file; the first pushed
    /// reference, or the one in --supervisor-image's repository), or its OCI
    /// image layout folder `DIR[:TAG]` (tag latest by default) together with
    /// --supervisor-image REPOSITORY where that image was pushed.
    #[arg(
        long = FLAG_SUPERVISOR_IMAGE_FROM,
        env = ENV_SUPERVISOR_IMAGE_FROM,
        value_name = "FILE|DIR[:TAG]"
    )]
    pub supervisor_image_from: Option<String>,

    /// At start, resolve the supervisor image's tag to its manifest digest
    /// through the registry and render every pod with REF@sha256:..., so all
    /// sandboxes run the same supervisor even if the tag moves. Credentials
    /// come from --authfile or the usual auth files (REGISTRY_AUTH_FILE,
    /// containers auth.json, docker config.json). The environment variable
    /// takes true or false.
    #[arg(
        long = FLAG_PIN_SUPERVISOR_DIGEST,
        env = ENV_PIN_SUPERVISOR_DIGEST,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub pin_supervisor_digest: bool,

    /// Name of a Secret to add to the pod's imagePullSecrets (repeatable;
    /// the environment variable takes a comma-separated list). Image volumes
    /// are pulled with the pod's pull secrets, so a private supervisor image
    /// needs one. The template's own pull secrets are kept.
    #[arg(
        long = FLAG_IMAGE_PULL_SECRET,
        env = ENV_IMAGE_PULL_SECRETS,
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub image_pull_secrets: Vec<String>,

    /// A YAML or JSON config file with any of these settings, keys named
    /// like the flags (supervisor-image, supervisor-image-pull-policy,
    /// supervisor-sideload-method, kubernetes-version, supervisor-image-from,
    /// pin-supervisor-digest, image-pull-secrets as a list). Flags and
    /// environment variables win over it; unknown keys are errors.
    #[arg(long = FLAG_DRIVER_CONFIG, env = ENV_DRIVER_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Registry auth file for --pin-supervisor-digest, instead of the usual
    /// search (spelled as in podman, skopeo and build-image).
    #[arg(long = "authfile", visible_alias = "auth-file", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,

    /// Talk to the registry over plain HTTP for --pin-supervisor-digest (a
    /// loopback test registry without TLS).
    #[arg(long)]
    pub plain_http: bool,
}

impl DriverArgs {
    /// The settings given on the command line or in the environment, with
    /// their origins (`matches` are the `ArgMatches` these args came from:
    /// clap knows whether each value came from a flag or a variable).
    pub fn settings(&self, matches: &clap::ArgMatches) -> RawSettings {
        use clap::parser::ValueSource;
        // Ids are the field names, as clap's derive names them.
        let origin =
            |id: &str, flag: &'static str, env: &'static str| match matches.value_source(id) {
                Some(ValueSource::CommandLine) => Some(Origin::Flag(flag)),
                Some(ValueSource::EnvVariable) => Some(Origin::Env(env)),
                _ => None,
            };
        let text = |value: &Option<String>, id: &str, flag, env| {
            value
                .clone()
                .zip(origin(id, flag, env))
                .map(|(value, origin)| Setting::new(value, origin))
        };
        RawSettings {
            supervisor_image: text(
                &self.supervisor_image,
                "supervisor_image",
                FLAG_SUPERVISOR_IMAGE,
                ENV_SUPERVISOR_IMAGE,
            ),
            supervisor_image_pull_policy: text(
                &self.supervisor_image_pull_policy,
                "supervisor_image_pull_policy",
                FLAG_SUPERVISOR_IMAGE_PULL_POLICY,
                ENV_SUPERVISOR_IMAGE_PULL_POLICY,
            ),
            supervisor_sideload_method: text(
                &self.supervisor_sideload_method,
                "supervisor_sideload_method",
                FLAG_SUPERVISOR_SIDELOAD_METHOD,
                ENV_SUPERVISOR_SIDELOAD_METHOD,
            ),
            kubernetes_version: text(
                &self.kubernetes_version,
                "kubernetes_version",
                FLAG_KUBERNETES_VERSION,
                ENV_KUBERNETES_VERSION,
            ),
            supervisor_image_from: text(
                &self.supervisor_image_from,
                "supervisor_image_from",
                FLAG_SUPERVISOR_IMAGE_FROM,
                ENV_SUPERVISOR_IMAGE_FROM,
            ),
            pin_supervisor_digest: origin(
                "pin_supervisor_digest",
                FLAG_PIN_SUPERVISOR_DIGEST,
                ENV_PIN_SUPERVISOR_DIGEST,
            )
            .map(|origin| Setting::new(self.pin_supervisor_digest, origin)),
            image_pull_secrets: origin(
                "image_pull_secrets",
                FLAG_IMAGE_PULL_SECRET,
                ENV_IMAGE_PULL_SECRETS,
            )
            .map(|origin| Setting::new(self.image_pull_secrets.clone(), origin)),
        }
    }

    /// Flags and environment over the config file (when one is named):
    /// everything [`DriverConfig::resolve`] needs.
    pub fn all_settings(&self, matches: &clap::ArgMatches) -> Result<RawSettings, ConfigError> {
        let given = self.settings(matches);
        match &self.config {
            Some(path) => Ok(given.over(ConfigFile::load(path)?.settings(path))),
            None => Ok(given),
        }
    }

    /// How to reach the registry when pinning.
    pub fn registry_options(&self) -> openshell_registry::RegistryOptions {
        openshell_registry::RegistryOptions {
            plain_http: self.plain_http,
            basic: None,
            auth_file: self.auth_file.clone(),
        }
    }
}

/// The config file: the same settings as the flags, keys named like them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// See `--supervisor-image`.
    pub supervisor_image: Option<String>,
    /// See `--supervisor-image-pull-policy`.
    pub supervisor_image_pull_policy: Option<String>,
    /// See `--supervisor-sideload-method`.
    pub supervisor_sideload_method: Option<String>,
    /// See `--kubernetes-version`.
    pub kubernetes_version: Option<String>,
    /// See `--supervisor-image-from`; a relative path is relative to the
    /// config file's folder.
    pub supervisor_image_from: Option<String>,
    /// See `--pin-supervisor-digest`.
    pub pin_supervisor_digest: Option<bool>,
    /// See `--image-pull-secret`.
    pub image_pull_secrets: Option<Vec<String>>,
}

impl ConfigFile {
    /// Reads a YAML or JSON config file (JSON is YAML too).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let fail = |reason: String| ConfigError::ConfigFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|err| fail(err.to_string()))?;
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml::from_str(&text).map_err(|err| fail(err.to_string()))
    }

    /// These settings, each with its key in `path` as origin.
    pub fn settings(self, path: &Path) -> RawSettings {
        let origin = |key: &'static str| Origin::ConfigFile {
            path: path.to_path_buf(),
            key,
        };
        let setting =
            |value: Option<String>, key| value.map(|value| Setting::new(value, origin(key)));
        let base = path.parent().unwrap_or(Path::new("."));
        RawSettings {
            supervisor_image: setting(self.supervisor_image, "supervisor-image"),
            supervisor_image_pull_policy: setting(
                self.supervisor_image_pull_policy,
                "supervisor-image-pull-policy",
            ),
            supervisor_sideload_method: setting(
                self.supervisor_sideload_method,
                "supervisor-sideload-method",
            ),
            kubernetes_version: setting(self.kubernetes_version, "kubernetes-version"),
            supervisor_image_from: setting(
                self.supervisor_image_from
                    .map(|from| relative_to(base, &from)),
                "supervisor-image-from",
            ),
            pin_supervisor_digest: self
                .pin_supervisor_digest
                .map(|pin| Setting::new(pin, origin("pin-supervisor-digest"))),
            image_pull_secrets: self
                .image_pull_secrets
                .map(|names| Setting::new(names, origin("image-pull-secrets"))),
        }
    }
}

fn relative_to(base: &Path, spec: &str) -> String {
    let (prefix, rest) = match spec.strip_prefix("oci:") {
        Some(rest) => ("oci:", rest),
        None => ("", spec),
    };
    if Path::new(rest).is_absolute() {
        spec.to_string()
    } else {
        format!("{prefix}{}", base.join(rest).display())
    }
}

/// A setting that cannot be used; each names where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The sideload method is unknown.
    #[error("{origin}: {error}")]
    Method {
        /// Where it came from.
        origin: Origin,
        /// What is wrong.
        error: UnknownMethod,
    },
    /// The Kubernetes version is malformed.
    #[error("{origin}: {error}")]
    Version {
        /// Where it came from.
        origin: Origin,
        /// What is wrong.
        error: VersionError,
    },
    /// The pull policy is unknown.
    #[error("{origin}: {error}")]
    PullPolicy {
        /// Where it came from.
        origin: Origin,
        /// What is wrong.
        error: UnknownPullPolicy,
    },
    /// The image reference is unusable.
    #[error("{origin}: {error}")]
    Image {
        /// Where it came from.
        origin: Origin,
        /// What is wrong (boxed: it is large and rare).
        error: Box<ImageError>,
    },
    /// No image could be taken from build-image's output.
    #[error("{origin}: {error}")]
    BuildOutput {
        /// Where it came from.
        origin: Origin,
        /// What is wrong (boxed: it is large and rare).
        error: Box<BuildOutputError>,
    },
    /// A pull secret name is not a Kubernetes name.
    #[error("{origin}: invalid image pull secret name {name:?}: {reason} (expected a Secret name)")]
    PullSecret {
        /// Where it came from.
        origin: Origin,
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The config file cannot be read or has unknown or mistyped keys.
    #[error("config file {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Image volumes on a cluster that has none.
    #[error(
        "{method_origin} chooses image-volume, but {version_origin} says the cluster runs Kubernetes {version}, which has no image volumes (alpha from 1.31, on by default from 1.35); use init-container"
    )]
    ImageVolumeUnsupported {
        /// Where the method came from.
        method_origin: String,
        /// Where the version came from.
        version_origin: String,
        /// The version.
        version: String,
    },
}

/// The checked configuration the driver renders pods with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// How the supervisor reaches the sandbox.
    pub sideload_method: Setting<SupervisorSideloadMethod>,
    /// The supervisor image.
    pub supervisor_image: Setting<SupervisorImage>,
    /// The pull policy, when one was given.
    pub supervisor_image_pull_policy: Option<Setting<PullPolicy>>,
    /// The cluster's version, when one was given.
    pub kubernetes_version: Option<Setting<KubernetesVersion>>,
    /// Whether to pin the image by digest at start.
    pub pin_supervisor_digest: Setting<bool>,
    /// Pull secrets added to every pod (no duplicates).
    pub image_pull_secrets: Setting<Vec<String>>,
}

impl DriverConfig {
    /// Checks every setting; the first unusable one is the error.
    pub fn resolve(raw: RawSettings) -> Result<Self, ConfigError> {
        let kubernetes_version = raw
            .kubernetes_version
            .map(
                |Setting { value, origin }| match value.parse::<KubernetesVersion>() {
                    Ok(version) => Ok(Setting::new(version, origin)),
                    Err(error) => Err(ConfigError::Version { origin, error }),
                },
            )
            .transpose()?;

        let sideload_method = match raw.supervisor_sideload_method {
            Some(Setting { value, origin }) => match value.parse::<SupervisorSideloadMethod>() {
                Ok(method) => Setting::new(method, origin),
                Err(error) => return Err(ConfigError::Method { origin, error }),
            },
            None => match &kubernetes_version {
                Some(version) => Setting::new(
                    SupervisorSideloadMethod::for_parsed_version(&version.value),
                    Origin::Derived(format!(
                        "chosen for Kubernetes {} ({})",
                        version.value, version.origin
                    )),
                ),
                None => Setting::new(SupervisorSideloadMethod::default(), Origin::Default),
            },
        };
        if let Some(version) = &kubernetes_version
            && sideload_method.value == SupervisorSideloadMethod::ImageVolume
            && version.value.minor < IMAGE_VOLUME_ALPHA_SINCE_MINOR
        {
            return Err(ConfigError::ImageVolumeUnsupported {
                method_origin: sideload_method.origin.to_string(),
                version_origin: version.origin.to_string(),
                version: version.value.to_string(),
            });
        }

        let supervisor_image = resolve_image(raw.supervisor_image, raw.supervisor_image_from)?;

        let supervisor_image_pull_policy = raw
            .supervisor_image_pull_policy
            .map(
                |Setting { value, origin }| match value.parse::<PullPolicy>() {
                    Ok(policy) => Ok(Setting::new(policy, origin)),
                    Err(error) => Err(ConfigError::PullPolicy { origin, error }),
                },
            )
            .transpose()?;

        let image_pull_secrets = match raw.image_pull_secrets {
            Some(Setting { value, origin }) => {
                let mut names: Vec<String> = Vec::with_capacity(value.len());
                for name in value {
                    let name = name.trim().to_string();
                    if let Err(reason) = check_dns_subdomain(&name) {
                        return Err(ConfigError::PullSecret {
                            origin,
                            name,
                            reason,
                        });
                    }
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                Setting::new(names, origin)
            }
            None => Setting::new(Vec::new(), Origin::Default),
        };

        Ok(Self {
            sideload_method,
            supervisor_image,
            supervisor_image_pull_policy,
            kubernetes_version,
            pin_supervisor_digest: raw
                .pin_supervisor_digest
                .unwrap_or_else(|| Setting::new(false, Origin::Default)),
            image_pull_secrets,
        })
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
        }
    }

    /// Uses `image` (the digest-pinned form of the configured image) from
    /// now on.
    pub fn use_pinned_image(&mut self, image: SupervisorImage) {
        let origin = Origin::Derived(format!(
            "{} pinned by the registry ({})",
            self.supervisor_image.value, self.pin_supervisor_digest.origin
        ));
        self.supervisor_image = Setting::new(image, origin);
    }

    /// What the operator should know before the first pod is rendered: a
    /// mutable tag behind an image volume, or image volumes on a cluster
    /// that needs a feature gate for them. Print each once, at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let image = &self.supervisor_image.value;
        if self.sideload_method.value == SupervisorSideloadMethod::ImageVolume
            && image.is_mutable()
            && !self.pin_supervisor_digest.value
        {
            warnings.push(format!(
                "the supervisor image {image} ({}) is a mutable tag behind an image volume: Kubernetes resolves it again whenever a sandbox pod is created, so sandboxes can silently run different supervisors if the tag moves; pass --{FLAG_PIN_SUPERVISOR_DIGEST} ({ENV_PIN_SUPERVISOR_DIGEST}=true) or a REPO@sha256:... reference",
                self.supervisor_image.origin
            ));
        }
        if let Some(version) = &self.kubernetes_version
            && self.sideload_method.value == SupervisorSideloadMethod::ImageVolume
            && version.value.minor < openshell_contract::sideload::IMAGE_VOLUME_DEFAULT_SINCE_MINOR
        {
            warnings.push(format!(
                "{} chooses image-volume on Kubernetes {} ({}): image volumes are off by default before 1.35, so the ImageVolume feature gate must be on for the API server and every kubelet; otherwise use init-container",
                self.sideload_method.origin, version.value, version.origin
            ));
        }
        warnings
    }

    /// The configuration as operators read it (`config --json`).
    pub fn report(&self) -> ConfigReport {
        let text = |value: &dyn fmt::Display, origin: &Origin| {
            Setting::new(value.to_string(), origin.clone())
        };
        let policy = self.pull_policy();
        ConfigReport {
            supervisor_sideload_method: text(
                &self.sideload_method.value,
                &self.sideload_method.origin,
            ),
            supervisor_image: text(&self.supervisor_image.value, &self.supervisor_image.origin),
            supervisor_image_pull_policy: text(&policy.value, &policy.origin),
            kubernetes_version: self
                .kubernetes_version
                .as_ref()
                .map(|version| text(&version.value, &version.origin)),
            pin_supervisor_digest: self.pin_supervisor_digest.clone(),
            image_pull_secrets: self.image_pull_secrets.clone(),
            warnings: self.warnings(),
        }
    }
}

/// [`DriverConfig`] as JSON: every setting as `{"value", "origin"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConfigReport {
    /// The sideload method.
    pub supervisor_sideload_method: Setting<String>,
    /// The supervisor image, as pods carry it.
    pub supervisor_image: Setting<String>,
    /// The pull policy pods get.
    pub supervisor_image_pull_policy: Setting<String>,
    /// The cluster version, when given.
    pub kubernetes_version: Option<Setting<String>>,
    /// Whether the image is pinned at start.
    pub pin_supervisor_digest: Setting<bool>,
    /// Pull secrets added to pods.
    pub image_pull_secrets: Setting<Vec<String>>,
    /// The start-up warnings.
    pub warnings: Vec<String>,
}

fn resolve_image(
    image: Option<Setting<String>>,
    from: Option<Setting<String>>,
) -> Result<Setting<SupervisorImage>, ConfigError> {
    let parsed = image
        .map(
            |Setting { value, origin }| match SupervisorImage::parse(&value) {
                Ok(image) => Ok(Setting::new(image, origin)),
                Err(error) => Err(ConfigError::Image {
                    origin,
                    error: Box::new(error),
                }),
            },
        )
        .transpose()?;
    let Some(Setting {
        value: spec,
        origin,
    }) = from
    else {
        return match parsed {
            Some(image) => Ok(image),
            None => {
                let default =
                    SupervisorImage::parse(DEFAULT_SUPERVISOR_IMAGE).map_err(|error| {
                        ConfigError::Image {
                            origin: Origin::Default,
                            error: Box::new(error),
                        }
                    })?;
                Ok(Setting::new(default, Origin::Default))
            }
        };
    };
    let built = BuildOutput::locate(&spec)
        .and_then(|output| output.image(parsed.as_ref().map(|image| &image.value)))
        .map_err(|error| ConfigError::BuildOutput {
            origin: origin.clone(),
            error: Box::new(error),
        })?;
    Ok(Setting::new(
        built,
        Origin::Derived(format!("build output {spec} ({origin})")),
    ))
}
