//! Applying the sideload to pod specs: what each method adds, what the agent
//! container becomes, idempotence, and every conflict the driver refuses.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use openshell_contract::{
    INIT_CONTAINER_COMMAND, INIT_CONTAINER_NAME, INSTALLED_BINARY_PATH, MOUNT_PATH, VOLUME_NAME,
    WORKDIR_VOLUME_NAME,
};
use openshell_driver_kubernetes::{
    PullPolicy, SecurityProfile, Sideload, SideloadError, SupervisorImage, SupervisorSideloadMethod,
};
use serde_json::{Value, json};

/// The image volume of DESIGN.md, character for character (two-space
/// indent, key order: name, image; reference, pullPolicy).
const DESIGN_VOLUME_JSON: &str = r#"{
  "name": "openshell-supervisor-bin",
  "image": {
    "reference": "openshell/supervisor:latest",
    "pullPolicy": "IfNotPresent"
  }
}"#;

fn sideload(method: SupervisorSideloadMethod) -> Sideload {
    Sideload {
        method,
        image: SupervisorImage::parse("registry.example/openshell/supervisor:1.0").unwrap(),
        pull_policy: PullPolicy::IfNotPresent,
        image_pull_secrets: Vec::new(),
        security: SecurityProfile::Hardened,
    }
}

fn image_volume() -> Sideload {
    sideload(SupervisorSideloadMethod::ImageVolume)
}

fn init_container() -> Sideload {
    sideload(SupervisorSideloadMethod::InitContainer)
}

fn both() -> [Sideload; 2] {
    [image_volume(), init_container()]
}

fn spec_with(container: Value) -> Value {
    json!({ "containers": [container] })
}

fn agent(command: &[&str]) -> Value {
    json!({ "name": "agent", "image": "python:3.13", "command": command })
}

fn applied(sideload: &Sideload, spec: &Value) -> Value {
    let mut spec = spec.clone();
    sideload.apply(&mut spec).unwrap();
    spec
}

fn refused(sideload: &Sideload, spec: &Value) -> SideloadError {
    let mut work = spec.clone();
    let err = sideload.apply(&mut work).unwrap_err();
    assert_eq!(&work, spec, "a refused spec must be left as it was");
    err
}

#[test]
fn image_volume_json_is_exactly_the_one_in_design_md() {
    let sideload = Sideload {
        method: SupervisorSideloadMethod::ImageVolume,
        image: SupervisorImage::parse("openshell/supervisor:latest").unwrap(),
        pull_policy: PullPolicy::IfNotPresent,
        image_pull_secrets: Vec::new(),
        security: SecurityProfile::Hardened,
    };
    let text = serde_json::to_string_pretty(&sideload.volume()).unwrap();
    assert_eq!(text, DESIGN_VOLUME_JSON);
    // And that is what a pod gets.
    let spec = applied(&sideload, &spec_with(agent(&["python"])));
    assert_eq!(
        serde_json::to_string_pretty(&spec["volumes"][0]).unwrap(),
        DESIGN_VOLUME_JSON
    );
}

#[test]
fn image_volume_adds_the_volume_and_no_init_container_or_empty_dir() {
    let spec = applied(&image_volume(), &spec_with(agent(&["python"])));
    // The supervisor's image volume, and the default workdir's emptyDir.
    assert_eq!(
        spec["volumes"],
        json!([{
            "name": VOLUME_NAME,
            "image": {
                "reference": "registry.example/openshell/supervisor:1.0",
                "pullPolicy": "IfNotPresent",
            },
        }, { "name": WORKDIR_VOLUME_NAME, "emptyDir": {} }])
    );
    assert!(spec.get("initContainers").is_none(), "{spec:#}");
}

