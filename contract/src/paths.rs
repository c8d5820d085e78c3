//! Names and paths that the image, the driver and the supervisor share.

/// File name of the supervisor binary.
pub const BINARY_NAME: &str = "openshell-sandbox";

/// Absolute path of the binary inside the supervisor image (its only file).
pub const IMAGE_BINARY_PATH: &str = "/openshell-sandbox";

/// Path of the binary inside a layer tar: image paths are relative there.
pub const LAYER_BINARY_PATH: &str = "openshell-sandbox";

/// Mode of the binary in the image: read and execute for everyone, no writes.
pub const IMAGE_BINARY_MODE: u32 = 0o555;

/// Owner (uid and gid) of the binary in the image.
pub const IMAGE_BINARY_OWNER: u64 = 0;

/// The image's entrypoint; the init-container fallback relies on it to find
/// `copy-self`.
pub const IMAGE_ENTRYPOINT: [&str; 1] = [IMAGE_BINARY_PATH];

/// Where the agent container sees the supervisor image (image volume) or the
/// emptyDir it was copied into (init container).
pub const MOUNT_PATH: &str = "/opt/openshell/bin";

/// Where the binary appears inside the agent container, for both methods.
pub const INSTALLED_BINARY_PATH: &str = "/opt/openshell/bin/openshell-sandbox";

/// Name of the pod volume that carries the supervisor.
pub const VOLUME_NAME: &str = "openshell-supervisor-bin";

/// Name of the `emptyDir` volume the driver mounts at [`DEFAULT_WORKDIR`]
/// when a pod template names no `workingDir` (and mounts nothing there).
pub const WORKDIR_VOLUME_NAME: &str = "openshell-sandbox-workdir";

/// Name of the init container of the init-container method.
pub const INIT_CONTAINER_NAME: &str = "openshell-supervisor-install";

/// Subcommand that installs the binary into a shared volume.
pub const COPY_SELF_SUBCOMMAND: &str = "copy-self";

/// Command of the init container of the init-container method.
pub const INIT_CONTAINER_COMMAND: [&str; 3] = [
    IMAGE_BINARY_PATH,
    COPY_SELF_SUBCOMMAND,
    INSTALLED_BINARY_PATH,
];

/// Supervisor image used when the operator names none: the release of this
/// workspace, never `latest` (a moved `latest` once broke every sandbox, and
/// `latest` makes Kubernetes contact the registry for every pod).
pub const DEFAULT_SUPERVISOR_IMAGE: &str =
    concat!("openshell/supervisor:", env!("CARGO_PKG_VERSION"));

/// Working directory of the workload in a sandbox.
pub const DEFAULT_WORKDIR: &str = "/sandbox";

/// Name of the container in a sandbox pod that runs the agent.
pub const AGENT_CONTAINER_NAME: &str = "agent";

/// Where Kubernetes reads a container's termination message from.
pub const TERMINATION_LOG_PATH: &str = "/dev/termination-log";

/// Environment variable that points the supervisor's termination message at
/// another file (tests use it; Kubernetes uses the default path).
pub const TERMINATION_LOG_ENV: &str = "OPENSHELL_TERMINATION_LOG";

/// The supervisor's flag for the termination log (beside
/// [`TERMINATION_LOG_ENV`]).
pub const FLAG_TERMINATION_LOG: &str = "termination-log";

/// The Rust target the supervisor is built for by default: musl links
/// statically.
pub const DEFAULT_STATIC_TARGET: &str = "x86_64-unknown-linux-musl";

/// The Rust target of the arm64 supervisor (cross-compiled, linked by
/// rust-lld; see `.cargo/config.toml`).
pub const ARM64_STATIC_TARGET: &str = "aarch64-unknown-linux-musl";

/// The platforms `cargo run -p build-image` builds the supervisor for when
/// no `--platform` is given, in the order of the image index.
pub const DEFAULT_PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

/// `build-image`'s flag that selects the platforms to build.
pub const PLATFORM_FLAG: &str = "--platform";

/// Default OCI image layout written by `cargo run -p build-image`, relative to
/// the workspace root.
pub const DEFAULT_OCI_LAYOUT_DIR: &str = "target/oci/supervisor";

/// The workspace's version: the release tag every supervisor image gets.
pub const RELEASE_TAG: &str = env!("CARGO_PKG_VERSION");

/// The moving tag a build also gets, for people who try things locally.
pub const DEFAULT_IMAGE_TAG: &str = "latest";

/// Tags a build gets when none is given: the release version first (what
/// the driver's default image names), then `latest`.
pub const DEFAULT_IMAGE_TAGS: [&str; 2] = [RELEASE_TAG, DEFAULT_IMAGE_TAG];

/// Repository name of the supervisor image, as `docker load` names it.
pub const SUPERVISOR_REPOSITORY: &str = "openshell/supervisor";

/// Where `IMAGE_BINARY_PATH` appears once the image is mounted at `mount_path`.
///
/// `image_path` is an absolute path inside the image.
pub fn path_under_mount(mount_path: &str, image_path: &str) -> String {
    format!(
        "{}/{}",
        mount_path.trim_end_matches('/'),
        image_path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_path_is_the_image_path_under_the_mount() {
        assert_eq!(
            path_under_mount(MOUNT_PATH, IMAGE_BINARY_PATH),
            INSTALLED_BINARY_PATH
        );
        assert_eq!(
            path_under_mount("/opt/openshell/bin/", "/usr/local/bin/openshell-sandbox"),
            "/opt/openshell/bin/usr/local/bin/openshell-sandbox"
        );
    }

    #[test]
    fn the_default_image_carries_the_workspace_version() {
        assert_eq!(
            DEFAULT_SUPERVISOR_IMAGE,
            format!("openshell/supervisor:{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(!DEFAULT_SUPERVISOR_IMAGE.ends_with(":latest"));
    }

    #[test]
    fn paths_agree_with_the_binary_name() {
        assert_eq!(IMAGE_BINARY_PATH, format!("/{BINARY_NAME}"));
        assert_eq!(LAYER_BINARY_PATH, BINARY_NAME);
        assert_eq!(INIT_CONTAINER_COMMAND[2], INSTALLED_BINARY_PATH);
    }
}
