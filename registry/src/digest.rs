//! Content digests (`sha256:<hex>`, `sha512:<hex>`): what the client checks
//! every manifest and blob against. The hashing is
//! `openshell_contract::digest`'s; this module only parses what a registry
//! or a reference states.

use openshell_contract::digest::{Algorithm, Digester};

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
        // sha384 is registered too, but no registry serves it.
        let algorithm = match Algorithm::from_name(algorithm) {
            Some(algorithm @ (Algorithm::Sha256 | Algorithm::Sha512)) => algorithm,
            _ => {
                return Err(format!(
                    "digest '{text}' uses the unsupported algorithm '{algorithm}' (supported: sha256, sha512)"
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

    /// A digester of the same algorithm.
    pub(crate) fn hasher(&self) -> Digester {
        Digester::new(self.algorithm)
    }
}

impl std::fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
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
    fn hashers_are_of_the_digests_algorithm() {
        let sha512 = ContentDigest::parse(&format!("sha512:{}", "0".repeat(128))).unwrap();
        let mut hasher = sha512.hasher();
        hasher.update(b"abc");
        assert!(hasher.finish().starts_with("sha512:ddaf35a193617aba"));
    }
}
