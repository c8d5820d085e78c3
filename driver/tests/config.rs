//! The driver's configuration: every bad setting refused at start with a
//! message naming where it came from, the Kubernetes version rule, flag over
//! environment over config file, and the start-up warnings.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config_json, data, render_json, run_err, run_ok};
use openshell_contract::sideload::{
    ENV_DRIVER_CONFIG, ENV_IMAGE_PULL_SECRETS, ENV_KUBERNETES_VERSION, ENV_SECURITY_PROFILE,
    ENV_SUPERVISOR_IMAGE, ENV_SUPERVISOR_IMAGE_PULL_POLICY, ENV_SUPERVISOR_SIDELOAD_METHOD,
};
use openshell_driver_kubernetes::config::{Origin, RawSettings, Setting};
use openshell_driver_kubernetes::settings::{self, RawValue, load_config_file};
use openshell_driver_kubernetes::{
    DriverConfig, PullPolicy, SecurityProfile, SupervisorSideloadMethod,
};

/// Raw settings built from `(declaration, value, origin)` triples.
macro_rules! raw {
    ($($declaration:ident = $value:expr, $origin:expr;)*) => {
        RawSettings::default()$(.with(&settings::$declaration, $value, $origin))*
    };
}

fn text(value: &str) -> RawValue {
    RawValue::Text(value.to_string())
}

fn flag(name: &'static str) -> Origin {
    Origin::Flag(name)
}

fn env(name: &'static str) -> Origin {
    Origin::Env(name)
}

fn resolve_err(raw: RawSettings) -> String {
    DriverConfig::resolve(raw).unwrap_err().to_string()
}

// ---- each bad input, with the origin in the message ----

#[test]
fn unknown_method_from_the_environment_names_the_variable() {
    let err = resolve_err(raw! {
    SUPERVISOR_SIDELOAD_METHOD = text("image_volume"), env(ENV_SUPERVISOR_SIDELOAD_METHOD);
    });
    assert_eq!(
        err,
        "OPENSHELL_SUPERVISOR_SIDELOAD_METHOD: unknown supervisor sideload method \"image_volume\" (expected one of: image-volume, init-container, auto)"
    );
}

#[test]
fn unknown_method_from_a_flag_names_the_flag() {
    let err = resolve_err(raw! {
    SUPERVISOR_SIDELOAD_METHOD = text("initcontainer"), flag("supervisor-sideload-method");
    });
    assert_eq!(
        err,
        "--supervisor-sideload-method: unknown supervisor sideload method \"initcontainer\" (expected one of: image-volume, init-container, auto)"
    );
}

#[test]
fn malformed_kubernetes_version_is_refused() {
    let err = resolve_err(raw! {
    KUBERNETES_VERSION = text("v1.thirty-five"), flag("kubernetes-version");
    });
    assert_eq!(
        err,
        "--kubernetes-version: invalid Kubernetes version \"v1.thirty-five\": the minor version \"thirty\" is not a number (expected 1.MINOR[.PATCH], optionally with a leading v and a -/+ suffix, like v1.34.2, 1.35 or v1.33.5-gke.1)"
    );
}

#[test]
fn unknown_pull_policy_is_refused() {
    let err = resolve_err(raw! {
    SUPERVISOR_IMAGE_PULL_POLICY = text("IfNotPresnt"), env(ENV_SUPERVISOR_IMAGE_PULL_POLICY);
    });
    assert_eq!(
        err,
        "OPENSHELL_SUPERVISOR_IMAGE_PULL_POLICY: unknown image pull policy \"IfNotPresnt\" (expected one of: Always, IfNotPresent, Never)"
    );
}

#[test]
fn invalid_image_reference_is_refused() {
    let err = resolve_err(raw! {
    SUPERVISOR_IMAGE = text("OpenShell/Supervisor:latest"), flag("supervisor-image");
    });
    assert!(
        err.starts_with(
            "--supervisor-image: invalid image reference 'OpenShell/Supervisor:latest': "
        ),
        "{err}"
    );
    assert!(
        err.contains("expected [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST]"),
        "{err}"
    );
}

