//! openshell-supply-chain: what the supervisor image records about how it
//! was made, so that a reader can tell what is inside without trusting the
//! builder's word for more than its signature.
//!
//! - [`crates`]: the crates cargo resolves into `openshell-sandbox` for one
//!   platform, read from `cargo metadata` and `Cargo.lock`, and cached;
//! - [`sbom`]: the SPDX 2.3 SBOM made from them (or one given as a file),
//!   which build-image attaches to each platform's manifest;
//! - [`metadata`] and [`provenance`]: version, source, revision, build time
//!   ([`epoch`]), the `Cargo.lock` digest and the rustc of each binary, as
//!   the image's annotations and labels carry them.
//!
//! build-image makes these records; the signatures and attestations over
//! them are made with the `openshell-signing` crate.

pub mod crates;
pub mod epoch;
pub mod metadata;
pub mod provenance;
pub mod sbom;
