//! `build-image`: build, verify and publish the supervisor image.

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use build_image::epoch::Epoch;
use build_image::image::ImageMetadata;
use build_image::layer::LayerSettings;
use build_image::pipeline::{self, BinaryInput, BuildOptions};
use build_image::progress::{Progress, human_size};
use build_image::source;
use build_image::supervisor_build::{git_revision, workspace_root};
use build_image::verify::{self, VerifyOptions};
use clap::{Args, Parser, Subcommand};
use openshell_contract::cli::{BROKEN_PIPE_EXIT, is_broken_pipe, write_stdout};
use openshell_contract::{DEFAULT_IMAGE_TAG, DEFAULT_OCI_LAYOUT_DIR, MOUNT_PATH};
use openshell_registry::RegistryOptions;

/// Build the FROM-scratch OCI image of the OpenShell supervisor, verify that
/// it resolves at the image-volume mount, and write or push it.
///
/// With no arguments: builds openshell-sandbox (release, static), assembles
/// the image, verifies it, and writes an OCI layout to target/oci/supervisor
/// tagged latest. SOURCE_DATE_EPOCH (seconds) sets every time stamp in the
/// image (default 0), so the same binary always gives the same digest.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    build: BuildArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that an image (built here, by buildah/podman from
    /// Dockerfile.scratch, or pulled from a registry) will resolve at the
    /// image-volume mount; exits non-zero on any failure.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct RegistryArgs {
    /// User name for the registry (with --password-stdin); without it,
    /// credentials come from REGISTRY_AUTH_FILE, the podman auth files or
    /// ~/.docker/config.json.
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from the first line of standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Use this auth file instead of searching the usual ones.
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// Talk plain HTTP to the registry (for a loopback registry without TLS).
    #[arg(long)]
    plain_http: bool,
}

