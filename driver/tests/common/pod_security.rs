//! The Pod Security Standards' "restricted" profile, as code, for one
//! container of a pod.
//!
//! Source: Kubernetes documentation, "Pod Security Standards"
//! (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
//! the Baseline and Restricted policy tables. Each rule below carries the
//! control's name from those tables and checks the fields the table lists,
//! with the allowed values it lists. Only the pod-level fields and the one
//! container asked about are checked (the driver's init container must pass
//! whatever the operator's other containers do).

use serde_json::Value;

/// Capabilities Baseline allows to be added ("Capabilities" control).
const BASELINE_ADDABLE: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls Baseline allows ("Sysctls" control).
const SAFE_SYSCTLS: [&str; 11] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
];

/// Volume types Restricted allows ("Volume Types" control).
const RESTRICTED_VOLUME_TYPES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn truthy(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool) == Some(true)
}

fn names(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|name| name.trim_start_matches("CAP_").to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default()
}

/// Every "restricted" rule `container` (an element of `pod.spec.containers`
/// or `initContainers`) breaks, each as `control: what`. Empty when it
/// meets the profile.
pub fn restricted_violations(pod: &Value, container: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let mut fail = |control: &str, what: String| violations.push(format!("{control}: {what}"));
    let spec = &pod["spec"];
    let pod_context = &spec["securityContext"];
    let context = &container["securityContext"];

    // ---- Baseline ----
    // HostProcess: windowsOptions.hostProcess unset or false.
    if truthy(pod_context.pointer("/windowsOptions/hostProcess"))
        || truthy(context.pointer("/windowsOptions/hostProcess"))
    {
        fail("HostProcess", "windowsOptions.hostProcess is true".into());
    }
    // Host Namespaces: hostNetwork, hostPID, hostIPC unset or false.
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if truthy(spec.get(field)) {
            fail("Host Namespaces", format!("spec.{field} is true"));
        }
    }
    // Privileged Containers: privileged unset or false.
    if truthy(context.get("privileged")) {
        fail(
            "Privileged Containers",
            "securityContext.privileged is true".into(),
        );
    }
    // Capabilities (Baseline): add only from the listed set.
    for added in names(context.pointer("/capabilities/add")) {
        if !BASELINE_ADDABLE.contains(&added.as_str()) {
            fail("Capabilities (Baseline)", format!("adds {added}"));
        }
    }
    // HostPath Volumes: no hostPath volume.
    for volume in spec["volumes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if volume.get("hostPath").is_some() {
            fail(
                "HostPath Volumes",
                format!("volume {} is a hostPath", volume["name"]),
            );
        }
    }
    // Host Ports: hostPort unset or 0.
    for port in container["ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if port.get("hostPort").and_then(Value::as_i64).unwrap_or(0) != 0 {
            fail("Host Ports", format!("hostPort {}", port["hostPort"]));
        }
    }
    // AppArmor: appArmorProfile.type unset, RuntimeDefault or Localhost.
    for profile in [
        pod_context.pointer("/appArmorProfile/type"),
        context.pointer("/appArmorProfile/type"),
    ]
    .into_iter()
    .flatten()
    {
        if !matches!(profile.as_str(), Some("RuntimeDefault" | "Localhost")) {
            fail("AppArmor", format!("appArmorProfile.type is {profile}"));
        }
    }
    // SELinux: type unset or one of the container types; user and role
    // unset.
    for options in [
        pod_context.get("seLinuxOptions"),
        context.get("seLinuxOptions"),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(kind) = options.get("type").and_then(Value::as_str)
            && ![
                "container_t",
                "container_init_t",
                "container_kvm_t",
                "container_engine_t",
            ]
            .contains(&kind)
        {
            fail("SELinux", format!("seLinuxOptions.type is {kind}"));
        }
        for field in ["user", "role"] {
            if options.get(field).is_some() {
                fail("SELinux", format!("seLinuxOptions.{field} is set"));
            }
        }
    }
    // /proc Mount Type: procMount unset or Default.
    if let Some(mount) = context.get("procMount")
        && mount.as_str() != Some("Default")
    {
        fail("/proc Mount Type", format!("procMount is {mount}"));
    }
    // Seccomp (Baseline): never Unconfined.
    for profile in [
        pod_context.pointer("/seccompProfile/type"),
        context.pointer("/seccompProfile/type"),
    ]
    .into_iter()
    .flatten()
    {
        if profile.as_str() == Some("Unconfined") {
            fail(
                "Seccomp (Baseline)",
                "seccompProfile.type is Unconfined".into(),
            );
        }
    }
    // Sysctls: only the safe set.
    for sysctl in pod_context["sysctls"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = sysctl["name"].as_str().unwrap_or_default();
        if !SAFE_SYSCTLS.contains(&name) {
            fail("Sysctls", format!("sysctl {name}"));
        }
    }

    // ---- Restricted ----
    // Volume Types: only the listed kinds.
    for volume in spec["volumes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let kind = volume
            .as_object()
            .and_then(|fields| fields.keys().find(|key| *key != "name"))
            .cloned()
            .unwrap_or_default();
        if !RESTRICTED_VOLUME_TYPES.contains(&kind.as_str()) {
            fail(
                "Volume Types",
                format!("volume {} is {kind}", volume["name"]),
            );
        }
    }
    // Privilege Escalation: allowPrivilegeEscalation must be false.
    if context
        .get("allowPrivilegeEscalation")
        .and_then(Value::as_bool)
        != Some(false)
    {
        fail(
            "Privilege Escalation",
            "securityContext.allowPrivilegeEscalation is not false".into(),
        );
    }
    // Running as Non-root: runAsNonRoot true on the container, or on the
    // pod and not false on the container.
    let non_root = match context.get("runAsNonRoot").and_then(Value::as_bool) {
        Some(flag) => flag,
        None => truthy(pod_context.get("runAsNonRoot")),
    };
    if !non_root {
        fail("Running as Non-root", "runAsNonRoot is not true".into());
    }
    // Running as Non-root user: runAsUser unset or not 0, pod and container.
    for (level, value) in [
        ("pod", pod_context.get("runAsUser")),
        ("container", context.get("runAsUser")),
    ] {
        if value.and_then(Value::as_i64) == Some(0) {
            fail(
                "Running as Non-root user",
                format!("{level} runAsUser is 0"),
            );
        }
    }
    // Seccomp (Restricted): RuntimeDefault or Localhost, on the container
    // or, when it sets none, on the pod.
    let seccomp = context
        .pointer("/seccompProfile/type")
        .or_else(|| pod_context.pointer("/seccompProfile/type"))
        .and_then(Value::as_str);
    if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
        fail(
            "Seccomp (Restricted)",
            format!("seccompProfile.type is {}", seccomp.unwrap_or("unset")),
        );
    }
    // Capabilities (Restricted): drop ALL; add only NET_BIND_SERVICE.
    if !names(context.pointer("/capabilities/drop")).contains(&"ALL".to_string()) {
        fail("Capabilities (Restricted)", "does not drop ALL".into());
    }
    for added in names(context.pointer("/capabilities/add")) {
        if added != "NET_BIND_SERVICE" {
            fail("Capabilities (Restricted)", format!("adds {added}"));
        }
    }
    violations
}
