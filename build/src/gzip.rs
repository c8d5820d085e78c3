//! Deterministic gzip, compressed on every core at once.
//!
//! Compression sets the pace of a build (hashing 32 MiB takes 27 ms,
//! deflating it hundreds), so the input is cut into fixed-size chunks that
//! are compressed in parallel, each into a gzip member of its own, and the
//! members are written one after the other. RFC 1952 defines a gzip file as
//! a series of members, and every layer reader that matters reads them all:
//! Go's compress/gzip (containerd, CRI-O, podman, buildah, skopeo, umoci),
//! pigz, igzip and `gzip -d`. (In Rust, flate2's `MultiGzDecoder` does; its
//! `GzDecoder` stops after the first member.)
//!
//! Each chunk is compressed by libdeflate (the C library, through the
//! `libdeflater` crate). At the levels used here it writes layers no larger
//! than buildah's (Go's gzip at its default level) in 40 % less time than
//! zlib-rs at the level that matched them (4), and it cannot continue a
//! stream, which is why every chunk is a member of its own rather than a
//! sync-flushed piece of one deflate stream, the way pigz does it with
//! zlib. The members cost 18 bytes each and the context lost at each cut
//! (1 MiB apart) well under 0.1 %; see `build/benches/`.
//!
//! The output depends only on the input, the level, [`CHUNK_SIZE`] and the
//! libdeflate version that Cargo.lock pins, never on the number of threads
//! or the CPU: libdeflate's CPU-specific code only computes checksums and
//! fills tables, with the same results everywhere. Each member's header is
//! fixed (no name, mtime 0, OS byte 255 "unknown"), so the same bytes give
//! the same blob digest on any machine.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use libdeflater::{CompressionLvl, Compressor};

/// Bytes of input per independently compressed chunk (one gzip member).
/// Fixed, because it shapes the output bytes; 1 MiB keeps the overhead (a
/// member header and trailer, and a cold start of the match finder) far
/// below 0.1 % while giving many chunks to share among the cores.
pub const CHUNK_SIZE: usize = 1 << 20;

/// The default level: the fastest whose layers stay smaller than the ones
/// buildah writes (containers/image's gzip at its default level) on every
/// ordinary program measured. Level 3 came within 0.6 % of buildah's size
/// on Go programs and over it on one; level 4 costs the same time (within
/// 2 %, libdeflate's greedy parser searching deeper) and is 1.7 to 5.3 %
/// under buildah on Go, C and Rust programs; level 5 is 4 to 7 % under but
/// takes a quarter more compression time, which would cost the 3x lead
/// over buildah. See BENCHMARKS.md and `tests/tests/layer_size.rs`.
pub const DEFAULT_LEVEL: u32 = 4;

/// Why compression failed.
#[derive(Debug, thiserror::Error)]
#[error("gzip compression failed in chunk {chunk}: {detail}")]
pub struct GzipError {
    /// Index of the chunk that failed.
    pub chunk: usize,
    /// What went wrong.
    pub detail: String,
}

/// One compressed chunk: a complete gzip member.
struct Chunk {
    index: usize,
    member: Vec<u8>,
}

/// Compresses `data` at `level` (1-12, as libdeflate counts) into gzip
/// members, using up to `threads` threads.
pub fn compress(data: &[u8], level: u32, threads: usize) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::new();
    compress_into(data, level, threads, &AtomicBool::new(false), |bytes| {
        out.extend_from_slice(bytes);
    })?;
    Ok(out)
}

/// Compresses `data` into gzip members, handing them to `sink` in order,
/// each as soon as it and all before it are ready: the caller can hash and
/// store the output while later chunks are still being compressed. Gives
/// up (with an error) once `cancel` is set: the builder starts compressing
/// before it knows whether an earlier run already made this layer.
pub fn compress_into(
    data: &[u8],
    level: u32,
    threads: usize,
    cancel: &AtomicBool,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), GzipError> {
    let level = i32::try_from(level)
        .ok()
        .and_then(|level| CompressionLvl::new(level).ok())
        .ok_or_else(|| GzipError {
            chunk: 0,
            detail: format!("compression level {level} is not one of 0 to 12"),
        })?;
    // An empty input is still one (empty) member: a valid gzip file.
    let chunk_count = data.len().div_ceil(CHUNK_SIZE).max(1);
    let threads = threads.clamp(1, chunk_count);
    let next = AtomicUsize::new(0);
    let (sender, receiver) = std::sync::mpsc::channel::<Result<Chunk, GzipError>>();

    std::thread::scope(|scope| {
        for _ in 0..threads {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || {
                // One compressor per thread: libdeflate keeps no state from
                // one call to the next, so reuse cannot change the bytes.
                let mut compressor = Compressor::new(level);
                // And one output buffer, sized for the largest chunk: a
                // fresh zeroed megabyte per chunk cost a page fault per 4 KiB
                // (8,192 for 32 MiB) and showed in profiles beside libdeflate.
                let mut scratch =
                    vec![0u8; compressor.gzip_compress_bound(CHUNK_SIZE.min(data.len()))];
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= chunk_count {
                        return;
                    }
                    let chunk = if cancel.load(Ordering::Relaxed) {
                        Err(GzipError {
                            chunk: index,
                            detail: "cancelled".into(),
                        })
                    } else {
                        compress_chunk(&mut compressor, &mut scratch, data, index)
                    };
                    let failed = chunk.is_err();
                    if sender.send(chunk).is_err() || failed {
                        return;
                    }
                }
            });
        }
        // Only the workers hold senders now: the channel closes when they
        // are done, or if one panics.
        drop(sender);

        let mut waiting: BTreeMap<usize, Chunk> = BTreeMap::new();
        let mut emitted = 0;
        while emitted < chunk_count {
            let Ok(chunk) = receiver.recv() else {
                return Err(GzipError {
                    chunk: emitted,
                    detail: "a compression thread stopped".into(),
                });
            };
            let chunk = chunk?;
            waiting.insert(chunk.index, chunk);
            while let Some(chunk) = waiting.remove(&emitted) {
                sink(&chunk.member);
                emitted += 1;
            }
        }
        Ok(())
    })
}

