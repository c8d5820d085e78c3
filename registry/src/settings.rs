//! Timeouts and retry bounds of registry requests: their defaults, the
//! environment variables that override them, and the parsers the tools'
//! flags use.
//!
//! Precedence: a value set in [`RegistryOptions`] (a flag) wins over the
//! environment variable, which wins over the default.

use std::time::Duration;

use openshell_contract::registry::{
    ENV_REGISTRY_ATTEMPTS, ENV_REGISTRY_CONNECT_TIMEOUT, ENV_REGISTRY_OPERATION_TIMEOUT,
    ENV_REGISTRY_READ_TIMEOUT,
};

use crate::{RegistryError, RegistryOptions};

/// Default connect timeout: a closed or filtered port fails fast, and a
/// registry that needs longer than this to accept a connection is unwell.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default read (idle) timeout: how long a request may go without a byte
/// received or sent. Registries answer in milliseconds and stream blobs
/// continuously; 15 s of silence is a stall, not a slow link (a registry
/// that hashes a blob just received gets more, see the client).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Default deadline of one operation, retries and back-off included. It is
/// what a stalled registry may cost a command: a silent one gets three
/// attempts of [`DEFAULT_READ_TIMEOUT`] and their back-off (at most
/// 15 + 0.25 + 15 + 0.5 + 15 = 45.75 s, a fourth attempt is not started
/// without a whole read timeout left), and one that trickles a byte every
/// few seconds, which no read timeout catches, is cut here; both end well
/// within the minute a command may wait on a stalled registry. Blob
/// transfers get more, in proportion to the bytes that arrive (see
/// [`NetworkSettings::deadline_for_size`]), so a slow but steady link is
/// not cut.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(50);

/// The longest a registry that stalls or trickles from the start can hold
/// up a command with the default settings: the goal the defaults are held
/// to (checked in the tests below, and end to end by build-image's and the
/// driver's slowloris tests).
pub const DEFAULT_STALLED_COMMAND_BOUND: Duration = Duration::from_secs(60);

/// Default number of attempts per operation (the first one included).
pub const DEFAULT_ATTEMPTS: u32 = 4;

/// Most attempts the settings accept: more would only hide a broken
/// registry behind minutes of back-off.
pub const MAX_ATTEMPTS: u32 = 20;

/// The slowest transfer rate a blob's deadline allows for, in bytes per
/// second. A fixed deadline would cut a healthy multi-GiB transfer on a slow
/// link, while the read timeout alone would let a registry trickle one byte
/// every few seconds forever; so a blob gets the operation timeout plus N /
/// this rate once N bytes of it have arrived (arrived, not announced: an
/// announced size would let a registry claim a terabyte and trickle).
pub const BLOB_FLOOR_RATE: u64 = 1024 * 1024;

/// The timeouts and retry bound in force for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkSettings {
    /// How long to wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// How long a request may go without a byte received or sent.
    pub read_timeout: Duration,
    /// The deadline of one operation, retries included.
    pub operation_timeout: Duration,
    /// Attempts per operation, the first one included (1: no retries).
    pub attempts: u32,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        }
    }
}

impl NetworkSettings {
    /// The settings for `options`: its fields where set, else the
    /// `OPENSHELL_REGISTRY_*` environment variables, else the defaults. A
    /// malformed variable is an error naming it.
    pub fn resolve(options: &RegistryOptions) -> Result<Self, RegistryError> {
        Self::resolve_with(options, |name| std::env::var(name).ok())
    }

