//! How much of a layer stack verification reads before it refuses.
//!
//! Every limit has a default, a command-line flag, and a refusal that names
//! both; a limit is checked against what a tar header declares before any
//! of the data it announces is read.

use std::fmt;

use openshell_transport::progress::human_size;

const MIB: u64 = 1024 * 1024;

/// `--max-binary-size`: the most bytes a file named like the binary may
/// hold.
pub const MAX_BINARY_SIZE_FLAG: &str = "--max-binary-size";
/// `--max-uncompressed-size`: the most bytes all layers may uncompress to.
pub const MAX_UNCOMPRESSED_SIZE_FLAG: &str = "--max-uncompressed-size";
/// `--max-entries`: the most entries all layers may hold.
pub const MAX_ENTRIES_FLAG: &str = "--max-entries";
/// `--max-path-depth`: the most components a path may have.
pub const MAX_PATH_DEPTH_FLAG: &str = "--max-path-depth";
/// `--max-path-length`: the longest path an entry may land at.
pub const MAX_PATH_LENGTH_FLAG: &str = "--max-path-length";
/// `--max-symlink-target`: the longest target one symlink may have.
pub const MAX_SYMLINK_TARGET_FLAG: &str = "--max-symlink-target";
/// `--max-symlink-targets-total`: the most bytes all symlink targets may
/// hold together.
pub const MAX_SYMLINK_TARGETS_TOTAL_FLAG: &str = "--max-symlink-targets-total";
/// `--max-layers`: the most layers an image may have.
pub const MAX_LAYERS_FLAG: &str = "--max-layers";

/// Default path depth limit: 128 components. Real images nest a few dozen
/// deep at most; a hostile one of 1,990 nested folders made extractors and
/// earlier verification crawl.
pub const DEFAULT_MAX_PATH_DEPTH: u64 = 128;

/// Room left for the node's storage prefix under Linux's `PATH_MAX`:
/// extractors open `<storage>/<layer id>/diff/<path>` (containers/storage:
/// `/var/lib/containers/storage/overlay/<64 hex>/diff/`, 110 bytes;
/// containerd's snapshotter about 90), so a path that fits alone can still
/// fail on the node.
pub const STORAGE_PREFIX_ROOM: u64 = 256;

/// Default path length limit: `PATH_MAX` (4096, with its NUL) less
/// [`STORAGE_PREFIX_ROOM`].
pub const DEFAULT_MAX_PATH_LENGTH: u64 = 4095 - STORAGE_PREFIX_ROOM;

/// Default symlink target limit: 4095 bytes, what Linux stores in a
/// symlink (`PATH_MAX` less its NUL); a longer one cannot be created.
pub const DEFAULT_MAX_SYMLINK_TARGET: u64 = 4095;

/// Default limit on all symlink targets together: 4 MiB, a thousand
/// maximal targets, far above what real images hold, and with the entry
/// limit's paths within the memory verification may use.
pub const DEFAULT_MAX_SYMLINK_TARGETS_TOTAL: u64 = 4 * MIB;

/// Default layer limit: 500, the most lower layers overlayfs stacks in one
/// mount (`OVL_MAX_STACK`); containerd and CRI-O fail a deeper image.
pub const DEFAULT_MAX_LAYERS: u64 = 500;

/// Default binary size limit: 256 MiB, eight times the supervisor's size
/// today.
pub const DEFAULT_MAX_BINARY_SIZE: u64 = 256 * MIB;

/// Default limit on the uncompressed size of all layers together: 1 GiB.
/// The image holds one binary of at most 256 MiB; four times that leaves
/// room for it to be rewritten by a few layers (or sit beside its tar
/// headers and a handful of other files), while it bounds what a hostile
/// layer can make verification inflate and hash to about a second or two of
/// CPU, and the temporary spill file to 1 GiB of disk.
pub const DEFAULT_MAX_UNCOMPRESSED_SIZE: u64 = 1024 * MIB;

/// Default entry limit: 10,000 tar entries across all layers, folders the
/// extractors create implicitly included. A supervisor image holds one; a
/// distribution base image a few thousand. Paths are at most 4 KiB (longer
/// ones cannot be extracted), so the tree verification keeps stays within
/// about 40 MiB even when every entry is hostile.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// The limits applied while layers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a file named like the binary may hold
    /// ([`MAX_BINARY_SIZE_FLAG`], default [`DEFAULT_MAX_BINARY_SIZE`]).
    pub max_binary_size: u64,
    /// Most bytes all layers together may uncompress to
    /// ([`MAX_UNCOMPRESSED_SIZE_FLAG`], default
    /// [`DEFAULT_MAX_UNCOMPRESSED_SIZE`]).
    pub max_uncompressed_size: u64,
    /// Most entries all layers together may hold, implicit folders included
    /// ([`MAX_ENTRIES_FLAG`], default [`DEFAULT_MAX_ENTRIES`]).
    pub max_entries: u64,
    /// Most components a path may have, after symlinks in its folders are
    /// followed ([`MAX_PATH_DEPTH_FLAG`], default [`DEFAULT_MAX_PATH_DEPTH`]).
    pub max_path_depth: u64,
    /// Longest path an entry may land at, in bytes
    /// ([`MAX_PATH_LENGTH_FLAG`], default [`DEFAULT_MAX_PATH_LENGTH`]).
    pub max_path_length: u64,
    /// Longest symlink target ([`MAX_SYMLINK_TARGET_FLAG`], default
    /// [`DEFAULT_MAX_SYMLINK_TARGET`]).
    pub max_symlink_target: u64,
    /// Most bytes all symlink targets may hold together
    /// ([`MAX_SYMLINK_TARGETS_TOTAL_FLAG`], default
    /// [`DEFAULT_MAX_SYMLINK_TARGETS_TOTAL`]).
    pub max_symlink_targets_total: u64,
    /// Most layers ([`MAX_LAYERS_FLAG`], default [`DEFAULT_MAX_LAYERS`]).
    pub max_layers: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_binary_size: DEFAULT_MAX_BINARY_SIZE,
            max_uncompressed_size: DEFAULT_MAX_UNCOMPRESSED_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_path_depth: DEFAULT_MAX_PATH_DEPTH,
            max_path_length: DEFAULT_MAX_PATH_LENGTH,
            max_symlink_target: DEFAULT_MAX_SYMLINK_TARGET,
            max_symlink_targets_total: DEFAULT_MAX_SYMLINK_TARGETS_TOTAL,
            max_layers: DEFAULT_MAX_LAYERS,
        }
    }
}

