//! Content digests (`sha256:<hex>`): the one sha256 helper and the one
//! streaming digester of the workspace.
//!
//! They live in the contract crate because every crate that names content
//! by digest (the supervisor, the registry client, the transports,
//! build-image, signing, the driver) already links it, and the registry
//! client sits below the transports; the sha2 and hex crates this module
//! needs were already in the supervisor, so its binary gains nothing.

use std::io::{self, Read, Write};

use sha2::Digest as _;
use sha2::digest::DynDigest;

/// A digest algorithm the OCI image spec registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// sha256: what every tool writes.
    Sha256,
    /// sha384.
    Sha384,
    /// sha512.
    Sha512,
}

impl Algorithm {
    /// The name before the `:` (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// How many lowercase hex digits follow the `:`.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
        }
    }

    /// The algorithm named `name` (`sha256`), if registered.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
    }
}

/// A running hash of one algorithm that counts the bytes fed to it: fed
/// with [`Digester::update`] or as an [`io::Write`], it yields
/// `algorithm:<hex>` and the size.
pub struct Digester {
    algorithm: Algorithm,
    hasher: Hasher,
    size: u64,
}

// sha384 and sha512 behind a trait object, not as variants of their own: a
// program that only ever makes [`Digester::sha256`] (the supervisor, linked
// with fat LTO) then links sha256's code alone (20 KB less in its binary).
enum Hasher {
    Sha256(sha2::Sha256),
    Other(Box<dyn DynDigest + Send + Sync>),
}

impl Digester {
    /// A digester of `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::sha256(),
            Algorithm::Sha384 => Self::of(algorithm, Hasher::Other(Box::new(sha2::Sha384::new()))),
            Algorithm::Sha512 => Self::of(algorithm, Hasher::Other(Box::new(sha2::Sha512::new()))),
        }
    }

    /// A sha256 digester.
    pub fn sha256() -> Self {
        Self::of(Algorithm::Sha256, Hasher::Sha256(sha2::Sha256::new()))
    }

    fn of(algorithm: Algorithm, hasher: Hasher) -> Self {
        Self {
            algorithm,
            hasher,
            size: 0,
        }
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        match &mut self.hasher {
            Hasher::Sha256(hasher) => sha2::Digest::update(hasher, bytes),
            Hasher::Other(hasher) => hasher.update(bytes),
        }
        self.size += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `algorithm:<hex>` of what was fed.
    pub fn finish(self) -> String {
        let name = self.algorithm.name();
        format!("{name}:{}", self.finish_hex())
    }

    /// `algorithm:<hex>` of what was fed, and its size.
    pub fn finish_with_size(self) -> (String, u64) {
        let size = self.size;
        (self.finish(), size)
    }

    /// The hex digits alone (no `algorithm:` prefix).
    pub fn finish_hex(self) -> String {
        match self.hasher {
            Hasher::Sha256(hasher) => hex::encode(sha2::Digest::finalize(hasher)),
            Hasher::Other(hasher) => hex::encode(hasher.finalize()),
        }
    }
}

impl Write for Digester {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// sha256 of `bytes`, lowercase hex without prefix (as the binary's and
/// `Cargo.lock`'s sha256 are recorded).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A reader that hashes and counts what passes through it.
pub struct DigestingReader<R> {
    inner: R,
    digester: Digester,
}

impl<R: Read> DigestingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, digester: Digester) -> Self {
        Self { inner, digester }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.digester.size()
    }

    /// Reads what is left (to the end) and returns the digest and count.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.digester.finish_with_size())
    }
}

impl<R: Read> Read for DigestingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.digester.update(&buf[..read]);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-2's "abc" test vectors.
    const ABC: [(Algorithm, &str); 3] = [
        (
            Algorithm::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            Algorithm::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            Algorithm::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ];

    #[test]
    fn every_algorithm_matches_the_standard_vectors() {
        for (algorithm, hex) in ABC {
            assert_eq!(hex.len(), algorithm.hex_len());
            assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
            let mut digester = Digester::new(algorithm);
            digester.update(b"a");
            digester.update(b"bc");
            assert_eq!(digester.algorithm(), algorithm);
            assert_eq!(
                digester.finish_with_size(),
                (format!("{}:{hex}", algorithm.name()), 3)
            );
        }
        assert_eq!(Algorithm::from_name("md5"), None);
        assert_eq!(Algorithm::from_name("SHA256"), None);
    }

    #[test]
    fn helpers_writer_and_reader_agree() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let digest = sha256_digest(&bytes);
        assert_eq!(digest, format!("sha256:{}", sha256_hex(&bytes)));
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );

        let mut writer = Digester::sha256();
        for chunk in bytes.chunks(997) {
            writer.write_all(chunk).unwrap();
        }
        assert_eq!(writer.size(), bytes.len() as u64);
        assert_eq!(writer.finish(), digest);

        let mut reader = DigestingReader::new(&bytes[..], Digester::sha256());
        let mut first = [0u8; 10];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(reader.count(), 10);
        assert_eq!(reader.finish().unwrap(), (digest, bytes.len() as u64));
    }
}
