//! Content digests (`sha256:<hex>`, `sha512:<hex>`): what the client checks
//! every manifest and blob against.

use sha2::Digest as _;

/// A digest algorithm the client can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// A parsed, well-formed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentDigest {
    algorithm: Algorithm,
    text: String,
}

impl ContentDigest {
    /// Parses `algorithm:hex`; anything but a well-formed sha256 or sha512
    /// digest is refused, saying what was expected.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err(format!(
                "'{text}' is not a digest (expected sha256:<64 hex digits> or sha512:<128 hex digits>)"
            ));
        };
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                return Err(format!(
                    "digest '{text}' uses the unsupported algorithm '{other}' (supported: sha256, sha512)"
                ));
            }
        };
        let well_formed = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !well_formed {
            return Err(format!(
                "digest '{text}' is malformed (expected {} lowercase hex digits after '{}:')",
                algorithm.hex_len(),
                algorithm.name()
            ));
        }
        Ok(Self {
            algorithm,
            text: text.to_string(),
        })
    }

    /// The digest as text.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// A hasher of the same algorithm.
    pub(crate) fn hasher(&self) -> Hasher {
        Hasher::new(self.algorithm)
    }
}

impl std::fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// An incremental hash of one algorithm.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(hasher) => hasher.update(bytes),
            Self::Sha512(hasher) => hasher.update(bytes),
        }
    }

    /// The digest of everything hashed, as `algorithm:hex`.
    pub(crate) fn finish(self) -> String {
        match self {
            Self::Sha256(hasher) => format!("sha256:{}", hex::encode(hasher.finalize())),
            Self::Sha512(hasher) => format!("sha512:{}", hex::encode(hasher.finalize())),
        }
    }
}

/// The sha256 digest of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    let mut hasher = Hasher::new(Algorithm::Sha256);
    hasher.update(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_digests_parse() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        assert_eq!(ContentDigest::parse(&sha256).unwrap().as_str(), sha256);
        let sha512 = format!("sha512:{}", "0".repeat(128));
        assert!(ContentDigest::parse(&sha512).is_ok());
    }

    #[test]
    fn bad_digests_say_why() {
        let cases = [
            ("sha256", "not a digest"),
            (
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "unsupported algorithm 'md5'",
            ),
            ("sha256:abc", "64 lowercase hex digits"),
            (
                "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "lowercase",
            ),
            ("sha512:00", "128 lowercase hex digits"),
        ];
        for (text, expected) in cases {
            let error = ContentDigest::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn hashers_match_known_values() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut sha512 = Hasher::new(Algorithm::Sha512);
        sha512.update(b"abc");
        assert!(sha512.finish().starts_with("sha512:ddaf35a193617aba"));
    }
}
