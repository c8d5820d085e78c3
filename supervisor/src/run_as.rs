//! `--run-as UID[:GID]`: the numeric identity the workload runs as.
//!
//! Ids are numeric, as in a pod's `runAsUser`/`runAsGroup`: the supervisor
//! cannot trust, and need not have, the agent image's `/etc/passwd`.

use std::fmt;
use std::str::FromStr;

/// A uid and gid for the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id (the uid when the value names none).
    pub gid: u32,
}

/// Why a `--run-as` value was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected UID or UID:GID, numeric ids from 0 to {max} (e.g. 1000 or 1000:1000); {problem}",
    max = u32::MAX - 1
)]
pub struct RunAsParseError {
    problem: String,
}

impl FromStr for RunAs {
    type Err = RunAsParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (uid, gid) = match value.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (value, None),
        };
        let uid = parse_id("UID", uid)?;
        let gid = gid.map(|gid| parse_id("GID", gid)).transpose()?;
        Ok(RunAs {
            uid,
            gid: gid.unwrap_or(uid),
        })
    }
}

fn parse_id(what: &str, text: &str) -> Result<u32, RunAsParseError> {
    let problem = |problem: String| RunAsParseError { problem };
    if text.is_empty() {
        return Err(problem(format!("the {what} is empty")));
    }
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(problem(format!("the {what} {text:?} is not a number")));
    }
    match text.parse::<u32>() {
        // (uid_t)-1 means "leave unchanged" to setuid(2) and setgid(2).
        Ok(u32::MAX) | Err(_) => Err(problem(format!("the {what} {text} is out of range"))),
        Ok(id) => Ok(id),
    }
}

impl fmt::Display for RunAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gid_defaults_to_uid() {
        assert_eq!(
            "1000".parse(),
            Ok(RunAs {
                uid: 1000,
                gid: 1000
            })
        );
        assert_eq!("0".parse(), Ok(RunAs { uid: 0, gid: 0 }));
    }

    #[test]
    fn uid_and_gid() {
        assert_eq!(
            "1000:2000".parse(),
            Ok(RunAs {
                uid: 1000,
                gid: 2000
            })
        );
    }

    #[test]
    fn names_are_refused() {
        let err = "nobody".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the UID \"nobody\" is not a number"), "{err}");
    }

    #[test]
    fn empty_parts_are_refused() {
        let err = "1000:".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the GID is empty"), "{err}");
        let err = ":1000".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the UID is empty"), "{err}");
    }

    #[test]
    fn a_third_part_is_refused() {
        let err = "1:2:3".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the GID \"2:3\" is not a number"), "{err}");
    }

    #[test]
    fn signs_and_the_unchanged_id_are_refused() {
        let err = "-1".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("is not a number"), "{err}");
        let err = "4294967295".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
        let err = "1:99999999999".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the GID 99999999999 is out of range"), "{err}");
    }
}
