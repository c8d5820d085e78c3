//! Fixtures shared by the workspace's tests.
//!
//! Tests that need an outside tool (podman, skopeo, a registry) ask
//! [`tools::require`] first, or get `None` from a fixture's constructor: in CI
//! (`CI=true`) a missing tool fails the test; elsewhere the test prints what
//! is missing and how to get it, and skips. Every fixture cleans up what it
//! started when it is dropped, also when the test panics.

pub mod agent;
pub mod fault_registry;
pub mod image_shapes;
pub mod oci_blobs;
pub mod podman;
pub mod python_tools;
pub mod registry;
pub mod rss;
pub mod slowloris;
pub mod supervisor;
pub mod tools;

pub use fault_registry::{Action, Fault, FaultRegistry, Seen};
pub use image_shapes::ImageShape;
pub use podman::{BoundedOutput, Containers};
pub use registry::Registry;
pub use slowloris::{Slowloris, Trickle, anonymous_registry_client};
pub use supervisor::{arm64_static_supervisor_binary, static_supervisor_binary, workspace_binary};
pub use tools::{in_ci, require, require_root};
