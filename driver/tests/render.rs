//! `render`: a complete Pod from scratch or from a template, and every
//! input it refuses.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_typed_round_trip, render_json, run, run_err, run_ok};
use openshell_contract::{AGENT_CONTAINER_NAME, INSTALLED_BINARY_PATH};
use serde_json::{Value, json};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_bare_render_is_a_complete_pod() {
    let pod = render_json(
        &["--sandbox-image", "python:3.13", "--", "python", "agent.py"],
        &[],
    );
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["name"], "openshell-sandbox");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], AGENT_CONTAINER_NAME);
    assert_eq!(containers[0]["image"], "python:3.13");
    assert_eq!(
        containers[0]["command"],
        json!([
            INSTALLED_BINARY_PATH,
            "--workdir",
            "/sandbox",
            "--",
            "python",
            "agent.py"
        ])
    );
    assert_typed_round_trip(&pod);
}

#[test]
fn yaml_and_json_render_the_same_pod() {
    let args = [
        "render",
        "--sandbox-image",
        "alpine",
        "--name",
        "sb-1",
        "--format",
        "yaml",
    ];
    let (yaml, _) = run_ok(&args, &[]);
    let from_yaml: Value = openshell_driver_kubernetes::yaml_read::read_document(&yaml).unwrap();
    let from_json = render_json(&["--sandbox-image", "alpine", "--name", "sb-1"], &[]);
    assert_eq!(from_yaml, from_json);
}

#[test]
fn a_yaml_template_is_completed_and_a_json_pod_template_spec_too() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = write(
        &dir,
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-template\nspec:\n  containers:\n  - name: agent\n    image: node:22\n    command: [node, agent.js]\n",
    );
    let pod = render_json(&["--template", &yaml], &[]);
    assert_eq!(pod["metadata"]["name"], "from-template");
    assert_eq!(pod["spec"]["containers"][0]["image"], "node:22");
    assert_eq!(
        pod["spec"]["containers"][0]["command"],
        json!([
            INSTALLED_BINARY_PATH,
            "--workdir",
            "/sandbox",
            "--",
            "node",
            "agent.js"
        ])
    );
    assert_typed_round_trip(&pod);

    let json = write(
        &dir,
        "template.json",
        r#"{"spec": {"containers": [{"name": "agent", "image": "node:22"}]}}"#,
    );
    let pod = render_json(&["--template", &json, "--", "node", "x.js"], &[]);
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["name"], "openshell-sandbox");
    assert_eq!(
        pod["spec"]["containers"][0]["command"],
        json!([
            INSTALLED_BINARY_PATH,
            "--workdir",
            "/sandbox",
            "--",
            "node",
            "x.js"
        ])
    );
    assert_typed_round_trip(&pod);
}

#[test]
fn rendering_a_rendered_pod_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for method in ["image-volume", "init-container"] {
        let args = [
            "render",
            "--sandbox-image",
            "python:3.13",
            "--supervisor-sideload-method",
            method,
            "--image-pull-secret",
            "pull",
            "--",
            "python",
        ];
        let (once, _) = run_ok(&args, &[]);
        let path = write(&dir, &format!("{method}.json"), &once);
        let (twice, _) = run_ok(
            &[
                "render",
                "--template",
                &path,
                "--supervisor-sideload-method",
                method,
                "--image-pull-secret",
                "pull",
            ],
            &[],
        );
        assert_eq!(twice, once, "{method}");
    }
}

#[test]
fn rendering_a_pod_for_the_other_method_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (once, _) = run_ok(
        &["render", "--sandbox-image", "python:3.13", "--", "python"],
        &[],
    );
    let path = write(&dir, "pod.json", &once);
    let stderr = run_err(
        &[
            "render",
            "--template",
            &path,
            "--supervisor-sideload-method",
            "init-container",
        ],
        &[],
    );
    assert!(
        stderr.contains("error: spec.volumes[0]: a volume named openshell-supervisor-bin is already there and differs from the one the init-container method needs"),
        "{stderr}"
    );
}

