//! The fixed contract of the OpenShell supervisor image toolchain.
//!
//! Every value that the supervisor, `build-image` and the Kubernetes driver
//! must agree on lives here, once; the other crates import it and never retype
//! it. `../shared/DESIGN.md` ("Fixed contract") is the source of these values.

pub mod annotations;
pub mod build_result;
pub mod cli;
pub mod digest;
pub mod elf;
pub mod files;
pub mod paths;
pub mod platform;
pub mod registry;
pub mod sbom;
pub mod sideload;
pub mod signing;
pub mod supervise;
pub mod version;

pub use paths::*;
