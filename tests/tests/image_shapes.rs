//! Sandboxes start on plain public image shapes, by both methods, and the
//! workload runs as the kubelet would run the container without the
//! sideload.
//!
//! The oracle: the same pod template run WITHOUT the sideload (podman run
//! with the pod's user, group, fsGroup and supplementalGroups, as a kubelet
//! asks a CRI runtime) and WITH the rendered sideload (image-volume as a
//! `podman run --mount type=image`, init-container as `podman kube play` of
//! the rendered YAML). The workload's working directory, uid, gid and the
//! `Groups:` line of /proc/self/status must match, except the working
//! directory where the driver's `/sandbox` default applies (no workingDir
//! in the template).
//!
//! One difference between podman and containerd is made up for: containerd
//! (Kubernetes' default `Merge` supplemental groups policy) adds the
//! image's /etc/group memberships of the user also when runAsGroup is set,
//! podman only without a group, so the baseline passes them as
//! `--group-add` ([`openshell_e2e::image_group_memberships`]).

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use openshell_contract::DEFAULT_WORKDIR;
use openshell_testsupport::image_shapes::SHAPE_BUSYBOX;
use openshell_testsupport::{Containers, ImageShape};
use serde_json::{Value, json};

const SUPERVISOR: &str = "localhost/openshell/supervisor:e2e";

/// What the workload reports: its working directory and the Uid, Gid and
/// Groups lines of its own status (read by the shell itself, so the lines
/// are the workload's and not a helper's).
const PROBE: &str = "echo probe-cwd=$(/bin/busybox readlink /proc/self/cwd); \
     while read key value; do case $key in Uid:|Gid:|Groups:) echo \"probe-$key $value\";; esac; done < /proc/self/status";

/// The identities of the templates with a user: every field the kubelet
/// turns into the container's ids and groups.
fn identity() -> Value {
    json!({
        "runAsUser": 1000,
        "runAsGroup": 3000,
        "fsGroup": 4000,
        "supplementalGroups": [5000, 5001]
    })
}

/// One scenario: a pod template (as an operator writes it, before the
/// sideload) or the README's bare render.
struct Case {
    name: String,
    shape: ImageShape,
    /// The pod without the sideload.
    template: Value,
    /// Whether the driver renders from `template` (else the README's
    /// `render --sandbox-image IMAGE -- COMMAND`, whose pod is `template`).
    from_template: bool,
}

fn tag(shape: ImageShape) -> String {
    format!("localhost/shape-{}:e2e", shape.name())
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for shape in ImageShape::ALL {
        let container = |extra: Value| {
            let mut container = json!({
                "name": "agent",
                "image": tag(shape),
                "imagePullPolicy": "Never",
                "command": shape.command(PROBE),
            });
            for (key, value) in extra.as_object().unwrap() {
                container[key] = value.clone();
            }
            container
        };
        let pod = |name: &str, security: Option<Value>, extra: Value| {
            let mut pod = json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": { "name": name },
                "spec": { "restartPolicy": "Never", "containers": [container(extra)] },
            });
            if let Some(security) = security {
                pod["spec"]["securityContext"] = security;
            }
            pod
        };
        let short = shape.name().replace("-like", "");
        // The README's example: the image and the command, nothing else.
        let name = format!("e2e-{short}-bare");
        cases.push(Case {
            template: pod(&name, None, json!({})),
            name,
            shape,
            from_template: false,
        });
        let name = format!("e2e-{short}-ids");
        cases.push(Case {
            template: pod(&name, Some(identity()), json!({})),
            name,
            shape,
            from_template: true,
        });
        // A workingDir the image has: its WORKDIR, or /bin (podman, unlike
        // runc under containerd and CRI-O, refuses a missing one).
        let workdir = if shape == ImageShape::AppWorkdir {
            "/app"
        } else {
            "/bin"
        };
        let name = format!("e2e-{short}-workdir");
        cases.push(Case {
            template: pod(&name, Some(identity()), json!({ "workingDir": workdir })),
            name,
            shape,
            from_template: true,
        });
    }
    cases
}

/// Private storage with the four shapes and the supervisor image.
fn storage(test: &str) -> Option<Containers> {
    let containers = Containers::new(test)?;
    for shape in ImageShape::ALL {
        containers.build_image_shape(test, shape, &tag(shape))?;
    }
    let layout = containers.dir().join("layout");
    common::build_supervisor_image(&layout, "e2e", &[]);
    containers.load_oci_layout(&layout, "e2e", SUPERVISOR);
    Some(containers)
}

