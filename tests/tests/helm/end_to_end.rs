//! The chart's output taken the whole way: its ConfigMap's config file read
//! by the real driver (`config --config`, `render --config`, `explain
//! --config`), the sandbox pods rendered that way checked by
//! kubernetes-validate (strict, Kubernetes 1.31 to 1.37) and checkov, the
//! example parent chart's driver environment read by the driver, and NOTES.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use openshell_contract::sideload::{
    FLAG_KUBERNETES_VERSION, FLAG_SUPERVISOR_IMAGE, FLAG_SUPERVISOR_IMAGE_PULL_POLICY,
    FLAG_SUPERVISOR_SIDELOAD_METHOD,
};
use openshell_contract::{INIT_CONTAINER_NAME, VOLUME_NAME};
use openshell_driver_kubernetes::yaml::to_yaml;
use openshell_driver_kubernetes::yaml_read::read_document;
use openshell_testsupport::podman::{output_text, run};
use openshell_testsupport::python_tools::python_tool;
use serde_json::{Value, json};

use crate::{
    Helm, annotation, annotations, chart_dir, config_file, driver_config, example_dir, nodes_json,
    only, run_driver,
};

/// A supervisor image pinned by digest, and an agent image pinned too, so
/// that checkov's digest check (CKV_K8S_43) passes.
const PINNED_DIGEST: &str =
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const PINNED_AGENT: &str = "registry.example/agents/python@sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// The facts a driver beside the chart would be given: `kubectl version -o
/// json` and `kubectl get nodes -o json` for `version`, written in `dir`.
fn write_facts(dir: &Path, version: &str) -> (PathBuf, PathBuf) {
    let minor = version
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .nth(1)
        .unwrap();
    let version_json = json!({
        "serverVersion": { "major": "1", "minor": minor, "gitVersion": version },
    });
    let version_file = dir.join("version.json");
    std::fs::write(&version_file, version_json.to_string()).unwrap();
    let nodes_file = dir.join("nodes.json");
    std::fs::write(&nodes_file, nodes_json(version).to_string()).unwrap();
    (version_file, nodes_file)
}

/// The chart rendered with a ci values file: first to learn the version,
/// then with the facts files of that version, so that a values file that
/// names such files gets real ones.
fn render_with_facts(helm: &Helm, values: &Path, dir: &Path) -> Vec<Value> {
    let chart = chart_dir();
    let args = ["-f", values.to_str().unwrap(), "--kube-version", "v1.35.1"];
    let first = helm.template(&chart, &args);
    let version = annotation(&first, annotations::KUBERNETES_VERSION);
    let (version_file, nodes_file) = write_facts(dir, &version);
    let mentions_facts = std::fs::read_to_string(values)
        .unwrap()
        .contains("nodesJson");
    if !mentions_facts {
        return first;
    }
    let nodes = format!("supervisor.nodesJson={}", nodes_file.display());
    let version = format!(
        "supervisor.kubernetesVersionJson={}",
        version_file.display()
    );
    let mut full = args.to_vec();
    full.extend(["--set-string", &nodes, "--set-string", &version]);
    helm.template(&chart, &full)
}

fn ci_values_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with("-values.yaml"))
        .collect();
    files.sort();
    files
}

/// The supervisor image and pull policy of a rendered pod, and its method.
fn pod_sideload(pod: &Value) -> (String, String, String) {
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|volume| volume["name"] == VOLUME_NAME)
        .unwrap_or_else(|| panic!("no {VOLUME_NAME} volume: {pod:#}"));
    if let Some(image) = volume.get("image") {
        return (
            "image-volume".into(),
            image["reference"].as_str().unwrap().into(),
            image["pullPolicy"].as_str().unwrap().into(),
        );
    }
    let init = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|container| container["name"] == INIT_CONTAINER_NAME)
        .unwrap_or_else(|| panic!("neither an image volume nor {INIT_CONTAINER_NAME}: {pod:#}"));
    (
        "init-container".into(),
        init["image"].as_str().unwrap().into(),
        init["imagePullPolicy"].as_str().unwrap().into(),
    )
}

