//! `build-image`: build, verify and publish the supervisor image.

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use build_image::copy::Selection;
use build_image::layer::LayerSettings;
use build_image::pipeline::{self, BinaryInput, BuildOptions};
use build_image::progress::{Progress, human_size};
use build_image::supervisor_build::{git_revision, workspace_root};
use clap::{Args, Parser, Subcommand};
use openshell_contract::cli::{BROKEN_PIPE_EXIT, is_broken_pipe, write_stdout};
use openshell_contract::platform::Platform;
use openshell_contract::registry::{
    ENV_REGISTRY_ATTEMPTS, ENV_REGISTRY_CONNECT_TIMEOUT, ENV_REGISTRY_OPERATION_TIMEOUT,
    ENV_REGISTRY_READ_TIMEOUT, FLAG_REGISTRY_ATTEMPTS, FLAG_REGISTRY_CONNECT_TIMEOUT,
    FLAG_REGISTRY_OPERATION_TIMEOUT, FLAG_REGISTRY_READ_TIMEOUT,
};
use openshell_contract::signing::{
    ENV_COSIGN_PASSWORD, FLAG_SIGN_KEY, FLAG_SIGN_KEY_PASSPHRASE_FILE,
};
use openshell_contract::version::Libc;
use openshell_contract::{
    DEFAULT_IMAGE_TAGS, DEFAULT_OCI_LAYOUT_DIR, MOUNT_PATH, SUPERVISOR_REPOSITORY,
};
use openshell_registry::{RegistryOptions, parse_attempts, parse_duration};
use openshell_supply_chain::epoch::Epoch;
use openshell_supply_chain::metadata::ImageMetadata;
use openshell_supply_chain::provenance::{self, KeyValue};
use openshell_supply_chain::sbom::SbomChoice;
use openshell_transport::limits::{
    MAX_INDEX_DEPTH_FLAG, MAX_INDEX_MANIFESTS_FLAG, MAX_MANIFEST_SIZE_FLAG, MAX_REFERRERS_FLAG,
};
use openshell_transport::{ImageReference, ReadLimits, TransportOptions, open_source};
use openshell_verify::filesystem::limits::{
    Limits as TreeLimits, MAX_BINARY_SIZE_FLAG, MAX_ENTRIES_FLAG, MAX_LAYERS_FLAG,
    MAX_PATH_DEPTH_FLAG, MAX_PATH_LENGTH_FLAG, MAX_SYMLINK_TARGET_FLAG,
    MAX_SYMLINK_TARGETS_TOTAL_FLAG, MAX_UNCOMPRESSED_SIZE_FLAG, parse_size,
};
use openshell_verify::verify::{self, NothingKnown, VerifyOptions};

/// Program name on progress lines and errors.
const PROGRAM: &str = "build-image";

/// Build the FROM-scratch OCI image of the OpenShell supervisor, verify that
/// it resolves at the image-volume mount, and write or push it.
///
/// With no arguments: builds openshell-sandbox (release, static), assembles
/// the image, verifies it, and writes an OCI layout to target/oci/supervisor
/// tagged with the release version and latest. SOURCE_DATE_EPOCH (seconds)
/// sets every time stamp in the image (default 0), so the same binary always
/// gives the same digest.
///
/// Destinations are transport references, as skopeo and podman write them:
/// oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG], docker://HOST/REPO[:TAG].
/// A reference without a tag gets every --tag.
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
    Verify(Box<VerifyArgs>),
    /// Write a signing key pair as `cosign generate-key-pair` does:
    /// PREFIX.key (encrypted, cosign's format) and PREFIX.pub. The
    /// passphrase comes from COSIGN_PASSWORD or standard input.
    Keygen(KeygenArgs),
    /// Copy an image with every referrer it has (SBOMs, signatures,
    /// attestations) between layouts, registries and archives, keeping
    /// every digest; registries also get cosign's .sig and .att tags.
    Copy(Box<CopyArgs>),
}

