//! Rendered pods against the checkers clusters use: the official strict
//! JSON schemas of Kubernetes 1.31 to 1.37 (kubernetes-validate), the
//! checkov policy scanner, and Pod Security "restricted" for the init
//! container (the published standard, written as code in
//! `common/pod_security.rs`).

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::pod_security::restricted_violations;
use common::{data, run_ok};
use openshell_driver_kubernetes::plan::IMAGE_VOLUME_ALPHA_SINCE_MINOR;
use openshell_testsupport::podman::{output_text, run};
use openshell_testsupport::python_tools::python_tool;
use serde_json::Value;

/// The Kubernetes minor versions every pod is validated against.
const MINORS: std::ops::RangeInclusive<u64> = 31..=37;

/// Checks the accepted list may never hold: privilege escalation, NET_RAW,
/// seccomp, and (every image here being pinned) the digest check.
const NEVER_ACCEPTED: [&str; 4] = ["CKV_K8S_20", "CKV_K8S_28", "CKV_K8S_31", "CKV_K8S_43"];

const PINNED_SUPERVISOR: &str = "registry.example/openshell/supervisor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const PINNED_AGENT: &str = "registry.example/agents/python@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    files
}

fn parse_pod(path: &Path) -> Value {
    openshell_driver_kubernetes::yaml_read::read_document(&std::fs::read_to_string(path).unwrap())
        .unwrap()
}

fn has_image_volume(pod: &Value) -> bool {
    pod["spec"]["volumes"]
        .as_array()
        .is_some_and(|volumes| volumes.iter().any(|volume| volume.get("image").is_some()))
}

fn kubernetes_validate(tool: &Path, minor: u64, files: &[&PathBuf]) -> std::process::Output {
    let mut command = Command::new(tool);
    command
        .args(["--strict", "--quiet", "-k", &format!("1.{minor}.0")])
        .args(files);
    run(command)
}

#[test]
fn every_golden_pod_passes_the_strict_schemas_of_kubernetes_1_31_to_1_37() {
    let test = "every_golden_pod_passes_the_strict_schemas_of_kubernetes_1_31_to_1_37";
    let Some(tool) = python_tool(test, "kubernetes-validate") else {
        return;
    };
    let files = golden_files();
    let mut validated = 0;
    for minor in MINORS {
        // Image volumes exist in the API from 1.31 (alpha); init containers
        // and emptyDir always.
        let applicable: Vec<&PathBuf> = files
            .iter()
            .filter(|file| {
                !has_image_volume(&parse_pod(file)) || minor >= IMAGE_VOLUME_ALPHA_SINCE_MINOR
            })
            .collect();
        let output = kubernetes_validate(&tool, minor, &applicable);
        assert!(
            output.status.success(),
            "Kubernetes 1.{minor}: {}",
            output_text(&output)
        );
        validated += applicable.len();
    }
    eprintln!(
        "validated {validated} pod-version pairs ({} golden pods, Kubernetes 1.{}-1.{})",
        files.len(),
        MINORS.start(),
        MINORS.end()
    );
    assert_eq!(validated, files.len() * MINORS.count());
}

#[test]
fn the_strict_schemas_catch_an_image_volume_before_1_31_and_a_misspelled_field() {
    let test = "the_strict_schemas_catch_an_image_volume_before_1_31_and_a_misspelled_field";
    let Some(tool) = python_tool(test, "kubernetes-validate") else {
        return;
    };
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/image-volume.json");
    let output = kubernetes_validate(&tool, 30, &[&golden]);
    assert!(!output.status.success(), "{}", output_text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("'image' was unexpected"),
        "{}",
        output_text(&output)
    );
    // A typo in the hardening the driver writes is caught too.
    let dir = tempfile::tempdir().unwrap();
    let mut pod = parse_pod(&golden);
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalaton"] = false.into();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, pod.to_string()).unwrap();
    let output = kubernetes_validate(&tool, 35, &[&broken]);
    assert!(!output.status.success(), "{}", output_text(&output));
}

