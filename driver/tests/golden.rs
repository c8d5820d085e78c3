//! Rendered pods compared exactly with the golden files in
//! `driver/tests/golden/`, and every rendered pod round-tripped through
//! k8s-openapi's typed `Pod`.
//!
//! The golden files were reviewed by eye once. After an intended change to
//! the output, rewrite them with
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p openshell-driver-kubernetes --test golden
//! ```
//!
//! and review the diff before committing it.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{assert_typed_round_trip, data, run_ok, typed_round_trip};
use serde_json::Value;

const PINNED_SUPERVISOR: &str = "registry.example/openshell/supervisor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// One golden case: the file name and the driver's arguments.
struct Case {
    file: &'static str,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let template = data("template.yaml").display().to_string();
    let pod_template_spec = data("pod-template-spec.json").display().to_string();
    let cluster = |name: &str| data(&format!("cluster/{name}")).display().to_string();
    let (version_1_35, supported, mixed) = (
        cluster("version-1.35.json"),
        cluster("nodes-supported.json"),
        cluster("nodes-mixed.json"),
    );
    let args = |list: &[&str]| list.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();
    vec![
        Case {
            file: "image-volume.json",
            args: args(&[
                "render",
                "--name",
                "sandbox-1",
                "--sandbox-image",
                "registry.example/agents/python:3.13",
                "--supervisor-image",
                "registry.example/openshell/supervisor:1.0",
                "--",
                "python",
                "agent.py",
            ]),
        },
        Case {
            file: "image-volume-idle.yaml",
            args: args(&[
                "render",
                "--sandbox-image",
                "alpine:3.20",
                "--format",
                "yaml",
            ]),
        },
        Case {
            file: "init-container.yaml",
            args: args(&[
                "render",
                "--name",
                "sandbox-1",
                "--sandbox-image",
                "registry.example/agents/python:3.13",
                "--supervisor-image",
                "registry.example/openshell/supervisor:1.0",
                "--supervisor-sideload-method",
                "init-container",
                "--image-pull-secret",
                "supervisor-pull",
                "--format",
                "yaml",
                "--",
                "python",
                "agent.py",
            ]),
        },
        Case {
            file: "template-image-volume.yaml",
            args: args(&[
                "render",
                "--template",
                &template,
                "--name",
                "sandbox-2",
                "--sandbox-image",
                "registry.example/agents/python:3.14",
                "--supervisor-image",
                PINNED_SUPERVISOR,
                "--image-pull-secret",
                "supervisor-pull",
                "--format",
                "yaml",
            ]),
        },
        Case {
            file: "template-init-container.json",
            args: args(&[
                "render",
                "--template",
                &template,
                "--supervisor-sideload-method",
                "init-container",
                "--supervisor-image",
                "registry.example/openshell/supervisor:1.0",
                "--supervisor-image-pull-policy",
                "Always",
            ]),
        },
        Case {
            file: "pod-template-spec-init-container.json",
            args: args(&[
                "render",
                "--template",
                &pod_template_spec,
                "--kubernetes-version",
                "v1.34.2-gke.1",
                "--name",
                "sandbox-3",
                "--",
                "node",
                "other.js",
            ]),
        },
        Case {
            file: "auto-image-volume.yaml",
            args: args(&[
                "render",
                "--name",
                "sandbox-4",
                "--sandbox-image",
                "registry.example/agents/python:3.13",
                "--supervisor-image",
                PINNED_SUPERVISOR,
                "--supervisor-sideload-method",
                "auto",
                "--kubernetes-version-json",
                &version_1_35,
                "--nodes-json",
                &supported,
                "--format",
                "yaml",
                "--",
                "python",
                "agent.py",
            ]),
        },
        Case {
            file: "auto-init-container.json",
            args: args(&[
                "render",
                "--template",
                &template,
                "--name",
                "sandbox-5",
                "--supervisor-image",
                PINNED_SUPERVISOR,
                "--kubernetes-version-json",
                &version_1_35,
                "--nodes-json",
                &mixed,
            ]),
        },
        Case {
            file: "init-container-profile-none.yaml",
            args: args(&[
                "render",
                "--name",
                "sandbox-6",
                "--sandbox-image",
                "registry.example/agents/python:3.13",
                "--supervisor-sideload-method",
                "init-container",
                "--security-profile",
                "none",
                "--format",
                "yaml",
                "--",
                "python",
                "agent.py",
            ]),
        },
    ]
}

