//! Sandbox start to workload output, image-volume against init-container,
//! on podman with runc: the same agent image, the same workload, the same
//! supervisor image (built by build-image), runs alternating.
//!
//! Run: `cargo bench -p openshell-e2e --bench sideload-startup [-- --runs N]`
//!
//! What is timed, from the first `podman run` to the moment the workload's
//! first line arrives on stdout:
//! - image-volume: one `podman run` of the agent with the supervisor image
//!   mounted at /opt/openshell/bin (`--mount type=image`), as a kubelet
//!   mounts an image volume;
//! - init-container: `podman run` of the init container (copy-self into the
//!   volume) to its exit, then `podman run` of the agent with the volume
//!   mounted read-only, as a kubelet runs an init container before the app.
//!   The podman volume standing for the emptyDir is created before the clock
//!   starts (a kubelet makes an emptyDir with a mkdir; both methods share
//!   the pod's own set-up).
//!
//! Both runs come from the pods the driver renders, turned into podman
//! arguments by `openshell_e2e::podman_run_steps`. copy-self itself is
//! timed apart, on the real static supervisor, to give its share of the
//! init-container path. Results go to stdout and, as JSON, to
//! target/bench/sideload-startup.json.

// A benchmark program: a failed step aborts it with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openshell_contract::BINARY_NAME;
use openshell_testsupport::supervisor::target_dir;
use openshell_testsupport::{Containers, static_supervisor_binary, workspace_binary};

const SUPERVISOR: &str = "localhost/openshell/supervisor:bench";
const AGENT: &str = "localhost/agent:bench";
const MARKER: &str = "openshell-bench-ready";

fn main() {
    let runs = runs_from_args();
    let containers = Containers::new("sideload-startup benchmark")
        .expect("podman is needed: scripts/setup-test-env installs it");
    containers
        .build_agent_image("sideload-startup benchmark", AGENT)
        .expect("busybox-static and buildah are needed: scripts/setup-test-env installs them");
    let supervisor = static_supervisor_binary();
    let layout = containers.dir().join("layout");
    let status = Command::new(workspace_binary("build-image", "build-image"))
        .arg("--binary")
        .arg(supervisor)
        .arg("--output")
        .arg(&layout)
        .args(["--tag", "bench", "--quiet"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "build-image failed");
    containers.load_oci_layout(&layout, "bench", SUPERVISOR);

    let image_volume = render("image-volume");
    let init_container = render("init-container");
    let image_volume_steps =
        openshell_e2e::podman_run_steps(&image_volume, &BTreeMap::new()).unwrap();
    let volume_name = openshell_contract::VOLUME_NAME.to_string();

    // One warm-up of each, untimed: the first container start pays for
    // page-cache misses that later ones do not.
    let mut iv = Vec::new();
    let mut ic = Vec::new();
    let mut ic_init_step = Vec::new();
    for run in 0..=runs {
        let iv_time = *time_steps(&containers, &image_volume_steps).last().unwrap();
        let volume = format!("bench-{run}");
        containers.podman_ok(["volume", "create", &volume]);
        let steps = openshell_e2e::podman_run_steps(
            &init_container,
            &BTreeMap::from([(volume_name.clone(), volume.clone())]),
        )
        .unwrap();
        let times = time_steps(&containers, &steps);
        let (init_time, ic_time) = (times[0], *times.last().unwrap());
        containers.podman_ok(["volume", "rm", "--force", &volume]);
        if run > 0 {
            iv.push(iv_time);
            ic.push(ic_time);
            ic_init_step.push(init_time);
        }
    }

    let copy_self = time_copy_self(supervisor, containers.dir(), runs.max(20));
    let iv_stats = Stats::of(&iv);
    let ic_stats = Stats::of(&ic);
    let init_stats = Stats::of(&ic_init_step);
    let copy_stats = Stats::of(&copy_self);
    let ratio = ic_stats.median / iv_stats.median;
    let copy_share = copy_stats.median / ic_stats.median;
    let binary_size = std::fs::metadata(supervisor).unwrap().len();

    println!(
        "sandbox start to workload output, podman {} runs each, alternating",
        runs
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "", "median", "mean", "min", "max"
    );
    iv_stats.print("image-volume (ms)");
    ic_stats.print("init-container (ms)");
    init_stats.print("  of which the init container (ms)");
    copy_stats.print("copy-self alone (ms)");
    println!("init-container / image-volume: {ratio:.2}x (goal: at least 2x)");
    println!(
        "copy-self of the {binary_size}-byte supervisor: {:.2} ms, {:.1}% of the init-container path (goal: under 10 ms)",
        copy_stats.median,
        copy_share * 100.0
    );

    let report = serde_json::json!({
        "runs": runs,
        "supervisor_bytes": binary_size,
        "image_volume_ms": iv_stats.json(),
        "init_container_ms": ic_stats.json(),
        "init_container_step_ms": init_stats.json(),
        "copy_self_ms": copy_stats.json(),
        "init_over_image_volume": ratio,
        "copy_self_share_of_init_path": copy_share,
    });
    let out = target_dir().join("bench");
    std::fs::create_dir_all(&out).unwrap();
    let file = out.join("sideload-startup.json");
    std::fs::write(&file, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("JSON: {}", file.display());
}

fn runs_from_args() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--runs")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--runs takes a whole number"))
        .unwrap_or(15)
}

