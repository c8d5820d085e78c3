//! The build time stamp: `SOURCE_DATE_EPOCH`, else the Unix epoch.
//!
//! Every time in the image (tar mtime, config `created`, the created
//! annotation) comes from here, so the same binary gives the same digest on
//! any machine (<https://reproducible-builds.org/specs/source-date-epoch/>).

use chrono::{DateTime, SecondsFormat};

/// The environment variable that sets the build time.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// Latest accepted value: 9999-12-31T23:59:59Z, so RFC 3339 stays 4-digit.
const MAX_EPOCH: u64 = 253_402_300_799;

/// `SOURCE_DATE_EPOCH` holds something other than a time stamp.
#[derive(Debug, thiserror::Error)]
#[error(
    "{SOURCE_DATE_EPOCH}={value:?} is not valid: expected a whole number of seconds since 1970-01-01T00:00:00Z between 0 and {MAX_EPOCH} (e.g. the commit time from `git log -1 --format=%ct`)"
)]
pub struct EpochError {
    /// The value found.
    pub value: String,
}

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Epoch(u64);

impl Epoch {
    /// `SOURCE_DATE_EPOCH` from the environment, or 0 when unset or empty.
    pub fn from_env() -> Result<Self, EpochError> {
        match std::env::var(SOURCE_DATE_EPOCH) {
            Ok(value) if value.is_empty() => Ok(Self(0)),
            Ok(value) => Self::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(Self(0)),
            Err(std::env::VarError::NotUnicode(value)) => Err(EpochError {
                value: value.to_string_lossy().into_owned(),
            }),
        }
    }

    /// Parses a decimal number of seconds.
    pub fn parse(value: &str) -> Result<Self, EpochError> {
        let invalid = || EpochError {
            value: value.to_string(),
        };
        // u64::from_str would take a leading '+'; the spec wants digits only.
        if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid());
        }
        let seconds: u64 = value.parse().map_err(|_| invalid())?;
        if seconds > MAX_EPOCH {
            return Err(invalid());
        }
        Ok(Self(seconds))
    }

    /// A time stamp from a number of seconds (clamped to the accepted range).
    pub fn from_seconds(seconds: u64) -> Self {
        Self(seconds.min(MAX_EPOCH))
    }

    /// Seconds since the Unix epoch.
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// RFC 3339 in UTC, e.g. `1970-01-01T00:00:00Z`.
    pub fn rfc3339(self) -> String {
        // The range check in `parse` keeps the value representable.
        i64::try_from(self.0)
            .ok()
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(Epoch::parse("0").unwrap().rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Epoch::parse("1700000000").unwrap().rfc3339(),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_number() {
        for bad in [
            "",
            "-1",
            "+5",
            "1.5",
            "abc",
            "99999999999999999999",
            "253402300800",
        ] {
            let err = Epoch::parse(bad).unwrap_err().to_string();
            assert!(err.contains("SOURCE_DATE_EPOCH"), "{err}");
            assert!(err.contains("expected a whole number of seconds"), "{err}");
        }
    }
}