#[derive(Debug, Args)]
struct CopyArgs {
    /// The image: oci:DIR[:TAG], docker-archive:FILE or docker://REF.
    source: ImageReference,
    /// Where to write it: oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REF.
    destination: ImageReference,
    /// Tag for a destination that names none (repeatable). Default: the
    /// source's tag, else the release version and latest.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Copy the whole image: the index, every platform manifest, and every
    /// referrer of each (the default; accepted for scripts written for
    /// `skopeo copy --all`).
    #[arg(long, conflicts_with = "platform")]
    all_platforms: bool,
    /// Copy only this platform's manifest (OS/ARCH[/VARIANT], given once),
    /// by its own digest, with its own SBOM, signatures and attestations,
    /// and not the index (a new index would have a digest nothing signed).
    /// The index's own signatures and attestations cannot travel: their
    /// subject is the index digest; an attestation whose signed statement
    /// names this manifest (the SLSA provenance) is attached to it again,
    /// its bundle unchanged. `verify DEST --key` then checks the manifest's own
    /// signature.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// Path prefix of the pair: writes PREFIX.key and PREFIX.pub.
    prefix: PathBuf,
    /// Replace an existing pair.
    #[arg(long)]
    force: bool,
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
    /// How long to wait for a registry to accept a connection (e.g. 10s).
    #[arg(long = FLAG_REGISTRY_CONNECT_TIMEOUT, env = ENV_REGISTRY_CONNECT_TIMEOUT, value_name = "DURATION", value_parser = parse_duration)]
    registry_connect_timeout: Option<Duration>,
    /// How long a registry request may make no progress before the attempt
    /// counts as stalled (default 15s).
    #[arg(long = FLAG_REGISTRY_READ_TIMEOUT, env = ENV_REGISTRY_READ_TIMEOUT, value_name = "DURATION", value_parser = parse_duration)]
    registry_read_timeout: Option<Duration>,
    /// Deadline of one registry operation, retries included (default 50s;
    /// a blob's grows with the bytes that arrive).
    #[arg(long = FLAG_REGISTRY_OPERATION_TIMEOUT, env = ENV_REGISTRY_OPERATION_TIMEOUT, value_name = "DURATION", value_parser = parse_duration)]
    registry_operation_timeout: Option<Duration>,
    /// Attempts per registry request, the first included, for timeouts,
    /// broken connections, 408, 429 and 5xx (default 4).
    #[arg(long = FLAG_REGISTRY_ATTEMPTS, env = ENV_REGISTRY_ATTEMPTS, value_name = "N", value_parser = parse_attempts)]
    registry_attempts: Option<u32>,
}

impl RegistryArgs {
    fn options(&self, quiet: bool) -> anyhow::Result<RegistryOptions> {
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
            connect_timeout: self.registry_connect_timeout,
            read_timeout: self.registry_read_timeout,
            operation_timeout: self.registry_operation_timeout,
            attempts: self.registry_attempts,
            quiet,
        })
    }
}

