//! The fixed contract of the OpenShell supervisor image toolchain.
//!
//! Every value that the supervisor, `build-image` and the Kubernetes driver
//! must agree on lives here, once; the other crates import it and never retype
//! it. `../shared/DESIGN.md` ("Fixed contract") is the source of these values.
//!
//! It also holds what every tool must read the same way, so that no crate
//! keeps a copy: the machine's architecture ([`host`]), cargo's target
//! folder ([`cargo`]), child processes run with a deadline ([`process`]),
//! files read without trusting them ([`files`]), and an SBOM document's
//! format ([`sbom::identify`]).

pub mod annotations;
pub mod build_result;
pub mod cargo;
pub mod cli;
pub mod digest;
pub mod elf;
pub mod files;
pub mod paths;
pub mod platform;
pub mod process;
pub mod registry;
pub mod sbom;
pub mod sideload;
pub mod signing;
pub mod supervise;
pub mod version;

pub use paths::*;