    /// [`Self::resolve`] with the environment given as a lookup function.
    pub fn resolve_with(
        options: &RegistryOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RegistryError> {
        let from_env =
            |name: &str, parse: fn(&str) -> Result<Duration, SettingError>| match env(name)
                .filter(|value| !value.trim().is_empty())
            {
                None => Ok(None),
                Some(value) => {
                    parse(&value)
                        .map(Some)
                        .map_err(|error| RegistryError::InvalidSetting {
                            name: name.to_string(),
                            value,
                            reason: error.to_string(),
                        })
                }
            };
        let defaults = Self::default();
        let connect_timeout = match options.connect_timeout {
            Some(value) => value,
            None => from_env(ENV_REGISTRY_CONNECT_TIMEOUT, parse_duration)?
                .unwrap_or(defaults.connect_timeout),
        };
        let read_timeout = match options.read_timeout {
            Some(value) => value,
            None => from_env(ENV_REGISTRY_READ_TIMEOUT, parse_duration)?
                .unwrap_or(defaults.read_timeout),
        };
        let operation_timeout = match options.operation_timeout {
            Some(value) => value,
            None => from_env(ENV_REGISTRY_OPERATION_TIMEOUT, parse_duration)?
                .unwrap_or(defaults.operation_timeout),
        };
        let attempts = match options.attempts {
            Some(value) => value,
            None => match env(ENV_REGISTRY_ATTEMPTS).filter(|value| !value.trim().is_empty()) {
                None => defaults.attempts,
                Some(value) => {
                    parse_attempts(&value).map_err(|error| RegistryError::InvalidSetting {
                        name: ENV_REGISTRY_ATTEMPTS.to_string(),
                        value,
                        reason: error.to_string(),
                    })?
                }
            },
        };
        // Values set in code bypass the parsers: hold them to the same rules.
        let check = |name: &str, value: Duration| {
            if value.is_zero() {
                Err(RegistryError::InvalidSetting {
                    name: name.to_string(),
                    value: "0s".to_string(),
                    reason: "a timeout must be longer than zero".to_string(),
                })
            } else {
                Ok(())
            }
        };
        check("connect timeout", connect_timeout)?;
        check("read timeout", read_timeout)?;
        check("operation timeout", operation_timeout)?;
        if !(1..=MAX_ATTEMPTS).contains(&attempts) {
            return Err(RegistryError::InvalidSetting {
                name: "attempts".to_string(),
                value: attempts.to_string(),
                reason: format!("expected a whole number from 1 to {MAX_ATTEMPTS}"),
            });
        }
        Ok(Self {
            connect_timeout,
            read_timeout,
            operation_timeout,
            attempts,
        })
    }

    /// The deadline of a transfer of `size` bytes: the operation timeout
    /// plus the time `size` takes at [`BLOB_FLOOR_RATE`].
    pub fn deadline_for_size(&self, size: u64) -> Duration {
        self.operation_timeout
            .saturating_add(Duration::from_secs_f64(
                size as f64 / BLOB_FLOOR_RATE as f64,
            ))
    }
}

/// A flag or environment value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingError(String);

/// Parses a timeout as the flags and environment variables take it: a
/// number with a unit, such as `30s`, `2m`, `500ms` or `1m30s`. Zero is
/// refused: a timeout of nothing would fail every request.
pub fn parse_duration(text: &str) -> Result<Duration, SettingError> {
    let trimmed = text.trim();
    let expected = "expected a duration with a unit, like 30s, 2m, 500ms or 1m30s";
    if trimmed.is_empty() {
        return Err(SettingError(format!("empty duration: {expected}")));
    }
    let duration = humantime::parse_duration(trimmed).map_err(|error| {
        SettingError(format!(
            "invalid duration '{trimmed}' ({error}): {expected}"
        ))
    })?;
    if duration.is_zero() {
        return Err(SettingError(format!(
            "invalid duration '{trimmed}': a timeout must be longer than zero"
        )));
    }
    Ok(duration)
}

/// Parses a number of attempts (the first one included): a whole number
/// from 1 (no retries) to [`MAX_ATTEMPTS`].
pub fn parse_attempts(text: &str) -> Result<u32, SettingError> {
    let trimmed = text.trim();
    match trimmed.parse::<u32>() {
        Ok(attempts) if (1..=MAX_ATTEMPTS).contains(&attempts) => Ok(attempts),
        _ => Err(SettingError(format!(
            "invalid number of attempts '{trimmed}': expected a whole number from 1 (no retries) to {MAX_ATTEMPTS}"
        ))),
    }
}

/// A duration as messages show it (`30s`, `500ms`, `2m 30s`).
pub(crate) fn show(duration: Duration) -> String {
    // Whole milliseconds: the nanoseconds of a measured time are noise.
    let millis = Duration::from_millis(duration.as_millis().min(u64::MAX as u128) as u64);
    humantime::format_duration(millis).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 1m30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_durations_say_what_is_expected() {
        for bad in ["", "30", "abc", "30x", "-1s", "0s", "0ms"] {
            let error = parse_duration(bad).unwrap_err().to_string();
            assert!(
                error.contains("expected a duration") || error.contains("longer than zero"),
                "{bad}: {error}"
            );
            if !bad.is_empty() {
                assert!(
                    error.contains(&format!("'{}'", bad.trim())),
                    "{bad}: {error}"
                );
            }
        }
    }

    #[test]
    fn attempts_are_bounded() {
        assert_eq!(parse_attempts("1"), Ok(1));
        assert_eq!(parse_attempts("4"), Ok(4));
        for bad in ["0", "21", "-1", "two", ""] {
            let error = parse_attempts(bad).unwrap_err().to_string();
            assert!(
                error.contains("from 1 (no retries) to 20"),
                "{bad}: {error}"
            );
        }
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn defaults_apply_without_options_or_environment() {
        let settings =
            NetworkSettings::resolve_with(&RegistryOptions::default(), env(&[])).unwrap();
        assert_eq!(settings, NetworkSettings::default());
        assert_eq!(settings.connect_timeout, Duration::from_secs(10));
        assert_eq!(settings.read_timeout, Duration::from_secs(15));
        assert_eq!(settings.operation_timeout, Duration::from_secs(50));
        assert_eq!(settings.attempts, 4);
    }

    #[test]
    fn a_stalled_registry_costs_a_command_less_than_a_minute_by_default() {
        let settings = NetworkSettings::default();
        // Silent: attempts while a whole read timeout still fits before the
        // deadline, each after its longest back-off.
        let mut silent = Duration::ZERO;
        for made in 1..=settings.attempts {
            if made > 1 {
                let longest_backoff = crate::retry::backoff_ceiling(made - 1);
                if silent + longest_backoff + settings.read_timeout > settings.operation_timeout {
                    break;
                }
                silent += longest_backoff;
            }
            silent += settings.read_timeout;
        }
        assert_eq!(silent, Duration::from_millis(45_750));
        // Trickling (a byte every few seconds, never silent for the read
        // timeout): the deadline, grown by a second per MiB that arrived.
        let trickle = settings.deadline_for_size(60);
        assert!(trickle < Duration::from_millis(50_001), "{trickle:?}");
        for bound in [silent, trickle] {
            assert!(bound < DEFAULT_STALLED_COMMAND_BOUND, "{bound:?}");
        }
    }

    #[test]
    fn environment_overrides_defaults_and_options_override_environment() {
        let environment = env(&[
            (ENV_REGISTRY_CONNECT_TIMEOUT, "2s"),
            (ENV_REGISTRY_READ_TIMEOUT, "750ms"),
            (ENV_REGISTRY_OPERATION_TIMEOUT, "1m"),
            (ENV_REGISTRY_ATTEMPTS, "2"),
        ]);
        let from_env =
            NetworkSettings::resolve_with(&RegistryOptions::default(), &environment).unwrap();
        assert_eq!(from_env.connect_timeout, Duration::from_secs(2));
        assert_eq!(from_env.read_timeout, Duration::from_millis(750));
        assert_eq!(from_env.operation_timeout, Duration::from_secs(60));
        assert_eq!(from_env.attempts, 2);
        let options = RegistryOptions {
            read_timeout: Some(Duration::from_secs(5)),
            attempts: Some(1),
            ..Default::default()
        };
        let both = NetworkSettings::resolve_with(&options, &environment).unwrap();
        assert_eq!(both.read_timeout, Duration::from_secs(5));
        assert_eq!(both.attempts, 1);
        assert_eq!(both.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn a_malformed_variable_is_named() {
        let error = NetworkSettings::resolve_with(
            &RegistryOptions::default(),
            env(&[(ENV_REGISTRY_READ_TIMEOUT, "soon")]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(ENV_REGISTRY_READ_TIMEOUT), "{error}");
        assert!(error.contains("soon"), "{error}");
        assert!(error.contains("like 30s, 2m, 500ms"), "{error}");
        let error = NetworkSettings::resolve_with(
            &RegistryOptions::default(),
            env(&[(ENV_REGISTRY_ATTEMPTS, "0")]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(ENV_REGISTRY_ATTEMPTS), "{error}");
    }

    #[test]
    fn zero_values_set_in_code_are_refused() {
        let options = RegistryOptions {
            operation_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        let error = NetworkSettings::resolve_with(&options, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("operation timeout"), "{error}");
    }

    #[test]
    fn blob_deadlines_grow_with_size() {
        let settings = NetworkSettings::default();
        assert_eq!(settings.deadline_for_size(0), settings.operation_timeout);
        assert_eq!(
            settings.deadline_for_size(600 * BLOB_FLOOR_RATE),
            settings.operation_timeout + Duration::from_secs(600)
        );
    }

    #[test]
    fn durations_show_in_their_own_units() {
        assert_eq!(show(Duration::from_millis(500)), "500ms");
        assert_eq!(show(Duration::from_secs(30)), "30s");
        assert_eq!(show(Duration::from_nanos(1_500_000_123)), "1s 500ms");
    }
}