/// Bounds on reading images: whatever an image declares, reading it takes
/// no more than these. The flag names are the libraries' own, which their
/// refusals quote.
#[derive(Debug, Args)]
struct LimitArgs {
    /// Largest index.json, index, manifest or config to read, in bytes
    /// (registries refuse manifests over 4 MiB).
    #[arg(long = MAX_MANIFEST_SIZE_FLAG.trim_start_matches("--"), value_name = "BYTES", default_value_t = ReadLimits::default().max_document_size)]
    max_manifest_size: u64,
    /// Deepest nesting of image indexes below the top one.
    #[arg(long = MAX_INDEX_DEPTH_FLAG.trim_start_matches("--"), value_name = "N", default_value_t = ReadLimits::default().max_index_depth)]
    max_index_depth: usize,
    /// Most manifests the indexes of one image may list, in all.
    #[arg(long = MAX_INDEX_MANIFESTS_FLAG.trim_start_matches("--"), value_name = "N", default_value_t = ReadLimits::default().max_index_manifests)]
    max_index_manifests: usize,
    /// Most referrers (SBOMs, signatures) listed for one manifest; a
    /// longer listing is refused before any of them is read.
    #[arg(long = MAX_REFERRERS_FLAG.trim_start_matches("--"), value_name = "N", default_value_t = ReadLimits::default().max_referrers)]
    max_referrers: usize,
    /// Largest file named like the binary a layer may hold, in bytes or
    /// with a unit (256MiB); a larger one is refused from its tar header,
    /// before it is read.
    #[arg(long = MAX_BINARY_SIZE_FLAG.trim_start_matches("--"), value_name = "SIZE", default_value_t = TreeLimits::default().max_binary_size, value_parser = parse_size)]
    max_binary_size: u64,
    /// Most bytes all layers together may uncompress to, in bytes or with a
    /// unit (1GiB).
    #[arg(long = MAX_UNCOMPRESSED_SIZE_FLAG.trim_start_matches("--"), value_name = "SIZE", default_value_t = TreeLimits::default().max_uncompressed_size, value_parser = parse_size)]
    max_uncompressed_size: u64,
    /// Most tar entries all layers together may hold, folders created for
    /// missing parents included.
    #[arg(long = MAX_ENTRIES_FLAG.trim_start_matches("--"), value_name = "N", default_value_t = TreeLimits::default().max_entries)]
    max_entries: u64,
    /// Most components a path may have once symlinks in its folders are
    /// followed.
    #[arg(long = MAX_PATH_DEPTH_FLAG.trim_start_matches("--"), value_name = "N", default_value_t = TreeLimits::default().max_path_depth)]
    max_path_depth: u64,
    /// Longest path an entry may land at, in bytes (PATH_MAX less room for
    /// the node's storage prefix).
    #[arg(long = MAX_PATH_LENGTH_FLAG.trim_start_matches("--"), value_name = "BYTES", default_value_t = TreeLimits::default().max_path_length)]
    max_path_length: u64,
    /// Longest target one symlink may have, in bytes.
    #[arg(long = MAX_SYMLINK_TARGET_FLAG.trim_start_matches("--"), value_name = "SIZE", default_value_t = TreeLimits::default().max_symlink_target, value_parser = parse_size)]
    max_symlink_target: u64,
    /// Most bytes all symlink targets may hold together.
    #[arg(long = MAX_SYMLINK_TARGETS_TOTAL_FLAG.trim_start_matches("--"), value_name = "SIZE", default_value_t = TreeLimits::default().max_symlink_targets_total, value_parser = parse_size)]
    max_symlink_targets_total: u64,
    /// Most layers an image may have (overlayfs stacks at most 500).
    #[arg(long = MAX_LAYERS_FLAG.trim_start_matches("--"), value_name = "N", default_value_t = TreeLimits::default().max_layers)]
    max_layers: u64,
}

impl LimitArgs {
    fn tree_limits(&self) -> TreeLimits {
        TreeLimits {
            max_binary_size: self.max_binary_size,
            max_uncompressed_size: self.max_uncompressed_size,
            max_entries: self.max_entries,
            max_path_depth: self.max_path_depth,
            max_path_length: self.max_path_length,
            max_symlink_target: self.max_symlink_target,
            max_symlink_targets_total: self.max_symlink_targets_total,
            max_layers: self.max_layers,
        }
    }

