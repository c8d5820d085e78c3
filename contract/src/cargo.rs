//! Where cargo keeps what it builds for a workspace: build-image's
//! supervisor build and its caches, and the tests, look in the same place.

use std::path::{Path, PathBuf};

/// The cargo target folder of `workspace`.
pub fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}