#[test]
fn image_reference_with_a_truncated_digest_is_refused() {
    let err = resolve_err(raw! {
    SUPERVISOR_IMAGE = text("openshell/supervisor@sha256:9f86d0"), env(ENV_SUPERVISOR_IMAGE);
    });
    assert!(
        err.starts_with(
            "OPENSHELL_SUPERVISOR_IMAGE: invalid image reference 'openshell/supervisor@sha256:9f86d0': "
        ),
        "{err}"
    );
}

#[test]
fn invalid_pull_secret_name_is_refused() {
    let err = resolve_err(raw! {
    IMAGE_PULL_SECRETS = RawValue::List(vec!["ok".into(), "Bad_Name".into()]), env(ENV_IMAGE_PULL_SECRETS);
    });
    assert_eq!(
        err,
        "OPENSHELL_IMAGE_PULL_SECRETS: invalid image pull secret name \"Bad_Name\": 'B' is not allowed (only lowercase letters, digits, '-' and '.') (expected a Secret name)"
    );
}

#[test]
fn empty_pull_secret_name_is_refused() {
    let err = resolve_err(raw! {
    IMAGE_PULL_SECRETS = RawValue::List(vec![String::new()]), flag("image-pull-secret");
    });
    assert_eq!(
        err,
        "--image-pull-secret: invalid image pull secret name \"\": it is empty (expected a Secret name)"
    );
}

#[test]
fn image_volume_on_a_cluster_without_image_volumes_is_refused() {
    let err = resolve_err(raw! {
    SUPERVISOR_SIDELOAD_METHOD = text("image-volume"), flag("supervisor-sideload-method");
    KUBERNETES_VERSION = text("v1.30.4"), env(ENV_KUBERNETES_VERSION);
    });
    assert_eq!(
        err,
        "--supervisor-sideload-method chooses image-volume, but OPENSHELL_KUBERNETES_VERSION says the cluster runs Kubernetes v1.30.4, which has no image volumes (alpha from 1.31, on by default from 1.35); use init-container"
    );
}

// ---- what is chosen when ----