    fn limits(&self) -> ReadLimits {
        ReadLimits {
            max_document_size: self.max_manifest_size,
            max_index_depth: self.max_index_depth,
            max_index_manifests: self.max_index_manifests,
            max_referrers: self.max_referrers,
        }
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
    /// Build the supervisor for these platforms only (repeatable or
    /// comma-separated): linux/amd64, linux/arm64. Default: both, in one
    /// image index.
    #[arg(
        long = "platform",
        value_name = "PLATFORM",
        value_delimiter = ',',
        conflicts_with = "binaries"
    )]
    platforms: Vec<Platform>,
    /// Write the image to REF: oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG]
    /// or docker://HOST/REPO[:TAG]. Repeatable; written in the order given.
    /// When no OCI layout is among the destinations, the default layout is
    /// written too (it keeps the build cache).
    #[arg(long = "to", value_name = "REF")]
    destinations: Vec<ImageReference>,
    /// OCI image layout folder to write, the same as --to oci:DIR (created
    /// if missing; an existing folder must be empty or a layout). Default:
    /// <workspace>/target/oci/supervisor.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Tag for every destination that names none
    /// (org.opencontainers.image.ref.name in a layout, the registry tag, the
    /// docker-archive's RepoTags); other tags in a layout are kept.
    /// Repeatable. Default: the release version and latest.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Also write a docker-archive tarball that `docker load` and
    /// `podman load` accept (single platform only); the same as
    /// --to docker-archive:FILE.
    #[arg(long, value_name = "FILE")]
    docker_archive: Option<PathBuf>,
    /// Name the image gets when the docker-archive is loaded (NAME; the tags
    /// are --tag).
    #[arg(long, value_name = "NAME", default_value = SUPERVISOR_REPOSITORY)]
    archive_name: String,
    /// Push the image to this registry reference (HOST/REPOSITORY[:TAG]),
    /// the same as --to docker://REF; prints the digest-pinned reference
    /// HOST/REPOSITORY@sha256:... afterwards.
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
    /// Add a label to every platform's config (what `podman inspect` and
    /// `docker inspect` show as Labels). Repeatable. KEY is reverse-DNS
    /// style (com.example.team); org.opencontainers.image.* keys must be
    /// ones the OCI spec defines.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<KeyValue>,
    /// Add an annotation to every platform manifest and to the index.
    /// Repeatable. Keys as for --label; an org.opencontainers.image.* key
    /// build-image also sets (source, version, revision, created...) takes
    /// this value, in the labels too.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<KeyValue>,
    /// Attach this SBOM (SPDX 2.x or CycloneDX JSON) to every platform
    /// manifest instead of the one generated from the workspace's
    /// Cargo.lock.
    #[arg(long, value_name = "FILE", conflicts_with = "no_sbom")]
    sbom: Option<PathBuf>,
    /// Attach no SBOM. By default each platform manifest gets an SPDX 2.3
    /// SBOM of the supervisor's crates (from the workspace's Cargo.lock,
    /// also with --binary) as an OCI 1.1 referrer.
    #[arg(long)]
    no_sbom: bool,
    /// gzip level of the layer, 1 (fastest) to 9 (smallest).
    #[arg(long, value_name = "N", default_value_t = build_image::gzip::DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(1..=9))]
    compression_level: u32,
    /// Print the build result as JSON on stdout (the BuildResult the driver reads).
    #[arg(long)]
    json: bool,
    /// Also write the build result JSON to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    sign: SignArgs,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Signing: cosign-compatible signatures and SLSA provenance, attached to
/// the index and each platform manifest.
#[derive(Debug, Args)]
struct SignArgs {
    /// Sign with this ECDSA P-256 private key (cosign's encrypted .key, or
    /// unencrypted PKCS#8 PEM). Its passphrase comes from COSIGN_PASSWORD,
    /// --sign-key-passphrase-file, or standard input.
    #[arg(long = FLAG_SIGN_KEY.trim_start_matches("--"), value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// Read the key's passphrase from the first line of FILE.
    #[arg(long = FLAG_SIGN_KEY_PASSPHRASE_FILE.trim_start_matches("--"), value_name = "FILE", requires = "sign_key")]
    sign_key_passphrase_file: Option<PathBuf>,
}