/// The pod the driver renders for `method`, with the marker workload.
fn render(method: &str) -> serde_json::Value {
    let output = Command::new(workspace_binary(
        "openshell-driver-kubernetes",
        "openshell-driver-kubernetes",
    ))
    .args([
        "render",
        "--sandbox-image",
        AGENT,
        "--supervisor-image",
        SUPERVISOR,
    ])
    .args(["--supervisor-sideload-method", method, "--", "sh", "-c"])
    .arg(format!("echo {MARKER}"))
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs the steps one after another, from one clock: returns, for each
/// step, the time at which it ended (the last one: when the marker line
/// arrived).
fn time_steps(containers: &Containers, steps: &[Vec<String>]) -> Vec<Duration> {
    let started = Instant::now();
    let mut times = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let mut command = containers.podman();
        command
            .args(["run", "--rm", "--network", "none", "--pull", "never"])
            .args(step)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let last = index + 1 == steps.len();
        let mut seen_at = None;
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if last && seen_at.is_none() && line.contains(MARKER) {
                seen_at = Some(started.elapsed());
            }
            lines.push(line);
        }
        let output = child.wait_with_output().unwrap();
        let report = || {
            format!(
                "step {index} {step:?}: {}\nstdout:\n{}\nstderr:\n{}",
                output.status,
                lines.join("\n"),
                String::from_utf8_lossy(&output.stderr)
            )
        };
        assert!(output.status.success(), "{}", report());
        times.push(if last {
            seen_at.unwrap_or_else(|| panic!("the workload printed no marker: {}", report()))
        } else {
            started.elapsed()
        });
    }
    times
}

/// copy-self of the real supervisor into a fresh folder, `runs` times.
fn time_copy_self(supervisor: &Path, dir: &Path, runs: usize) -> Vec<Duration> {
    (0..=runs)
        .map(|run| {
            let dest = dir.join(format!("copy-self-{run}"));
            let started = Instant::now();
            let status = Command::new(supervisor)
                .arg("copy-self")
                .arg(dest.join(BINARY_NAME))
                .stdout(Stdio::null())
                .status()
                .unwrap();
            let elapsed = started.elapsed();
            assert!(status.success());
            std::fs::remove_dir_all(&dest).unwrap();
            elapsed
        })
        .skip(1)
        .collect()
}

struct Stats {
    median: f64,
    mean: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let mid = ms.len() / 2;
        let median = if ms.len() % 2 == 0 {
            (ms[mid - 1] + ms[mid]) / 2.0
        } else {
            ms[mid]
        };
        Self {
            median,
            mean: ms.iter().sum::<f64>() / ms.len() as f64,
            min: ms[0],
            max: ms[ms.len() - 1],
        }
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            self.median, self.mean, self.min, self.max
        );
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "median": self.median, "mean": self.mean, "min": self.min, "max": self.max })
    }
}