#[test]
fn init_container_adds_an_empty_dir_and_the_copy_self_init_container() {
    let spec = applied(&init_container(), &spec_with(agent(&["python"])));
    assert_eq!(
        spec["volumes"],
        json!([
            { "name": VOLUME_NAME, "emptyDir": {} },
            { "name": WORKDIR_VOLUME_NAME, "emptyDir": {} }
        ])
    );
    let init = &spec["initContainers"];
    assert_eq!(init.as_array().unwrap().len(), 1);
    let init = &init[0];
    assert_eq!(init["name"], INIT_CONTAINER_NAME);
    assert_eq!(init["image"], "registry.example/openshell/supervisor:1.0");
    assert_eq!(init["imagePullPolicy"], "IfNotPresent");
    assert_eq!(init["command"], json!(INIT_CONTAINER_COMMAND));
    assert_eq!(
        init["command"],
        json!([
            "/openshell-sandbox",
            "copy-self",
            "/opt/openshell/bin/openshell-sandbox"
        ])
    );
    assert_eq!(init["securityContext"]["runAsUser"], 65532);
    // Read-write: no readOnly, or readOnly false.
    assert_eq!(
        init["volumeMounts"],
        json!([{ "name": VOLUME_NAME, "mountPath": MOUNT_PATH }])
    );
    assert!(init.get("args").is_none());
}

#[test]
fn every_method_says_what_it_renders() {
    // The match has no wildcard arm: a new method fails to compile here
    // until its expected volume and init container are written down.
    for method in SupervisorSideloadMethod::ALL {
        let sideload = sideload(method);
        let spec = applied(&sideload, &spec_with(agent(&["python"])));
        let volume = &spec["volumes"][0];
        assert_eq!(volume["name"], VOLUME_NAME, "{method}: {spec:#}");
        let init = spec.get("initContainers").cloned();
        let (volume_kind, init_container) = match method {
            SupervisorSideloadMethod::ImageVolume => ("image", false),
            SupervisorSideloadMethod::InitContainer => ("emptyDir", true),
        };
        assert!(volume.get(volume_kind).is_some(), "{method}: {spec:#}");
        assert_eq!(volume.as_object().unwrap().len(), 2, "{method}: {spec:#}");
        assert_eq!(sideload.volume(), *volume, "{method}");
        assert_eq!(
            init.is_some_and(|list| list[0]["name"] == INIT_CONTAINER_NAME),
            init_container,
            "{method}: {spec:#}"
        );
        assert_eq!(
            sideload.init_container(None).is_some(),
            init_container,
            "{method}"
        );
    }
}