#[test]
fn the_configmap_is_read_by_the_driver_with_the_charts_method_image_and_pull_policy() {
    let test = "the_configmap_is_read_by_the_driver_with_the_charts_method_image_and_pull_policy";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    for values in ci_values_files() {
        let dir = tempfile::tempdir().unwrap();
        let documents = render_with_facts(&helm, &values, dir.path());
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, config_file(&documents)).unwrap();
        let settings: Value = read_document(&config_file(&documents)).unwrap();
        let image = settings[FLAG_SUPERVISOR_IMAGE]
            .as_str()
            .unwrap()
            .to_string();
        let policy = annotation(&documents, annotations::PULL_POLICY);
        let version = annotation(&documents, annotations::KUBERNETES_VERSION);
        let (_, nodes_file) = write_facts(dir.path(), &version);
        let config_arg = config.to_str().unwrap();
        for (nodes, expected_key) in [
            (None, annotations::METHOD_FROM_VERSION),
            (
                Some(nodes_file.to_str().unwrap()),
                annotations::METHOD_IF_NODES_MOUNT,
            ),
        ] {
            // A values file that names facts files gives the driver its
            // nodes already.
            let nodes = nodes.filter(|_| settings.get("nodes-json").is_none());
            let expected = if settings.get("nodes-json").is_some() {
                annotation(&documents, annotations::METHOD_IF_NODES_MOUNT)
            } else {
                annotation(&documents, expected_key)
            };
            let mut args = vec!["--config", config_arg];
            if let Some(nodes) = nodes {
                args.extend(["--nodes-json", nodes]);
            }
            let report = driver_config(&args, &[])
                .unwrap_or_else(|err| panic!("{values:?}: the driver refused {config_arg}: {err}"));
            let what = format!("{values:?} (nodes: {nodes:?})");
            assert_eq!(
                report[FLAG_SUPERVISOR_SIDELOAD_METHOD]["value"], expected,
                "{what}"
            );
            assert_eq!(
                report[FLAG_SUPERVISOR_IMAGE]["value"],
                image.as_str(),
                "{what}"
            );
            assert!(
                report[FLAG_SUPERVISOR_IMAGE]["origin"]
                    .as_str()
                    .unwrap()
                    .contains("supervisor-image in"),
                "{what}: {report:#}"
            );
            assert_eq!(
                report[FLAG_SUPERVISOR_IMAGE_PULL_POLICY]["value"],
                policy.as_str(),
                "{what}"
            );
            assert_eq!(
                report[FLAG_KUBERNETES_VERSION]["value"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('v'),
                version.trim_start_matches('v'),
                "{what}"
            );

            // The pod rendered from the same config has that image, policy
            // and method.
            let mut render = vec![
                "render",
                "--sandbox-image",
                "busybox:1.37",
                "--config",
                config_arg,
            ];
            if let Some(nodes) = nodes {
                render.extend(["--nodes-json", nodes]);
            }
            let output = run_driver(&render, &[]);
            assert!(output.status.success(), "{what}: {}", output_text(&output));
            let pod: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(
                pod_sideload(&pod),
                (expected.clone(), image.clone(), policy.clone()),
                "{what}"
            );
        }
        // The image is the one the values ask for, made as the contract
        // says: REPO@sha256:... (digest only) when a digest is given, else
        // REPO:TAG with the chart's appVersion as the default tag.
        let values_doc: Value = read_document(&std::fs::read_to_string(&values).unwrap()).unwrap();
        let given = &values_doc["supervisor"]["image"];
        let repository = given["repository"]
            .as_str()
            .unwrap_or("openshell/supervisor");
        let expected_image = match given["digest"].as_str().filter(|digest| !digest.is_empty()) {
            Some(digest) => format!("{repository}@{digest}"),
            None => format!(
                "{repository}:{}",
                given["tag"]
                    .as_str()
                    .filter(|tag| !tag.is_empty())
                    .unwrap_or(env!("CARGO_PKG_VERSION"))
            ),
        };
        assert_eq!(image, expected_image, "{values:?}");
    }
}

