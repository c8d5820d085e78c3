//! How much of a layer stack verification reads before it refuses.
//!
//! Every limit has a default, a command-line flag, and a refusal that names
//! both; a limit is checked against what a tar header declares before any
//! of the data it announces is read.

use std::fmt;

use crate::progress::human_size;

const MIB: u64 = 1024 * 1024;

/// `--max-binary-size`: the most bytes a file named like the binary may
/// hold.
pub const MAX_BINARY_SIZE_FLAG: &str = "--max-binary-size";
/// `--max-uncompressed-size`: the most bytes all layers may uncompress to.
pub const MAX_UNCOMPRESSED_SIZE_FLAG: &str = "--max-uncompressed-size";
/// `--max-entries`: the most entries all layers may hold.
pub const MAX_ENTRIES_FLAG: &str = "--max-entries";

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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_binary_size: DEFAULT_MAX_BINARY_SIZE,
            max_uncompressed_size: DEFAULT_MAX_UNCOMPRESSED_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
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
}

impl Limit {
    /// The flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Self::BinarySize => MAX_BINARY_SIZE_FLAG,
            Self::UncompressedSize => MAX_UNCOMPRESSED_SIZE_FLAG,
            Self::Entries => MAX_ENTRIES_FLAG,
        }
    }

    /// Its value in `limits`.
    pub fn value(self, limits: &Limits) -> u64 {
        match self {
            Self::BinarySize => limits.max_binary_size,
            Self::UncompressedSize => limits.max_uncompressed_size,
            Self::Entries => limits.max_entries,
        }
    }

    /// `value` in this limit's unit, for messages.
    pub fn show(self, value: u64) -> String {
        match self {
            Self::Entries => format!("{value} entries"),
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
        ] {
            assert_eq!(limit.flag(), flag);
        }
        assert_eq!(Limit::BinarySize.value(&Limits::default()), 256 * MIB);
    }
}
