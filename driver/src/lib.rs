//! The OpenShell Kubernetes driver's configuration and pod rendering.
//!
//! The driver decides, per cluster, how the supervisor binary reaches each
//! sandbox pod ([`SupervisorSideloadMethod`]): an image volume that mounts
//! the supervisor image, or an init container that copies the binary into an
//! `emptyDir`. [`DriverConfig`] gathers that choice, the supervisor image and
//! its pull policy from flags, environment and a config file, and refuses a
//! wrong setting at start; [`Sideload`] applies the result to a pod spec and
//! [`pod::render`] prints a complete sandbox Pod.

pub mod build_output;
pub mod config;
pub mod image;
pub mod kubernetes_version;
pub mod method;
pub mod names;
pub mod pin;
pub mod pod;
pub mod sideload;

pub use config::{DriverArgs, DriverConfig};
pub use image::{PullPolicy, SupervisorImage};
pub use kubernetes_version::KubernetesVersion;
pub use method::SupervisorSideloadMethod;
pub use sideload::{Sideload, SideloadError};
