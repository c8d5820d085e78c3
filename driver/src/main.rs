//! `openshell-driver-kubernetes`: parses the command line, checks the
//! configuration at start, and prints pods or the configuration; the work is
//! done in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use openshell_contract::cli::{BROKEN_PIPE_EXIT, is_broken_pipe, write_stdout};
use openshell_driver_kubernetes::config::{DriverArgs, DriverConfig};
use openshell_driver_kubernetes::pod::{self, OutputFormat, PodRequest};

/// The OpenShell Kubernetes driver's pod rendering.
///
/// Every command first checks the whole configuration (flags, then
/// environment variables, then the --config file): a wrong or misspelled
/// setting, an unusable image reference, image-volume on a node whose
/// runtime cannot mount it, a node architecture the supervisor image lacks,
/// or, with --pin-supervisor-digest, an unreachable registry or unknown tag,
/// is an error before anything is rendered. Warnings (a mutable tag behind
/// an image volume) are printed once, on stderr.
#[derive(Debug, Parser)]
#[command(
    name = "openshell-driver-kubernetes",
    version,
    after_help = "Examples:\n  openshell-driver-kubernetes render --sandbox-image python:3.13 -- python agent.py\n  openshell-driver-kubernetes render --supervisor-sideload-method init-container --sandbox-image alpine --format yaml\n  openshell-driver-kubernetes render --template pod.yaml --sandbox-image node:22 --name sandbox-1\n  openshell-driver-kubernetes explain --kubernetes-version-json version.json --nodes-json nodes.json\n  OPENSHELL_KUBERNETES_VERSION=v1.34.2 openshell-driver-kubernetes config --json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a complete sandbox Pod manifest, with the supervisor sideload
    /// applied, for `kubectl apply -f -` (or `podman kube play` for the
    /// init-container method).
    ///
    /// The agent container (the one named agent, else the first) runs
    /// /opt/openshell/bin/openshell-sandbox --workdir /sandbox -- COMMAND as
    /// UID 0 (an emptyDir is mounted at /sandbox; a template's workingDir
    /// replaces both --workdir and that emptyDir; its runAsUser
    /// becomes the supervisor's --run-as, its fsGroup and
    /// supplementalGroups --groups), with the supervisor volume mounted
    /// read-only at /opt/openshell/bin. Without a command the supervisor
    /// runs in its idle mode.
    Render(RenderArgs),
    /// Check the configuration and print each setting with where it came
    /// from.
    Config(ConfigArgs),
    /// Print the sideload plan (the method, and why, node by node; the
    /// supervisor image and its platforms), then what to check when a
    /// sandbox does not start: symptoms, causes and fixes.
    ///
    /// Give the cluster's facts: --kubernetes-version-json FILE (kubectl
    /// version -o json) and --nodes-json FILE (kubectl get nodes -o json).
    Explain(ExplainArgs),
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    #[command(flatten)]
    driver: DriverArgs,
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// The agent image the sandbox runs (required without --template; with
    /// one, it replaces the agent container's image).
    #[arg(long, value_name = "IMAGE", required_unless_present = "template")]
    sandbox_image: Option<String>,

    /// Pod name (a DNS subdomain name) [default: the template's, else
    /// openshell-sandbox].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    format: OutputFormat,

    /// A Pod (or pod template: metadata and spec) in YAML or JSON to apply
    /// the sideload to instead of the bare sandbox pod; everything else in it
    /// is kept.
    #[arg(long, value_name = "FILE")]
    template: Option<PathBuf>,

    #[command(flatten)]
    driver: DriverArgs,

    /// The agent's command and arguments, after `--` (replace the
    /// template's).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// Print the configuration as one JSON object: each setting as
    /// {"value", "origin"}, plus the warnings.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    driver: DriverArgs,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`render ... | head`): nothing left to tell
        // it.
        Err(err) if is_broken_pipe(err.as_ref()) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Render(args) => render(args),
        Command::Config(args) => show_config(args),
        Command::Explain(args) => {
            let config = start(&args.driver)?;
            write_stdout(&openshell_driver_kubernetes::explain::explain(&config))?;
            if let Some(report) = &config.supervisor_signature {
                write_stdout(&format!(
                    "\nsupervisor signature\n  {}\n{report}",
                    openshell_driver_kubernetes::signed::summary(report)
                ))?;
            }
            Ok(())
        }
    }
}

/// Checks the configuration, pins the image if asked, and prints the
/// warnings: everything the driver does once, at start.
fn start(args: &DriverArgs) -> anyhow::Result<DriverConfig> {
    let settings = args.all_settings()?;
    let mut config = DriverConfig::resolve(settings)?;
    if config.pin_supervisor_digest.value {
        eprintln!(
            "resolving the supervisor image {} to its digest...",
            config.supervisor_image.value
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("could not start the async runtime for the registry lookup")?;
        if let Some(pinned) = runtime.block_on(config.pin(&args.registry_options()))? {
            eprintln!("pinned the supervisor image to {}", pinned.image);
            eprintln!(
                "verified it: {} platform(s), the binary appears at {}",
                pinned.verification.platforms.len(),
                openshell_contract::INSTALLED_BINARY_PATH
            );
        }
        // Outside the runtime: the registry source runs its own.
        drop(runtime);
        config.check_platforms()?;
    }
    if let Some(report) =
        openshell_driver_kubernetes::signed::check(&config, &args.registry_options())?
    {
        eprintln!("{}", openshell_driver_kubernetes::signed::summary(&report));
        config.supervisor_signature = Some(report);
    }
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}

fn render(args: RenderArgs) -> anyhow::Result<()> {
    let config = start(&args.driver)?;
    let template = args
        .template
        .as_deref()
        .map(pod::read_template)
        .transpose()?;
    let request = PodRequest {
        name: args.name,
        sandbox_image: args.sandbox_image,
        command: args.command,
    };
    let pod = pod::render(template, &request, &config.sideload())?;
    write_stdout(&pod::to_text(&pod, args.format)?)?;
    Ok(())
}

fn show_config(args: ConfigArgs) -> anyhow::Result<()> {
    let config = start(&args.driver)?;
    let report = config.report();
    if args.json {
        let json = serde_json::to_string_pretty(&report).context("could not write the report")?;
        write_stdout(&format!("{json}\n"))?;
        return Ok(());
    }
    let mut out = String::new();
    if let Some(settings) = report.as_object() {
        for (key, setting) in settings.iter().filter(|(key, _)| *key != "warnings") {
            let value = match &setting["value"] {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map_or_else(|| item.to_string(), str::to_string)
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let origin = setting["origin"].as_str().unwrap_or_default();
            out.push_str(&format!("{key}: {value} ({origin})\n"));
        }
    }
    write_stdout(&out)?;
    Ok(())
}
