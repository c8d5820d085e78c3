//! The image's single layer: a deterministic tar holding the binary, gzipped.

use openshell_contract::digest::{Digester, sha256_digest};
use openshell_contract::{IMAGE_BINARY_MODE, IMAGE_BINARY_OWNER, LAYER_BINARY_PATH};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::binary::LEADING_ROOM;
use crate::gzip;
use openshell_supply_chain::epoch::Epoch;

/// How the layer is compressed; part of the cache key, since it shapes the
/// layer bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSettings {
    /// libdeflate's compression level (build-image offers 1-9).
    pub level: u32,
    /// Threads to compress with (does not change the bytes).
    pub threads: usize,
}

impl Default for LayerSettings {
    fn default() -> Self {
        Self {
            level: gzip::DEFAULT_LEVEL,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

impl LayerSettings {
    /// A string naming everything that shapes the layer bytes (the
    /// libdeflate version among them: bump it with the libdeflater
    /// dependency).
    pub fn cache_key(&self) -> String {
        format!(
            "tar-ustar-v1+gzip-members-libdeflate1.26-level{}-chunk{}",
            self.level,
            gzip::CHUNK_SIZE
        )
    }
}

/// A built layer.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The uncompressed tar.
    pub tar: Arc<Vec<u8>>,
    /// `sha256:...` of the tar: the config's diff ID.
    pub diff_id: String,
    /// The gzip bytes: the blob.
    pub compressed: Vec<u8>,
    /// `sha256:...` of the blob.
    pub digest: String,
}

/// Why a layer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Writing the tar failed (only on memory exhaustion or a tar-crate bug).
    #[error("could not write the layer tar: {0}")]
    Tar(#[from] std::io::Error),
    /// Compression failed.
    #[error(transparent)]
    Gzip(#[from] gzip::GzipError),
}

/// The tar header of the binary: one regular file [`LAYER_BINARY_PATH`],
/// mode 0555, owned 0:0 without user or group names, its mtime the epoch.
///
/// A ustar header with every field set explicitly: no PAX records, no device
/// numbers, no names, so the bytes depend on the binary's size and the epoch
/// only.
fn binary_header(size: u64, epoch: Epoch) -> Result<tar::Header, std::io::Error> {
    let mut header = tar::Header::new_ustar();
    header.set_path(LAYER_BINARY_PATH)?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(IMAGE_BINARY_MODE);
    header.set_uid(IMAGE_BINARY_OWNER);
    header.set_gid(IMAGE_BINARY_OWNER);
    header.set_mtime(epoch.seconds());
    header.set_cksum();
    Ok(header)
}

/// The layer tar of `binary`, written by the tar crate.
pub fn layer_tar(binary: &[u8], epoch: Epoch) -> Result<Vec<u8>, std::io::Error> {
    let header = binary_header(binary.len() as u64, epoch)?;
    // Header block, contents padded to 512, two zero blocks at the end.
    let capacity = 512 + binary.len().next_multiple_of(512) + 1024;
    let mut builder = tar::Builder::new(Vec::with_capacity(capacity));
    builder.append(&header, binary)?;
    builder.into_inner()
}

/// The same tar as [`layer_tar`], built around a binary already in memory
/// after [`LEADING_ROOM`] bytes (see [`crate::binary::SupervisorBinary`]):
/// the header goes into that room and the padding and end blocks after the
/// binary, so its bytes are never copied.
pub fn layer_tar_in_place(mut buffer: Vec<u8>, epoch: Epoch) -> Result<Vec<u8>, std::io::Error> {
    if buffer.len() < LEADING_ROOM {
        return Err(std::io::Error::other(
            "the buffer has no room for a tar header",
        ));
    }
    let size = buffer.len() - LEADING_ROOM;
    let header = binary_header(size as u64, epoch)?;
    buffer[..LEADING_ROOM].copy_from_slice(header.as_bytes());
    let padded = LEADING_ROOM + size.next_multiple_of(512);
    buffer.resize(padded + 1024, 0);
    Ok(buffer)
}

/// Builds the tar of `binary` and compresses it.
pub fn build(binary: &[u8], epoch: Epoch, settings: LayerSettings) -> Result<Layer, LayerError> {
    compress_tar(Arc::new(layer_tar(binary, epoch)?), settings)
}

/// Hashes and compresses a layer tar.
pub fn compress_tar(tar: Arc<Vec<u8>>, settings: LayerSettings) -> Result<Layer, LayerError> {
    compress_tar_unless(tar, settings, &AtomicBool::new(false))
}

/// Like [`compress_tar`], giving up once `cancel` is set.
pub fn compress_tar_unless(
    tar: Arc<Vec<u8>>,
    settings: LayerSettings,
    cancel: &AtomicBool,
) -> Result<Layer, LayerError> {
    // Hash the tar on one thread while the others compress: the diff ID is
    // needed anyway and costs 30 ms over a large binary. The blob is hashed
    // as its pieces arrive, in order, so it is done when compression is.
    let mut compressed = Vec::with_capacity(tar.len() / 2);
    let mut blob_hasher = Digester::sha256();
    let (diff_id, done) = std::thread::scope(|scope| {
        let hasher = scope.spawn(|| sha256_digest(&tar));
        let done = gzip::compress_into(&tar, settings.level, settings.threads, cancel, |piece| {
            blob_hasher.update(piece);
            compressed.extend_from_slice(piece);
        });
        let diff_id = hasher.join().unwrap_or_else(|_| sha256_digest(&tar));
        (diff_id, done)
    });
    done?;
    let digest = blob_hasher.finish();
    Ok(Layer {
        tar,
        diff_id,
        compressed,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn tar_holds_one_file_as_the_contract_says() {
        let epoch = Epoch::parse("1700000000").unwrap();
        let tar = layer_tar(b"\x7fELF binary bytes", epoch).unwrap();
        assert_eq!(tar.len() % 512, 0);
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        let header = entry.header().clone();
        assert_eq!(entry.path().unwrap().to_str(), Some(LAYER_BINARY_PATH));
        assert_eq!(header.entry_type(), tar::EntryType::Regular);
        assert_eq!(header.mode().unwrap(), IMAGE_BINARY_MODE);
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.gid().unwrap(), 0);
        assert_eq!(header.username().unwrap(), Some(""));
        assert_eq!(header.groupname().unwrap(), Some(""));
        assert_eq!(header.mtime().unwrap(), 1_700_000_000);
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).unwrap();
        assert_eq!(contents, b"\x7fELF binary bytes");
        assert!(entries.next().is_none());
    }

    #[test]
    fn tar_bytes_depend_only_on_binary_and_epoch() {
        let binary: Vec<u8> = (0..100_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let epoch = Epoch::parse("42").unwrap();
        assert_eq!(
            layer_tar(&binary, epoch).unwrap(),
            layer_tar(&binary, epoch).unwrap()
        );
        assert_ne!(
            layer_tar(&binary, epoch).unwrap(),
            layer_tar(&binary, Epoch::parse("43").unwrap()).unwrap()
        );
    }

    #[test]
    fn the_in_place_tar_is_the_tar_crates_tar() {
        let epoch = Epoch::parse("1700000000").unwrap();
        for len in [0usize, 1, 511, 512, 513, 100_000] {
            let binary: Vec<u8> = (0..len).map(|n| (n % 253) as u8).collect();
            let mut buffer = vec![0u8; LEADING_ROOM];
            buffer.extend_from_slice(&binary);
            assert_eq!(
                layer_tar_in_place(buffer, epoch).unwrap(),
                layer_tar(&binary, epoch).unwrap(),
                "length {len}"
            );
        }
    }

    #[test]
    fn layer_digests_are_those_of_its_bytes_and_stable() {
        let binary: Vec<u8> = (0..300_000u32)
            .flat_map(|n| (n % 251).to_le_bytes())
            .collect();
        let epoch = Epoch::default();
        let one = build(
            &binary,
            epoch,
            LayerSettings {
                level: 5,
                threads: 1,
            },
        )
        .unwrap();
        let two = build(
            &binary,
            epoch,
            LayerSettings {
                level: 5,
                threads: 2,
            },
        )
        .unwrap();
        assert_eq!(one.digest, two.digest);
        assert_eq!(one.compressed, two.compressed);
        assert_eq!(one.diff_id, sha256_digest(&one.tar));
        assert_eq!(one.digest, sha256_digest(&one.compressed));
        assert!(one.digest.starts_with("sha256:") && one.digest.len() == 7 + 64);
        let mut unpacked = Vec::new();
        flate2::read::MultiGzDecoder::new(&one.compressed[..])
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, *one.tar);
    }
}
