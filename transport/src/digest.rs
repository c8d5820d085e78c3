//! Checking bytes against the digest that names them, for every algorithm
//! the OCI image spec registers (sha256, sha384, sha512), as they stream.

use std::io::Read;

use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::Digest as _;

use crate::TransportError;

/// A running hash of one of the registered algorithms.
#[derive(Clone)]
pub enum Digester {
    /// sha256.
    Sha256(sha2::Sha256),
    /// sha384.
    Sha384(sha2::Sha384),
    /// sha512.
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A digester for `digest`'s algorithm; `what` names the blob in the
    /// refusal of an unsupported one.
    pub fn for_digest(what: &str, digest: &Digest) -> Result<Self, TransportError> {
        match digest.algorithm() {
            DigestAlgorithm::Sha256 => Ok(Self::Sha256(sha2::Sha256::new())),
            DigestAlgorithm::Sha384 => Ok(Self::Sha384(sha2::Sha384::new())),
            DigestAlgorithm::Sha512 => Ok(Self::Sha512(sha2::Sha512::new())),
            _ => Err(TransportError::UnsupportedDigest {
                what: what.to_string(),
                digest: digest.to_string(),
            }),
        }
    }

    /// A sha256 digester.
    pub fn sha256() -> Self {
        Self::Sha256(sha2::Sha256::new())
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(hasher) => hasher.update(bytes),
            Self::Sha384(hasher) => hasher.update(bytes),
            Self::Sha512(hasher) => hasher.update(bytes),
        }
    }

    /// `algorithm:hex` of what was fed.
    pub fn finish(self) -> String {
        match self {
            Self::Sha256(hasher) => format!("sha256:{}", hex::encode(hasher.finalize())),
            Self::Sha384(hasher) => format!("sha384:{}", hex::encode(hasher.finalize())),
            Self::Sha512(hasher) => format!("sha512:{}", hex::encode(hasher.finalize())),
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `algorithm:hex` of `bytes` in the algorithm of `expected`.
pub fn digest_like(what: &str, expected: &Digest, bytes: &[u8]) -> Result<String, TransportError> {
    let mut digester = Digester::for_digest(what, expected)?;
    digester.update(bytes);
    Ok(digester.finish())
}

/// Checks `bytes` against a descriptor's digest and size.
pub fn check_bytes(
    what: &str,
    descriptor: &oci_spec::image::Descriptor,
    bytes: &[u8],
) -> Result<(), TransportError> {
    let actual = digest_like(what, descriptor.digest(), bytes)?;
    let expected = descriptor.digest().to_string();
    if actual != expected {
        return Err(TransportError::DigestMismatch {
            what: what.to_string(),
            expected,
            actual,
        });
    }
    if bytes.len() as u64 != descriptor.size() {
        return Err(TransportError::DigestMismatch {
            what: what.to_string(),
            expected: format!("{} bytes", descriptor.size()),
            actual: format!("{} bytes", bytes.len()),
        });
    }
    Ok(())
}

/// A reader that hashes and counts what passes through it.
pub struct DigestingReader<R> {
    inner: R,
    digester: Digester,
    count: u64,
}

impl<R: Read> DigestingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, digester: Digester) -> Self {
        Self {
            inner,
            digester,
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads what is left (to the end) and returns the digest and count.
    pub fn finish(mut self) -> std::io::Result<(String, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok((self.digester.finish(), self.count))
    }
}

impl<R: Read> Read for DigestingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.digester.update(&buf[..read]);
        self.count += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_algorithm_is_checked_and_others_refused() {
        let bytes = b"hello";
        for algorithm in ["sha256", "sha384", "sha512"] {
            let mut digester = Digester::for_digest(
                "x",
                &format!(
                    "{algorithm}:{}",
                    "0".repeat(match algorithm {
                        "sha256" => 64,
                        "sha384" => 96,
                        _ => 128,
                    })
                )
                .parse()
                .unwrap(),
            )
            .unwrap();
            digester.update(bytes);
            let digest = digester.finish();
            assert!(digest.starts_with(&format!("{algorithm}:")), "{digest}");
            let descriptor = oci_spec::image::Descriptor::new(
                oci_spec::image::MediaType::ImageConfig,
                5,
                digest.parse::<Digest>().unwrap(),
            );
            check_bytes("the config", &descriptor, bytes).unwrap();
            let err = check_bytes("the config", &descriptor, b"hellO")
                .unwrap_err()
                .to_string();
            assert!(err.contains("the config: read"), "{err}");
        }
        let other: Digest = "md5:d41d8cd98f00b204e9800998ecf8427e".parse().unwrap();
        let err = Digester::for_digest("layer 0", &other)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("not supported (expected sha256, sha384 or sha512)"),
            "{err}"
        );
    }
}
