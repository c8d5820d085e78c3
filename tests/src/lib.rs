//! What the end-to-end suite and its benchmark need beyond the fixtures:
//! turning a rendered sandbox Pod into the podman invocations that run its
//! containers with the same mounts, command, user and working directory.
//!
//! Kubernetes cannot run on the CI machines, but podman can mount an image
//! read-only exactly as a kubelet mounts an image volume. This module reads
//! only the fields a kubelet would use for that, and refuses anything it does
//! not understand rather than silently dropping it.

use std::collections::BTreeMap;

use serde_json::Value;

use openshell_contract::AGENT_CONTAINER_NAME;

/// Why a Pod cannot be turned into a podman run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PodTranslationError {
    /// The Pod has no `spec.containers`.
    #[error("the pod has no spec.containers")]
    NoContainers,
    /// A field is missing or of the wrong type.
    #[error("{field}: expected {expected}")]
    Field {
        /// JSON path of the field.
        field: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// A mount refers to a volume the pod does not declare.
    #[error("volumeMounts: volume '{0}' is not declared in spec.volumes")]
    UnknownVolume(String),
    /// A volume of a kind this translation does not run.
    #[error(
        "volume '{name}': kind {kind} cannot be run with podman run (only image volumes, and emptyDir volumes given a podman volume)"
    )]
    UnsupportedVolume {
        /// Volume name.
        name: String,
        /// Its kind (the key beside `name`).
        kind: String,
    },
}

/// The agent container of a Pod: the one named `agent`, else the first.
pub fn agent_container(pod: &Value) -> Result<&Value, PodTranslationError> {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .filter(|containers| !containers.is_empty())
        .ok_or(PodTranslationError::NoContainers)?;
    Ok(containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(AGENT_CONTAINER_NAME))
        .unwrap_or(&containers[0]))
}

fn string_list(value: Option<&Value>, field: &str) -> Result<Vec<String>, PodTranslationError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let wrong = || PodTranslationError::Field {
        field: field.to_string(),
        expected: "a list of strings",
    };
    value
        .as_array()
        .ok_or_else(wrong)?
        .iter()
        .map(|item| item.as_str().map(str::to_string).ok_or_else(wrong))
        .collect()
}

fn required_str<'a>(
    value: &'a Value,
    key: &str,
    field: &str,
) -> Result<&'a str, PodTranslationError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| PodTranslationError::Field {
            field: format!("{field}.{key}"),
            expected: "a string",
        })
}

/// The arguments after `podman run` that run the Pod's agent container as a
/// kubelet would with image volumes: each image volume mounted read-only
/// (`--mount type=image`), the container's user, working directory,
/// environment, command and args. The caller adds its own options (`--rm`,
/// `--network none`, a name) before these.
pub fn podman_run_args(pod: &Value) -> Result<Vec<String>, PodTranslationError> {
    container_run_args(pod, agent_container(pod)?, &BTreeMap::new())
}

/// [`podman_run_args`] with each emptyDir volume of the Pod given the podman
/// volume that stands for it in `empty_dirs`.
pub fn podman_run_args_with_volumes(
    pod: &Value,
    empty_dirs: &BTreeMap<String, String>,
) -> Result<Vec<String>, PodTranslationError> {
    container_run_args(pod, agent_container(pod)?, empty_dirs)
}

/// The names of the Pod's emptyDir volumes.
pub fn empty_dir_volumes(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|volume| volume.get("emptyDir").is_some())
        .filter_map(|volume| volume.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// The `podman run` arguments of every container of the Pod in the order a
/// kubelet starts them: the init containers one after another, then the
/// agent. `empty_dirs` maps each emptyDir volume of the Pod to the podman
/// volume that stands for it (all steps share it, as the pod's containers
/// share an emptyDir).
pub fn podman_run_steps(
    pod: &Value,
    empty_dirs: &BTreeMap<String, String>,
) -> Result<Vec<Vec<String>>, PodTranslationError> {
    let mut steps = Vec::new();
    for init in pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        steps.push(container_run_args(pod, init, empty_dirs)?);
    }
    steps.push(container_run_args(pod, agent_container(pod)?, empty_dirs)?);
    Ok(steps)
}