/// The pods checkov scans: both methods, the workload as root and as
/// another user, every image pinned by digest.
fn render_policy_pods(dir: &Path) -> Vec<PathBuf> {
    let template = data("template-run-as.yaml").display().to_string();
    let mut files = Vec::new();
    for method in ["image-volume", "init-container"] {
        for run_as in [false, true] {
            let mut args = vec![
                "render",
                "--sandbox-image",
                PINNED_AGENT,
                "--supervisor-image",
                PINNED_SUPERVISOR,
                "--supervisor-sideload-method",
                method,
                "--format",
                "yaml",
            ];
            if run_as {
                args.extend(["--template", &template]);
            }
            args.extend(["--", "python", "agent.py"]);
            let (pod, _) = run_ok(&args, &[]);
            let file = dir.join(format!(
                "{method}-{}.yaml",
                if run_as { "run-as" } else { "root" }
            ));
            std::fs::write(&file, pod).unwrap();
            files.push(file);
        }
    }
    files
}

/// The accepted list: check id to reason.
fn accepted_checks() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/checkov-accepted.txt");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (id, reason) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{}: {line:?} is not `ID: reason`", path.display()));
            assert!(!reason.trim().is_empty(), "{id} has no reason");
            (id.to_string(), reason.to_string())
        })
        .collect()
}

#[test]
fn the_accepted_list_holds_none_of_the_checks_that_must_pass() {
    let accepted = accepted_checks();
    for id in NEVER_ACCEPTED {
        assert!(!accepted.contains_key(id), "{id} may not be accepted");
    }
}

#[test]
fn checkov_finds_nothing_but_the_accepted_failures_on_either_method() {
    let test = "checkov_finds_nothing_but_the_accepted_failures_on_either_method";
    let Some(tool) = python_tool(test, "checkov") else {
        return;
    };
    // checkov skips folders whose names start with a dot, as tempdir's do.
    let dir = tempfile::Builder::new()
        .prefix("openshell-checkov-")
        .tempdir()
        .unwrap();
    let files = render_policy_pods(dir.path());
    let mut command = Command::new(&tool);
    command
        .arg("-d")
        .arg(dir.path())
        .args(["--framework", "kubernetes", "-o", "json", "--quiet"])
        // Offline: no download of guidelines or policies.
        .arg("--skip-download")
        .env("HOME", dir.path());
    let output = run(command);
    // checkov exits 1 when any check fails, 0 when none does.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        output_text(&output)
    );
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("checkov printed no JSON ({err}): {}", output_text(&output)));
    let reports = match &report {
        Value::Array(list) => list.clone(),
        other => vec![other.clone()],
    };
    let accepted = accepted_checks();
    let mut failed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for report in &reports {
        assert_eq!(report["summary"]["parsing_errors"], 0, "{report:#}");
        assert_eq!(
            report["summary"]["resource_count"],
            files.len(),
            "checkov did not read every pod"
        );
        for check in report["results"]["failed_checks"].as_array().unwrap() {
            let id = check["check_id"].as_str().unwrap().to_string();
            let file = check["file_path"].as_str().unwrap().to_string();
            names.insert(
                id.clone(),
                check["check_name"].as_str().unwrap().to_string(),
            );
            *per_file.entry(file.clone()).or_default() += 1;
            failed.entry(id).or_default().insert(file);
        }
    }
    eprintln!("checkov failed checks per pod: {per_file:?}");
    let unlisted: Vec<String> = failed
        .iter()
        .filter(|(id, _)| !accepted.contains_key(*id))
        .map(|(id, files)| format!("{id} ({}) on {files:?}", names[id]))
        .collect();
    assert!(
        unlisted.is_empty(),
        "checks that fail and are not in tests/checkov-accepted.txt: fix them, or list them with the reason:\n{}",
        unlisted.join("\n")
    );
    let stale: Vec<&String> = accepted
        .keys()
        .filter(|id| !failed.contains_key(*id))
        .collect();
    assert!(
        stale.is_empty(),
        "listed in tests/checkov-accepted.txt but no longer failing (remove them): {stale:?}"
    );
    // The capabilities are added back only for a workload of another user.
    assert!(
        failed["CKV_K8S_25"]
            .iter()
            .all(|file| file.ends_with("-run-as.yaml")),
        "CKV_K8S_25: {:?}",
        failed["CKV_K8S_25"]
    );
}

