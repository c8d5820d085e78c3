//! The OpenShell sandbox supervisor.
//!
//! Every sandbox pod runs `openshell-sandbox` as the entry process of the
//! agent container, inside an image built without it. The binary therefore
//! does three things, one module each:
//!
//! - [`supervise`]: act as the container's PID 1, start the workload, pass
//!   signals on, reap every zombie and return the workload's exit status;
//! - [`copy_self`]: install the running executable into a shared volume from a
//!   FROM-scratch init container that has no `sh` or `cp`, atomically;
//! - [`version`]: say which build this is, and whether it is static.
//!
//! [`signals`] blocks, takes and resets signals through the kernel's own
//! calls; [`exec`] finds and starts COMMAND and explains a refusal;
//! [`run_as`] resolves `--run-as USER[:GROUP]` against the image's
//! /etc/passwd and /etc/group; [`termination_log`] writes the reason a
//! workload could not start where Kubernetes shows it; [`workdir`] makes
//! the working directory an image lacks.

pub mod copy_self;
pub mod exec;
pub mod run_as;
pub mod signals;
pub mod supervise;
pub mod termination_log;
pub mod version;
pub mod workdir;