#[test]
fn defaults() {
    let config = DriverConfig::resolve(RawSettings::default()).unwrap();
    assert_eq!(
        config.sideload_method.value,
        SupervisorSideloadMethod::ImageVolume
    );
    assert_eq!(config.sideload_method.origin, Origin::Default);
    // The release of this workspace, not latest: no registry round trip
    // per pod, and nothing that moves under running sandboxes.
    assert_eq!(
        config.supervisor_image.value.as_str(),
        format!("openshell/supervisor:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(config.pull_policy().value, PullPolicy::IfNotPresent);
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    assert!(!config.pin_supervisor_digest.value);
    assert!(config.image_pull_secrets.value.is_empty());
    assert_eq!(config.security_profile.value, SecurityProfile::Hardened);
    assert_eq!(config.security_profile.origin, Origin::Default);
}

#[test]
fn a_digest_reference_gets_if_not_present_unless_a_policy_is_set() {
    let digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let config = DriverConfig::resolve(raw! {
        SUPERVISOR_IMAGE = text(&format!("registry.example/sup:latest@{digest}")), flag("supervisor-image");
    })
    .unwrap();
    assert_eq!(config.pull_policy().value, PullPolicy::IfNotPresent);
    // The tag beside the digest is dropped (CRI-O 1.31.0 refuses the pair).
    assert_eq!(
        config.supervisor_image.value.as_str(),
        format!("registry.example/sup@{digest}")
    );
    let config = DriverConfig::resolve(raw! {
        SUPERVISOR_IMAGE = text(&format!("registry.example/sup@{digest}")), flag("supervisor-image");
        SUPERVISOR_IMAGE_PULL_POLICY = text("Always"), env(ENV_SUPERVISOR_IMAGE_PULL_POLICY);
    })
    .unwrap();
    assert_eq!(config.pull_policy().value, PullPolicy::Always);
}

#[test]
fn an_unknown_security_profile_is_refused() {
    let err = resolve_err(raw! {
        SECURITY_PROFILE = text("restricted"), env(ENV_SECURITY_PROFILE);
    });
    assert_eq!(
        err,
        "OPENSHELL_SECURITY_PROFILE: unknown security profile \"restricted\" (expected one of: hardened, none)"
    );
}

#[test]
fn a_version_alone_means_auto_and_auto_needs_the_nodes_for_image_volumes() {
    // Without the nodes, no runtime is known to mount image volumes, so
    // auto stays with the init container whatever the version.
    for version in ["v1.33.1", "1.34", "v1.35.0-gke.1", "v1.36.0+k3s1"] {
        let config = DriverConfig::resolve(raw! {
            KUBERNETES_VERSION = text(version), flag("kubernetes-version");
        })
        .unwrap();
        assert_eq!(
            config.sideload_method.value,
            SupervisorSideloadMethod::InitContainer,
            "{version}"
        );
        assert_eq!(
            config.sideload_method.origin.to_string(),
            "chosen by auto (the default with cluster facts): not every fact says image volumes work"
        );
        assert!(
            config
                .plan
                .reasons
                .iter()
                .any(|reason| reason.starts_with("nodes: unknown")),
            "{:?}",
            config.plan.reasons
        );
    }
}

#[test]
fn auto_without_any_fact_is_refused() {
    let err = resolve_err(raw! {
        SUPERVISOR_SIDELOAD_METHOD = text("auto"), flag("supervisor-sideload-method");
    });
    assert_eq!(
        err,
        "--supervisor-sideload-method asks for auto, but no facts about the cluster were given: pass --kubernetes-version-json FILE (kubectl version -o json) and --nodes-json FILE (kubectl get nodes -o json), or choose image-volume or init-container"
    );
}

#[test]
fn an_explicit_method_wins_over_the_version_and_is_warned_about_when_gated() {
    let config = DriverConfig::resolve(raw! {
SUPERVISOR_SIDELOAD_METHOD = text("image-volume"), flag("supervisor-sideload-method");
KUBERNETES_VERSION = text("v1.34.2"), flag("kubernetes-version");
SUPERVISOR_IMAGE = text("openshell/supervisor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"), flag("supervisor-image");
})
    .unwrap();
    assert_eq!(
        config.sideload_method.value,
        SupervisorSideloadMethod::ImageVolume
    );
    assert_eq!(
        config.warnings(),
        [
            "--supervisor-sideload-method chooses image-volume on Kubernetes v1.34.2 (--kubernetes-version): image volumes are off by default before 1.35, so the ImageVolume feature gate must be on for the API server and every kubelet; otherwise use init-container"
        ]
    );
    let config = DriverConfig::resolve(raw! {
    SUPERVISOR_SIDELOAD_METHOD = text("init-container"), flag("supervisor-sideload-method");
    KUBERNETES_VERSION = text("v1.36.0"), flag("kubernetes-version");
    })
    .unwrap();
    assert_eq!(
        config.sideload_method.value,
        SupervisorSideloadMethod::InitContainer
    );
}

#[test]
fn a_mutable_tag_behind_an_image_volume_is_warned_about() {
    let config = DriverConfig::resolve(raw! {
    SUPERVISOR_IMAGE = text("registry.example/sup:1.0"), env(ENV_SUPERVISOR_IMAGE);
    })
    .unwrap();
    assert_eq!(
        config.warnings(),
        [
            "the supervisor image registry.example/sup:1.0 (OPENSHELL_SUPERVISOR_IMAGE) is a mutable tag behind an image volume: Kubernetes resolves it again whenever a sandbox pod is created, so sandboxes can silently run different supervisors if the tag moves; pass --pin-supervisor-digest (OPENSHELL_PIN_SUPERVISOR_DIGEST=true), a release tag or a REPO@sha256:... reference"
        ]
    );
    // Not for a digest, not for the init container, not when pinning.
    for raw in [
        raw! {
        SUPERVISOR_IMAGE = text("registry.example/sup:1.0@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"), env(ENV_SUPERVISOR_IMAGE);
        },
        raw! {
        SUPERVISOR_SIDELOAD_METHOD = text("init-container"), env(ENV_SUPERVISOR_SIDELOAD_METHOD);
        },
        raw! {
        PIN_SUPERVISOR_DIGEST = RawValue::Bool(true), flag("pin-supervisor-digest");
        },
    ] {
        assert!(DriverConfig::resolve(raw).unwrap().warnings().is_empty());
    }
}

#[test]
fn pull_policy_given_wins_over_the_kubernetes_rule() {
    let config = DriverConfig::resolve(raw! {
    SUPERVISOR_IMAGE_PULL_POLICY = text("IfNotPresent"), flag("supervisor-image-pull-policy");
    })
    .unwrap();
    assert_eq!(config.pull_policy().value, PullPolicy::IfNotPresent);
    let config = DriverConfig::resolve(raw! {
    SUPERVISOR_IMAGE = text("registry.example/sup:2.0"), flag("supervisor-image");
    })
    .unwrap();
    assert_eq!(config.pull_policy().value, PullPolicy::IfNotPresent);
}

#[test]
fn pull_secrets_are_deduplicated_in_order() {
    let config = DriverConfig::resolve(raw! {
IMAGE_PULL_SECRETS = RawValue::List(vec!["b".into(), "a".into(), "b".into()]), flag("image-pull-secret");
})
    .unwrap();
    assert_eq!(config.image_pull_secrets.value, ["b", "a"]);
}

#[test]
fn higher_layers_win_setting_by_setting() {
    let flags = raw! {
    SUPERVISOR_IMAGE = text("flag/image:1"), flag("supervisor-image");
    };
    let environment = raw! {
    SUPERVISOR_IMAGE = text("env/image:1"), env(ENV_SUPERVISOR_IMAGE);
    SUPERVISOR_SIDELOAD_METHOD = text("init-container"), env(ENV_SUPERVISOR_SIDELOAD_METHOD);
    };
    let merged = flags.over(environment);
    assert_eq!(
        merged.raw(&settings::SUPERVISOR_IMAGE),
        Some(&Setting::new(
            text("flag/image:1"),
            flag("supervisor-image")
        ))
    );
    assert_eq!(
        merged.raw(&settings::SUPERVISOR_SIDELOAD_METHOD),
        Some(&Setting::new(
            text("init-container"),
            env(ENV_SUPERVISOR_SIDELOAD_METHOD)
        ))
    );
}

// ---- the config file ----

fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("driver.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn config_file_settings_name_the_file_and_key() {
    let (_dir, path) = config_file(
        "supervisor-sideload-method: init-containers\nsupervisor-image: registry.example/sup:1\n",
    );
    let raw = load_config_file(&path).unwrap();
    let err = resolve_err(raw);
    assert_eq!(
        err,
        format!(
            "supervisor-sideload-method in {}: unknown supervisor sideload method \"init-containers\" (expected one of: image-volume, init-container, auto)",
            path.display()
        )
    );
}

#[test]
fn config_file_with_a_misspelled_key_is_refused() {
    let (_dir, path) = config_file("supervisor-sideload-methd: init-container\n");
    let err = load_config_file(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "config file {}: unknown field `supervisor-sideload-methd`, expected one of",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn config_file_with_a_wrong_type_is_refused() {
    let (_dir, path) = config_file("pin-supervisor-digest: sometimes\n");
    let err = load_config_file(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "config file {}: pin-supervisor-digest: invalid type",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn missing_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.yaml");
    let err = load_config_file(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("config file {}: No such file", path.display())),
        "{err}"
    );
}

#[test]
fn config_file_paths_are_relative_to_the_file() {
    let (dir, path) = config_file(
        "supervisor-image-from: build/result.json\nimage-pull-secrets: [a, b]\nsupervisor-image: registry.example/sup\n",
    );
    let raw = load_config_file(&path).unwrap();
    assert_eq!(
        raw.raw(&settings::SUPERVISOR_IMAGE_FROM).unwrap().value,
        text(&dir.path().join("build/result.json").display().to_string())
    );
    assert_eq!(
        raw.get(&settings::IMAGE_PULL_SECRETS)
            .unwrap()
            .unwrap()
            .value,
        ["a", "b"]
    );
}

// ---- the binary: flags over environment over file, and errors at start ----

#[test]
fn flags_win_over_environment() {
    let env = [
        (ENV_SUPERVISOR_IMAGE, "env.example/sup:1"),
        (ENV_SUPERVISOR_IMAGE_PULL_POLICY, "Never"),
        (ENV_SUPERVISOR_SIDELOAD_METHOD, "image-volume"),
        (ENV_KUBERNETES_VERSION, "v1.36.0"),
        (ENV_IMAGE_PULL_SECRETS, "env-secret"),
    ];
    let report = config_json(
        &[
            "--supervisor-image",
            "flag.example/sup:2",
            "--supervisor-image-pull-policy",
            "IfNotPresent",
            "--supervisor-sideload-method",
            "init-container",
            "--kubernetes-version",
            "1.34",
            "--image-pull-secret",
            "flag-secret",
        ],
        &env,
    );
    let setting = |key: &str| (report[key]["value"].clone(), report[key]["origin"].clone());
    assert_eq!(
        setting("supervisor-image"),
        ("flag.example/sup:2".into(), "--supervisor-image".into())
    );
    assert_eq!(
        setting("supervisor-image-pull-policy"),
        (
            "IfNotPresent".into(),
            "--supervisor-image-pull-policy".into()
        )
    );
    assert_eq!(
        setting("supervisor-sideload-method"),
        (
            "init-container".into(),
            "--supervisor-sideload-method".into()
        )
    );
    assert_eq!(
        setting("kubernetes-version"),
        ("v1.34".into(), "--kubernetes-version".into())
    );
    assert_eq!(
        setting("image-pull-secrets"),
        (
            serde_json::json!(["flag-secret"]),
            "--image-pull-secret".into()
        )
    );
}

#[test]
fn environment_is_used_without_flags() {
    let report = config_json(
        &[],
        &[
            (ENV_SUPERVISOR_IMAGE, "env.example/sup:1"),
            (ENV_SUPERVISOR_IMAGE_PULL_POLICY, "Never"),
            (ENV_KUBERNETES_VERSION, "v1.34.2"),
            (ENV_IMAGE_PULL_SECRETS, "one,two"),
        ],
    );
    assert_eq!(report["supervisor-image"]["value"], "env.example/sup:1");
    assert_eq!(report["supervisor-image"]["origin"], ENV_SUPERVISOR_IMAGE);
    assert_eq!(report["supervisor-image-pull-policy"]["value"], "Never");
    assert_eq!(
        report["supervisor-sideload-method"]["value"],
        "init-container"
    );
    assert_eq!(
        report["supervisor-sideload-method"]["origin"],
        "chosen by auto (the default with cluster facts): not every fact says image volumes work"
    );
    assert_eq!(
        report["kubernetes-version"]["origin"],
        ENV_KUBERNETES_VERSION
    );
    assert_eq!(
        report["image-pull-secrets"]["value"],
        serde_json::json!(["one", "two"])
    );
}

#[test]
fn environment_wins_over_the_config_file_and_the_file_over_defaults() {
    let (_dir, path) = config_file(
        "supervisor-image: file.example/sup:3\nsupervisor-sideload-method: init-container\nsupervisor-image-pull-policy: Never\n",
    );
    let path_text = path.display().to_string();
    let report = config_json(
        &["--supervisor-image-pull-policy", "Always"],
        &[
            (ENV_DRIVER_CONFIG, path_text.as_str()),
            (ENV_SUPERVISOR_IMAGE, "env.example/sup:1"),
        ],
    );
    assert_eq!(report["supervisor-image"]["value"], "env.example/sup:1");
    assert_eq!(
        report["supervisor-sideload-method"]["value"],
        "init-container"
    );
    assert_eq!(
        report["supervisor-sideload-method"]["origin"],
        format!("supervisor-sideload-method in {path_text}")
    );
    assert_eq!(report["supervisor-image-pull-policy"]["value"], "Always");
}

#[test]
fn a_bad_environment_value_fails_before_any_pod_is_rendered() {
    let stderr = run_err(
        &["render", "--sandbox-image", "alpine"],
        &[(ENV_SUPERVISOR_SIDELOAD_METHOD, "imagevolume")],
    );
    assert!(
        stderr.contains(
            "error: OPENSHELL_SUPERVISOR_SIDELOAD_METHOD: unknown supervisor sideload method \"imagevolume\" (expected one of: image-volume, init-container, auto)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_bad_flag_value_names_the_flag() {
    let stderr = run_err(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-image-pull-policy",
            "always",
        ],
        &[],
    );
    assert!(
        stderr.contains(
            "error: --supervisor-image-pull-policy: unknown image pull policy \"always\" (expected one of: Always, IfNotPresent, Never)"
        ),
        "{stderr}"
    );
}

#[test]
fn the_mutable_tag_warning_is_printed_once_at_start() {
    // Not for the default, a release tag.
    let (_, stderr) = run_ok(&["render", "--sandbox-image", "alpine"], &[]);
    assert!(!stderr.contains("warning:"), "{stderr}");
    let (_, stderr) = run_ok(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-image",
            "openshell/supervisor:latest",
        ],
        &[],
    );
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "warning: the supervisor image openshell/supervisor:latest (--supervisor-image) is a mutable tag behind an image volume"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--pin-supervisor-digest"), "{stderr}");
    let (_, stderr) = run_ok(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-sideload-method",
            "init-container",
        ],
        &[],
    );
    assert!(!stderr.contains("warning:"), "{stderr}");
}

#[test]
fn render_reflects_flags_over_environment() {
    let pod = render_json(
        &[
            "--sandbox-image",
            "alpine",
            "--supervisor-image",
            "flag.example/sup:2",
        ],
        &[
            (ENV_SUPERVISOR_IMAGE, "env.example/sup:1"),
            (ENV_SUPERVISOR_IMAGE_PULL_POLICY, "Never"),
        ],
    );
    assert_eq!(
        pod["spec"]["volumes"][0]["image"],
        serde_json::json!({ "reference": "flag.example/sup:2", "pullPolicy": "Never" })
    );
}

// ---- every declared setting, through every way of giving it ----

/// A valid value of each setting, by key, as it is written after its flag
/// or in its variable (`None`: a switch, given without value) and in the
/// config file (YAML). The first test fails when a declared setting has no
/// sample here, so a new setting is tested through all three ways at once.
fn samples(dir: &std::path::Path) -> Vec<(&'static str, Option<String>, String)> {
    let cluster = |name: &str| data(&format!("cluster/{name}")).display().to_string();
    let result = dir.join("result.json");
    let digest = format!("sha256:{}", "1".repeat(64));
    std::fs::write(
        &result,
        serde_json::json!({
            "digest": digest, "media_type": "application/vnd.oci.image.manifest.v1+json",
            "size": 1, "platforms": [], "layout": null, "docker_archive": null,
            "pushed": [format!("registry.example/sup@{digest}")],
        })
        .to_string(),
    )
    .unwrap();
    let text = |value: &str| (Some(value.to_string()), format!("{value:?}"));
    let entries = [
        ("supervisor-sideload-method", text("init-container")),
        ("supervisor-image", text("registry.example/sup:1.2.3")),
        ("supervisor-image-pull-policy", text("Never")),
        ("security-profile", text("none")),
        ("kubernetes-version", text("1.34")),
        (
            "kubernetes-version-json",
            text(&cluster("version-1.34.json")),
        ),
        ("nodes-json", text(&cluster("nodes-1.34.json"))),
        ("image-volume-feature-gate", (None, "true".to_string())),
        ("supervisor-image-from", text(&result.display().to_string())),
        ("pin-supervisor-digest", (None, "true".to_string())),
        ("supervisor-public-key", text("/keys/cosign.pub")),
        (
            "image-pull-secrets",
            (Some("one".to_string()), "[one]".to_string()),
        ),
    ];
    entries
        .into_iter()
        .map(|(key, (flag_value, yaml))| (key, flag_value, yaml))
        .collect()
}

/// The report names `origin` for `key`: as the setting's own origin when
/// the report lists it under its key, else inside the origin of what it
/// fed (the version file feeds kubernetes-version, the build output the
/// supervisor image).
fn assert_origin(report: &serde_json::Value, key: &str, origin: &str) {
    match report.get(key) {
        Some(reported) => assert_eq!(reported["origin"], origin, "{key}: {report:#}"),
        None => assert!(
            report.to_string().contains(origin),
            "{key}: {origin} not in {report:#}"
        ),
    }
}

fn declaration(key: &str) -> &'static settings::Meta {
    settings::ALL
        .iter()
        .map(|declaration| declaration.meta())
        .find(|meta| meta.key == key)
        .unwrap_or_else(|| panic!("no setting {key}"))
}

#[test]
fn every_declared_setting_has_a_sample_here() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<&str> = samples(dir.path()).iter().map(|(key, ..)| *key).collect();
    for declaration in settings::ALL {
        let key = declaration.meta().key;
        assert!(
            keys.contains(&key),
            "add a sample value of {key} to samples()"
        );
    }
}

#[test]
fn every_setting_is_read_from_its_flag_with_the_flag_as_origin() {
    use clap::{Args, FromArgMatches};
    let dir = tempfile::tempdir().unwrap();
    for (key, value, _) in samples(dir.path()) {
        let meta = declaration(key);
        let mut argv = vec!["driver".to_string(), format!("--{}", meta.flag)];
        argv.extend(value);
        let command = settings::DriverArgs::augment_args(clap::Command::new("driver"));
        // The variables must not interfere: clap reads them too.
        assert!(std::env::var_os(meta.env).is_none(), "{} is set", meta.env);
        let matches = command.try_get_matches_from(&argv).unwrap();
        let args = settings::DriverArgs::from_arg_matches(&matches).unwrap();
        let given = args.all_settings().unwrap();
        let report = match DriverConfig::resolve(given) {
            Ok(config) => config.report(),
            Err(err) => panic!("--{} alone: {err}", meta.flag),
        };
        if let Some(reported) = report.get(key) {
            assert_eq!(
                reported["origin"],
                format!("--{}", meta.flag),
                "{key}: {report:#}"
            );
        }
    }
}

#[test]
fn every_setting_is_read_from_the_config_file_with_the_key_as_origin() {
    let dir = tempfile::tempdir().unwrap();
    for (key, _, yaml) in samples(dir.path()) {
        let path = dir.path().join(format!("{key}.yaml"));
        std::fs::write(&path, format!("{key}: {yaml}\n")).unwrap();
        let raw = load_config_file(&path).unwrap_or_else(|err| panic!("{key}: {err}"));
        let report = DriverConfig::resolve(raw)
            .unwrap_or_else(|err| panic!("{key}: {err}"))
            .report();
        assert_origin(&report, key, &format!("{key} in {}", path.display()));
        // A value of the wrong type names the file and the key.
        std::fs::write(&path, format!("{key}: {{nested: map}}\n")).unwrap();
        let err = load_config_file(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "config file {}: {key}: invalid type: map",
                path.display()
            )),
            "{err}"
        );
    }
}

#[test]
fn every_setting_is_read_from_its_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, _) in samples(dir.path()) {
        let meta = declaration(key);
        // A switch's variable takes true or false; false keeps the driver
        // off the registry (pin-supervisor-digest).
        let value = value.unwrap_or_else(|| "false".to_string());
        let report = config_json(&[], &[(meta.env, &value)]);
        assert_origin(&report, key, meta.env);
    }
}