impl RegistryArgs {
    fn options(&self) -> anyhow::Result<RegistryOptions> {
        let basic = match &self.username {
            Some(username) => {
                let mut password = String::new();
                std::io::stdin().lock().read_line(&mut password).context(
                    "could not read the password from standard input (--password-stdin)",
                )?;
                let password = password.trim_end_matches(['\r', '\n']).to_string();
                if password.is_empty() {
                    bail!("--password-stdin read an empty password from standard input");
                }
                Some((username.clone(), password))
            }
            None => None,
        };
        Ok(RegistryOptions {
            plain_http: self.plain_http,
            basic,
            auth_file: self.authfile.clone(),
        })
    }
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// Package a prebuilt static binary instead of building the supervisor.
    /// Repeat as PLATFORM=PATH (e.g. linux/amd64=PATH linux/arm64=PATH) for
    /// a multi-platform image index; each ELF's machine must match its
    /// platform.
    #[arg(long = "binary", value_name = "[PLATFORM=]PATH")]
    binaries: Vec<BinaryInput>,
    /// OCI image layout folder to write (created if missing; an existing
    /// folder must be empty or a layout). Default: <workspace>/target/oci/supervisor.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Tag of the image in the layout (org.opencontainers.image.ref.name);
    /// other tags there are kept.
    #[arg(long, default_value = DEFAULT_IMAGE_TAG)]
    tag: String,
    /// Also write a docker-archive tarball that `docker load` and
    /// `podman load` accept (single platform only).
    #[arg(long, value_name = "FILE")]
    docker_archive: Option<PathBuf>,
    /// Name the image gets when the docker-archive is loaded (NAME; the tag
    /// is --tag).
    #[arg(long, value_name = "NAME", default_value = "openshell/supervisor")]
    archive_name: String,
    /// Push the image to this registry reference (HOST/REPOSITORY:TAG); prints
    /// the digest-pinned reference REF@sha256:... afterwards.
    #[arg(long, value_name = "REF")]
    push: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Value of org.opencontainers.image.revision (default: the workspace's
    /// git commit when building the supervisor; none with --binary).
    #[arg(long, env = "OPENSHELL_GIT_REVISION", value_name = "REV")]
    revision: Option<String>,
    /// Value of org.opencontainers.image.version.
    #[arg(long = "image-version", value_name = "VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    image_version: String,
    /// gzip level of the layer, 1 (fastest) to 9 (smallest).
    #[arg(long, value_name = "N", default_value_t = build_image::gzip::DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(1..=9))]
    compression_level: u32,
    /// Print the build result as JSON on stdout (the BuildResult the driver reads).
    #[arg(long)]
    json: bool,
    /// Also write the build result JSON to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The image: oci:DIR[:TAG], docker-archive:FILE or docker://REF.
    source: String,
    /// Where the sandbox mounts the image.
    #[arg(long, default_value = MOUNT_PATH, value_name = "PATH")]
    mount_path: String,
    /// Also run the extracted binary's `version --json` (when it is for this
    /// host's architecture) and check it reports the same sha256.
    #[arg(long)]
    run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Verify(args)) => run_verify(&args),
        None => run_build(&cli.build),
    };
    match outcome {
        Ok(code) => code,
        // The reader went away (`build-image verify ... | head`): nothing
        // left to tell it.
        Err(err) if is_broken_pipe(err.as_ref()) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(err) => {
            eprintln!("build-image: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let progress = if args.quiet {
        Progress::quiet()
    } else {
        Progress::stderr()
    };
    if !args.mount_path.starts_with('/') {
        bail!(
            "--mount-path {:?} must be an absolute path",
            args.mount_path
        );
    }
    let registry = args.registry.options()?;
    let mut image_source = source::open(&args.source, &registry)?;
    let loaded = source::load(image_source.as_mut(), &progress)
        .with_context(|| format!("could not read {}", args.source))?;
    let report = verify::verify(
        &loaded,
        &VerifyOptions {
            mount_path: args.mount_path.clone(),
            run: args.run,
        },
    );
    if args.json {
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        write_stdout(&report.to_string())?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let progress = if args.quiet {
        Progress::quiet()
    } else {
        Progress::stderr()
    };
    let epoch = Epoch::from_env()?;
    let here = std::env::current_dir().context("could not read the current folder")?;
    let workspace = if args.binaries.is_empty() || args.output.is_none() {
        Some(workspace_root(&here)?)
    } else {
        None
    };
    let output = match (&args.output, &workspace) {
        (Some(output), _) => output.clone(),
        (None, Some(workspace)) => workspace.join(DEFAULT_OCI_LAYOUT_DIR),
        (None, None) => here.join(DEFAULT_OCI_LAYOUT_DIR),
    };
    let mut metadata = ImageMetadata::new(epoch);
    metadata.version = args.image_version.clone();
    metadata.revision = args.revision.clone().or_else(|| {
        if args.binaries.is_empty() {
            workspace.as_deref().and_then(git_revision)
        } else {
            None
        }
    });
    let options = BuildOptions {
        binaries: args.binaries.clone(),
        output: output.clone(),
        tag: args.tag.clone(),
        docker_archive: args.docker_archive.clone(),
        archive_name: format!("{}:{}", args.archive_name, args.tag),
        push: args.push.clone(),
        registry: args.registry.options()?,
        metadata,
        layer: LayerSettings {
            level: args.compression_level,
            ..LayerSettings::default()
        },
        verify: VerifyOptions::default(),
        workspace,
    };
    let outcome = pipeline::run(&options, &progress)?;
    let json = serde_json::to_string_pretty(&outcome.result)?;
    if let Some(file) = &args.metadata_file {
        build_image::atomic::write_file(file, format!("{json}\n").as_bytes())
            .with_context(|| format!("could not write the build result to {}", file.display()))?;
    }
    if args.json {
        write_stdout(&format!("{json}\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let result = &outcome.result;
    // Collected, then written at once: a closed stdout (`| head`) is then
    // one error to handle, not a panic in the middle.
    let mut out = String::new();
    writeln!(out, "image      {} ({})", result.digest, result.media_type)?;
    for platform in &result.platforms {
        writeln!(
            out,
            "{:<10} manifest {}, layer {} ({} bytes), binary sha256 {}",
            platform.platform,
            platform.manifest_digest,
            human_size(platform.layer_size),
            platform.layer_size,
            platform.binary_sha256
        )?;
    }
    if let Some(path) = outcome
        .report
        .platforms
        .first()
        .and_then(|p| p.binary_in_sandbox.as_ref())
    {
        writeln!(out, "sandbox    the binary appears at {path}")?;
    }
    let shown = output
        .strip_prefix(&here)
        .map(|relative| relative.display().to_string())
        .unwrap_or_else(|_| output.display().to_string());
    writeln!(out, "layout     oci:{shown}:{}", args.tag)?;
    if let Some(archive) = &result.docker_archive {
        writeln!(out, "archive    docker-archive:{archive}")?;
    }
    for pinned in &result.pushed {
        writeln!(out, "pushed     {pinned}")?;
    }
    writeln!(out)?;
    writeln!(out, "load it into podman:")?;
    writeln!(
        out,
        "  skopeo copy oci:{shown}:{tag} containers-storage:{name}:{tag}",
        tag = args.tag,
        name = args.archive_name
    )?;
    match &result.docker_archive {
        Some(archive) => writeln!(out, "  podman load -i {archive}")?,
        None => writeln!(
            out,
            "  or: build-image --docker-archive supervisor.tar, then podman load -i supervisor.tar (docker load works too)"
        )?,
    }
    if result.pushed.is_empty() {
        writeln!(out, "push it:")?;
        writeln!(
            out,
            "  cargo run -p build-image -- --push REGISTRY/{}:{}",
            args.archive_name, args.tag
        )?;
    }
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
