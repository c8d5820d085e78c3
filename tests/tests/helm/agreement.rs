//! One rule, decided by the driver: the chart passes `auto` and the
//! Kubernetes version it sees, and its ConfigMap annotations and NOTES only
//! predict what the driver decides. For every version in the table, the
//! prediction must be what the real driver decides from the chart's own
//! config file: from the version alone, and with nodes whose runtimes mount
//! image volumes.

use std::path::Path;
use std::sync::Mutex;

use openshell_contract::sideload::FLAG_SUPERVISOR_SIDELOAD_METHOD;
use serde_json::Value;

use crate::{Helm, annotation, annotations, chart_dir, config_file, driver_config, nodes_json};

/// The minor versions of the table.
const MINORS: std::ops::RangeInclusive<u64> = 28..=40;

/// Each minor as clusters spell it: with and without the v, with the
/// suffixes of EKS, k3s, GKE, and a release candidate, and without a patch.
pub(crate) fn spellings(minor: u64) -> Vec<String> {
    vec![
        format!("1.{minor}.2"),
        format!("v1.{minor}.2"),
        format!("v1.{minor}.2-eks-4f1c2a3"),
        format!("v1.{minor}.2+k3s1"),
        format!("v1.{minor}.2-gke.1200"),
        format!("v1.{minor}.0-rc.1"),
        format!("1.{minor}"),
    ]
}

/// One row: how the chart was rendered.
#[derive(Debug, Clone)]
struct Case {
    version: String,
    /// `--kube-version` (helm's Capabilities) or the `kubeVersion` value.
    via_value: bool,
    method: &'static str,
    gate: bool,
}

/// What the chart says and what the driver decides, for one case.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    /// From the version alone.
    from_version: Result<String, String>,
    /// With nodes that all mount image volumes.
    with_nodes: Result<String, String>,
    /// Whether a warning says image-volume needs the feature gate.
    gate_warning: bool,
}

fn chart_answer(helm: &Helm, case: &Case, dir: &Path) -> (Answer, Option<String>) {
    let mut args = vec![
        "template".to_string(),
        "r".into(),
        chart_dir().display().to_string(),
    ];
    if case.via_value {
        args.extend([
            "--set-string".into(),
            format!("kubeVersion={}", case.version),
        ]);
    } else {
        args.extend(["--kube-version".into(), case.version.clone()]);
    }
    args.extend([
        "--set-string".into(),
        format!("supervisor.sideloadMethod={}", case.method),
        "--set".into(),
        format!("supervisor.imageVolumeFeatureGate={}", case.gate),
    ]);
    let output = helm.run(&args);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let refusal = Err(stderr);
        return (
            Answer {
                from_version: refusal.clone(),
                with_nodes: refusal,
                gate_warning: false,
            },
            None,
        );
    }
    let documents = crate::documents(&String::from_utf8(output.stdout).unwrap());
    let config = dir.join("config.yaml");
    std::fs::write(&config, config_file(&documents)).unwrap();
    (
        Answer {
            from_version: Ok(annotation(&documents, annotations::METHOD_FROM_VERSION)),
            with_nodes: Ok(annotation(&documents, annotations::METHOD_IF_NODES_MOUNT)),
            gate_warning: annotation(&documents, annotations::NEEDS_FEATURE_GATE) == "true",
        },
        Some(config.display().to_string()),
    )
}