/// Compresses chunk `index` of `data` through `scratch`, which must hold
/// libdeflate's bound for a full chunk; the member is copied out at its
/// size.
fn compress_chunk(
    compressor: &mut Compressor,
    scratch: &mut [u8],
    data: &[u8],
    index: usize,
) -> Result<Chunk, GzipError> {
    let start = index * CHUNK_SIZE;
    let end = (start + CHUNK_SIZE).min(data.len());
    let input = &data[start..end];
    // libdeflate's bound holds for any input, incompressible ones included,
    // and grows with the input: the full chunk's bound covers a shorter last
    // chunk.
    let written = compressor
        .gzip_compress(input, scratch)
        .map_err(|err| GzipError {
            chunk: index,
            detail: format!("{err:?}"),
        })?;
    let member = scratch.get(..written).unwrap_or_default().to_vec();
    Ok(Chunk { index, member })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// The fixed header every member starts with: magic, CM=8 (deflate), no
    /// flags, mtime 0, XFL 0, OS 255.
    const MEMBER_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

    /// Bytes that compress somewhat, like code: a repeating pattern with
    /// varying numbers in it.
    fn sample(len: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(len);
        let mut state: u32 = 12345;
        while data.len() < len {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            data.extend_from_slice(format!("mov r{}, {:#x}; ", state % 16, state >> 20).as_bytes());
        }
        data.truncate(len);
        data
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// The members of a gzip file, split by decoding each in turn.
    fn split_members(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut members = Vec::new();
        while !bytes.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(bytes);
            let mut member = Vec::new();
            decoder.read_to_end(&mut member).unwrap();
            bytes = decoder.into_inner();
            members.push(member);
        }
        members
    }

    #[test]
    fn round_trips_through_a_standard_decoder() {
        for len in [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 17] {
            let data = sample(len);
            let gz = compress(&data, DEFAULT_LEVEL, 2).unwrap();
            assert_eq!(gunzip(&gz), data, "length {len}");
        }
    }

    #[test]
    fn each_chunk_is_one_member_with_a_fixed_header() {
        let data = sample(2 * CHUNK_SIZE + 5);
        let gz = compress(&data, DEFAULT_LEVEL, 2).unwrap();
        let members = split_members(&gz);
        assert_eq!(
            members.iter().map(Vec::len).collect::<Vec<_>>(),
            [CHUNK_SIZE, CHUNK_SIZE, 5]
        );
        assert_eq!(members.concat(), data);
        assert_eq!(gz[..10], MEMBER_HEADER);
        // The last member's trailer: CRC-32 and length of the last chunk.
        let trailer = &gz[gz.len() - 8..];
        let last = &data[2 * CHUNK_SIZE..];
        assert_eq!(
            u32::from_le_bytes(trailer[..4].try_into().unwrap()),
            libdeflater::crc32(last)
        );
        assert_eq!(u32::from_le_bytes(trailer[4..].try_into().unwrap()), 5);
        // An empty input is one empty member.
        assert_eq!(
            split_members(&compress(b"", DEFAULT_LEVEL, 2).unwrap()),
            [b""]
        );
    }

    #[test]
    fn output_does_not_depend_on_the_thread_count() {
        let data = sample(5 * CHUNK_SIZE + 999);
        let one = compress(&data, DEFAULT_LEVEL, 1).unwrap();
        let two = compress(&data, DEFAULT_LEVEL, 2).unwrap();
        let eight = compress(&data, DEFAULT_LEVEL, 8).unwrap();
        assert_eq!(one, two);
        assert_eq!(one, eight);
    }

    #[test]
    fn levels_shape_the_output_and_bad_levels_are_refused() {
        let data = sample(2 * CHUNK_SIZE);
        let fast = compress(&data, 1, 2).unwrap();
        let small = compress(&data, 9, 2).unwrap();
        assert!(
            small.len() < fast.len(),
            "{} vs {}",
            small.len(),
            fast.len()
        );
        assert_eq!(gunzip(&small), data);
        let err = compress(&data, 13, 2).unwrap_err().to_string();
        assert!(err.contains("level 13 is not one of 0 to 12"), "{err}");
    }

    #[test]
    fn a_cancelled_compression_stops_with_an_error() {
        let data = sample(3 * CHUNK_SIZE);
        let mut pieces = 0;
        let err = compress_into(&data, DEFAULT_LEVEL, 2, &AtomicBool::new(true), |_| {
            pieces += 1;
        })
        .unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{err}");
        assert_eq!(pieces, 0, "no chunk was compressed");
    }

    #[test]
    fn cutting_into_members_costs_little_against_one_member() {
        let data = sample(4 * CHUNK_SIZE);
        let members = compress(&data, DEFAULT_LEVEL, 2).unwrap();
        let level = CompressionLvl::new(DEFAULT_LEVEL as i32).unwrap();
        let mut compressor = Compressor::new(level);
        let mut whole = vec![0u8; compressor.gzip_compress_bound(data.len())];
        let written = compressor.gzip_compress(&data, &mut whole).unwrap();
        // Four members cost three more headers and trailers and three cold
        // starts, not a ratio of their own.
        assert!(
            members.len() <= written + written / 200,
            "members {} vs one member {written}",
            members.len()
        );
    }
}