fn container_run_args(
    pod: &Value,
    container: &Value,
    empty_dirs: &BTreeMap<String, String>,
) -> Result<Vec<String>, PodTranslationError> {
    let volumes = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut args = Vec::new();

    for mount in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = required_str(mount, "name", "volumeMounts[]")?;
        let path = required_str(mount, "mountPath", "volumeMounts[]")?;
        let read_only = mount.get("readOnly").and_then(Value::as_bool) == Some(true);
        let volume = volumes
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| PodTranslationError::UnknownVolume(name.to_string()))?;
        if let Some(image) = volume.get("image") {
            let reference = required_str(image, "reference", &format!("volume {name}.image"))?;
            // Image volumes are always read-only in Kubernetes; podman's
            // image mounts are read-only unless rw=true, never asked here.
            args.push("--mount".to_string());
            args.push(format!("type=image,source={reference},destination={path}"));
        } else if let (Some(_), Some(podman_volume)) =
            (volume.get("emptyDir"), empty_dirs.get(name))
        {
            let mode = if read_only { ":ro" } else { "" };
            args.push("--volume".to_string());
            args.push(format!("{podman_volume}:{path}{mode}"));
        } else {
            let kind = volume
                .as_object()
                .and_then(|fields| fields.keys().find(|key| *key != "name").cloned())
                .unwrap_or_else(|| "none".to_string());
            return Err(PodTranslationError::UnsupportedVolume {
                name: name.to_string(),
                kind,
            });
        }
    }

    // The container's own user and group win over the pod's, as in
    // Kubernetes; fsGroup and supplementalGroups are the pod's only.
    let context_field = |key: &str| {
        container
            .pointer(&format!("/securityContext/{key}"))
            .or_else(|| pod.pointer(&format!("/spec/securityContext/{key}")))
    };
    if let Some(user) = context_field("runAsUser") {
        let uid = user.as_i64().ok_or(PodTranslationError::Field {
            field: "securityContext.runAsUser".into(),
            expected: "an integer",
        })?;
        let user = match context_field("runAsGroup").and_then(Value::as_i64) {
            Some(gid) => format!("{uid}:{gid}"),
            None => uid.to_string(),
        };
        args.extend(["--user".to_string(), user]);
    }
    for gid in pod_groups(pod)? {
        args.extend(["--group-add".to_string(), gid.to_string()]);
    }
    if let Some(workdir) = container.get("workingDir").and_then(Value::as_str) {
        args.extend(["--workdir".to_string(), workdir.to_string()]);
    }
    for env in container
        .get("env")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = required_str(env, "name", "env[]")?;
        let value = env.get("value").and_then(Value::as_str).unwrap_or_default();
        args.extend(["--env".to_string(), format!("{name}={value}")]);
    }

    let image = required_str(container, "image", "container")?.to_string();
    let command = string_list(container.get("command"), "command")?;
    let container_args = string_list(container.get("args"), "args")?;
    if let Some((entrypoint, rest)) = command.split_first() {
        // A Kubernetes `command` replaces the image's entrypoint entirely.
        args.extend(["--entrypoint".to_string(), entrypoint.clone(), image]);
        args.extend(rest.iter().cloned());
    } else {
        args.push(image);
    }
    args.extend(container_args);
    Ok(args)
}

/// The pod's `fsGroup`, then its `supplementalGroups`, each once: the
/// groups a kubelet adds to every container of the pod.
pub fn pod_groups(pod: &Value) -> Result<Vec<i64>, PodTranslationError> {
    let wrong = |field: &str| PodTranslationError::Field {
        field: format!("spec.securityContext.{field}"),
        expected: "an integer",
    };
    let mut groups = Vec::new();
    if let Some(fs_group) = pod.pointer("/spec/securityContext/fsGroup") {
        groups.push(fs_group.as_i64().ok_or_else(|| wrong("fsGroup"))?);
    }
    for gid in pod
        .pointer("/spec/securityContext/supplementalGroups")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let gid = gid.as_i64().ok_or_else(|| wrong("supplementalGroups[]"))?;
        if !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    Ok(groups)
}

