//! Every driver setting, declared once: its config-file key, flag,
//! environment variable, help, parser and default live in one
//! [`Declaration`], and the command line ([`DriverArgs`]), the config file
//! ([`load_config_file`]) and the typed lookup ([`RawSettings::get`]) are all
//! made from the list [`ALL`]. Adding a setting is adding a declaration (and
//! using its value).
//!
//! Values keep where they came from ([`Origin`]) from the moment they are
//! read, so every refusal names the flag, variable or file key at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use openshell_contract::DEFAULT_SUPERVISOR_IMAGE;
use openshell_contract::registry::{
    ENV_REGISTRY_ATTEMPTS, ENV_REGISTRY_CONNECT_TIMEOUT, ENV_REGISTRY_OPERATION_TIMEOUT,
    ENV_REGISTRY_READ_TIMEOUT, FLAG_REGISTRY_ATTEMPTS, FLAG_REGISTRY_CONNECT_TIMEOUT,
    FLAG_REGISTRY_OPERATION_TIMEOUT, FLAG_REGISTRY_READ_TIMEOUT,
};
use openshell_contract::sideload::{
    ENV_DRIVER_CONFIG, ENV_IMAGE_PULL_SECRETS, ENV_IMAGE_VOLUME_FEATURE_GATE,
    ENV_KUBERNETES_VERSION, ENV_KUBERNETES_VERSION_JSON, ENV_NODES_JSON, ENV_PIN_SUPERVISOR_DIGEST,
    ENV_SECURITY_PROFILE, ENV_SUPERVISOR_IMAGE, ENV_SUPERVISOR_IMAGE_FROM,
    ENV_SUPERVISOR_IMAGE_PULL_POLICY, ENV_SUPERVISOR_SIDELOAD_METHOD, FLAG_DRIVER_CONFIG,
    FLAG_IMAGE_PULL_SECRET, FLAG_IMAGE_VOLUME_FEATURE_GATE, FLAG_KUBERNETES_VERSION,
    FLAG_KUBERNETES_VERSION_JSON, FLAG_NODES_JSON, FLAG_PIN_SUPERVISOR_DIGEST,
    FLAG_SECURITY_PROFILE, FLAG_SUPERVISOR_IMAGE, FLAG_SUPERVISOR_IMAGE_FROM,
    FLAG_SUPERVISOR_IMAGE_PULL_POLICY, FLAG_SUPERVISOR_SIDELOAD_METHOD, SECURITY_PROFILE_HARDENED,
};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::cluster::{self, Node};
use crate::image::{PullPolicy, SupervisorImage};
use crate::kubernetes_version::KubernetesVersion;
use crate::method::MethodChoice;
use crate::names::check_dns_subdomain;
use crate::security::SecurityProfile;

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

/// What shape a setting's value has wherever it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One string.
    Text,
    /// A file or folder; relative paths in the config file are relative to
    /// the file's folder.
    Path,
    /// A switch: a flag without value, `true`/`false` in the environment and
    /// the file.
    Bool,
    /// Names: a repeatable flag, a comma-separated variable, a list in the
    /// file.
    List,
}

/// A value as given, before it is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// [`Kind::Text`] or [`Kind::Path`].
    Text(String),
    /// [`Kind::Bool`].
    Bool(bool),
    /// [`Kind::List`].
    List(Vec<String>),
}

/// The untyped part of a declaration: enough to build the flag, read the
/// variable and the file key.
#[derive(Debug)]
pub struct Meta {
    /// The config-file key, also the setting's name in reports.
    pub key: &'static str,
    /// The flag, without dashes.
    pub flag: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The placeholder in `--help`.
    pub value_name: &'static str,
    /// The `--help` text.
    pub help: &'static str,
    /// The value's shape.
    pub kind: Kind,
    /// The default, as text (parsed like a given value), if there is one.
    pub default: Option<&'static str>,
}

/// One setting: its names, its parser and its default.
pub struct Declaration<T: 'static> {
    /// Names, help, kind and default.
    pub meta: Meta,
    /// Turns a raw value into the setting's type; the error says what is
    /// wrong and what was expected (the caller adds the origin).
    pub parse: fn(&RawValue) -> Result<T, String>,
}

/// A declaration whatever its value type, for the lists that build the
/// command line and read the config file.
pub trait AnyDeclaration: Sync {
    /// The declaration's names, kind and default.
    fn meta(&self) -> &Meta;
}