#[test]
fn sandbox_image_is_required_without_a_template() {
    let output = run(&["render"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--sandbox-image <IMAGE>"), "{stderr}");
}

#[test]
fn an_invalid_sandbox_image_is_refused() {
    let stderr = run_err(&["render", "--sandbox-image", "Python:3.13"], &[]);
    assert!(
        stderr.contains("error: --sandbox-image: invalid image reference 'Python:3.13': "),
        "{stderr}"
    );
}

#[test]
fn an_invalid_pod_name_is_refused() {
    let stderr = run_err(
        &["render", "--sandbox-image", "alpine", "--name", "Sandbox_1"],
        &[],
    );
    assert!(
        stderr.contains(
            "error: invalid pod name \"Sandbox_1\" (--name): 'S' is not allowed (only lowercase letters, digits, '-' and '.') (expected a DNS subdomain name like openshell-sandbox-1)"
        ),
        "{stderr}"
    );
}

#[test]
fn an_invalid_template_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "pod.yaml",
        "metadata:\n  name: -bad\nspec:\n  containers:\n  - name: agent\n    image: alpine\n",
    );
    let stderr = run_err(&["render", "--template", &path], &[]);
    assert!(
        stderr.contains(
            "error: invalid pod name \"-bad\" (the template's metadata.name): \"-bad\" must start and end with a lowercase letter or digit"
        ),
        "{stderr}"
    );
}

#[test]
fn a_template_that_is_not_a_pod_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template: {}\n",
    );
    let stderr = run_err(&["render", "--template", &path], &[]);
    assert!(
        stderr.contains(
            "error: template: it is apiVersion apps/v1, kind Deployment (expected a Pod, kind: Pod with apiVersion: v1, or a pod template with metadata and spec)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_template_without_spec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n",
    );
    let stderr = run_err(&["render", "--template", &path], &[]);
    assert!(
        stderr.contains("error: template: it has no spec object"),
        "{stderr}"
    );
}

#[test]
fn a_template_that_is_not_yaml_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "pod.yaml", "spec: [unclosed\n");
    let stderr = run_err(&["render", "--template", &path], &[]);
    assert!(
        stderr.contains(&format!("error: template {path}: ")),
        "{stderr}"
    );
}

#[test]
fn a_missing_template_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.yaml").display().to_string();
    let stderr = run_err(&["render", "--template", &path], &[]);
    assert!(
        stderr.contains(&format!(
            "error: template {path}: No such file or directory"
        )),
        "{stderr}"
    );
}

#[test]
fn a_template_without_containers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "pod.yaml", "kind: Pod\nspec:\n  containers: []\n");
    let stderr = run_err(
        &["render", "--template", &path, "--sandbox-image", "alpine"],
        &[],
    );
    assert!(
        stderr.contains(
            "error: the pod template has no containers (spec.containers is missing or empty): the sandbox needs an agent container"
        ),
        "{stderr}"
    );
}

#[test]
fn an_agent_without_an_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "pod.yaml", "spec:\n  containers:\n  - name: agent\n");
    let stderr = run_err(&["render", "--template", &path], &[]);
    assert!(
        stderr.contains(
            "error: the agent container spec.containers[0] has no image: pass --sandbox-image IMAGE (or set its image in the template)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_template_conflict_is_reported_and_nothing_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "pod.yaml",
        "spec:\n  containers:\n  - name: agent\n    image: alpine\n    volumeMounts:\n    - name: tools\n      mountPath: /opt/openshell/bin\n  volumes:\n  - name: tools\n    emptyDir: {}\n",
    );
    let stderr = run_err(&["render", "--template", &path], &[]);
    assert!(
        stderr.contains(
            "error: spec.containers[0].volumeMounts[0]: container \"agent\" already mounts volume \"tools\" at /opt/openshell/bin"
        ),
        "{stderr}"
    );
}

#[test]
fn yaml_quotes_words_that_yaml_1_1_readers_take_for_booleans() {
    // kubectl reads YAML with go-yaml, a YAML 1.1 reader: a bare `on` or
    // `yes` there is a boolean, and a boolean in `command` is refused.
    let words = ["yes", "on", "off", "no", "y", "true", "1000", "1.5", ""];
    let mut args = vec!["--sandbox-image", "alpine", "--", "echo"];
    args.extend(words);
    let mut yaml_args = vec!["render", "--format", "yaml"];
    yaml_args.extend(&args);
    let (yaml, _) = run_ok(&yaml_args, &[]);
    for word in words {
        assert!(
            yaml.contains(&format!("        - \"{word}\"\n")),
            "{word:?} is not quoted:\n{yaml}"
        );
    }
    // The same pod as the JSON output, strings and all.
    let parsed: Value = openshell_driver_kubernetes::yaml_read::read_document(&yaml).unwrap();
    assert_eq!(parsed, render_json(&args, &[]));
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // stdout is a pipe whose reading end is already closed, as after
    // `render ... | head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = common::driver()
        .args(["render", "--sandbox-image", "python:3.13"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}
