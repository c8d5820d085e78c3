//! A stand-in agent image: no OpenShell in it, just a static busybox.
//!
//! Sandboxes run arbitrary agent images; the tests use the smallest one that
//! still has a shell, built FROM scratch out of Debian's busybox-static, so
//! nothing in it can help the supervisor start.

use std::path::Path;

use crate::podman::Containers;
use crate::tools::require;

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets the agent image links to busybox.
const APPLETS: &[&str] = &[
    "sh",
    "echo",
    "cat",
    "ls",
    "id",
    "pwd",
    "sleep",
    "test",
    "stat",
    "touch",
    "mkdir",
    "sha256sum",
    "kill",
    "true",
    "false",
    "ps",
    "readlink",
    "mount",
    "wc",
    "env",
];

impl Containers {
    /// Builds the agent image as `tag` (e.g. `localhost/agent:test`) in this
    /// fixture's storage and returns the tag; `None` (after printing why) when
    /// busybox-static or buildah is missing outside CI.
    pub fn build_agent_image(&self, test: &str, tag: &str) -> Option<String> {
        if !require(test, &["buildah"], "apt-get install buildah") || !require_static_busybox(test)
        {
            return None;
        }
        let context = self
            .dir()
            .join(format!("agent-context-{}", tag.replace(['/', ':'], "_")));
        let bin = context.join("bin");
        std::fs::create_dir_all(&bin)
            .unwrap_or_else(|err| panic!("mkdir {}: {err}", bin.display()));
        std::fs::copy(BUSYBOX, bin.join("busybox"))
            .unwrap_or_else(|err| panic!("could not copy {BUSYBOX}: {err}"));
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet))
                .unwrap_or_else(|err| panic!("symlink {applet}: {err}"));
        }
        // /sandbox is the workload's workdir; /tmp for scratch files.
        for dir in ["sandbox", "tmp"] {
            std::fs::create_dir_all(context.join(dir))
                .unwrap_or_else(|err| panic!("mkdir {dir}: {err}"));
        }
        std::fs::write(
            context.join("Containerfile"),
            "FROM scratch\nCOPY . /\nENV PATH=/bin\nCMD [\"/bin/sh\"]\n",
        )
        .unwrap_or_else(|err| panic!("could not write the agent Containerfile: {err}"));
        self.buildah_bud(None, &context, tag);
        Some(tag.to_string())
    }
}

pub(crate) fn require_static_busybox(test: &str) -> bool {
    let hint = "apt-get install busybox-static (Debian's busybox package is linked dynamically)";
    let is_static = std::fs::read(Path::new(BUSYBOX))
        .ok()
        .and_then(|bytes| openshell_contract::elf::inspect(&bytes).ok())
        .is_some_and(|info| info.is_static());
    if is_static {
        return true;
    }
    let message = format!("{test}: needs a static {BUSYBOX} ({hint})");
    if crate::tools::in_ci() {
        panic!("{message}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {message}");
    false
}