impl<T> AnyDeclaration for Declaration<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
}

fn text(raw: &RawValue) -> Result<&str, String> {
    match raw {
        RawValue::Text(text) => Ok(text),
        other => Err(format!("expected text, found {other:?}")),
    }
}

fn parse_with<T, E: fmt::Display>(
    raw: &RawValue,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, String> {
    parse(text(raw)?).map_err(|err| err.to_string())
}

/// `--supervisor-sideload-method`.
pub static SUPERVISOR_SIDELOAD_METHOD: Declaration<MethodChoice> = Declaration {
    meta: Meta {
        key: FLAG_SUPERVISOR_SIDELOAD_METHOD,
        flag: FLAG_SUPERVISOR_SIDELOAD_METHOD,
        env: ENV_SUPERVISOR_SIDELOAD_METHOD,
        value_name: "METHOD",
        help: "How the supervisor reaches the sandbox: image-volume (an image volume mounts the supervisor image; Kubernetes 1.35+, or 1.33-1.34 with the ImageVolume feature gate, on containerd 2.1+ or CRI-O 1.31+), init-container (an init container copies it into an emptyDir), or auto (chosen from --kubernetes-version(-json) and --nodes-json; `explain` says why). Default: auto when any of those facts is given, else image-volume.",
        kind: Kind::Text,
        default: None,
    },
    parse: |raw| parse_with(raw, str::parse::<MethodChoice>),
};

/// `--supervisor-image`.
pub static SUPERVISOR_IMAGE: Declaration<SupervisorImage> = Declaration {
    meta: Meta {
        key: FLAG_SUPERVISOR_IMAGE,
        flag: FLAG_SUPERVISOR_IMAGE,
        env: ENV_SUPERVISOR_IMAGE,
        value_name: "REF",
        help: "Supervisor image, [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], written into pods as given, but a tag beside a digest is dropped (REPO@sha256:...; CRI-O refuses both). With --supervisor-image-from it names the repository the build was pushed to.",
        kind: Kind::Text,
        default: Some(DEFAULT_SUPERVISOR_IMAGE),
    },
    parse: |raw| parse_with(raw, SupervisorImage::parse),
};

/// `--supervisor-image-pull-policy`.
pub static SUPERVISOR_IMAGE_PULL_POLICY: Declaration<PullPolicy> = Declaration {
    meta: Meta {
        key: FLAG_SUPERVISOR_IMAGE_PULL_POLICY,
        flag: FLAG_SUPERVISOR_IMAGE_PULL_POLICY,
        env: ENV_SUPERVISOR_IMAGE_PULL_POLICY,
        value_name: "POLICY",
        help: "Pull policy of the supervisor image: Always, IfNotPresent or Never. When not given, Kubernetes' own rule is applied and written out: IfNotPresent for a digest reference, Always for the tag latest (or no tag), IfNotPresent otherwise.",
        kind: Kind::Text,
        default: None,
    },
    parse: |raw| parse_with(raw, str::parse::<PullPolicy>),
};

/// `--kubernetes-version`.
pub static KUBERNETES_VERSION: Declaration<KubernetesVersion> = Declaration {
    meta: Meta {
        key: FLAG_KUBERNETES_VERSION,
        flag: FLAG_KUBERNETES_VERSION,
        env: ENV_KUBERNETES_VERSION,
        value_name: "VERSION",
        help: "The cluster's Kubernetes version (v1.34.2, 1.35, v1.33.5-gke.1, ...): a fact for method auto, and checks an explicit method.",
        kind: Kind::Text,
        default: None,
    },
    parse: |raw| parse_with(raw, str::parse::<KubernetesVersion>),
};

/// `--kubernetes-version-json`.
pub static KUBERNETES_VERSION_JSON: Declaration<KubernetesVersion> = Declaration {
    meta: Meta {
        key: FLAG_KUBERNETES_VERSION_JSON,
        flag: FLAG_KUBERNETES_VERSION_JSON,
        env: ENV_KUBERNETES_VERSION_JSON,
        value_name: "FILE",
        help: "The output of `kubectl version -o json`: the server's version, a fact for method auto (like --kubernetes-version).",
        kind: Kind::Path,
        default: None,
    },
    parse: |raw| cluster::read_server_version(Path::new(text(raw)?)),
};

/// `--nodes-json`.
pub static NODES_JSON: Declaration<Vec<Node>> = Declaration {
    meta: Meta {
        key: FLAG_NODES_JSON,
        flag: FLAG_NODES_JSON,
        env: ENV_NODES_JSON,
        value_name: "FILE",
        help: "The output of `kubectl get nodes -o json`: each node's container runtime, kubelet version and architecture, facts for method auto and for the check of the supervisor image's platforms.",
        kind: Kind::Path,
        default: None,
    },
    parse: |raw| cluster::read_nodes(Path::new(text(raw)?)),
};

/// `--image-volume-feature-gate`.
pub static IMAGE_VOLUME_FEATURE_GATE: Declaration<bool> = Declaration {
    meta: Meta {
        key: FLAG_IMAGE_VOLUME_FEATURE_GATE,
        flag: FLAG_IMAGE_VOLUME_FEATURE_GATE,
        env: ENV_IMAGE_VOLUME_FEATURE_GATE,
        value_name: "BOOL",
        help: "Declare that the ImageVolume feature gate is on for the API server and every kubelet, so that method auto may choose image-volume on Kubernetes 1.33 and 1.34. The environment variable takes true or false.",
        kind: Kind::Bool,
        default: Some("false"),
    },
    parse: parse_bool,
};

/// `--supervisor-image-from`.
pub static SUPERVISOR_IMAGE_FROM: Declaration<String> = Declaration {
    meta: Meta {
        key: FLAG_SUPERVISOR_IMAGE_FROM,
        flag: FLAG_SUPERVISOR_IMAGE_FROM,
        env: ENV_SUPERVISOR_IMAGE_FROM,
        value_name: "PATH",
        help: "Take the supervisor image from what build-image produced, pinned by digest (REPO@sha256:..., no tag): its build result JSON (--metadata-file; uses the pushed reference, or the one in --supervisor-image's repository), or its OCI image layout folder [oci:]DIR[:TAG] together with --supervisor-image REPOSITORY, where it was pushed. The image's platforms are then checked against --nodes-json.",
        kind: Kind::Path,
        default: None,
    },
    parse: |raw| text(raw).map(str::to_string),
};

/// `--pin-supervisor-digest`.
pub static PIN_SUPERVISOR_DIGEST: Declaration<bool> = Declaration {
    meta: Meta {
        key: FLAG_PIN_SUPERVISOR_DIGEST,
        flag: FLAG_PIN_SUPERVISOR_DIGEST,
        env: ENV_PIN_SUPERVISOR_DIGEST,
        value_name: "BOOL",
        help: "At start, resolve the supervisor image's tag to its manifest digest with the registry and pin every pod to it (REPO@sha256:..., no tag), so a tag moved later cannot change running sandboxes; the image's platforms are then checked against --nodes-json. Needs the registry at start. The environment variable takes true or false.",
        kind: Kind::Bool,
        default: Some("false"),
    },
    parse: parse_bool,
};

/// `--image-pull-secret`.
pub static IMAGE_PULL_SECRETS: Declaration<Vec<String>> = Declaration {
    meta: Meta {
        key: "image-pull-secrets",
        flag: FLAG_IMAGE_PULL_SECRET,
        env: ENV_IMAGE_PULL_SECRETS,
        value_name: "NAME",
        help: "Name of a Secret to add to the pod's imagePullSecrets (repeatable; the environment variable takes a comma-separated list). Image volumes are pulled with the pod's pull secrets, so a private supervisor image needs one. The template's own pull secrets are kept.",
        kind: Kind::List,
        default: Some(""),
    },
    parse: parse_pull_secrets,
};

/// `--security-profile`.
pub static SECURITY_PROFILE: Declaration<SecurityProfile> = Declaration {
    meta: Meta {
        key: FLAG_SECURITY_PROFILE,
        flag: FLAG_SECURITY_PROFILE,
        env: ENV_SECURITY_PROFILE,
        value_name: "PROFILE",
        help: "hardened: the pod's seccomp profile is RuntimeDefault, the init container meets Pod Security \"restricted\" (non-root, no privilege escalation, no capabilities, read-only root, small requests), and the agent container drops every capability but those the supervisor needs to start the workload as another user (SETUID, SETGID, KILL). none: the driver adds no hardening. What the template sets wins either way.",
        kind: Kind::Text,
        default: Some(SECURITY_PROFILE_HARDENED),
    },
    parse: |raw| parse_with(raw, str::parse::<SecurityProfile>),
};

/// `--supervisor-public-key`.
pub static SUPERVISOR_PUBLIC_KEY: Declaration<String> = Declaration {
    meta: Meta {
        key: openshell_contract::signing::FLAG_SUPERVISOR_PUBLIC_KEY,
        flag: openshell_contract::signing::FLAG_SUPERVISOR_PUBLIC_KEY,
        env: openshell_contract::signing::ENV_SUPERVISOR_PUBLIC_KEY,
        value_name: "FILE",
        help: "With --pin-supervisor-digest, pin only a supervisor image whose signature verifies with this public key (PEM, a cosign .pub, as build-image keygen writes it): every manifest signed over its digest for the image's repository, and a SLSA provenance naming them all (cosign's .sig/.att tags or OCI 1.1 referrers). Anything else stops the driver at start, naming what failed.",
        kind: Kind::Path,
        default: None,
    },
    parse: |raw| text(raw).map(str::to_string),
};

/// Every setting, in the order reports list them.
pub static ALL: [&dyn AnyDeclaration; 12] = [
    &SUPERVISOR_SIDELOAD_METHOD,
    &SUPERVISOR_IMAGE,
    &SUPERVISOR_IMAGE_PULL_POLICY,
    &SECURITY_PROFILE,
    &KUBERNETES_VERSION,
    &KUBERNETES_VERSION_JSON,
    &NODES_JSON,
    &IMAGE_VOLUME_FEATURE_GATE,
    &SUPERVISOR_IMAGE_FROM,
    &PIN_SUPERVISOR_DIGEST,
    &SUPERVISOR_PUBLIC_KEY,
    &IMAGE_PULL_SECRETS,
];

fn parse_bool(raw: &RawValue) -> Result<bool, String> {
    match raw {
        RawValue::Bool(flag) => Ok(*flag),
        RawValue::Text(text) => match text.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("{other:?} is not true or false")),
        },
        RawValue::List(_) => Err("expected true or false, found a list".to_string()),
    }
}