#[test]
fn a_digest_gives_a_digest_only_reference_pulled_if_not_present() {
    let Some(helm) = Helm::find("a_digest_gives_a_digest_only_reference_pulled_if_not_present")
    else {
        return;
    };
    let documents = helm.template(
        &chart_dir(),
        &[
            "--set-string",
            "supervisor.image.tag=9.9.9",
            "--set-string",
            &format!("supervisor.image.digest={PINNED_DIGEST}"),
        ],
    );
    let settings: Value = read_document(&config_file(&documents)).unwrap();
    assert_eq!(
        settings[FLAG_SUPERVISOR_IMAGE],
        format!("openshell/supervisor@{PINNED_DIGEST}").as_str(),
        "the tag is dropped: CRI-O 1.31.0 refuses REPO:TAG@sha256:"
    );
    assert_eq!(
        annotation(&documents, annotations::PULL_POLICY),
        "IfNotPresent"
    );
    // `latest` as a tag is Always, by Kubernetes' rule, which the driver
    // writes out.
    let documents = helm.template(
        &chart_dir(),
        &["--set-string", "supervisor.image.tag=latest"],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_file(&documents)).unwrap();
    let report = driver_config(&["--config", config.to_str().unwrap()], &[]).unwrap();
    assert_eq!(report[FLAG_SUPERVISOR_IMAGE_PULL_POLICY]["value"], "Always");
    assert_eq!(annotation(&documents, annotations::PULL_POLICY), "Always");
}

/// kubernetes-validate --strict for Kubernetes 1.MINOR.0 over `files`.
fn kubernetes_validate(tool: &Path, minor: u64, files: &[PathBuf]) {
    let mut command = Command::new(tool);
    command
        .args(["--strict", "--quiet", "-k", &format!("1.{minor}.0")])
        .args(files);
    let output = run(command);
    assert!(
        output.status.success(),
        "Kubernetes 1.{minor}: {}",
        output_text(&output)
    );
}

/// Writes each document to its own file in `dir`, named `stem-N.yaml`.
fn write_documents(dir: &Path, stem: &str, documents: &[Value]) -> Vec<PathBuf> {
    documents
        .iter()
        .enumerate()
        .map(|(index, document)| {
            let file = dir.join(format!("{stem}-{index}.yaml"));
            std::fs::write(&file, to_yaml(document)).unwrap();
            file
        })
        .collect()
}

/// For Kubernetes 1.`minor`: the chart's output, the example parent's, and
/// the sandbox pods the driver renders from the chart's config (auto with
/// nodes that mount image volumes, and each explicit method where the API
/// has it), every image pinned. Returns the files and the pods' methods.
fn render_for_minor(
    helm: &Helm,
    example: &Path,
    minor: u64,
    dir: &Path,
) -> (Vec<PathBuf>, BTreeSet<String>) {
    let version = format!("v1.{minor}.0");
    let digest = format!("supervisor.image.digest={PINNED_DIGEST}");
    let mut files = Vec::new();
    let mut methods = BTreeSet::new();
    let (_, nodes) = write_facts(dir, &version);
    let mut choices = vec!["", "init-container"];
    if minor >= 31 {
        choices.push("image-volume");
    }
    for method in choices {
        let set_method = format!("supervisor.sideloadMethod={method}");
        let documents = helm.template(
            &chart_dir(),
            &[
                "--kube-version",
                &version,
                "--set-string",
                &digest,
                "--set-string",
                &set_method,
            ],
        );
        let name = if method.is_empty() { "auto" } else { method };
        files.extend(write_documents(dir, &format!("chart-{name}"), &documents));
        let config = dir.join(format!("config-{name}.yaml"));
        std::fs::write(&config, config_file(&documents)).unwrap();
        let output = run_driver(
            &[
                "render",
                "--config",
                config.to_str().unwrap(),
                "--nodes-json",
                nodes.to_str().unwrap(),
                "--sandbox-image",
                PINNED_AGENT,
                "--format",
                "yaml",
                "--",
                "python",
                "agent.py",
            ],
            &[],
        );
        assert!(
            output.status.success(),
            "1.{minor} {name}: {}",
            output_text(&output)
        );
        let pod: Value = read_document(std::str::from_utf8(&output.stdout).unwrap()).unwrap();
        methods.insert(pod_sideload(&pod).0);
        let file = dir.join(format!("pod-{name}.yaml"));
        std::fs::write(&file, &output.stdout).unwrap();
        files.push(file);
    }
    let parent_digest = format!("openshell-supervisor.{digest}");
    for settings_from in ["env", "configMap"] {
        let mode = format!("settingsFrom={settings_from}");
        let documents = helm.template(
            example,
            &[
                "--kube-version",
                &version,
                "--set-string",
                &parent_digest,
                "--set-string",
                &mode,
            ],
        );
        files.extend(write_documents(
            dir,
            &format!("example-{settings_from}"),
            &documents,
        ));
    }
    (files, methods)
}