impl SignArgs {
    /// Loads the key before any work; `identity` is the repository the
    /// signatures claim.
    fn settings(
        &self,
        identity: String,
        workspace: Option<PathBuf>,
        stdin_taken: bool,
    ) -> anyhow::Result<Option<build_image::signatures::SignSettings>> {
        let Some(file) = &self.sign_key else {
            return Ok(None);
        };
        if stdin_taken
            && self.sign_key_passphrase_file.is_none()
            && std::env::var_os(ENV_COSIGN_PASSWORD).is_none()
        {
            bail!(
                "--password-stdin reads standard input, so the signing key's passphrase cannot come from it too: set {ENV_COSIGN_PASSWORD} or pass {FLAG_SIGN_KEY_PASSPHRASE_FILE} FILE"
            );
        }
        let key = build_image::signatures::load_key(
            file,
            &build_image::passphrase::PassphraseSources {
                file: self.sign_key_passphrase_file.clone(),
            },
        )?;
        Ok(Some(build_image::signatures::SignSettings {
            key,
            identity,
            provenance: build_image::signatures::ProvenanceInputs {
                invocation: std::env::args().collect(),
                workspace,
            },
        }))
    }
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The image: oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REF.
    source: ImageReference,
    /// Where the sandbox mounts the image.
    #[arg(long, default_value = MOUNT_PATH, value_name = "PATH")]
    mount_path: String,
    /// Also run the extracted binary's `version --json` and check it
    /// reports the same sha256: on this host, or under qemu-user
    /// (qemu-ARCH-static, from qemu-user-static) for another architecture.
    /// It runs with a 30 s deadline, and whatever it starts is killed.
    #[arg(long)]
    run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Fail when a platform manifest has no valid SBOM referrer (by default
    /// a missing SBOM is reported and skipped; a broken one always fails).
    #[arg(long)]
    require_sbom: bool,
    /// Also check the image's signatures and SLSA provenance with this
    /// public key (PEM, a cosign .pub): every manifest must carry a
    /// signature that verifies over its digest, and the top one a
    /// provenance attestation naming every manifest.
    #[arg(long, value_name = "PUB")]
    key: Option<PathBuf>,
    /// The repository the signatures must claim (cosign's
    /// docker-reference). Default: the repository of a docker:// SOURCE;
    /// for other sources, not checked unless given.
    #[arg(long, value_name = "REPO", requires = "key")]
    identity: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Verify(args)) => run_verify(&args),
        Some(Command::Keygen(args)) => run_keygen(&args),
        Some(Command::Copy(args)) => run_copy(&args),
        None => run_build(&cli.build),
    };
    match outcome {
        Ok(code) => code,
        // The reader went away (`build-image verify ... | head`): nothing
        // left to tell it.
        Err(err) if is_broken_pipe(err.as_ref()) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(err) => {
            eprintln!("{PROGRAM}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let passphrase = build_image::passphrase::read(
        &build_image::passphrase::PassphraseSources::default(),
        "passphrase for the new private key: ",
    )?;
    let outcome = build_image::keygen::keygen(&args.prefix, &passphrase, args.force)?;
    write_stdout(&format!(
        "private key {}\npublic key  {} ({})\n",
        outcome.private_key.display(),
        outcome.public_key.display(),
        outcome.key_id
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn run_copy(args: &CopyArgs) -> anyhow::Result<ExitCode> {
    let progress = if args.quiet {
        Progress::quiet()
    } else {
        Progress::stderr(PROGRAM)
    };
    let options = TransportOptions {
        registry: args.registry.options(args.quiet)?,
        limits: args.limits.limits(),
    };
    let tags: Vec<String> = if !args.tags.is_empty() {
        args.tags.clone()
    } else {
        match &args.source {
            ImageReference::OciLayout { tag: Some(tag), .. } => vec![tag.clone()],
            ImageReference::Registry {
                reference,
                explicit_tag: true,
                ..
            } => reference
                .tag()
                .map(|tag| vec![tag.to_string()])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    let tags = if tags.is_empty() {
        DEFAULT_IMAGE_TAGS
            .iter()
            .map(|tag| (*tag).to_string())
            .collect()
    } else {
        tags
    };
    let selection = match &args.platform {
        Some(platform) => Selection::Platform(platform.clone()),
        None => Selection::AllPlatforms,
    };
    let mut image_source = open_source(&args.source, &options)
        .with_context(|| format!("could not open {}", args.source))?;
    if matches!(args.destination, ImageReference::DockerArchive { .. }) {
        build_image::copy::check_docker_archive(
            image_source.as_mut(),
            &selection,
            &options.limits,
        )?;
    }
    let step = progress.step(match &args.platform {
        Some(platform) => format!("reading {platform} of {} with its referrers", args.source),
        None => format!("reading {} with its referrers", args.source),
    });
    let read = build_image::copy::read_selected(image_source.as_mut(), &selection, &options.limits)
        .with_context(|| format!("could not read {}", args.source))?;
    step.done(format!(
        "{} referrer(s), {} cosign tag(s)",
        read.referrers,
        read.image.attachments.len()
    ));
    if let (Some(platform), Some(index)) = (&read.platform, &read.index_left) {
        let provenance = if index.attestations_attached > 0 {
            format!(
                "{} attestation(s) of the index whose signed statement names this manifest (the SLSA provenance) are attached to it again, unchanged",
                index.attestations_attached
            )
        } else {
            "no attestation of the index names this manifest, so no provenance comes along"
                .to_string()
        };
        // Said even with --quiet: it is what the copy leaves out.
        eprintln!(
            "{PROGRAM}: note: copying {platform} ({}) without its index {}: the index's own {} referrer(s) (its signatures and attestations) cannot travel with one platform, their subject being the index digest; {provenance}; `verify DEST --key` checks this manifest's own signature",
            read.image.top.digest(),
            index.digest,
            index.referrers,
        );
    }
    let destination = openshell_transport::open_destination(
        &args.destination,
        &openshell_transport::DestinationOptions {
            default_tags: tags,
            archive_name: SUPERVISOR_REPOSITORY.to_string(),
            mtime: Epoch::from_env()?.seconds(),
            registry: options.registry.clone(),
        },
    )?;
    let published = destination
        .publish(&read.image, &progress)
        .with_context(|| format!("could not write {}", args.destination))?;
    let mut out = match (&args.platform, &read.platform) {
        (Some(_), Some(platform)) => format!(
            "copied     {} ({platform}, {} referrer(s))\n",
            read.image.top.digest(),
            read.referrers
        ),
        _ => format!(
            "copied     {} ({} referrer(s))\n",
            read.image.top.digest(),
            read.referrers
        ),
    };
    if matches!(args.destination, ImageReference::DockerArchive { .. }) && read.referrers > 0 {
        // docker save's format has no place for them.
        writeln!(
            out,
            "note       a docker-archive cannot hold referrers: the {} SBOM(s), signature(s) and attestation(s) stay behind",
            read.referrers
        )?;
    }
    for reference in &published.references {
        writeln!(out, "wrote      {reference}")?;
    }
    if let Some(pinned) = &published.pinned {
        writeln!(out, "pushed     {pinned}")?;
    }
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn run_verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let progress = if args.quiet {
        Progress::quiet()
    } else {
        Progress::stderr(PROGRAM)
    };
    if !args.mount_path.starts_with('/') {
        bail!(
            "--mount-path {:?} must be an absolute path",
            args.mount_path
        );
    }
    // The key is read before the image, so a bad key costs no download.
    let key = match &args.key {
        Some(file) => Some(openshell_verify::signature_check::read_public_key(file)?),
        None => None,
    };
    let options = TransportOptions {
        registry: args.registry.options(args.quiet)?,
        limits: args.limits.limits(),
    };
    let mut image_source = open_source(&args.source, &options)
        .with_context(|| format!("could not open {}", args.source))?;
    progress.note(format!("reading {}", args.source));
    let report = verify::verify(
        image_source.as_mut(),
        &NothingKnown,
        &VerifyOptions {
            mount_path: args.mount_path.clone(),
            run: args.run,
            limits: options.limits,
            tree_limits: args.limits.tree_limits(),
            require_sbom: args.require_sbom,
        },
    )
    .with_context(|| format!("could not read {}", args.source))?;
    let signatures = match &key {
        Some(key) => {
            let identity = args.identity.clone().or_else(|| match &args.source {
                ImageReference::Registry { reference, .. } => Some(format!(
                    "{}/{}",
                    reference.registry(),
                    reference.repository()
                )),
                _ => None,
            });
            Some(
                openshell_verify::signature_check::check(
                    image_source.as_mut(),
                    key,
                    identity.as_deref(),
                    &options.limits,
                )
                .with_context(|| format!("could not read the signatures of {}", args.source))?,
            )
        }
        None => None,
    };
    let ok = report.ok && signatures.as_ref().is_none_or(|s| s.ok);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(signatures) = &signatures {
            value["signatures"] = serde_json::to_value(signatures)?;
            value["ok"] = ok.into();
        }
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
    } else {
        write_stdout(&report.to_string())?;
        if let Some(signatures) = &signatures {
            write_stdout(&signatures.to_string())?;
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let progress = if args.quiet {
        Progress::quiet()
    } else {
        Progress::stderr(PROGRAM)
    };
    let epoch = Epoch::from_env()?;
    let here = std::env::current_dir().context("could not read the current folder")?;
    let tags: Vec<String> = if args.tags.is_empty() {
        DEFAULT_IMAGE_TAGS
            .iter()
            .map(|tag| (*tag).to_string())
            .collect()
    } else {
        args.tags.clone()
    };
    let mut destinations: Vec<ImageReference> = Vec::new();
    if let Some(output) = &args.output {
        destinations.push(ImageReference::OciLayout {
            dir: output.clone(),
            tag: None,
        });
    }
    destinations.extend(args.destinations.iter().cloned());
    if let Some(file) = &args.docker_archive {
        destinations.push(ImageReference::DockerArchive {
            file: file.clone(),
            name: None,
        });
    }
    if let Some(push) = &args.push {
        destinations.push(
            format!("docker://{push}")
                .parse()
                .with_context(|| format!("--push {push}"))?,
        );
    }
    let has_layout = destinations
        .iter()
        .any(|destination| matches!(destination, ImageReference::OciLayout { .. }));
    let workspace = if args.binaries.is_empty() || !has_layout {
        Some(workspace_root(&here)?)
    } else {
        None
    };
    if !has_layout {
        let dir = match &workspace {
            Some(workspace) => workspace.join(DEFAULT_OCI_LAYOUT_DIR),
            None => here.join(DEFAULT_OCI_LAYOUT_DIR),
        };
        destinations.insert(0, ImageReference::OciLayout { dir, tag: None });
    }
    // The SBOM lists the workspace's Cargo.lock, so it is looked for with
    // --binary too.
    let workspace = match workspace {
        None if !args.no_sbom && args.sbom.is_none() => workspace_root(&here).ok(),
        found => found,
    };
    let mut metadata = ImageMetadata::new(epoch);
    metadata.labels = provenance::to_map(&args.labels, "--label").map_err(anyhow::Error::msg)?;
    metadata.annotations =
        provenance::to_map(&args.annotations, "--annotation").map_err(anyhow::Error::msg)?;
    metadata.version = args.image_version.clone();
    metadata.revision = args.revision.clone().or_else(|| {
        if args.binaries.is_empty() {
            workspace.as_deref().and_then(git_revision)
        } else {
            None
        }
    });
    let limits = args.limits.limits();
    // The signatures claim the first registry's repository (cosign's
    // docker-reference), else the name the image is loaded under.
    let identity = destinations
        .iter()
        .find_map(|destination| match destination {
            ImageReference::Registry { reference, .. } => Some(format!(
                "{}/{}",
                reference.registry(),
                reference.repository()
            )),
            _ => None,
        })
        .unwrap_or_else(|| args.archive_name.clone());
    // The provenance lists the workspace's crates, also with --no-sbom.
    let sign = args.sign.settings(
        identity,
        workspace.clone().or_else(|| workspace_root(&here).ok()),
        args.registry.password_stdin,
    )?;
    let options = BuildOptions {
        binaries: args.binaries.clone(),
        destinations,
        tags: tags.clone(),
        archive_name: args.archive_name.clone(),
        registry: args.registry.options(args.quiet)?,
        metadata,
        layer: LayerSettings {
            level: args.compression_level,
            ..LayerSettings::default()
        },
        verify: VerifyOptions {
            limits,
            tree_limits: args.limits.tree_limits(),
            ..VerifyOptions::default()
        },
        workspace,
        platforms: args.platforms.clone(),
        sbom: match (&args.sbom, args.no_sbom) {
            (Some(file), _) => SbomChoice::File(file.clone()),
            (None, true) => SbomChoice::Skip,
            (None, false) => SbomChoice::Generate,
        },
        sign,
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
        if let (Some(target), Some(libc)) = (&platform.target, platform.libc) {
            let libc = match libc {
                Libc::Musl => "musl",
                Libc::Gnu => "glibc with +crt-static, not musl",
                Libc::Other => "unknown",
            };
            writeln!(out, "{:<10} built for {target} (libc: {libc})", "")?;
        }
    }
    for platform in &outcome.report.platforms {
        if let Some(sbom) = &platform.sbom {
            writeln!(
                out,
                "sbom       {}: {} ({} bytes) {}, referrer {}",
                platform.platform.as_deref().unwrap_or("image"),
                sbom.summary,
                sbom.sbom_size,
                sbom.sbom_digest,
                sbom.referrer_digest
            )?;
        }
    }
    if let Some(path) = outcome
        .report
        .platforms
        .first()
        .and_then(|p| p.binary_in_sandbox.as_ref())
    {
        writeln!(out, "sandbox    the binary appears at {path}")?;
    }
    let shorten = |reference: &str| match reference.strip_prefix("oci:") {
        Some(rest) => Path::new(rest)
            .strip_prefix(&here)
            .map(|relative| format!("oci:{}", relative.display()))
            .unwrap_or_else(|_| reference.to_string()),
        None => reference.to_string(),
    };
    for reference in &result.references() {
        writeln!(out, "wrote      {}", shorten(reference))?;
    }
    for pinned in &result.pushed() {
        writeln!(out, "pushed     {pinned}")?;
    }
    writeln!(out)?;
    if let Some(layout) = &result.layout() {
        let shown = shorten(&format!("oci:{}", layout.path));
        writeln!(out, "load it into podman:")?;
        writeln!(
            out,
            "  skopeo copy {shown}:{tag} containers-storage:{name}:{tag}",
            tag = layout.tag,
            name = args.archive_name
        )?;
    }
    match &result.docker_archive() {
        Some(archive) => writeln!(out, "  podman load -i {archive}")?,
        None => writeln!(
            out,
            "  or: build-image --docker-archive supervisor.tar, then podman load -i supervisor.tar (docker load works too)"
        )?,
    }
    if result.pushed().is_empty() {
        writeln!(out, "push it:")?;
        writeln!(
            out,
            "  cargo run -p build-image -- --push REGISTRY/{}:{}",
            args.archive_name,
            tags.first().map_or("TAG", String::as_str)
        )?;
    }
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
