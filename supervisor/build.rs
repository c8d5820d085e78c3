//! Records what `openshell-sandbox version` reports about the build: the
//! target triple and, when it can be known, the git revision.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set to pin the reported revision (release pipelines building from a
/// tarball, or reproducible builds); otherwise git is asked.
const REVISION_OVERRIDE_ENV: &str = "OPENSHELL_GIT_REVISION";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={REVISION_OVERRIDE_ENV}");

    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=OPENSHELL_BUILD_TARGET={target}");

    let revision = match std::env::var(REVISION_OVERRIDE_ENV) {
        Ok(pinned) => Some(pinned.trim().to_owned()).filter(|rev| !rev.is_empty()),
        Err(_) => revision_from_git(),
    };
    if let Some(revision) = revision {
        println!("cargo:rustc-env=OPENSHELL_BUILD_GIT_REVISION={revision}");
    }
}

/// `git rev-parse HEAD`, and the files whose change means a new revision.
///
/// Without those rerun hints cargo would keep reporting the revision of the
/// first build; a hint on a file that does not exist would rerun the script on
/// every build, so only existing files are named.
fn revision_from_git() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let revision = git(&manifest_dir, &["rev-parse", "HEAD"])?;
    let mut watched = vec![git(&manifest_dir, &["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&manifest_dir, &["rev-parse", "--git-path", &branch]));
    }
    watched.extend(git(
        &manifest_dir,
        &["rev-parse", "--git-path", "packed-refs"],
    ));
    for file in watched {
        let path = manifest_dir.join(file);
        if path.is_file() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(revision)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|text| !text.is_empty())
}