#[test]
fn the_charts_output_and_its_sandbox_pods_pass_the_strict_schemas_of_kubernetes_1_31_to_1_37() {
    let test =
        "the_charts_output_and_its_sandbox_pods_pass_the_strict_schemas_of_kubernetes_1_31_to_1_37";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let Some(tool) = python_tool(test, "kubernetes-validate") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let example = helm.example_with_dependency(work.path());
    let mut validated = 0;
    for minor in 31..=37 {
        let dir = work.path().join(format!("1.{minor}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (files, methods) = render_for_minor(&helm, &example, minor, &dir);
        assert!(
            methods.contains("image-volume") && methods.contains("init-container"),
            "1.{minor}: {methods:?}"
        );
        kubernetes_validate(&tool, minor, &files);
        validated += files.len();
    }
    eprintln!("validated {validated} documents for Kubernetes 1.31-1.37");
}

/// The accepted failed checks: the driver's list for sandbox pods, the
/// example's for its StatefulSet. Check id to reason.
fn accepted(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (id, reason) = line.split_once(": ").unwrap();
            (id.to_string(), reason.to_string())
        })
        .collect()
}

/// Checks that no accepted list may hold (driver/tests/policy.rs).
const NEVER_ACCEPTED: [&str; 4] = ["CKV_K8S_20", "CKV_K8S_28", "CKV_K8S_31", "CKV_K8S_43"];

/// What helm renders for Kubernetes 1.31 to 1.37 (the chart, the example
/// parent) and the sandbox pods the driver renders from it, in one checkov
/// run.
#[test]
fn checkov_finds_only_accepted_failures_in_the_charts_output_and_its_sandbox_pods() {
    let test = "checkov_finds_only_accepted_failures_in_the_charts_output_and_its_sandbox_pods";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let Some(tool) = python_tool(test, "checkov") else {
        return;
    };
    // checkov skips folders whose names start with a dot, as tempdir's do.
    let work = tempfile::Builder::new()
        .prefix("openshell-checkov-")
        .tempdir()
        .unwrap();
    let example = helm.example_with_dependency(&work.path().join("charts"));
    let scan = work.path().join("scan");
    let mut files = Vec::new();
    for minor in 31..=37 {
        let dir = scan.join(format!("1.{minor}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (rendered, methods) = render_for_minor(&helm, &example, minor, &dir);
        assert_eq!(methods.len(), 2, "1.{minor}: {methods:?}");
        files.extend(rendered);
    }
    let mut command = Command::new(&tool);
    command
        .arg("-d")
        .arg(&scan)
        .args([
            "--framework",
            "kubernetes",
            "-o",
            "json",
            "--quiet",
            "--skip-download",
        ])
        .env("HOME", work.path());
    let output = run(command);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        output_text(&output)
    );
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("checkov printed no JSON ({err}): {}", output_text(&output)));
    let reports = match report {
        Value::Array(list) => list,
        other => vec![other],
    };
    let root = crate::workspace_root();
    let pods = accepted(&root.join("driver/tests/checkov-accepted.txt"));
    let statefulset = accepted(&example_dir().join("checkov-accepted.txt"));
    let mut unlisted = Vec::new();
    let mut failed = 0;
    for report in &reports {
        assert_eq!(report["summary"]["parsing_errors"], 0, "{report:#}");
        assert!(
            report["summary"]["resource_count"].as_u64().unwrap() >= files.len() as u64 / 2,
            "{report:#}"
        );
        for check in report["results"]["failed_checks"].as_array().unwrap() {
            failed += 1;
            let id = check["check_id"].as_str().unwrap();
            let file = check["file_path"].as_str().unwrap();
            let resource = check["resource"].as_str().unwrap_or_default();
            assert!(
                !NEVER_ACCEPTED.contains(&id),
                "{id} fails on {file} ({resource})"
            );
            let list = if resource.starts_with("StatefulSet") {
                &statefulset
            } else {
                &pods
            };
            if !list.contains_key(id) {
                unlisted.push(format!(
                    "{id} ({}) on {file} ({resource})",
                    check["check_name"]
                ));
            }
        }
    }
    eprintln!("checkov: {} files, {failed} accepted failures", files.len());
    assert!(
        unlisted.is_empty(),
        "failed checks not in an accepted list:\n{}",
        unlisted.join("\n")
    );
}

