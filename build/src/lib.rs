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
//! Around them, [`image`] attaches each platform's SBOM as a referrer, and
//! [`signatures`] signs the image and attaches its signatures and
//! attestations.
//!
//! The other concerns have crates of their own: the records the image
//! carries (crates, SBOM, provenance) are `openshell-supply-chain`'s, and
//! the checks are `openshell-verify`'s, which any image source of
//! `openshell-transport`, or the image just built ([`built`]), goes
//! through.

pub use openshell_transport::{atomic, progress};

pub mod binary;
pub mod built;
pub mod cache;
pub mod copy;
pub mod gzip;
pub mod image;
pub mod keygen;
pub mod layer;
pub mod passphrase;
pub mod pipeline;
pub mod platform;
pub mod signatures;
pub mod supervisor_build;