fn parse_pull_secrets(raw: &RawValue) -> Result<Vec<String>, String> {
    let given = match raw {
        RawValue::List(names) => names.clone(),
        RawValue::Text(text) => text
            .split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect(),
        RawValue::Bool(_) => return Err("expected a list of names".to_string()),
    };
    let mut names: Vec<String> = Vec::with_capacity(given.len());
    for name in given {
        let name = name.trim().to_string();
        if let Err(reason) = check_dns_subdomain(&name) {
            return Err(format!(
                "invalid image pull secret name {name:?}: {reason} (expected a Secret name)"
            ));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// A setting that cannot be used, or a config file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// The value does not parse.
    #[error("{origin}: {reason}")]
    Invalid {
        /// Where it came from.
        origin: Origin,
        /// What is wrong and what was expected.
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
}

/// The settings as given, before they are checked, each under its
/// declaration's key. Each layer (flags and environment, config file) fills
/// one; [`RawSettings::over`] stacks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings {
    values: BTreeMap<&'static str, Setting<RawValue>>,
}

impl RawSettings {
    /// These settings with `declaration` set to `value` from `origin`.
    pub fn with<T>(
        mut self,
        declaration: &Declaration<T>,
        value: RawValue,
        origin: Origin,
    ) -> Self {
        self.values
            .insert(declaration.meta.key, Setting::new(value, origin));
        self
    }

    /// Like [`RawSettings::with`], for a text value.
    pub fn with_text<T>(self, declaration: &Declaration<T>, value: &str, origin: Origin) -> Self {
        self.with(declaration, RawValue::Text(value.to_string()), origin)
    }

    /// The raw value of `declaration`, if given.
    pub fn raw<T>(&self, declaration: &Declaration<T>) -> Option<&Setting<RawValue>> {
        self.values.get(declaration.meta.key)
    }

    /// These settings, with `lower` filling what they leave unset.
    pub fn over(mut self, lower: RawSettings) -> RawSettings {
        for (key, setting) in lower.values {
            self.values.entry(key).or_insert(setting);
        }
        self
    }

    /// The parsed value of `declaration`, if given; a value that does not
    /// parse is an error naming its origin.
    pub fn get<T>(&self, declaration: &Declaration<T>) -> Result<Option<Setting<T>>, SettingError> {
        self.raw(declaration)
            .map(
                |Setting { value, origin }| match (declaration.parse)(value) {
                    Ok(parsed) => Ok(Setting::new(parsed, origin.clone())),
                    Err(reason) => Err(SettingError::Invalid {
                        origin: origin.clone(),
                        reason,
                    }),
                },
            )
            .transpose()
    }

    /// The parsed value of `declaration`: given, else its default (`None`
    /// when it has none).
    pub fn get_or_default<T>(
        &self,
        declaration: &Declaration<T>,
    ) -> Result<Option<Setting<T>>, SettingError> {
        if let Some(given) = self.get(declaration)? {
            return Ok(Some(given));
        }
        let Some(default) = declaration.meta.default else {
            return Ok(None);
        };
        let raw = match declaration.meta.kind {
            Kind::Text | Kind::Path => RawValue::Text(default.to_string()),
            Kind::Bool => RawValue::Bool(default == "true"),
            Kind::List => RawValue::List(
                default
                    .split(',')
                    .filter(|item| !item.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        };
        (declaration.parse)(&raw)
            .map(|value| Some(Setting::new(value, Origin::Default)))
            .map_err(|reason| SettingError::Invalid {
                origin: Origin::Default,
                reason,
            })
    }
}

/// Reads a YAML or JSON config file (JSON is YAML too): keys are the
/// settings' keys; an unknown key or a value of the wrong type is an error
/// naming the file and the key. Relative paths are made relative to the
/// file's folder.
pub fn load_config_file(path: &Path) -> Result<RawSettings, SettingError> {
    let fail = |reason: String| SettingError::ConfigFile {
        path: path.display().to_string(),
        reason,
    };
    let text = crate::input::read_text(path, crate::input::CONFIG_SIZE_LIMIT)
        .map_err(|err| fail(err.to_string()))?;
    if text.trim().is_empty() {
        return Ok(RawSettings::default());
    }
    let map = match crate::input::parse_yaml(&text).map_err(fail)? {
        Value::Null => return Ok(RawSettings::default()),
        Value::Object(map) => map,
        _ => return Err(fail("expected a mapping of settings".to_string())),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut settings = RawSettings::default();
    for (key, value) in map {
        let key = key.as_str();
        let Some(meta) = ALL
            .iter()
            .map(|declaration| declaration.meta())
            .find(|meta| meta.key == key)
        else {
            let known: Vec<String> = ALL
                .iter()
                .map(|declaration| format!("`{}`", declaration.meta().key))
                .collect();
            return Err(fail(format!(
                "unknown field `{key}`, expected one of {}",
                known.join(", ")
            )));
        };
        let wrong = |expected: &str| {
            fail(format!(
                "{key}: invalid type: {}, expected {expected}",
                describe_yaml(&value)
            ))
        };
        let raw = match (meta.kind, &value) {
            (Kind::Text, Value::String(text)) => RawValue::Text(text.clone()),
            (Kind::Path, Value::String(text)) => RawValue::Text(relative_to(base, text)),
            (Kind::Bool, Value::Bool(flag)) => RawValue::Bool(*flag),
            (Kind::List, Value::Array(items)) => {
                let mut names = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_str() {
                        Some(name) => names.push(name.to_string()),
                        None => return Err(wrong("a list of strings")),
                    }
                }
                RawValue::List(names)
            }
            (Kind::Text | Kind::Path, _) => return Err(wrong("a string")),
            (Kind::Bool, _) => return Err(wrong("a boolean")),
            (Kind::List, _) => return Err(wrong("a list of strings")),
        };
        settings.values.insert(
            meta.key,
            Setting::new(
                raw,
                Origin::ConfigFile {
                    path: path.to_path_buf(),
                    key: meta.key,
                },
            ),
        );
    }
    Ok(settings)
}

fn describe_yaml(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(flag) => format!("boolean `{flag}`"),
        Value::Number(number) => format!("number `{number}`"),
        Value::String(text) => format!("string {text:?}"),
        Value::Array(_) => "sequence".to_string(),
        Value::Object(_) => "map".to_string(),
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

/// The driver's settings on the command line, each with its environment
/// variable (a flag wins over its variable, and both over the config file),
/// plus the config file itself and how to reach a registry when pinning.
/// Flatten it into a command (`#[command(flatten)]`): its flags are made
/// from [`ALL`].
#[derive(Debug, Clone, Default)]
pub struct DriverArgs {
    /// The settings given by flags and environment variables.
    pub given: RawSettings,
    /// `--config`: the config file, if one is named.
    pub config: Option<PathBuf>,
    /// `--authfile`: registry auth file for pinning.
    pub auth_file: Option<PathBuf>,
    /// `--plain-http`: talk to the registry over plain HTTP.
    pub plain_http: bool,
    /// Timeouts and attempts of the registry requests made when pinning.
    pub network: NetworkArgs,
}

/// `--registry-*-timeout` and `--registry-attempts` (or their variables);
/// unset ones take the registry client's defaults.
#[derive(Debug, Clone, Default)]
pub struct NetworkArgs {
    /// `--registry-connect-timeout`.
    pub connect_timeout: Option<Duration>,
    /// `--registry-read-timeout`.
    pub read_timeout: Option<Duration>,
    /// `--registry-operation-timeout`.
    pub operation_timeout: Option<Duration>,
    /// `--registry-attempts`.
    pub attempts: Option<u32>,
}

const ARG_CONFIG: &str = "driver-config-file";
const ARG_AUTH_FILE: &str = "authfile";
const ARG_PLAIN_HTTP: &str = "plain-http";

impl clap::Args for DriverArgs {
    fn augment_args(command: Command) -> Command {
        let mut command = command.next_help_heading("Supervisor options");
        for declaration in ALL {
            let meta = declaration.meta();
            let mut help = meta.help.to_string();
            if let Some(default) = meta.default.filter(|value| !value.is_empty()) {
                help.push_str(&format!(" [default: {default}]"));
            }
            let arg = Arg::new(meta.key)
                .long(meta.flag)
                .env(meta.env)
                .value_name(meta.value_name)
                .help(help);
            let arg = match meta.kind {
                Kind::Text | Kind::Path => arg.action(ArgAction::Set),
                Kind::Bool => arg
                    .action(ArgAction::SetTrue)
                    .value_parser(clap::builder::BoolishValueParser::new()),
                Kind::List => arg.action(ArgAction::Append).value_delimiter(','),
            };
            command = command.arg(arg);
        }
        command
            .arg(
                Arg::new(ARG_CONFIG)
                    .long(FLAG_DRIVER_CONFIG)
                    .env(ENV_DRIVER_CONFIG)
                    .value_name("FILE")
                    .value_parser(clap::value_parser!(PathBuf))
                    .help(config_file_help()),
            )
            .arg(
                Arg::new(ARG_AUTH_FILE)
                    .long("authfile")
                    .visible_alias("auth-file")
                    .value_name("FILE")
                    .value_parser(clap::value_parser!(PathBuf))
                    .help("Registry auth file for --pin-supervisor-digest, instead of the usual search (spelled as in podman, skopeo and build-image)."),
            )
            .arg(
                Arg::new(ARG_PLAIN_HTTP)
                    .long("plain-http")
                    .action(ArgAction::SetTrue)
                    .help("Talk to the registry over plain HTTP for --pin-supervisor-digest (a loopback test registry without TLS)."),
            )
            .arg(
                Arg::new(FLAG_REGISTRY_CONNECT_TIMEOUT)
                    .long(FLAG_REGISTRY_CONNECT_TIMEOUT)
                    .env(ENV_REGISTRY_CONNECT_TIMEOUT)
                    .value_name("DURATION")
                    .value_parser(openshell_registry::parse_duration)
                    .help("How long to wait for the registry to accept a connection when pinning (e.g. 10s)."),
            )
            .arg(
                Arg::new(FLAG_REGISTRY_READ_TIMEOUT)
                    .long(FLAG_REGISTRY_READ_TIMEOUT)
                    .env(ENV_REGISTRY_READ_TIMEOUT)
                    .value_name("DURATION")
                    .value_parser(openshell_registry::parse_duration)
                    .help("How long a pinning request may make no progress before it counts as stalled (default 15s)."),
            )
            .arg(
                Arg::new(FLAG_REGISTRY_OPERATION_TIMEOUT)
                    .long(FLAG_REGISTRY_OPERATION_TIMEOUT)
                    .env(ENV_REGISTRY_OPERATION_TIMEOUT)
                    .value_name("DURATION")
                    .value_parser(openshell_registry::parse_duration)
                    .help("Deadline of each pinning request, retries included (default 50s)."),
            )
            .arg(
                Arg::new(FLAG_REGISTRY_ATTEMPTS)
                    .long(FLAG_REGISTRY_ATTEMPTS)
                    .env(ENV_REGISTRY_ATTEMPTS)
                    .value_name("N")
                    .value_parser(openshell_registry::parse_attempts)
                    .help("Attempts of the pinning request, the first included, on timeouts, broken connections, 408, 429 and 5xx (default 4)."),
            )
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

fn config_file_help() -> String {
    let keys: Vec<&str> = ALL
        .iter()
        .map(|declaration| declaration.meta().key)
        .collect();
    format!(
        "A YAML or JSON config file with any of these settings, keys named like the flags ({}; image-pull-secrets as a list). Flags and environment variables win over it; unknown keys are errors.",
        keys.join(", ")
    )
}

impl clap::FromArgMatches for DriverArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = RawSettings::default();
        for declaration in ALL {
            let meta = declaration.meta();
            let origin = match matches.value_source(meta.key) {
                Some(ValueSource::CommandLine) => Origin::Flag(meta.flag),
                Some(ValueSource::EnvVariable) => Origin::Env(meta.env),
                _ => continue,
            };
            let value = match meta.kind {
                Kind::Text | Kind::Path => match matches.get_one::<String>(meta.key) {
                    Some(text) => RawValue::Text(text.clone()),
                    None => continue,
                },
                Kind::Bool => RawValue::Bool(matches.get_flag(meta.key)),
                Kind::List => RawValue::List(
                    matches
                        .get_many::<String>(meta.key)
                        .map(|values| values.cloned().collect())
                        .unwrap_or_default(),
                ),
            };
            given.values.insert(meta.key, Setting::new(value, origin));
        }
        Ok(Self {
            given,
            config: matches.get_one::<PathBuf>(ARG_CONFIG).cloned(),
            auth_file: matches.get_one::<PathBuf>(ARG_AUTH_FILE).cloned(),
            plain_http: matches.get_flag(ARG_PLAIN_HTTP),
            network: NetworkArgs {
                connect_timeout: matches
                    .get_one::<Duration>(FLAG_REGISTRY_CONNECT_TIMEOUT)
                    .copied(),
                read_timeout: matches
                    .get_one::<Duration>(FLAG_REGISTRY_READ_TIMEOUT)
                    .copied(),
                operation_timeout: matches
                    .get_one::<Duration>(FLAG_REGISTRY_OPERATION_TIMEOUT)
                    .copied(),
                attempts: matches.get_one::<u32>(FLAG_REGISTRY_ATTEMPTS).copied(),
            },
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl DriverArgs {
    /// Flags and environment over the config file (when one is named).
    pub fn all_settings(&self) -> Result<RawSettings, SettingError> {
        match &self.config {
            Some(path) => Ok(self.given.clone().over(load_config_file(path)?)),
            None => Ok(self.given.clone()),
        }
    }

    /// How to reach the registry when pinning.
    pub fn registry_options(&self) -> openshell_registry::RegistryOptions {
        openshell_registry::RegistryOptions {
            plain_http: self.plain_http,
            basic: None,
            auth_file: self.auth_file.clone(),
            connect_timeout: self.network.connect_timeout,
            read_timeout: self.network.read_timeout,
            operation_timeout: self.network.operation_timeout,
            attempts: self.network.attempts,
            quiet: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_flags_and_variables_are_unique() {
        for (index, declaration) in ALL.iter().enumerate() {
            let meta = declaration.meta();
            for other in &ALL[index + 1..] {
                let other = other.meta();
                assert_ne!(meta.key, other.key);
                assert_ne!(meta.flag, other.flag);
                assert_ne!(meta.env, other.env);
            }
        }
    }

    #[test]
    fn every_default_parses() {
        let raw = RawSettings::default();
        assert!(
            raw.get_or_default(&SUPERVISOR_IMAGE)
                .unwrap()
                .is_some_and(|image| image.value.as_str() == DEFAULT_SUPERVISOR_IMAGE)
        );
        assert!(
            !raw.get_or_default(&PIN_SUPERVISOR_DIGEST)
                .unwrap()
                .unwrap()
                .value
        );
        assert!(
            raw.get_or_default(&IMAGE_PULL_SECRETS)
                .unwrap()
                .unwrap()
                .value
                .is_empty()
        );
        assert_eq!(
            raw.get_or_default(&SECURITY_PROFILE)
                .unwrap()
                .unwrap()
                .value,
            SecurityProfile::Hardened
        );
        assert!(raw.get_or_default(&KUBERNETES_VERSION).unwrap().is_none());
    }
}
