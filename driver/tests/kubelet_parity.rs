//! The pod as the kubelet would run it, and hostile templates: the
//! template's workingDir, its groups, an already wrapped command in either
//! flag form, mount paths compared as paths, image references a runtime
//! refuses, and template YAML that a careless reader would take differently
//! from the API server.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{render_json, run_err};
use openshell_contract::supervise::{FLAG_GROUPS, FLAG_RUN_AS, FLAG_WORKDIR};
use openshell_contract::{DEFAULT_WORKDIR, INSTALLED_BINARY_PATH, MOUNT_PATH, WORKDIR_VOLUME_NAME};
use openshell_driver_kubernetes::sideload::clean_path;
use openshell_driver_kubernetes::{
    PullPolicy, SecurityProfile, Sideload, SideloadError, SupervisorImage, SupervisorSideloadMethod,
};
use serde_json::{Value, json};

fn sideloads() -> [Sideload; 2] {
    [
        SupervisorSideloadMethod::ImageVolume,
        SupervisorSideloadMethod::InitContainer,
    ]
    .map(|method| Sideload {
        method,
        image: SupervisorImage::parse("registry.example/openshell/supervisor:1.0").unwrap(),
        pull_policy: PullPolicy::IfNotPresent,
        image_pull_secrets: Vec::new(),
        security: SecurityProfile::Hardened,
    })
}

fn apply(sideload: &Sideload, spec: &Value) -> Result<Value, SideloadError> {
    let mut work = spec.clone();
    let result = sideload.apply(&mut work);
    if result.is_err() {
        assert_eq!(&work, spec, "a refused spec must be left as it was");
    }
    result.map(|()| work)
}

