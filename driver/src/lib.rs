//! The OpenShell Kubernetes driver's configuration and pod rendering.
//!
//! The driver decides, per cluster, how the supervisor binary reaches each
//! sandbox pod ([`SupervisorSideloadMethod`]): an image volume that mounts
//! the supervisor image, or an init container that copies the binary into an
//! `emptyDir`, chosen from facts about the cluster ([`plan`]) when asked.
//! [`DriverConfig`] gathers that choice, the supervisor image, its pull
//! policy and the pod's security profile from flags, environment and a
//! config file (each setting declared once, in [`settings`]), and refuses a
//! wrong setting at start; [`Sideload`] applies the result to a pod spec,
//! [`pod::render`] prints a complete sandbox Pod, and [`explain`] says why
//! and what to do when a sandbox does not start.

pub mod build_output;
pub mod cluster;
pub mod config;
pub mod explain;
pub mod image;
pub mod image_platforms;
pub mod input;
pub mod kubernetes_version;
pub mod method;
pub mod names;
pub mod pin;
pub mod plan;
pub mod platform;
pub mod pod;
pub mod security;
pub mod settings;
pub mod sideload;
pub mod signed;
pub mod yaml;
pub mod yaml_read;

pub use config::{DriverArgs, DriverConfig};
pub use image::{PullPolicy, SupervisorImage};
pub use kubernetes_version::KubernetesVersion;
pub use method::{MethodChoice, SupervisorSideloadMethod};
pub use security::SecurityProfile;
pub use sideload::{Sideload, SideloadError};
