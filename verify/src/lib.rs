//! openshell-verify: will an image resolve at the sandbox's image-volume
//! mount and run as the supervisor?
//!
//! Kubernetes mounts the supervisor image's root at `/opt/openshell/bin`,
//! so an image is only right if the layers, as the runtimes extract them,
//! leave exactly one static binary at `/openshell-sandbox`. This crate
//! answers that for any image source of the `openshell-transport` crate
//! (an OCI layout, a docker-archive, a registry), before anyone mounts it:
//!
//! - [`filesystem`]: the root filesystem the layers build up, as umoci,
//!   containerd and containers/storage extract them;
//! - [`verify`]: the checks over the image's documents and that filesystem,
//!   each with a stable name and a message naming what was expected;
//! - [`compression`]: how a layer is compressed, judged as the runtimes do;
//! - [`run_binary`]: running the binary found (`verify --run`), natively or
//!   under qemu-user;
//! - [`signature_check`]: the signature and provenance checks of
//!   `verify --key`.
//!
//! build-image runs it over every image it builds; the driver can run it
//! over an image before pinning it.

pub mod compression;
pub mod filesystem;
pub mod run_binary;
pub mod signature_check;
pub mod verify;
