//! Checking bytes against the digest that names them, for every algorithm
//! the OCI image spec registers (sha256, sha384, sha512), as they stream.
//! The digester itself is `openshell_contract::digest`'s; this module maps
//! an OCI digest's algorithm onto it and checks descriptors.

use oci_spec::image::{Digest, DigestAlgorithm};
use openshell_contract::digest::{Algorithm, Digester};

use crate::TransportError;

/// A digester for `digest`'s algorithm; `what` names the blob in the
/// refusal of an unsupported one.
pub fn digester_for(what: &str, digest: &Digest) -> Result<Digester, TransportError> {
    let algorithm = match digest.algorithm() {
        DigestAlgorithm::Sha256 => Algorithm::Sha256,
        DigestAlgorithm::Sha384 => Algorithm::Sha384,
        DigestAlgorithm::Sha512 => Algorithm::Sha512,
        _ => {
            return Err(TransportError::UnsupportedDigest {
                what: what.to_string(),
                digest: digest.to_string(),
            });
        }
    };
    Ok(Digester::new(algorithm))
}

/// `algorithm:hex` of `bytes` in the algorithm of `expected`.
pub fn digest_like(what: &str, expected: &Digest, bytes: &[u8]) -> Result<String, TransportError> {
    let mut digester = digester_for(what, expected)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_algorithm_is_checked_and_others_refused() {
        let bytes = b"hello";
        for algorithm in ["sha256", "sha384", "sha512"] {
            let mut digester = digester_for(
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
        let err = digester_for("layer 0", &other).err().unwrap().to_string();
        assert!(
            err.contains("not supported (expected sha256, sha384 or sha512)"),
            "{err}"
        );
    }
}