#[test]
fn init_container_goes_before_the_templates_own_init_containers() {
    let mut spec = spec_with(agent(&["python"]));
    spec["initContainers"] = json!([{ "name": "fetch-data", "image": "busybox" }]);
    let spec = applied(&init_container(), &spec);
    let names: Vec<&str> = spec["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [INIT_CONTAINER_NAME, "fetch-data"]);
}

#[test]
fn agent_runs_the_supervisor_with_its_original_command_and_args() {
    for sideload in both() {
        let mut container = agent(&["python", "-u"]);
        container["args"] = json!(["agent.py", "--verbose"]);
        let spec = applied(&sideload, &spec_with(container));
        let agent = &spec["containers"][0];
        assert_eq!(
            agent["command"],
            json!([
                INSTALLED_BINARY_PATH,
                "--workdir",
                "/sandbox",
                "--",
                "python",
                "-u",
                "agent.py",
                "--verbose"
            ])
        );
        assert!(agent.get("args").is_none(), "args moved into the command");
        assert_eq!(agent["securityContext"]["runAsUser"], 0);
        assert_eq!(agent["terminationMessagePolicy"], "FallbackToLogsOnError");
        assert_eq!(
            agent["volumeMounts"],
            json!([
                { "name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": true },
                { "name": WORKDIR_VOLUME_NAME, "mountPath": "/sandbox" }
            ])
        );
        // Untouched.
        assert_eq!(agent["image"], "python:3.13");
    }
}

#[test]
fn agent_without_a_command_runs_the_idle_supervisor() {
    for sideload in both() {
        let spec = applied(
            &sideload,
            &spec_with(json!({ "name": "agent", "image": "alpine" })),
        );
        assert_eq!(
            spec["containers"][0]["command"],
            json!([INSTALLED_BINARY_PATH])
        );
        // An empty command is no command, as for Kubernetes.
        let spec = applied(
            &sideload,
            &spec_with(json!({ "name": "agent", "image": "alpine", "command": [] })),
        );
        assert_eq!(
            spec["containers"][0]["command"],
            json!([INSTALLED_BINARY_PATH])
        );
    }
}

#[test]
fn the_container_named_agent_is_chosen_over_the_first() {
    let spec = json!({ "containers": [
        { "name": "sidecar", "image": "envoy", "command": ["envoy"] },
        agent(&["python"]),
    ]});
    let spec = applied(&image_volume(), &spec);
    assert_eq!(
        spec["containers"][0],
        json!({ "name": "sidecar", "image": "envoy", "command": ["envoy"] })
    );
    assert_eq!(spec["containers"][1]["command"][0], INSTALLED_BINARY_PATH);
}

#[test]
fn without_an_agent_container_the_first_is_used() {
    let spec = json!({ "containers": [
        { "name": "main", "image": "node:22", "command": ["node"] },
        { "name": "sidecar", "image": "envoy" },
    ]});
    let spec = applied(&image_volume(), &spec);
    assert_eq!(spec["containers"][0]["command"][0], INSTALLED_BINARY_PATH);
    assert_eq!(
        spec["containers"][1],
        json!({ "name": "sidecar", "image": "envoy" })
    );
}

#[test]
fn a_non_root_user_of_the_template_becomes_the_supervisors_run_as() {
    let mut container = agent(&["python"]);
    container["securityContext"] = json!({ "runAsUser": 1000, "runAsGroup": 2000 });
    let spec = applied(&image_volume(), &spec_with(container));
    let rendered = &spec["containers"][0];
    assert_eq!(
        rendered["command"],
        json!([
            INSTALLED_BINARY_PATH,
            "--workdir",
            "/sandbox",
            "--run-as",
            "1000:2000",
            "--",
            "python"
        ])
    );
    assert_eq!(rendered["securityContext"]["runAsUser"], 0);

    // Pod-level user, no group: the supervisor's GID defaults to the UID.
    let mut spec = spec_with(agent(&["python"]));
    spec["securityContext"] = json!({ "runAsUser": 1001 });
    let spec = applied(&image_volume(), &spec);
    assert_eq!(
        spec["containers"][0]["command"],
        json!([
            INSTALLED_BINARY_PATH,
            "--workdir",
            "/sandbox",
            "--run-as",
            "1001",
            "--",
            "python"
        ])
    );
    assert_eq!(
        spec["securityContext"],
        json!({ "runAsUser": 1001, "seccompProfile": { "type": "RuntimeDefault" } }),
        "pod level: only the seccomp profile is added"
    );
    assert_eq!(spec["containers"][0]["securityContext"]["runAsUser"], 0);
}

#[test]
fn pull_secrets_are_kept_and_added_without_duplicates() {
    for mut sideload in both() {
        sideload.image_pull_secrets = vec!["supervisor-pull".into(), "team-pull".into()];
        let mut spec = spec_with(agent(&["python"]));
        spec["imagePullSecrets"] = json!([{ "name": "team-pull" }, { "name": "agent-pull" }]);
        let spec = applied(&sideload, &spec);
        assert_eq!(
            spec["imagePullSecrets"],
            json!([{ "name": "team-pull" }, { "name": "agent-pull" }, { "name": "supervisor-pull" }])
        );
    }
    // None given, none there: no empty list is added.
    let spec = applied(&image_volume(), &spec_with(agent(&["python"])));
    assert!(spec.get("imagePullSecrets").is_none());
}

#[test]
fn applying_twice_changes_nothing_the_second_time() {
    let mut with_user = agent(&["python", "agent.py"]);
    with_user["securityContext"] = json!({ "runAsUser": 1000 });
    with_user["args"] = json!(["--fast"]);
    let mut with_init = spec_with(agent(&["node"]));
    with_init["initContainers"] = json!([{ "name": "fetch", "image": "busybox" }]);
    with_init["imagePullSecrets"] = json!([{ "name": "a" }]);
    let templates = [
        spec_with(agent(&["python"])),
        spec_with(json!({ "name": "agent", "image": "alpine" })),
        spec_with(with_user),
        with_init,
    ];
    for mut sideload in both() {
        sideload.image_pull_secrets = vec!["a".into(), "b".into()];
        for template in &templates {
            let once = applied(&sideload, template);
            let twice = applied(&sideload, &once);
            assert_eq!(twice, once, "{} on {template}", sideload.method);
            assert_eq!(twice.to_string(), once.to_string(), "key order too");
        }
    }
}

#[test]
fn a_failed_apply_leaves_the_spec_as_it_was() {
    // `refused` checks it for every error below; this one fails late, after
    // the volume would have been added.
    let mut spec = spec_with(json!({ "name": "agent", "image": "x", "args": ["a"] }));
    spec["volumes"] = json!([{ "name": "data", "emptyDir": {} }]);
    let err = refused(&image_volume(), &spec);
    assert!(
        matches!(err, SideloadError::ArgsWithoutCommand { .. }),
        "{err}"
    );
}

#[test]
fn no_containers_is_an_error() {
    for spec in [
        json!({}),
        json!({ "containers": [] }),
        json!({ "containers": null }),
    ] {
        let err = refused(&image_volume(), &spec);
        assert_eq!(
            err.to_string(),
            "the pod template has no containers (spec.containers is missing or empty): the sandbox needs an agent container"
        );
    }
}

#[test]
fn a_volume_of_the_same_name_and_another_kind_is_a_conflict() {
    let mut spec = spec_with(agent(&["python"]));
    spec["volumes"] =
        json!([{ "name": "data", "emptyDir": {} }, { "name": VOLUME_NAME, "emptyDir": {} }]);
    let err = refused(&image_volume(), &spec);
    assert_eq!(
        err.to_string(),
        r#"spec.volumes[1]: a volume named openshell-supervisor-bin is already there and differs from the one the image-volume method needs: found {"name":"openshell-supervisor-bin","emptyDir":{}}, expected {"name":"openshell-supervisor-bin","image":{"reference":"registry.example/openshell/supervisor:1.0","pullPolicy":"IfNotPresent"}}; remove it from the template (or render with the method it was made for)"#
    );
}

#[test]
fn a_volume_of_the_same_name_with_another_reference_is_a_conflict() {
    let mut spec = spec_with(agent(&["python"]));
    spec["volumes"] = json!([{ "name": VOLUME_NAME, "image": {
        "reference": "registry.example/openshell/supervisor:0.9", "pullPolicy": "IfNotPresent" } }]);
    let err = refused(&image_volume(), &spec);
    let text = err.to_string();
    assert!(
        text.starts_with(
            "spec.volumes[0]: a volume named openshell-supervisor-bin is already there"
        ),
        "{text}"
    );
    assert!(text.contains("supervisor:0.9"), "{text}");
    assert!(text.contains("supervisor:1.0"), "{text}");
}

#[test]
fn an_image_volume_of_the_same_name_is_a_conflict_for_init_container() {
    let spec = applied(&image_volume(), &spec_with(agent(&["python"])));
    let err = refused(&init_container(), &spec);
    assert!(
        err.to_string().starts_with(
            "spec.volumes[0]: a volume named openshell-supervisor-bin is already there and differs from the one the init-container method needs"
        ),
        "{err}"
    );
}

#[test]
fn another_volume_mounted_at_the_mount_path_is_a_conflict() {
    let mut container = agent(&["python"]);
    container["volumeMounts"] = json!([{ "name": "tools", "mountPath": "/opt/openshell/bin/" }]);
    let err = refused(&image_volume(), &spec_with(container));
    assert_eq!(
        err.to_string(),
        r#"spec.containers[0].volumeMounts[0]: container "agent" already mounts volume "tools" at /opt/openshell/bin/, which would mask or be masked by the supervisor's volume openshell-supervisor-bin (read-only at /opt/openshell/bin); mount it elsewhere"#
    );
}

#[test]
fn a_mount_below_the_mount_path_is_a_conflict() {
    let mut container = agent(&["python"]);
    container["volumeMounts"] = json!([{ "name": "cfg", "mountPath": "/opt/openshell/bin/conf" }]);
    let err = refused(&init_container(), &spec_with(container));
    assert!(
        err.to_string().starts_with(
            r#"spec.containers[0].volumeMounts[0]: container "agent" already mounts volume "cfg" at /opt/openshell/bin/conf"#
        ),
        "{err}"
    );
}

#[test]
fn a_read_write_mount_of_the_supervisor_volume_is_a_conflict() {
    let mut container = agent(&["python"]);
    container["volumeMounts"] = json!([{ "name": VOLUME_NAME, "mountPath": MOUNT_PATH }]);
    let err = refused(&image_volume(), &spec_with(container));
    assert!(
        err.to_string().contains(
            r#"already mounts volume "openshell-supervisor-bin" differently ({"name":"openshell-supervisor-bin","mountPath":"/opt/openshell/bin"})"#
        ),
        "{err}"
    );
}

#[test]
fn a_mount_above_the_mount_path_is_kept() {
    let mut container = agent(&["python"]);
    container["volumeMounts"] = json!([{ "name": "opt", "mountPath": "/opt" }, { "name": "x", "mountPath": "/opt/openshell/binaries" }]);
    let spec = applied(&image_volume(), &spec_with(container));
    assert_eq!(
        spec["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn an_init_container_of_the_same_name_that_differs_is_a_conflict() {
    let mut spec = spec_with(agent(&["python"]));
    spec["initContainers"] = json!([{ "name": INIT_CONTAINER_NAME, "image": "registry.example/openshell/supervisor:0.9" }]);
    let err = refused(&init_container(), &spec);
    let text = err.to_string();
    assert!(
        text.starts_with(
            r#"spec.initContainers[0]: an init container named openshell-supervisor-install is already there and differs from the one the init-container method needs: found {"name":"openshell-supervisor-install","image":"registry.example/openshell/supervisor:0.9"}, expected {"name":"openshell-supervisor-install","image":"registry.example/openshell/supervisor:1.0""#
        ),
        "{text}"
    );
}

#[test]
fn the_install_init_container_is_refused_for_image_volume() {
    let spec = applied(&init_container(), &spec_with(agent(&["python"])));
    let mut without_volume = spec.clone();
    without_volume.as_object_mut().unwrap().remove("volumes");
    let err = refused(&image_volume(), &without_volume);
    assert_eq!(
        err.to_string(),
        "spec.initContainers[0]: init container openshell-supervisor-install is there, but the image-volume method uses no init container (was the template rendered with init-container?); remove it from the template"
    );
}

#[test]
fn args_without_a_command_are_refused() {
    let err = refused(
        &image_volume(),
        &spec_with(json!({ "name": "agent", "image": "python", "args": ["agent.py"] })),
    );
    assert_eq!(
        err.to_string(),
        r#"spec.containers[0]: container "agent" has args but no command; the supervisor replaces the image's entrypoint, which the driver cannot see, so give the whole command in the template (command: [...])"#
    );
}

#[test]
fn run_as_non_root_on_the_pod_is_refused() {
    let mut spec = spec_with(agent(&["python"]));
    spec["securityContext"] = json!({ "runAsNonRoot": true });
    let err = refused(&image_volume(), &spec);
    assert_eq!(
        err.to_string(),
        "spec.securityContext.runAsNonRoot is true, but the supervisor must start as UID 0 (it starts the workload as the template's runAsUser itself, with --run-as); remove runAsNonRoot from the template"
    );
}

#[test]
fn run_as_non_root_on_the_agent_is_refused() {
    let mut container = agent(&["python"]);
    container["securityContext"] = json!({ "runAsNonRoot": true, "runAsUser": 1000 });
    let err = refused(&init_container(), &spec_with(container));
    assert!(
        err.to_string()
            .starts_with("spec.containers[0].securityContext.runAsNonRoot is true, but the supervisor must start as UID 0"),
        "{err}"
    );
    // The container may lift the pod's setting for itself.
    let mut container = agent(&["python"]);
    container["securityContext"] = json!({ "runAsNonRoot": false });
    let mut spec = spec_with(container);
    spec["securityContext"] = json!({ "runAsNonRoot": true });
    applied(&init_container(), &spec);
}

#[test]
fn a_non_root_user_without_a_command_is_refused() {
    let err = refused(
        &image_volume(),
        &spec_with(
            json!({ "name": "agent", "image": "alpine", "securityContext": { "runAsUser": 1000 } }),
        ),
    );
    assert_eq!(
        err.to_string(),
        r#"spec.containers[0]: container "agent" runs as UID 1000 but has no command: the supervisor starts as UID 0 and its idle mode starts no workload to run as UID 1000; give the command to run, or drop runAsUser"#
    );
}

#[test]
fn a_supervisor_command_as_another_user_is_refused() {
    let mut spec = applied(&image_volume(), &spec_with(agent(&["python"])));
    spec["containers"][0]["securityContext"]["runAsUser"] = json!(1000);
    let err = refused(&image_volume(), &spec);
    assert!(
        err.to_string().starts_with(&format!(
            r#"spec.containers[0]: container "agent" already runs {INSTALLED_BINARY_PATH} but as UID 1000"#
        )),
        "{err}"
    );
}

#[test]
fn wrong_json_types_are_named_with_their_path() {
    let cases = [
        (
            json!({ "containers": {} }),
            "spec.containers is an object (expected an array)",
        ),
        (
            json!({ "containers": ["agent"] }),
            "spec.containers[0] is a string (expected an object)",
        ),
        (
            json!({ "containers": [agent(&["python"])], "volumes": {} }),
            "spec.volumes is an object (expected an array)",
        ),
        (
            json!({ "containers": [{ "name": "agent", "command": "python" }] }),
            "spec.containers[0].command is a string (expected an array)",
        ),
        (
            json!({ "containers": [{ "name": "agent", "command": ["python", 3] }] }),
            "spec.containers[0].command[1] is a number (expected a string)",
        ),
        (
            json!({ "containers": [{ "name": "agent", "securityContext": { "runAsUser": "0" } }] }),
            "spec.containers[0].securityContext.runAsUser is a string (expected an integer)",
        ),
        (json!([]), "spec is an array (expected an object)"),
    ];
    for (spec, message) in cases {
        let err = refused(&image_volume(), &spec);
        assert_eq!(err.to_string(), message, "{spec}");
    }
}

// ---- the security profile ----

fn with_profile(mut sideload: Sideload, security: SecurityProfile) -> Sideload {
    sideload.security = security;
    sideload
}

#[test]
fn the_hardened_init_container_meets_pod_security_restricted() {
    let spec = applied(&init_container(), &spec_with(agent(&["python"])));
    let init = &spec["initContainers"][0];
    assert_eq!(
        init["securityContext"],
        json!({
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        })
    );
    // Requests and a memory limit; no CPU limit (it would only throttle the
    // copy).
    assert_eq!(
        init["resources"],
        json!({
            "requests": { "cpu": "10m", "memory": "16Mi" },
            "limits": { "memory": "64Mi" },
        })
    );
    assert_eq!(
        spec["securityContext"],
        json!({ "seccompProfile": { "type": "RuntimeDefault" } })
    );
}

#[test]
fn the_init_container_runs_as_the_pods_non_root_user() {
    let mut spec = spec_with(agent(&["python"]));
    spec["securityContext"] = json!({ "runAsUser": 1000, "runAsGroup": 3000 });
    let spec = applied(&init_container(), &spec);
    let context = &spec["initContainers"][0]["securityContext"];
    assert_eq!(
        (&context["runAsUser"], &context["runAsGroup"]),
        (&json!(1000), &json!(3000))
    );
    // A root pod user does not count: the init container stays non-root.
    let mut spec = spec_with(agent(&["python"]));
    spec["securityContext"] = json!({ "runAsUser": 0 });
    let spec = applied(&init_container(), &spec);
    assert_eq!(
        spec["initContainers"][0]["securityContext"]["runAsUser"],
        65532
    );
}

#[test]
fn the_agent_drops_every_capability_when_the_workload_runs_as_root() {
    for sideload in both() {
        let spec = applied(&sideload, &spec_with(agent(&["python"])));
        assert_eq!(
            spec["containers"][0]["securityContext"],
            json!({
                "runAsUser": 0,
                "allowPrivilegeEscalation": false,
                "capabilities": { "drop": ["ALL"] },
            })
        );
    }
}

#[test]
fn the_agent_keeps_what_the_supervisor_needs_to_run_the_workload_as_another_user() {
    let mut container = agent(&["python"]);
    container["securityContext"] = json!({ "runAsUser": 1000 });
    let spec = applied(&image_volume(), &spec_with(container));
    assert_eq!(
        spec["containers"][0]["securityContext"],
        json!({
            "runAsUser": 0,
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"], "add": ["SETUID", "SETGID", "KILL"] },
        })
    );
    // Applying again (a rendered pod as template) changes nothing.
    assert_eq!(applied(&image_volume(), &spec), spec);
}

#[test]
fn the_templates_security_settings_win() {
    let mut spec = spec_with(agent(&["python"]));
    spec["securityContext"] =
        json!({ "seccompProfile": { "type": "Localhost", "localhostProfile": "sandbox.json" } });
    spec["containers"][0]["securityContext"] = json!({
        "allowPrivilegeEscalation": true,
        "capabilities": { "add": ["NET_ADMIN"] },
    });
    spec["containers"][0]["resources"] = json!({ "limits": { "cpu": "2" } });
    let spec = applied(&image_volume(), &spec);
    assert_eq!(
        spec["securityContext"]["seccompProfile"],
        json!({ "type": "Localhost", "localhostProfile": "sandbox.json" })
    );
    assert_eq!(
        spec["containers"][0]["securityContext"],
        json!({
            "allowPrivilegeEscalation": true,
            "capabilities": { "add": ["NET_ADMIN"] },
            "runAsUser": 0,
        })
    );
    assert_eq!(
        spec["containers"][0]["resources"],
        json!({ "limits": { "cpu": "2" } })
    );
}

#[test]
fn a_template_dropping_a_capability_the_supervisor_needs_is_refused() {
    let mut container = agent(&["python"]);
    container["securityContext"] = json!({
        "runAsUser": 1000,
        "capabilities": { "drop": ["ALL"], "add": ["SETUID", "SETGID"] },
    });
    let err = refused(&image_volume(), &spec_with(container));
    assert_eq!(
        err.to_string(),
        "spec.containers[0].securityContext.capabilities.drop drops KILL, which the supervisor needs to start the workload as UID 1000 (--run-as); add KILL to spec.containers[0].securityContext.capabilities.add (the supervisor needs SETUID, SETGID, KILL), or drop runAsUser from the template"
    );
    // Naming one by one (with the CAP_ prefix) counts too.
    let mut container = agent(&["python"]);
    container["securityContext"] =
        json!({ "runAsUser": 1000, "capabilities": { "drop": ["CAP_SETUID"] } });
    assert!(matches!(
        refused(&image_volume(), &spec_with(container)),
        SideloadError::CapabilityDropped { capability, .. } if capability == "SETUID"
    ));
    // Without another user the supervisor needs none of them.
    let mut container = agent(&["python"]);
    container["securityContext"] = json!({ "capabilities": { "drop": ["ALL"] } });
    applied(&image_volume(), &spec_with(container));
}

#[test]
fn the_templates_init_container_may_set_its_user_and_resources() {
    let mut spec = spec_with(agent(&["python"]));
    // An OpenShift namespace assigns the UID itself: a securityContext
    // without runAsUser replaces the driver's, and so do other resources.
    spec["initContainers"] = json!([{
        "name": INIT_CONTAINER_NAME,
        "securityContext": {
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        },
        "resources": { "requests": { "cpu": "50m", "memory": "32Mi" } },
    }]);
    let spec = applied(&init_container(), &spec);
    let init = &spec["initContainers"][0];
    assert_eq!(
        init["securityContext"],
        json!({
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        })
    );
    assert_eq!(
        init["resources"],
        json!({ "requests": { "cpu": "50m", "memory": "32Mi" } })
    );
    assert_eq!(init["command"], json!(INIT_CONTAINER_COMMAND));
    assert_eq!(applied(&init_container(), &spec), spec);
}

#[test]
fn a_template_init_container_running_as_root_while_non_root_is_refused() {
    let mut spec = spec_with(agent(&["python"]));
    spec["initContainers"] = json!([{
        "name": INIT_CONTAINER_NAME,
        "securityContext": { "runAsUser": 0, "runAsNonRoot": true },
    }]);
    let err = refused(&init_container(), &spec);
    assert_eq!(
        err.to_string(),
        "spec.initContainers[0].securityContext.runAsUser: is 0 while runAsNonRoot is true, which Kubernetes refuses to start; set a non-root runAsUser, or leave runAsNonRoot out to run copy-self as root"
    );
}

#[test]
fn a_template_init_container_with_another_command_is_still_a_conflict() {
    let mut spec = spec_with(agent(&["python"]));
    spec["initContainers"] = json!([{
        "name": INIT_CONTAINER_NAME,
        "command": ["/bin/cp", "a", "b"],
        "resources": {},
    }]);
    assert!(matches!(
        refused(&init_container(), &spec),
        SideloadError::InitContainerConflict { .. }
    ));
}

#[test]
fn the_none_profile_adds_no_hardening() {
    let sideload = with_profile(init_container(), SecurityProfile::None);
    let mut container = agent(&["python"]);
    container["securityContext"] = json!({ "runAsUser": 1000 });
    let spec = applied(&sideload, &spec_with(container));
    assert!(spec.get("securityContext").is_none(), "{spec:#}");
    assert_eq!(
        spec["initContainers"][0]["securityContext"],
        json!({ "runAsUser": 0 })
    );
    assert!(spec["initContainers"][0].get("resources").is_none());
    assert_eq!(
        spec["containers"][0]["securityContext"],
        json!({ "runAsUser": 0 })
    );
}