/// The image's /etc/passwd and /etc/group ("" when it has none), read from
/// the image itself.
fn image_etc(containers: &Containers, image: &str) -> (String, String) {
    let root = containers.podman_ok(["image", "mount", image]);
    let root = std::path::Path::new(root.trim());
    let read =
        |name: &str| std::fs::read_to_string(root.join("etc").join(name)).unwrap_or_default();
    let files = (read("passwd"), read("group"));
    containers.podman_ok(["image", "unmount", image]);
    files
}

/// The probe's report: `cwd`, `Uid:`, `Gid:`, `Groups:` (sorted).
fn report(output: &str, what: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for line in output.lines() {
        if let Some(cwd) = line.strip_prefix("probe-cwd=") {
            found.insert("cwd".to_string(), cwd.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("probe-") {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let mut words: Vec<&str> = value.split_whitespace().collect();
            if key == "Groups:" {
                words.sort_by_key(|gid| gid.parse::<u64>().unwrap_or(u64::MAX));
                words.dedup();
            }
            found.insert(key.to_string(), words.join(" "));
        }
    }
    for key in ["cwd", "Uid:", "Gid:", "Groups:"] {
        assert!(
            found.contains_key(key),
            "{what}: no {key} in the probe's output:\n{output}"
        );
    }
    found
}

/// Runs the template as the kubelet would without the sideload.
fn run_baseline(containers: &Containers, case: &Case) -> BTreeMap<String, String> {
    let mut args = openshell_e2e::podman_run_args(&case.template).unwrap();
    if case.template.pointer("/spec/securityContext").is_none() {
        // The shapes name no USER, so the kubelet runs them as root.
        // containerd then gives the primary group among the groups, which
        // podman does only for a user given explicitly.
        args.splice(0..0, ["--user".to_string(), "0".to_string()]);
    }
    if let Some(uid) = case.template.pointer("/spec/securityContext/runAsUser") {
        let (passwd, group) = image_etc(containers, &tag(case.shape));
        let uid = u32::try_from(uid.as_u64().unwrap()).unwrap();
        let memberships = openshell_e2e::image_group_memberships(uid, &passwd, &group);
        let at = args.iter().position(|arg| arg == "--user").unwrap();
        for gid in memberships {
            args.splice(at..at, ["--group-add".to_string(), gid.to_string()]);
        }
    }
    let output = containers.podman_output(
        ["run", "--rm", "--network", "none", "--pull", "never"]
            .into_iter()
            .map(String::from)
            .chain(args),
    );
    let text = common::output_text(&output);
    assert!(
        output.status.success(),
        "{}: baseline failed:\n{text}",
        case.name
    );
    report(&text, &format!("{} baseline", case.name))
}

/// The driver's pod for the case and method, in `format`.
fn render(containers: &Containers, case: &Case, method: &str, format: &str) -> String {
    let mut command = common::driver();
    command.arg("render").args([
        "--supervisor-image",
        SUPERVISOR,
        "--supervisor-sideload-method",
        method,
        "--format",
        format,
    ]);
    if case.from_template {
        let file = containers.dir().join(format!("{}.json", case.name));
        std::fs::write(&file, case.template.to_string()).unwrap();
        command.arg("--template").arg(file);
    } else {
        let agent = &case.template["spec"]["containers"][0];
        command
            .args([
                "--name",
                &case.name,
                "--sandbox-image",
                agent["image"].as_str().unwrap(),
            ])
            .arg("--")
            .args(
                agent["command"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap()),
            );
    }
    common::run_ok(command)
}

/// What the sideloaded workload must report, from the baseline's report.
fn expected(case: &Case, baseline: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut expected = baseline.clone();
    let agent = &case.template["spec"]["containers"][0];
    if agent.get("workingDir").is_none() {
        // The driver's default workdir, which the supervisor creates.
        expected.insert("cwd".to_string(), DEFAULT_WORKDIR.to_string());
    }
    expected
}

/// The baseline itself is what Kubernetes documents: the template's
/// workingDir, else the image's WORKDIR, else `/`.
fn check_baseline(case: &Case, baseline: &BTreeMap<String, String>) {
    let agent = &case.template["spec"]["containers"][0];
    let cwd = agent["workingDir"]
        .as_str()
        .or(case.shape.workdir())
        .unwrap_or("/");
    assert_eq!(baseline["cwd"], cwd, "{}", case.name);
    if case.template.pointer("/spec/securityContext").is_some() {
        assert_eq!(baseline["Uid:"], "1000 1000 1000 1000", "{}", case.name);
        assert_eq!(baseline["Gid:"], "3000 3000 3000 3000", "{}", case.name);
        let groups = if case.shape == ImageShape::PythonLike {
            // audio and staff list the image's user 1000, app.
            "29 50 3000 4000 5000 5001"
        } else {
            "3000 4000 5000 5001"
        };
        assert_eq!(baseline["Groups:"], groups, "{}", case.name);
    }
}

fn compare(case: &Case, method: &str, output: &str, baseline: &BTreeMap<String, String>) {
    let found = report(output, &format!("{} {method}", case.name));
    assert_eq!(
        found,
        expected(case, baseline),
        "{} ({method}): the sideloaded workload differs from the pod without the sideload (left: with, right: expected)\n{output}",
        case.name
    );
}

#[test]
fn image_volume_sandboxes_start_on_every_image_shape_as_the_kubelet_would() {
    let test = "image_volume_sandboxes_start_on_every_image_shape_as_the_kubelet_would";
    let start = Instant::now();
    let Some(containers) = storage(test) else {
        return;
    };
    let ready = start.elapsed();
    for case in cases() {
        let baseline = run_baseline(&containers, &case);
        check_baseline(&case, &baseline);
        let pod = render(&containers, &case, "image-volume", "json");
        let (output, code) = common::run_pod_agent(&containers, &pod);
        assert_eq!(code, Some(0), "{}: {output}\n{pod}", case.name);
        compare(&case, "image-volume", &output, &baseline);
    }
    eprintln!(
        "{test}: images ready in {ready:?}, {} cases in {:?}",
        cases().len(),
        start.elapsed() - ready
    );
}

#[test]
fn init_container_sandboxes_start_on_every_image_shape_as_the_kubelet_would() {
    let test = "init_container_sandboxes_start_on_every_image_shape_as_the_kubelet_would";
    let start = Instant::now();
    let Some(containers) = storage(test) else {
        return;
    };
    let ready = start.elapsed();
    // The workingDir cases render the same command for both methods: the
    // image-volume test covers them, and kube play is the slow part.
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|case| !case.name.ends_with("-workdir"))
        .collect();
    for case in &cases {
        let baseline = run_baseline(&containers, case);
        check_baseline(case, &baseline);
        let yaml = render(&containers, case, "init-container", "yaml");
        let file = containers.dir().join(format!("{}.yaml", case.name));
        std::fs::write(&file, &yaml).unwrap();
        containers.podman_ok(["kube".as_ref(), "play".as_ref(), file.as_os_str()]);
        let agent = format!("{}-agent", case.name);
        let code = containers.podman_ok(["wait", &agent]);
        let logs = containers.podman_ok(["logs", &agent]);
        assert_eq!(code.trim(), "0", "{}: {logs}\n{yaml}", case.name);
        compare(case, "init-container", &logs, &baseline);
        containers.podman_ok(["pod", "rm", "--force", &case.name]);
    }
    eprintln!(
        "{test}: images ready in {ready:?}, {} cases in {:?}",
        cases.len(),
        start.elapsed() - ready
    );
}

#[test]
fn the_distroless_shape_has_no_shell_and_no_passwd() {
    // The shape itself, so the scenarios above mean what they say.
    let test = "the_distroless_shape_has_no_shell_and_no_passwd";
    let Some(containers) = Containers::new(test) else {
        return;
    };
    let image = tag(ImageShape::DistrolessLike);
    if containers
        .build_image_shape(test, ImageShape::DistrolessLike, &image)
        .is_none()
    {
        return;
    }
    let root = containers.podman_ok(["image", "mount", &image]);
    let root = std::path::Path::new(root.trim());
    assert!(!root.join("bin/sh").exists());
    assert!(!root.join("etc/passwd").exists());
    assert!(root.join(SHAPE_BUSYBOX.trim_start_matches('/')).is_file());
    containers.podman_ok(["image", "unmount", &image]);
}