fn golden_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(file)
}

fn render(case: &Case) -> String {
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    run_ok(&args, &[]).0
}

fn parse(file: &str, text: &str) -> Value {
    if file.ends_with(".json") {
        serde_json::from_str(text).unwrap()
    } else {
        openshell_driver_kubernetes::yaml_read::read_document(text).unwrap()
    }
}

#[test]
fn rendered_pods_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1");
    let mut mismatches = Vec::new();
    for case in cases() {
        let rendered = render(&case);
        let path = golden_path(case.file);
        if update {
            std::fs::write(&path, &rendered).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "{}: {err} (create it with UPDATE_GOLDEN=1 and review it)",
                path.display()
            )
        });
        if rendered != golden {
            mismatches.push(format!(
                "{} differs from {:?}:\n--- golden\n{golden}\n--- rendered\n{rendered}",
                path.display(),
                case.args
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_rendered_pod_survives_the_typed_round_trip() {
    for case in cases() {
        let pod = parse(case.file, &render(&case));
        assert_typed_round_trip(&pod);
    }
}

#[test]
fn every_golden_file_survives_the_typed_round_trip() {
    for case in cases() {
        let text = std::fs::read_to_string(golden_path(case.file)).unwrap();
        assert_typed_round_trip(&parse(case.file, &text));
    }
}

#[test]
fn the_round_trip_catches_a_misspelled_field() {
    let pod = parse("image-volume.json", &render(&cases()[0]));
    assert_eq!(typed_round_trip(&pod), pod);
    // A typo in the image volume, in a container, and at the top: each is
    // dropped by the typed Pod, so the comparison fails.
    for (pointer, wrong) in [
        ("/spec/volumes/0/image", "pulPolicy"),
        ("/spec/containers/0", "terminationMessagePolice"),
        ("/spec", "restartpolicy"),
    ] {
        let mut broken = pod.clone();
        let object = broken
            .pointer_mut(pointer)
            .unwrap()
            .as_object_mut()
            .unwrap();
        object.insert(wrong.to_string(), Value::String("Never".to_string()));
        assert_ne!(
            typed_round_trip(&broken),
            broken,
            "{pointer}/{wrong} was not caught"
        );
    }
}

#[test]
fn the_template_keeps_everything_the_driver_does_not_own() {
    let case = &cases()[3];
    let pod = parse(case.file, &render(case));
    let template: Value = openshell_driver_kubernetes::yaml_read::read_document(
        &std::fs::read_to_string(data("template.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        pod["metadata"]["namespace"],
        template["metadata"]["namespace"]
    );
    assert_eq!(pod["metadata"]["labels"], template["metadata"]["labels"]);
    assert_eq!(
        pod["spec"]["containers"][0],
        template["spec"]["containers"][0]
    );
    // The pod's security context gains only the seccomp profile.
    let mut context = pod["spec"]["securityContext"].clone();
    assert_eq!(
        context
            .as_object_mut()
            .unwrap()
            .remove("seccompProfile")
            .unwrap(),
        serde_json::json!({ "type": "RuntimeDefault" })
    );
    assert_eq!(context, template["spec"]["securityContext"]);
    assert_eq!(
        pod["spec"]["containers"][1]["env"],
        template["spec"]["containers"][1]["env"]
    );
    assert_eq!(pod["spec"]["volumes"][0], template["spec"]["volumes"][0]);
    assert_eq!(pod["metadata"]["name"], "sandbox-2");
    assert_eq!(
        pod["spec"]["containers"][1]["image"],
        "registry.example/agents/python:3.14"
    );
}