/// Init-container pods the driver renders, hardened.
fn init_container_pods() -> Vec<(String, Value)> {
    let template = data("template.yaml").display().to_string();
    let run_as = data("template-run-as.yaml").display().to_string();
    let pod_template_spec = data("pod-template-spec.json").display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--sandbox-image", "alpine"],
        vec![
            "--sandbox-image",
            PINNED_AGENT,
            "--supervisor-image",
            PINNED_SUPERVISOR,
        ],
        vec!["--template", &template],
        vec!["--template", &run_as, "--sandbox-image", "alpine"],
        vec!["--template", &pod_template_spec],
    ];
    cases
        .into_iter()
        .map(|case| {
            let mut args = vec!["render", "--supervisor-sideload-method", "init-container"];
            args.extend(&case);
            args.extend(["--", "python", "agent.py"]);
            let (pod, _) = run_ok(&args, &[]);
            (case.join(" "), serde_json::from_str(&pod).unwrap())
        })
        .collect()
}

fn init_container(pod: &Value) -> &Value {
    pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|container| container["name"] == openshell_contract::INIT_CONTAINER_NAME)
        .unwrap()
}

fn controls(violations: &[String]) -> BTreeSet<String> {
    violations
        .iter()
        .map(|violation| violation.split(": ").next().unwrap().to_string())
        .collect()
}

#[test]
fn the_init_container_meets_pod_security_restricted() {
    for (case, pod) in init_container_pods() {
        let violations = restricted_violations(&pod, init_container(&pod));
        assert!(violations.is_empty(), "{case}: {violations:?}\n{pod:#}");
    }
}

#[test]
fn the_restricted_check_catches_what_the_driver_no_longer_does() {
    // The unhardened init container (profile none) breaks exactly the
    // rules the hardening is for.
    let (pod, _) = run_ok(
        &[
            "render",
            "--sandbox-image",
            "alpine",
            "--supervisor-sideload-method",
            "init-container",
            "--security-profile",
            "none",
        ],
        &[],
    );
    let pod: Value = serde_json::from_str(&pod).unwrap();
    let found = controls(&restricted_violations(&pod, init_container(&pod)));
    let expected: BTreeSet<String> = [
        "Privilege Escalation",
        "Running as Non-root",
        "Running as Non-root user",
        "Seccomp (Restricted)",
        "Capabilities (Restricted)",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, expected);

    // One field at a time, on the hardened pod.
    let (_, hardened) = init_container_pods().swap_remove(0);
    let index = hardened["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|container| container["name"] == openshell_contract::INIT_CONTAINER_NAME)
        .unwrap();
    for (pointer, value, control) in [
        (
            "/securityContext/allowPrivilegeEscalation",
            Value::from(true),
            "Privilege Escalation",
        ),
        (
            "/securityContext/runAsUser",
            Value::from(0),
            "Running as Non-root user",
        ),
        (
            "/securityContext/privileged",
            Value::from(true),
            "Privileged Containers",
        ),
        (
            "/securityContext/capabilities/add",
            serde_json::json!(["SYS_ADMIN"]),
            "Capabilities (Baseline)",
        ),
        (
            "/securityContext/capabilities/drop",
            serde_json::json!([]),
            "Capabilities (Restricted)",
        ),
        (
            "/securityContext/seccompProfile",
            serde_json::json!({"type": "Unconfined"}),
            "Seccomp (Baseline)",
        ),
    ] {
        let mut pod = hardened.clone();
        let container = &mut pod["spec"]["initContainers"][index];
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        container
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.to_string(), value);
        let found = controls(&restricted_violations(&pod, init_container(&pod)));
        assert!(found.contains(control), "{pointer}: {found:?}");
    }
}

#[test]
fn the_agent_breaks_only_the_rules_its_root_supervisor_must() {
    // Why the agent container cannot be "restricted": the supervisor starts
    // as UID 0, and to run the workload as another user it keeps SETUID,
    // SETGID and KILL. Nothing else.
    for (case, pod) in init_container_pods() {
        // The container named agent, else the first, as the driver picks.
        let containers = pod["spec"]["containers"].as_array().unwrap();
        let agent = containers
            .iter()
            .find(|container| container["name"] == "agent")
            .unwrap_or(&containers[0]);
        let found = controls(&restricted_violations(&pod, agent));
        let mut allowed: BTreeSet<String> = ["Running as Non-root", "Running as Non-root user"]
            .into_iter()
            .map(String::from)
            .collect();
        if agent["command"].to_string().contains("--run-as") {
            allowed.insert("Capabilities (Restricted)".to_string());
        }
        assert!(found.is_subset(&allowed), "{case}: {found:?}");
        assert!(
            found.contains("Running as Non-root user"),
            "{case}: {found:?}"
        );
    }
}