/// Which limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_binary_size`].
    BinarySize,
    /// [`Limits::max_uncompressed_size`].
    UncompressedSize,
    /// [`Limits::max_entries`].
    Entries,
    /// [`Limits::max_path_depth`].
    PathDepth,
    /// [`Limits::max_path_length`].
    PathLength,
    /// [`Limits::max_symlink_target`].
    SymlinkTarget,
    /// [`Limits::max_symlink_targets_total`].
    SymlinkTargetsTotal,
    /// [`Limits::max_layers`].
    Layers,
}

impl Limit {
    /// The flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Self::BinarySize => MAX_BINARY_SIZE_FLAG,
            Self::UncompressedSize => MAX_UNCOMPRESSED_SIZE_FLAG,
            Self::Entries => MAX_ENTRIES_FLAG,
            Self::PathDepth => MAX_PATH_DEPTH_FLAG,
            Self::PathLength => MAX_PATH_LENGTH_FLAG,
            Self::SymlinkTarget => MAX_SYMLINK_TARGET_FLAG,
            Self::SymlinkTargetsTotal => MAX_SYMLINK_TARGETS_TOTAL_FLAG,
            Self::Layers => MAX_LAYERS_FLAG,
        }
    }

    /// Its value in `limits`.
    pub fn value(self, limits: &Limits) -> u64 {
        match self {
            Self::BinarySize => limits.max_binary_size,
            Self::UncompressedSize => limits.max_uncompressed_size,
            Self::Entries => limits.max_entries,
            Self::PathDepth => limits.max_path_depth,
            Self::PathLength => limits.max_path_length,
            Self::SymlinkTarget => limits.max_symlink_target,
            Self::SymlinkTargetsTotal => limits.max_symlink_targets_total,
            Self::Layers => limits.max_layers,
        }
    }

    /// `value` in this limit's unit, for messages.
    pub fn show(self, value: u64) -> String {
        match self {
            Self::Entries => format!("{value} entries"),
            Self::PathDepth => format!("{value} path components"),
            Self::Layers => format!("{value} layers"),
            Self::PathLength | Self::SymlinkTarget | Self::SymlinkTargetsTotal => {
                format!("{value} bytes")
            }
            Self::BinarySize | Self::UncompressedSize => {
                format!("{value} bytes ({})", human_size(value))
            }
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BinarySize => "binary size limit",
            Self::UncompressedSize => "uncompressed size limit",
            Self::Entries => "entry limit",
            Self::PathDepth => "path depth limit",
            Self::PathLength => "path length limit",
            Self::SymlinkTarget => "symlink target limit",
            Self::SymlinkTargetsTotal => "symlink targets limit",
            Self::Layers => "layer limit",
        })
    }
}

/// Parses a size for the size flags: a number of bytes, optionally with a
/// unit (`K`, `M`, `G`, `KiB`, `MiB`, `GiB`, all powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a size (expected bytes, e.g. 268435456 or 256MiB)")
    })?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1024,
        "M" | "MiB" => MIB,
        "G" | "GiB" => 1024 * MIB,
        other => {
            return Err(format!(
                "{text:?} has an unknown unit {other:?} (expected KiB, MiB or GiB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("256MiB"), Ok(256 * MIB));
        assert_eq!(parse_size("1G"), Ok(1024 * MIB));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(
            parse_size("99999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn every_limit_names_its_flag() {
        for (limit, flag) in [
            (Limit::BinarySize, "--max-binary-size"),
            (Limit::UncompressedSize, "--max-uncompressed-size"),
            (Limit::Entries, "--max-entries"),
            (Limit::PathDepth, "--max-path-depth"),
            (Limit::PathLength, "--max-path-length"),
            (Limit::SymlinkTarget, "--max-symlink-target"),
            (Limit::SymlinkTargetsTotal, "--max-symlink-targets-total"),
            (Limit::Layers, "--max-layers"),
        ] {
            assert_eq!(limit.flag(), flag);
        }
        assert_eq!(Limit::BinarySize.value(&Limits::default()), 256 * MIB);
    }
}
