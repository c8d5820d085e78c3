//! build-image: the FROM-scratch OCI image of the OpenShell supervisor.
//!
//! Kubernetes mounts the supervisor image's root at `/opt/openshell/bin` in
//! every sandbox, so the image must hold exactly one static binary at
//! `/openshell-sandbox`. This crate builds that image reproducibly, verifies
//! that it will resolve at the mount, and publishes it.
//!
//! The pipeline follows ko's two seams:
//! - build: [`binary`] (read and check the ELF), [`supervisor_build`] (cargo),
//!   [`layer`] and [`gzip`] (deterministic tar, parallel gzip), [`image`]
//!   (config, manifest, index through oci-spec) give a [`image::BuiltImage`];
//! - publish: one `openshell_transport::Destination` per place (OCI
//!   layout, docker-archive, registry), named by a transport reference.
//!
//! Verification follows containers/image: any image source of the
//! `openshell-transport` crate, or the image just built ([`built`]), and
//! one set of checks in [`verify`] over the [`filesystem`] the layers build
//! up.

pub use openshell_transport::{atomic, progress};

pub mod binary;
pub mod built;
pub mod cache;
pub mod copy;
pub mod crates;
pub mod epoch;
pub mod filesystem;
pub mod gzip;
pub mod image;
pub mod keygen;
pub mod layer;
pub mod passphrase;
pub mod pipeline;
pub mod platform;
pub mod process;
pub mod provenance;
pub mod run_binary;
pub mod sbom;
pub mod signature_check;
pub mod signatures;
pub mod supervisor_build;
pub mod verify;
