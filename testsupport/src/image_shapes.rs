//! Agent images shaped like the public images sandboxes run on, built
//! locally FROM scratch out of Debian's busybox-static (no network pull):
//! the shapes that matter to how a container starts, not the software.
//!
//! - [`ImageShape::PythonLike`]: like `python:3.13`: no `/sandbox`, no
//!   WORKDIR, a `python` on PATH, an `/etc/passwd` with a user 1000 who is a
//!   member of another group in `/etc/group`;
//! - [`ImageShape::Busybox`]: like `busybox`: a shell and applets in `/bin`,
//!   `/etc/passwd` and `/etc/group` with root and nobody only;
//! - [`ImageShape::DistrolessLike`]: like a distroless image: no shell, no
//!   `/etc` at all, one static program (here busybox, run by its full path);
//! - [`ImageShape::AppWorkdir`]: an image whose `WORKDIR` is `/app`.

use crate::agent::{BUSYBOX, require_static_busybox};
use crate::podman::Containers;
use crate::tools::require;

/// The image shapes the end-to-end tests start sandboxes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageShape {
    /// No `/sandbox`, no WORKDIR, `python` on PATH, a user 1000.
    PythonLike,
    /// busybox's layout: `/bin` applets, root and nobody.
    Busybox,
    /// No shell, no `/etc/passwd`.
    DistrolessLike,
    /// `WORKDIR /app`.
    AppWorkdir,
}

/// Where the busybox binary sits in every shape: the distroless-like image
/// runs it by this path (it has no shell on PATH).
pub const SHAPE_BUSYBOX: &str = "/bin/busybox";

impl ImageShape {
    /// Every shape.
    pub const ALL: [Self; 4] = [
        Self::PythonLike,
        Self::Busybox,
        Self::DistrolessLike,
        Self::AppWorkdir,
    ];

    /// A short name, used in image tags.
    pub fn name(self) -> &'static str {
        match self {
            Self::PythonLike => "python-like",
            Self::Busybox => "busybox",
            Self::DistrolessLike => "distroless-like",
            Self::AppWorkdir => "app-workdir",
        }
    }

    /// The image's WORKDIR, if it sets one.
    pub fn workdir(self) -> Option<&'static str> {
        match self {
            Self::AppWorkdir => Some("/app"),
            _ => None,
        }
    }

    /// The command that runs the shell script `script` in this shape, the
    /// way a user of such an image would: `python -c` in the python-like
    /// image (its `python` hands `-c` to a shell), the binary by its full
    /// path in the distroless-like one, `sh -c` elsewhere.
    pub fn command(self, script: &str) -> Vec<String> {
        let head: &[&str] = match self {
            Self::PythonLike => &["python", "-c"],
            Self::DistrolessLike => &[SHAPE_BUSYBOX, "sh", "-c"],
            Self::Busybox | Self::AppWorkdir => &["sh", "-c"],
        };
        head.iter()
            .map(|word| (*word).to_string())
            .chain([script.to_string()])
            .collect()
    }

    /// The image's `/etc/passwd` and `/etc/group`, when it has them.
    fn etc(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::PythonLike => Some((
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                "root:x:0:\naudio:x:29:app\nstaff:x:50:root,app\napp:x:1000:\nnogroup:x:65534:\n",
            )),
            Self::Busybox | Self::AppWorkdir => Some((
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
                "root:x:0:\nnogroup:x:65534:\n",
            )),
            Self::DistrolessLike => None,
        }
    }
}

/// Applets linked to busybox in the shapes that have a shell.
const SHAPE_APPLETS: &[&str] = &["sh", "cat", "id", "ls", "pwd", "readlink", "sleep", "echo"];

impl Containers {
    /// Builds `shape` as `tag` in this fixture's storage; `None` (after
    /// printing why) when buildah or busybox-static is missing outside CI.
    pub fn build_image_shape(&self, test: &str, shape: ImageShape, tag: &str) -> Option<String> {
        if !require(test, &["buildah"], "apt-get install buildah") || !require_static_busybox(test)
        {
            return None;
        }
        let context = self.dir().join(format!("shape-{}", shape.name()));
        let write = |path: &str, text: &str| {
            let file = context.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .unwrap_or_else(|err| panic!("mkdir {}: {err}", parent.display()));
            }
            std::fs::write(&file, text)
                .unwrap_or_else(|err| panic!("write {}: {err}", file.display()));
        };
        let bin = context.join("bin");
        std::fs::create_dir_all(&bin)
            .unwrap_or_else(|err| panic!("mkdir {}: {err}", bin.display()));
        std::fs::copy(BUSYBOX, bin.join("busybox"))
            .unwrap_or_else(|err| panic!("could not copy {BUSYBOX}: {err}"));
        if shape != ImageShape::DistrolessLike {
            for applet in SHAPE_APPLETS {
                std::os::unix::fs::symlink("busybox", bin.join(applet))
                    .unwrap_or_else(|err| panic!("symlink {applet}: {err}"));
            }
            std::fs::create_dir_all(context.join("tmp"))
                .unwrap_or_else(|err| panic!("mkdir tmp: {err}"));
        }
        if let Some((passwd, group)) = shape.etc() {
            write("etc/passwd", passwd);
            write("etc/group", group);
        }
        let mut path = "/bin".to_string();
        if shape == ImageShape::PythonLike {
            // `python -c SCRIPT` runs SCRIPT with the shell: a stand-in
            // interpreter on PATH, in /usr/local/bin as in python images.
            write("usr/local/bin/python", "#!/bin/sh\nexec /bin/sh \"$@\"\n");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                context.join("usr/local/bin/python"),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap_or_else(|err| panic!("chmod python: {err}"));
            path = "/usr/local/bin:/bin".to_string();
        }
        let mut containerfile = format!("FROM scratch\nCOPY . /\nENV PATH={path}\n");
        if let Some(workdir) = shape.workdir() {
            containerfile.push_str(&format!("WORKDIR {workdir}\n"));
        }
        // The Containerfile lives outside the context, so it is not copied.
        let file = self.dir().join(format!("Containerfile.{}", shape.name()));
        std::fs::write(&file, containerfile)
            .unwrap_or_else(|err| panic!("write {}: {err}", file.display()));
        self.buildah_bud(Some(&file), &context, tag);
        Some(tag.to_string())
    }
}
