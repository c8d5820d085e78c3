//! Publishing the chart: `deploy/helm/package-chart` makes the same archive
//! from the same files (plain `helm package` does not: it writes each
//! file's time and mode from the disk), and `helm push` / `helm pull
//! oci://` carry it through a registry on 127.0.0.1 with htpasswd auth,
//! using the same auth file format as build-image's `--authfile`.

use std::path::{Path, PathBuf};
use std::process::Command;

use openshell_testsupport::Registry;
use openshell_testsupport::podman::{output_text, run};

use crate::{Helm, chart_dir, copy_dir};

/// Runs package-chart on `chart` into `dest`, with helm and the time given;
/// returns the archive.
fn package_chart(helm: &Helm, chart: &Path, dest: &Path, umask: &str) -> PathBuf {
    let script = crate::workspace_root().join("deploy/helm/package-chart");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(&script)
        .arg(chart)
        .arg(dest)
        .env("HELM", &helm.bin)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("HELM_CONFIG_HOME", helm.home.path().join("config"))
        .env("HELM_CACHE_HOME", helm.home.path().join("cache"))
        .env("HELM_DATA_HOME", helm.home.path().join("data"));
    let output = run(command);
    assert!(output.status.success(), "{}", output_text(&output));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Two copies of the chart with the same files but other times and modes.
fn two_copies(dir: &Path) -> (PathBuf, PathBuf) {
    let first = dir.join("a/openshell-supervisor");
    let second = dir.join("b/openshell-supervisor");
    copy_dir(&chart_dir(), &first);
    copy_dir(&chart_dir(), &second);
    let touch = |path: &Path, when: &str| {
        let output = run({
            let mut command = Command::new("touch");
            command.args(["-d", when]).arg(path);
            command
        });
        assert!(output.status.success(), "{}", output_text(&output));
    };
    touch(&first.join("Chart.yaml"), "2001-02-03 04:05:06");
    touch(&second.join("values.yaml"), "2011-12-13 14:15:16");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        second.join("values.schema.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    (first, second)
}

#[test]
fn package_chart_makes_the_same_bytes_from_the_same_files_and_plain_helm_package_does_not() {
    let test =
        "package_chart_makes_the_same_bytes_from_the_same_files_and_plain_helm_package_does_not";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = two_copies(dir.path());
    // Why package-chart exists: helm package alone writes the disk's times.
    let plain = |chart: &Path, dest: &Path| {
        helm.ok(&[
            "package",
            chart.to_str().unwrap(),
            "--destination",
            dest.to_str().unwrap(),
        ]);
        std::fs::read(dest.join(format!(
            "openshell-supervisor-{}.tgz",
            env!("CARGO_PKG_VERSION")
        )))
        .unwrap()
    };
    assert_ne!(
        plain(&first, &dir.path().join("plain-a")),
        plain(&second, &dir.path().join("plain-b")),
        "helm package now ignores file times: package-chart's copy could go"
    );
    let a = package_chart(&helm, &first, &dir.path().join("out-a"), "022");
    let b = package_chart(&helm, &second, &dir.path().join("out-b"), "077");
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap(), "{a:?} and {b:?} differ");
    // The archive is the chart: its values and templates render the same.
    let from_archive = helm.ok(&["template", "r", a.to_str().unwrap()]);
    let from_folder = helm.ok(&["template", "r", chart_dir().to_str().unwrap()]);
    assert_eq!(from_archive, from_folder);
    eprintln!("chart archive: {} bytes", bytes.len());
}

#[test]
fn the_chart_is_pushed_to_and_pulled_from_a_loopback_registry_with_htpasswd_auth() {
    let test = "the_chart_is_pushed_to_and_pulled_from_a_loopback_registry_with_htpasswd_auth";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = package_chart(&helm, &chart_dir(), &dir.path().join("out"), "022");
    let archive = archive.to_str().unwrap();
    let remote = format!("oci://{}/charts", registry.host());
    // The auth file build-image and skopeo take (--authfile) is the
    // registry config helm takes.
    let good = registry.auth_file();
    let bad = registry.write_auth_file("wrong.json", "not-the-password");
    let none = dir.path().join("none.json");

    for refused in [&bad, &none] {
        let stderr = helm.err(&[
            "push",
            archive,
            &remote,
            "--plain-http",
            "--registry-config",
            refused.to_str().unwrap(),
        ]);
        // A wrong password gets 401; no credentials at all, helm's own
        // "basic credential not found" after the registry's challenge.
        assert!(
            stderr.contains("401")
                || stderr.to_lowercase().contains("unauthorized")
                || stderr.contains("basic credential not found"),
            "{stderr}"
        );
    }
    let pushed = helm.ok(&[
        "push",
        archive,
        &remote,
        "--plain-http",
        "--registry-config",
        good.to_str().unwrap(),
    ]);
    let version = env!("CARGO_PKG_VERSION");
    let chart_ref = format!("{remote}/openshell-supervisor");
    let out = dir.path().join("pulled");
    std::fs::create_dir_all(&out).unwrap();
    // helm prints the pushed digest on stderr in v4; the pull says it too.
    helm.ok(&[
        "pull",
        &chart_ref,
        "--version",
        version,
        "--plain-http",
        "--registry-config",
        good.to_str().unwrap(),
        "--destination",
        out.to_str().unwrap(),
    ]);
    let pulled = out.join(format!("openshell-supervisor-{version}.tgz"));
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(archive).unwrap(),
        "the pulled archive differs from the pushed one ({pushed})"
    );
    // And it renders straight from the registry.
    let rendered = helm.ok(&[
        "template",
        "r",
        &chart_ref,
        "--version",
        version,
        "--plain-http",
        "--registry-config",
        good.to_str().unwrap(),
        "--kube-version",
        "v1.35.0",
    ]);
    assert!(
        rendered.contains("supervisor-sideload-method: \"auto\""),
        "{rendered}"
    );
    // A wrong password cannot pull either.
    let stderr = helm.err(&[
        "pull",
        &chart_ref,
        "--version",
        version,
        "--plain-http",
        "--registry-config",
        bad.to_str().unwrap(),
        "--destination",
        dir.path().join("refused").to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("401") || stderr.to_lowercase().contains("unauthorized"),
        "{stderr}"
    );
}