fn agent_command(spec: &Value) -> Vec<String> {
    spec["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|word| word.as_str().unwrap().to_string())
        .collect()
}

fn flag(name: &str) -> String {
    format!("--{name}")
}

// --- 1. working directory -------------------------------------------------

#[test]
fn a_templates_working_dir_is_kept_and_no_workdir_flag_is_rendered() {
    for sideload in sideloads() {
        let spec = json!({ "containers": [{
            "name": "agent", "image": "app:1", "workingDir": "/app", "command": ["./run"]
        }]});
        let spec = apply(&sideload, &spec).unwrap();
        assert_eq!(spec["containers"][0]["workingDir"], "/app");
        assert_eq!(
            agent_command(&spec),
            [INSTALLED_BINARY_PATH, "--", "./run"],
            "{spec:#}"
        );
        // Rendering again changes nothing.
        assert_eq!(apply(&sideload, &spec).unwrap(), spec);
    }
}

#[test]
fn without_a_working_dir_the_sandbox_default_is_rendered() {
    for sideload in sideloads() {
        let spec =
            json!({ "containers": [{ "name": "agent", "image": "app:1", "command": ["x"] }]});
        let spec = apply(&sideload, &spec).unwrap();
        assert_eq!(
            agent_command(&spec),
            [
                INSTALLED_BINARY_PATH,
                &flag(FLAG_WORKDIR),
                DEFAULT_WORKDIR,
                "--",
                "x"
            ]
        );
        // An empty workingDir is no workingDir to Kubernetes.
        let spec = json!({ "containers": [{
            "name": "agent", "image": "app:1", "workingDir": "", "command": ["x"]
        }]});
        let spec = apply(&sideload, &spec).unwrap();
        assert_eq!(agent_command(&spec)[1], flag(FLAG_WORKDIR));
    }
}

#[test]
fn the_default_workdir_gets_an_empty_dir_of_its_own() {
    for sideload in sideloads() {
        let spec =
            json!({ "containers": [{ "name": "agent", "image": "app:1", "command": ["x"] }]});
        let spec = apply(&sideload, &spec).unwrap();
        let volumes = spec["volumes"].as_array().unwrap();
        assert!(
            volumes.contains(&json!({ "name": WORKDIR_VOLUME_NAME, "emptyDir": {} })),
            "{spec:#}"
        );
        let mounts = spec["containers"][0]["volumeMounts"].as_array().unwrap();
        assert!(
            mounts.contains(&json!({ "name": WORKDIR_VOLUME_NAME, "mountPath": DEFAULT_WORKDIR })),
            "{spec:#}"
        );
        // Rendering again changes nothing.
        assert_eq!(apply(&sideload, &spec).unwrap(), spec);
    }
}

#[test]
fn a_templates_own_volume_at_the_workdir_is_kept_and_a_working_dir_needs_none() {
    for sideload in sideloads() {
        let spec = json!({
            "volumes": [{ "name": "workspace", "persistentVolumeClaim": { "claimName": "ws" } }],
            "containers": [{
                "name": "agent", "image": "app:1", "command": ["x"],
                "volumeMounts": [{ "name": "workspace", "mountPath": "/sandbox/" }]
            }]
        });
        let spec = apply(&sideload, &spec).unwrap();
        assert!(!spec.to_string().contains(WORKDIR_VOLUME_NAME), "{spec:#}");
        let spec = json!({ "containers": [{
            "name": "agent", "image": "app:1", "workingDir": "/app", "command": ["x"]
        }]});
        let spec = apply(&sideload, &spec).unwrap();
        assert!(!spec.to_string().contains(WORKDIR_VOLUME_NAME), "{spec:#}");
    }
}

#[test]
fn another_volume_of_the_workdir_volumes_name_is_refused() {
    for sideload in sideloads() {
        let spec = json!({
            "volumes": [{ "name": WORKDIR_VOLUME_NAME, "hostPath": { "path": "/" } }],
            "containers": [{ "name": "agent", "image": "app:1", "command": ["x"] }]
        });
        let err = apply(&sideload, &spec).unwrap_err();
        assert!(
            matches!(err, SideloadError::WorkdirVolumeConflict { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("spec.volumes[0]"), "{err}");
    }
}

#[test]
fn a_working_dir_that_is_not_a_string_is_refused() {
    for sideload in sideloads() {
        let spec = json!({ "containers": [{
            "name": "agent", "image": "app:1", "workingDir": 7, "command": ["x"]
        }]});
        let err = apply(&sideload, &spec).unwrap_err().to_string();
        assert!(err.contains("spec.containers[0].workingDir"), "{err}");
    }
}

// --- 2. groups -------------------------------------------------------------

#[test]
fn fs_group_and_supplemental_groups_reach_the_supervisor_with_run_as() {
    for sideload in sideloads() {
        let spec = json!({
            "securityContext": {
                "runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                "supplementalGroups": [4000, 2000, 4001]
            },
            "containers": [{ "name": "agent", "image": "app:1", "command": ["x"] }]
        });
        let spec = apply(&sideload, &spec).unwrap();
        assert_eq!(
            agent_command(&spec),
            [
                INSTALLED_BINARY_PATH,
                &flag(FLAG_WORKDIR),
                DEFAULT_WORKDIR,
                &flag(FLAG_RUN_AS),
                "1000:3000",
                &flag(FLAG_GROUPS),
                "2000,4000,4001",
                "--",
                "x"
            ]
        );
        // The pod keeps its groups: the supervisor itself gets them too.
        assert_eq!(spec["securityContext"]["fsGroup"], 2000);
    }
}

#[test]
fn groups_alone_need_no_flag_when_the_workload_stays_root() {
    // Without --run-as the supervisor does not drop privileges and the
    // workload inherits the groups the runtime gave.
    for sideload in sideloads() {
        let spec = json!({
            "securityContext": { "fsGroup": 2000, "supplementalGroups": [4000] },
            "containers": [{ "name": "agent", "image": "app:1", "command": ["x"] }]
        });
        let spec = apply(&sideload, &spec).unwrap();
        assert!(!agent_command(&spec).contains(&flag(FLAG_GROUPS)));
    }
}

#[test]
fn a_supplemental_group_that_is_not_an_integer_is_refused() {
    for bad in [json!(["4000"]), json!([1.5]), json!("4000")] {
        let spec = json!({
            "securityContext": { "runAsUser": 1000, "supplementalGroups": bad },
            "containers": [{ "name": "agent", "image": "app:1", "command": ["x"] }]
        });
        let err = apply(&sideloads()[0], &spec).unwrap_err().to_string();
        assert!(
            err.contains("spec.securityContext.supplementalGroups"),
            "{err}"
        );
    }
}

#[test]
fn a_group_id_out_of_range_is_refused() {
    for (field, value) in [
        ("fsGroup", json!(-1)),
        ("supplementalGroups", json!([4294967296_i64])),
    ] {
        let spec = json!({
            "securityContext": { "runAsUser": 1000, field: value },
            "containers": [{ "name": "agent", "image": "app:1", "command": ["x"] }]
        });
        let err = apply(&sideloads()[0], &spec).unwrap_err().to_string();
        assert!(
            err.contains(&format!("spec.securityContext.{field}")),
            "{err}"
        );
    }
}

// --- 3. an already wrapped command ------------------------------------------

fn wrapped(command: &[&str]) -> Value {
    json!({ "containers": [{
        "name": "agent", "image": "app:1", "command": command,
        "securityContext": { "runAsUser": 0 }
    }]})
}

fn agent_capabilities(spec: &Value) -> Value {
    spec["containers"][0]["securityContext"]["capabilities"].clone()
}

#[test]
fn run_as_with_an_equals_sign_is_understood_like_the_two_word_form() {
    for sideload in sideloads() {
        let two_words = apply(
            &sideload,
            &wrapped(&[INSTALLED_BINARY_PATH, "--run-as", "1000", "--", "x"]),
        )
        .unwrap();
        let equals = apply(
            &sideload,
            &wrapped(&[INSTALLED_BINARY_PATH, "--run-as=1000", "--", "x"]),
        )
        .unwrap();
        // The hardening keeps what the privilege drop needs either way.
        assert_eq!(agent_capabilities(&equals), agent_capabilities(&two_words));
        assert_eq!(
            agent_capabilities(&equals)["add"],
            json!(["SETUID", "SETGID", "KILL"]),
            "{equals:#}"
        );
        // The command is left as the template wrote it.
        assert_eq!(
            agent_command(&equals),
            [INSTALLED_BINARY_PATH, "--run-as=1000", "--", "x"]
        );
    }
}

#[test]
fn every_supervisor_flag_is_understood_in_both_forms() {
    let root = apply(
        &sideloads()[0],
        &wrapped(&[INSTALLED_BINARY_PATH, "--", "x"]),
    )
    .unwrap();
    for (before, after) in [
        (vec!["--workdir", "/w"], vec!["--workdir=/w"]),
        (vec!["--groups", "5,6"], vec!["--groups=5,6"]),
        (
            vec!["--signal-target", "child"],
            vec!["--signal-target=child"],
        ),
        (vec!["--kill-grace", "3"], vec!["--kill-grace=3"]),
        (
            vec!["--termination-log", "/dev/termination-log"],
            vec!["--termination-log=/dev/termination-log"],
        ),
        (vec!["--no-new-privs"], vec!["--no-new-privs"]),
    ] {
        for form in [before, after] {
            // A value that looks like --run-as is the previous flag's value,
            // not a user: the workload stays root, nothing is added back.
            let mut command = vec![INSTALLED_BINARY_PATH];
            command.extend(&form);
            command.extend(["--", "x"]);
            let spec = apply(&sideloads()[0], &wrapped(&command)).unwrap();
            assert_eq!(
                agent_capabilities(&spec),
                agent_capabilities(&root),
                "{command:?}"
            );
        }
    }
    // A value that happens to read "--run-as" belongs to --workdir.
    let spec = apply(
        &sideloads()[0],
        &wrapped(&[INSTALLED_BINARY_PATH, "--workdir", "--run-as", "--", "x"]),
    )
    .unwrap();
    assert_eq!(agent_capabilities(&spec), agent_capabilities(&root));
}

#[test]
fn an_unknown_flag_in_a_wrapped_command_is_refused() {
    for command in [
        vec![INSTALLED_BINARY_PATH, "--run-ass=1000", "--", "x"],
        vec![INSTALLED_BINARY_PATH, "-u", "1000", "--", "x"],
        vec![INSTALLED_BINARY_PATH, "--run-as"],
    ] {
        let err = apply(&sideloads()[0], &wrapped(&command)).unwrap_err();
        assert!(
            matches!(err, SideloadError::WrappedCommand { .. }),
            "{command:?}: {err}"
        );
        assert!(
            err.to_string().contains("spec.containers[0].command"),
            "{err}"
        );
    }
}

// --- 4. mount paths compared as paths ---------------------------------------

#[test]
fn paths_are_cleaned_as_runtimes_clean_them() {
    for (raw, clean) in [
        (
            "/opt/./openshell/bin/openshell-sandbox",
            "/opt/openshell/bin/openshell-sandbox",
        ),
        ("/opt/openshell//bin/", "/opt/openshell/bin"),
        ("/opt/openshell/bin/", "/opt/openshell/bin"),
        ("/opt/openshell/x/../bin", "/opt/openshell/bin"),
        ("/../opt/openshell/bin", "/opt/openshell/bin"),
        ("opt/openshell/bin", "/opt/openshell/bin"),
        ("/opt/openshell/bin/..", "/opt/openshell"),
        ("/", "/"),
    ] {
        assert_eq!(clean_path(raw), clean, "{raw}");
    }
}

fn with_mount(mount_path: &str) -> Value {
    json!({
        "volumes": [{ "name": "data", "emptyDir": {} }],
        "containers": [{
            "name": "agent", "image": "app:1", "command": ["x"],
            "volumeMounts": [{ "name": "data", "mountPath": mount_path }]
        }]
    })
}

#[test]
fn a_file_mounted_over_the_binary_through_a_dot_segment_is_refused() {
    for sideload in sideloads() {
        let err = apply(
            &sideload,
            &with_mount("/opt/./openshell/bin/openshell-sandbox"),
        )
        .unwrap_err();
        assert!(matches!(err, SideloadError::MountConflict { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("/opt/./openshell/bin/openshell-sandbox"),
            "{err}"
        );
    }
}

#[test]
fn a_mount_with_a_double_slash_is_refused() {
    for sideload in sideloads() {
        let err = apply(
            &sideload,
            &with_mount("/opt/openshell//bin/openshell-sandbox"),
        )
        .unwrap_err();
        assert!(matches!(err, SideloadError::MountConflict { .. }), "{err}");
    }
}

#[test]
fn a_mount_with_a_trailing_slash_is_refused() {
    for sideload in sideloads() {
        let err = apply(&sideload, &with_mount("/opt/openshell/bin/")).unwrap_err();
        assert!(matches!(err, SideloadError::MountConflict { .. }), "{err}");
    }
}

#[test]
fn a_mount_through_dot_dot_segments_is_refused() {
    for sideload in sideloads() {
        for path in [
            "/opt/openshell/lib/../bin/openshell-sandbox",
            "/tmp/../opt/openshell/bin",
        ] {
            let err = apply(&sideload, &with_mount(path)).unwrap_err();
            assert!(
                matches!(err, SideloadError::MountConflict { .. }),
                "{path}: {err}"
            );
        }
        // `..` that leaves the mount path ends above it: allowed, as a mount
        // at /opt/openshell is.
        assert!(apply(&sideload, &with_mount("/opt/openshell/bin/..")).is_ok());
    }
}

#[test]
fn the_drivers_own_mount_spelled_differently_is_refused() {
    for sideload in sideloads() {
        let mut spec =
            json!({ "containers": [{ "name": "agent", "image": "app:1", "command": ["x"] }]});
        spec["containers"][0]["volumeMounts"] = json!([{
            "name": "openshell-supervisor-bin",
            "mountPath": format!("{MOUNT_PATH}/"),
            "readOnly": true
        }]);
        let err = apply(&sideload, &spec).unwrap_err();
        assert!(matches!(err, SideloadError::MountConflict { .. }), "{err}");
    }
}

// --- 5. references ----------------------------------------------------------

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn a_tag_beside_a_digest_is_dropped_from_the_supervisor_image() {
    let image = SupervisorImage::parse(&format!("registry.example:5000/sup:1.0@{DIGEST}")).unwrap();
    assert_eq!(
        image.as_str(),
        format!("registry.example:5000/sup@{DIGEST}")
    );
    for method in ["image-volume", "init-container"] {
        let pod = render_json(
            &[
                "--sandbox-image",
                "app:1",
                "--supervisor-sideload-method",
                method,
                "--supervisor-image",
                &format!("registry.example:5000/sup:1.0@{DIGEST}"),
            ],
            &[],
        );
        let text = pod.to_string();
        assert!(!text.contains(":1.0@"), "{pod:#}");
        assert!(
            text.contains(&format!("registry.example:5000/sup@{DIGEST}")),
            "{pod:#}"
        );
    }
}

#[test]
fn a_tag_beside_a_digest_is_dropped_from_the_sandbox_image() {
    let pod = render_json(&["--sandbox-image", &format!("python:3.13@{DIGEST}")], &[]);
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        format!("python@{DIGEST}")
    );
    // The template's own image gets the same rewrite.
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("pod.yaml");
    std::fs::write(
        &template,
        format!("spec:\n  containers:\n  - name: agent\n    image: \"python:3.13@{DIGEST}\"\n"),
    )
    .unwrap();
    let pod = render_json(&["--template", template.to_str().unwrap()], &[]);
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        format!("python@{DIGEST}")
    );
    // And every other container's, sidecars and init containers alike.
    std::fs::write(
        &template,
        format!(
            "spec:\n  initContainers:\n  - name: fetch\n    image: \"busybox:1.36@{DIGEST}\"\n  containers:\n  - name: agent\n    image: app:1\n  - name: sidecar\n    image: \"envoy:1.30@{DIGEST}\"\n"
        ),
    )
    .unwrap();
    let pod = render_json(&["--template", template.to_str().unwrap()], &[]);
    let text = pod.to_string();
    assert!(text.contains(&format!("\"busybox@{DIGEST}\"")), "{pod:#}");
    assert!(text.contains(&format!("\"envoy@{DIGEST}\"")), "{pod:#}");
    assert!(
        !text.contains(":1.36@") && !text.contains(":1.30@"),
        "{pod:#}"
    );
}

#[test]
fn an_uppercase_digest_is_refused() {
    let upper = DIGEST.to_ascii_uppercase().replace("SHA256", "sha256");
    for args in [
        vec![
            "--sandbox-image".to_string(),
            "app:1".to_string(),
            "--supervisor-image".to_string(),
            format!("registry.example/sup@{upper}"),
        ],
        vec!["--sandbox-image".to_string(), format!("python@{upper}")],
    ] {
        let mut full = vec!["render"];
        full.extend(args.iter().map(String::as_str));
        let err = run_err(&full, &[]);
        assert!(
            err.contains("uppercase") || err.contains("invalid"),
            "{err}"
        );
        assert!(
            err.contains(&upper),
            "the message names the reference: {err}"
        );
    }
}

// --- 6. template YAML -------------------------------------------------------

fn template_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.yaml");
    std::fs::write(&path, text).unwrap();
    let err = run_err(
        &[
            "render",
            "--template",
            path.to_str().unwrap(),
            "--sandbox-image",
            "app:1",
        ],
        &[],
    );
    assert!(
        err.contains(path.to_str().unwrap()) || err.contains("template"),
        "{err}"
    );
    err
}

fn template_pod(text: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.yaml");
    std::fs::write(&path, text).unwrap();
    render_json(
        &[
            "--template",
            path.to_str().unwrap(),
            "--sandbox-image",
            "app:1",
        ],
        &[],
    )
}

#[test]
fn a_duplicate_privileged_key_is_an_error() {
    let err = template_error(
        "spec:\n  containers:\n  - name: agent\n    securityContext:\n      privileged: false\n      privileged: true\n",
    );
    assert!(
        err.contains("duplicate") && err.contains("privileged"),
        "{err}"
    );
}

#[test]
fn a_second_containers_list_is_an_error() {
    let err = template_error(
        "spec:\n  containers:\n  - name: agent\n  containers:\n  - name: other\n    image: evil:1\n",
    );
    assert!(
        err.contains("duplicate") && err.contains("containers"),
        "{err}"
    );
}

#[test]
fn merge_keys_are_applied() {
    let pod = template_pod(
        "spec:\n  containers:\n  - &base\n    name: agent\n    env:\n    - name: A\n      value: a\n  - <<: *base\n    name: sidecar\n",
    );
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers[1]["name"], "sidecar");
    assert_eq!(containers[1]["env"], json!([{ "name": "A", "value": "a" }]));
    assert!(!pod.to_string().contains("<<"), "{pod:#}");
}

#[test]
fn a_merge_key_that_cannot_be_applied_is_refused() {
    // A scalar, a list holding a scalar, a list holding a list.
    for text in [
        "spec:\n  <<: 5\n  containers:\n  - name: agent\n",
        "spec:\n  <<: [5]\n  containers:\n  - name: agent\n",
        "spec:\n  <<: [[{restartPolicy: Always}]]\n  containers:\n  - name: agent\n",
    ] {
        let err = template_error(text);
        assert!(err.contains("<<") || err.contains("merge"), "{err}");
    }
}

#[test]
fn ephemeral_containers_are_refused() {
    let err = template_error(
        "spec:\n  containers:\n  - name: agent\n  ephemeralContainers:\n  - name: debug\n    image: busybox\n",
    );
    assert!(err.contains("spec.ephemeralContainers"), "{err}");
}