#[test]
fn the_example_parents_driver_env_configures_the_driver_as_the_configmap_does() {
    let test = "the_example_parents_driver_env_configures_the_driver_as_the_configmap_does";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let example = helm.example_with_dependency(work.path());
    // Every setting away from its default, so a variable the driver does
    // not read would show.
    let (version_file, nodes_file) = write_facts(work.path(), "v1.34.2-eks-4f1c2a3");
    let values = json!({
        "openshell-supervisor": {
            "supervisor": {
                "sideloadMethod": "image-volume",
                "image": { "repository": "registry.example:5000/openshell/supervisor", "tag": "0.1.0-rc.1", "pullPolicy": "Always" },
                "imagePullSecrets": ["supervisor-pull", "mirror-pull"],
                "imageVolumeFeatureGate": true,
                "securityProfile": "none",
                "nodesJson": nodes_file,
                "kubernetesVersionJson": version_file,
                "publicKeyFile": "/var/run/openshell/keys/supervisor.pub",
            },
            "kubeVersion": "v1.34.2-eks-4f1c2a3",
        }
    });
    let values_file = work.path().join("values.yaml");
    std::fs::write(&values_file, values.to_string()).unwrap();
    let documents = helm.template(&example, &["-f", values_file.to_str().unwrap()]);
    let statefulset = only(&documents, "StatefulSet");
    let container = &statefulset["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "driver");
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["name"].as_str().unwrap().to_string(),
                entry["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let from_env = driver_config(&[], &env).unwrap();
    let config = work.path().join("config.yaml");
    std::fs::write(&config, config_file(&documents)).unwrap();
    let from_file = driver_config(&["--config", config.to_str().unwrap()], &[]).unwrap();
    let keys: Vec<&String> = from_file
        .as_object()
        .unwrap()
        .keys()
        .filter(|key| *key != "warnings")
        .collect();
    assert!(keys.len() >= 9, "{keys:?}");
    for key in keys {
        assert_eq!(from_env[key]["value"], from_file[key]["value"], "{key}");
        let origin = from_env[key]["origin"].as_str().unwrap();
        assert!(
            origin.starts_with("OPENSHELL_"),
            "{key} came from {origin}, not the environment"
        );
    }
    assert_eq!(
        from_env[FLAG_SUPERVISOR_SIDELOAD_METHOD]["value"],
        "image-volume"
    );
    assert_eq!(
        from_env["image-pull-secrets"]["value"],
        json!(["supervisor-pull", "mirror-pull"])
    );
}

/// `helm install --dry-run=client` (no cluster): the NOTES it prints.
fn notes(helm: &Helm, args: &[&str]) -> String {
    let mut full = vec![
        "install",
        "r",
        chart_dir().to_str().unwrap().to_owned().leak(),
        "--dry-run=client",
    ];
    full.extend_from_slice(args);
    let output = helm.ok(&full);
    output
        .split_once("NOTES:")
        .unwrap_or_else(|| panic!("no NOTES: {output}"))
        .1
        .to_string()
}

#[test]
fn image_volume_on_1_31_renders_as_asked_notes_warn_and_explain_gives_the_reason() {
    let test = "image_volume_on_1_31_renders_as_asked_notes_warn_and_explain_gives_the_reason";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let values = chart_dir().join("ci/image-volume-gated-values.yaml");
    let values = values.to_str().unwrap();
    let text = notes(&helm, &["-f", values]);
    assert!(
        text.contains("WARNING: image-volume on Kubernetes 1.31"),
        "{text}"
    );
    assert!(text.contains("feature gate must be on"), "{text}");
    let documents = helm.template(&chart_dir(), &["-f", values]);
    let settings: Value = read_document(&config_file(&documents)).unwrap();
    assert_eq!(settings[FLAG_SUPERVISOR_SIDELOAD_METHOD], "image-volume");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_file(&documents)).unwrap();
    let config = config.to_str().unwrap();
    let output = run_driver(&["explain", "--config", config], &[]);
    assert!(output.status.success(), "{}", output_text(&output));
    let explain = String::from_utf8_lossy(&output.stdout);
    assert!(explain.contains("method: image-volume"), "{explain}");
    assert!(
        explain.contains("v1.31 has image volumes only in alpha"),
        "{explain}"
    );
    assert!(
        explain.contains("the ImageVolume feature gate must be on"),
        "{explain}"
    );
    let output = run_driver(
        &[
            "render",
            "--config",
            config,
            "--sandbox-image",
            "busybox:1.37",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", output_text(&output));
    let pod: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(pod_sideload(&pod).0, "image-volume", "rendered as asked");
}

#[test]
fn notes_say_what_the_driver_decides_from_the_version_and_that_explain_is_the_authority() {
    let test =
        "notes_say_what_the_driver_decides_from_the_version_and_that_explain_is_the_authority";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let text = notes(&helm, &["--set-string", "kubeVersion=v1.35.2-gke.1200"]);
    assert!(
        text.contains("v1.35.2-gke.1200 (from the kubeVersion value)"),
        "{text}"
    );
    assert!(
        text.contains("From the version alone it chooses init-container"),
        "{text}"
    );
    assert!(
        text.contains("it chooses image-volume, since v1.35.2-gke.1200 allows them"),
        "{text}"
    );
    assert!(
        text.contains("openshell-driver-kubernetes explain"),
        "{text}"
    );
    let text = notes(&helm, &["--set-string", "kubeVersion=1.34.1"]);
    assert!(
        text.contains("ImageVolume feature gate, which neither this chart nor the driver can see"),
        "{text}"
    );
    assert!(
        text.contains("it chooses init-container, since 1.34.1 does not let it count on them"),
        "{text}"
    );
    let text = notes(
        &helm,
        &[
            "--set-string",
            "kubeVersion=1.34.1",
            "--set",
            "supervisor.imageVolumeFeatureGate=true",
        ],
    );
    assert!(
        text.contains("it chooses image-volume, since 1.34.1 allows them"),
        "{text}"
    );
    let text = notes(
        &helm,
        &["--set-string", "supervisor.sideloadMethod=init-container"],
    );
    assert!(
        text.contains("Sideload method: init-container (supervisor.sideloadMethod)"),
        "{text}"
    );
    assert!(!text.contains("WARNING"), "{text}");
}

#[test]
fn image_volume_before_1_31_is_refused_by_the_chart_naming_the_value() {
    let Some(helm) =
        Helm::find("image_volume_before_1_31_is_refused_by_the_chart_naming_the_value")
    else {
        return;
    };
    let stderr = helm.err(&[
        "template",
        "r",
        chart_dir().to_str().unwrap(),
        "--kube-version",
        "v1.30.4",
        "--set-string",
        "supervisor.sideloadMethod=image-volume",
    ]);
    assert!(
        stderr.contains("supervisor.sideloadMethod image-volume: Kubernetes v1.30.4"),
        "{stderr}"
    );
    assert!(stderr.contains("use init-container"), "{stderr}");
}

#[test]
fn with_the_live_version_file_the_chart_passes_no_version_and_the_driver_reads_the_live_one() {
    let test =
        "with_the_live_version_file_the_chart_passes_no_version_and_the_driver_reads_the_live_one";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    // Installed on 1.34; the cluster has since been upgraded to 1.36.
    let dir = tempfile::tempdir().unwrap();
    let (version_file, nodes_file) = write_facts(dir.path(), "v1.36.1");
    let version = format!(
        "supervisor.kubernetesVersionJson={}",
        version_file.display()
    );
    let nodes = format!("supervisor.nodesJson={}", nodes_file.display());
    let documents = helm.template(
        &chart_dir(),
        &[
            "--kube-version",
            "v1.34.2",
            "--set-string",
            &version,
            "--set-string",
            &nodes,
        ],
    );
    let settings: Value = read_document(&config_file(&documents)).unwrap();
    assert!(
        settings.get(FLAG_KUBERNETES_VERSION).is_none(),
        "{settings:#}"
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_file(&documents)).unwrap();
    let report = driver_config(&["--config", config.to_str().unwrap()], &[]).unwrap();
    assert_eq!(report[FLAG_KUBERNETES_VERSION]["value"], "v1.36.1");
    assert_eq!(
        report[FLAG_SUPERVISOR_SIDELOAD_METHOD]["value"],
        "image-volume"
    );
    // With a version of its own as well, the driver would refuse the two.
    let stale = format!("{}kubernetes-version: v1.34.2\n", config_file(&documents));
    std::fs::write(&config, stale).unwrap();
    let refused = driver_config(&["--config", config.to_str().unwrap()], &[]).unwrap_err();
    assert!(
        refused.contains("v1.34.2") && refused.contains("v1.36.1"),
        "{refused}"
    );
}

#[test]
fn the_example_parent_can_mount_the_configmap_and_name_its_file_to_the_driver() {
    let test = "the_example_parent_can_mount_the_configmap_and_name_its_file_to_the_driver";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let example = helm.example_with_dependency(work.path());
    let documents = helm.template(
        &example,
        &[
            "--kube-version",
            "v1.33.4",
            "--set-string",
            "settingsFrom=configMap",
            "--set-string",
            "openshell-supervisor.supervisor.sideloadMethod=init-container",
        ],
    );
    let configmap = only(&documents, "ConfigMap");
    let pod = &only(&documents, "StatefulSet")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"], configmap["metadata"]["name"],
        "the volume is the chart's ConfigMap"
    );
    assert_eq!(
        pod["volumes"][0]["name"],
        container["volumeMounts"][0]["name"]
    );
    assert_eq!(
        container["env"][0]["name"],
        openshell_contract::sideload::ENV_DRIVER_CONFIG
    );
    let named = container["env"][0]["value"].as_str().unwrap();
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let key = named
        .strip_prefix(&format!("{mount}/"))
        .unwrap_or_else(|| panic!("{named} is not in the mount {mount}"));
    // The file the driver is told to read, where the kubelet puts it.
    let mounted = work.path().join("mounted");
    std::fs::create_dir_all(&mounted).unwrap();
    let file = mounted.join(key);
    std::fs::write(&file, configmap["data"][key].as_str().unwrap()).unwrap();
    let report = driver_config(
        &[],
        &[(
            openshell_contract::sideload::ENV_DRIVER_CONFIG.to_string(),
            file.display().to_string(),
        )],
    )
    .unwrap();
    assert_eq!(
        report[FLAG_SUPERVISOR_SIDELOAD_METHOD]["value"],
        "init-container"
    );
    assert_eq!(report[FLAG_KUBERNETES_VERSION]["value"], "v1.33.4");
    let origin = report[FLAG_SUPERVISOR_SIDELOAD_METHOD]["origin"]
        .as_str()
        .unwrap();
    assert!(origin.contains(&file.display().to_string()), "{origin}");
}
