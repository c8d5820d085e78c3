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
//! - publish: one [`publish::Destination`] per place (OCI layout,
//!   docker-archive, registry).
//!
//! Verification follows containers/image: one [`source::ImageSource`] per
//! transport and one set of checks in [`verify`], over the [`filesystem`]
//! the layers build up.

pub mod atomic;
pub mod binary;
pub mod cache;
pub mod epoch;
pub mod filesystem;
pub mod gzip;
pub mod image;
pub mod layer;
pub mod pipeline;
pub mod platform;
pub mod progress;
pub mod publish;
pub mod source;
pub mod supervisor_build;
pub mod verify;