/// The groups of the image's `/etc/group` that list the user with id `uid`
/// (named by the image's `/etc/passwd`) as a member: what containerd adds
/// to a container's groups under Kubernetes' default supplemental groups
/// policy (`Merge`), also when `runAsGroup` is set. podman adds them only
/// when no group is given, so a podman run stands for a kubelet run only
/// with these passed as `--group-add`.
pub fn image_group_memberships(uid: u32, passwd: &str, group: &str) -> Vec<u32> {
    let Some(name) = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 3 && fields[2].parse() == Ok(uid)).then(|| fields[0].to_string())
    }) else {
        return Vec::new();
    };
    group
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let members = fields.get(3)?;
            members
                .split(',')
                .any(|member| member.trim() == name)
                .then(|| fields[2].parse().ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": "sandbox" },
            "spec": {
                "volumes": [{
                    "name": "openshell-supervisor-bin",
                    "image": { "reference": "localhost/sup:1", "pullPolicy": "IfNotPresent" }
                }],
                "containers": [
                    { "name": "sidecar", "image": "other" },
                    {
                        "name": "agent",
                        "image": "localhost/agent:1",
                        "command": ["/opt/openshell/bin/openshell-sandbox", "--workdir", "/sandbox", "--"],
                        "args": ["sh", "-c", "echo hi"],
                        "securityContext": { "runAsUser": 0 },
                        "env": [{ "name": "A", "value": "b" }],
                        "volumeMounts": [{
                            "name": "openshell-supervisor-bin",
                            "mountPath": "/opt/openshell/bin",
                            "readOnly": true
                        }]
                    }
                ]
            }
        })
    }

    #[test]
    fn image_volume_pod_becomes_an_image_mount() {
        let args = podman_run_args(&pod()).unwrap();
        assert_eq!(
            args,
            [
                "--mount",
                "type=image,source=localhost/sup:1,destination=/opt/openshell/bin",
                "--user",
                "0",
                "--env",
                "A=b",
                "--entrypoint",
                "/opt/openshell/bin/openshell-sandbox",
                "localhost/agent:1",
                "--workdir",
                "/sandbox",
                "--",
                "sh",
                "-c",
                "echo hi",
            ]
        );
    }

    #[test]
    fn init_container_pod_becomes_steps_sharing_one_volume() {
        let mut pod = pod();
        pod["spec"]["volumes"][0] = json!({ "name": "openshell-supervisor-bin", "emptyDir": {} });
        pod["spec"]["initContainers"] = json!([{
            "name": "openshell-supervisor-install",
            "image": "localhost/sup:1",
            "command": ["/openshell-sandbox", "copy-self", "/opt/openshell/bin/openshell-sandbox"],
            "volumeMounts": [{ "name": "openshell-supervisor-bin", "mountPath": "/opt/openshell/bin" }]
        }]);
        let volumes =
            BTreeMap::from([("openshell-supervisor-bin".to_string(), "vol1".to_string())]);
        let steps = podman_run_steps(&pod, &volumes).unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(
            steps[0],
            [
                "--volume",
                "vol1:/opt/openshell/bin",
                "--entrypoint",
                "/openshell-sandbox",
                "localhost/sup:1",
                "copy-self",
                "/opt/openshell/bin/openshell-sandbox",
            ]
        );
        assert_eq!(steps[1][..2], ["--volume", "vol1:/opt/openshell/bin:ro"]);
        // Without a podman volume for it, the emptyDir cannot be run.
        assert!(matches!(
            podman_run_steps(&pod, &BTreeMap::new()),
            Err(PodTranslationError::UnsupportedVolume { .. })
        ));
    }

    #[test]
    fn pod_level_user_group_and_groups_reach_podman() {
        let mut pod = pod();
        pod["spec"]["securityContext"] = json!({
            "runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 4000,
            "supplementalGroups": [5000, 4000]
        });
        pod["spec"]["containers"][1]["securityContext"] = json!({});
        let args = podman_run_args(&pod).unwrap();
        let joined = args.join(" ");
        assert!(
            joined.contains("--user 1000:3000 --group-add 4000 --group-add 5000 --env"),
            "{joined}"
        );
        // The container's own user wins.
        pod["spec"]["containers"][1]["securityContext"] = json!({ "runAsUser": 0 });
        let joined = podman_run_args(&pod).unwrap().join(" ");
        assert!(joined.contains("--user 0:3000 "), "{joined}");
    }

    #[test]
    fn memberships_come_from_the_users_name_in_etc_group() {
        let passwd = "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n";
        let group = "root:x:0:\naudio:x:29:app\nstaff:x:50:root,app\napp:x:1000:\nbad\n";
        assert_eq!(image_group_memberships(1000, passwd, group), [29, 50]);
        assert_eq!(image_group_memberships(0, passwd, group), [50]);
        // A user the image does not name is a member of nothing.
        assert!(image_group_memberships(2000, passwd, group).is_empty());
    }

    #[test]
    fn other_volume_kinds_are_refused() {
        let mut pod = pod();
        pod["spec"]["volumes"][0] = json!({ "name": "openshell-supervisor-bin", "emptyDir": {} });
        assert_eq!(
            podman_run_args(&pod).unwrap_err(),
            PodTranslationError::UnsupportedVolume {
                name: "openshell-supervisor-bin".into(),
                kind: "emptyDir".into()
            }
        );
    }

    #[test]
    fn undeclared_volume_is_refused() {
        let mut pod = pod();
        pod["spec"]["volumes"] = json!([]);
        assert_eq!(
            podman_run_args(&pod).unwrap_err(),
            PodTranslationError::UnknownVolume("openshell-supervisor-bin".into())
        );
    }

    #[test]
    fn pod_without_containers_is_refused() {
        let mut pod = pod();
        pod["spec"]["containers"] = json!([]);
        assert_eq!(
            podman_run_args(&pod).unwrap_err(),
            PodTranslationError::NoContainers
        );
    }
}