fn driver_method(report: &Result<Value, String>) -> Result<String, String> {
    report
        .as_ref()
        .map(|report| {
            report[FLAG_SUPERVISOR_SIDELOAD_METHOD]["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .map_err(Clone::clone)
}

fn driver_answer(case: &Case, config: &str, dir: &Path) -> Answer {
    let nodes = dir.join("nodes.json");
    std::fs::write(&nodes, nodes_json(&case.version).to_string()).unwrap();
    let alone = driver_config(&["--config", config], &[]);
    let with_nodes = driver_config(
        &["--config", config, "--nodes-json", nodes.to_str().unwrap()],
        &[],
    );
    let gate_warning = alone.as_ref().is_ok_and(|report| {
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|warning| {
                warning
                    .as_str()
                    .unwrap()
                    .contains("ImageVolume feature gate must be on")
            })
    });
    Answer {
        from_version: driver_method(&alone),
        with_nodes: driver_method(&with_nodes),
        gate_warning,
    }
}

/// The table: every spelling of every minor with auto; per minor, auto with
/// the gate declared, auto through the kubeVersion value, and the explicit
/// methods with and without the gate. (The spellings only change how the
/// version is read, which the first rows cover; the driver's debug build
/// takes about 0.4 s a run, so the table stays at one run per question.)
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for minor in MINORS {
        for version in spellings(minor) {
            cases.push(Case {
                version,
                via_value: false,
                method: "",
                gate: false,
            });
        }
        let plain = format!("v1.{minor}.2");
        cases.push(Case {
            version: plain.clone(),
            via_value: false,
            method: "",
            gate: true,
        });
        cases.push(Case {
            version: format!("v1.{minor}.2-eks-4f1c2a3"),
            via_value: true,
            method: "",
            gate: false,
        });
        for (method, gate) in [
            ("image-volume", false),
            ("image-volume", true),
            ("init-container", false),
        ] {
            cases.push(Case {
                version: plain.clone(),
                via_value: false,
                method,
                gate,
            });
        }
    }
    cases
}

#[test]
fn the_charts_prediction_is_what_the_driver_decides_for_every_version_in_the_table() {
    let test = "the_charts_prediction_is_what_the_driver_decides_for_every_version_in_the_table";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let cases = cases();
    let started = std::time::Instant::now();
    let disagreements = Mutex::new(Vec::new());
    let counts = Mutex::new((0usize, 0usize, 0usize)); // image-volume with nodes, refused, warned
    // Two workers: helm and the driver are separate processes.
    let next = Mutex::new(cases.iter());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some(case) = next.lock().unwrap().next() else {
                        break;
                    };
                    let dir = tempfile::tempdir().unwrap();
                    let (chart, config) = chart_answer(&helm, case, dir.path());
                    let driver = match &config {
                        Some(config) => driver_answer(case, config, dir.path()),
                        // The chart refused: the driver must refuse the
                        // same facts, given as flags.
                        None => {
                            let mut args = vec![
                                "--kubernetes-version",
                                case.version.as_str(),
                                "--supervisor-sideload-method",
                                case.method,
                            ];
                            if case.gate {
                                args.push("--image-volume-feature-gate");
                            }
                            let alone = driver_config(&args, &[]);
                            Answer {
                                from_version: driver_method(&alone),
                                with_nodes: driver_method(&alone),
                                gate_warning: false,
                            }
                        }
                    };
                    let agree = match (&chart.from_version, &driver.from_version) {
                        // Both refuse: the chart's reason names the value and
                        // the version, the driver's the version.
                        (Err(chart_error), Err(driver_error)) => {
                            chart_error.contains("supervisor.sideloadMethod image-volume")
                                && chart_error.contains("has no image volumes")
                                && driver_error.contains("has no image volumes")
                        }
                        _ => chart == driver,
                    };
                    if !agree {
                        disagreements.lock().unwrap().push(format!(
                            "{case:?}:\n  chart:  {chart:?}\n  driver: {driver:?}"
                        ));
                    }
                    let mut counts = counts.lock().unwrap();
                    counts.0 += usize::from(chart.with_nodes.as_deref() == Ok("image-volume"));
                    counts.1 += usize::from(chart.from_version.is_err());
                    counts.2 += usize::from(chart.gate_warning);
                }
            });
        }
    });
    let disagreements = disagreements.into_inner().unwrap();
    let (image_volume, refused, warned) = counts.into_inner().unwrap();
    eprintln!(
        "{} cases ({} versions of Kubernetes 1.{}-1.{}) in {:.1?}: {image_volume} choose image-volume with nodes, {refused} refused by both, {warned} warned by both",
        cases.len(),
        MINORS.count() * spellings(0).len(),
        MINORS.start(),
        MINORS.end(),
        started.elapsed()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    // Every branch of the rule was taken.
    assert!(image_volume > 0 && refused > 0 && warned > 0);
}
