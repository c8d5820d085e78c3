//! Deterministic gzip, compressed on every core at once.
//!
//! Compression sets the pace of a build (hashing 33 MiB takes 27 ms, deflating
//! it hundreds), so the input is cut into fixed-size chunks that are deflated
//! in parallel and joined into ONE gzip member, the way pigz does it: every
//! chunk but the last ends with a sync flush (an empty stored block, so the
//! next chunk starts on a byte boundary), each chunk is primed with the 32 KiB
//! before it as its dictionary (so matches may reach back across the cut and
//! the ratio stays that of a single stream), and the chunk CRCs are combined.
//!
//! The output depends only on the input, the level and [`CHUNK_SIZE`], never
//! on the number of threads or the CPU: zlib-rs picks its hash function from
//! the level alone, and its SIMD paths compute the same matches as the scalar
//! ones. The header is fixed (no name, mtime 0, OS byte 255 "unknown", as Go's
//! compress/gzip writes it), so the same bytes give the same blob digest on any
//! machine.
//!
//! Why not the `gzp` crate: it only primes dictionaries with the C zlib
//! backends (its default builds zlib-ng from C), it is built around a
//! streaming writer with its own channels and threads, while the layer is
//! already in memory here; on flate2's raw `Compress` with the pure-Rust
//! zlib-rs backend the whole thing is the short function below.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Bytes of input per independently compressed chunk. Fixed, because it
/// shapes the output bytes; 1 MiB keeps the per-chunk overhead (a 5-byte
/// empty stored block and the lost dictionary beyond 32 KiB) far below 0.1 %
/// while giving many chunks to share among the cores.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Deflate's window: the most a match can reach back, so the dictionary size.
const DICTIONARY_SIZE: usize = 32 * 1024;

/// gzip header: magic, CM=8 (deflate), no flags, mtime 0, XFL 0, OS 255.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The default level: the fastest one whose layer is no larger than what
/// buildah writes (Go's compress/gzip at its default level) for a real
/// program; see the benchmark in `build/benches/`.
pub const DEFAULT_LEVEL: u32 = 4;

/// Why compression failed (zlib-rs reports only internal errors).
#[derive(Debug, thiserror::Error)]
#[error("gzip compression failed in chunk {chunk}: {detail}")]
pub struct GzipError {
    /// Index of the chunk that failed.
    pub chunk: usize,
    /// What zlib-rs said.
    pub detail: String,
}

/// One compressed chunk: its deflate bytes and the CRC-32 of its input.
struct Chunk {
    index: usize,
    deflate: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// Compresses `data` at `level` (0-9) into one gzip member, using up to
/// `threads` threads.
pub fn compress(data: &[u8], level: u32, threads: usize) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::new();
    compress_into(data, level, threads, &AtomicBool::new(false), |bytes| {
        out.extend_from_slice(bytes);
    })?;
    Ok(out)
}

/// Compresses `data` into one gzip member, handing the output to `sink` in
/// order, piece by piece, as soon as each piece is ready: the caller can
/// hash and store it while later chunks are still being compressed. Gives
/// up (with an error) once `cancel` is set: the builder starts compressing
/// before it knows whether an earlier run already made this layer.
pub fn compress_into(
    data: &[u8],
    level: u32,
    threads: usize,
    cancel: &AtomicBool,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), GzipError> {
    let chunk_count = data.len().div_ceil(CHUNK_SIZE).max(1);
    let threads = threads.clamp(1, chunk_count);
    let next = AtomicUsize::new(0);
    let (sender, receiver) = std::sync::mpsc::channel::<Result<Chunk, GzipError>>();

    std::thread::scope(|scope| {
        for _ in 0..threads {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || {
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
                        // A fresh compressor per chunk: reusing one through
                        // `reset` changed the output bytes with zlib-rs 0.6
                        // (state from the previous chunk leaks into the
                        // next), which would make the digest depend on how
                        // chunks fell to threads.
                        let mut compress = Compress::new(Compression::new(level), false);
                        compress_chunk(&mut compress, data, index, chunk_count)
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

        sink(&GZIP_HEADER);
        let mut crc = crc32fast::Hasher::new();
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
                sink(&chunk.deflate);
                crc.combine(&chunk.crc);
                emitted += 1;
            }
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952).
        trailer[4..].copy_from_slice(&((data.len() as u64 & 0xffff_ffff) as u32).to_le_bytes());
        sink(&trailer);
        Ok(())
    })
}

fn compress_chunk(
    compress: &mut Compress,
    data: &[u8],
    index: usize,
    chunk_count: usize,
) -> Result<Chunk, GzipError> {
    let start = index * CHUNK_SIZE;
    let end = (start + CHUNK_SIZE).min(data.len());
    let input = &data[start..end];
    let fail = |detail: String| GzipError {
        chunk: index,
        detail,
    };

    // Raw deflate (no zlib header, see the caller): the gzip framing is
    // written once around all chunks.
    if start > 0 {
        let dictionary = &data[start.saturating_sub(DICTIONARY_SIZE)..start];
        compress
            .set_dictionary(dictionary)
            .map_err(|err| fail(err.to_string()))?;
    }
    let last = index + 1 == chunk_count;
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };

    // Incompressible input grows by a few bytes per 16 KiB stored block.
    let mut out = Vec::with_capacity(input.len() + input.len() / 1000 + 64);
    loop {
        let consumed = usize::try_from(compress.total_in()).map_err(|err| fail(err.to_string()))?;
        let status = compress
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(|err| fail(err.to_string()))?;
        let consumed = usize::try_from(compress.total_in()).map_err(|err| fail(err.to_string()))?;
        let finished = match status {
            Status::StreamEnd => true,
            // A sync flush is complete once all input is taken and zlib left
            // spare room in the output (it had nothing more to write).
            Status::Ok | Status::BufError => {
                !last && consumed == input.len() && out.len() < out.capacity()
            }
        };
        if finished {
            break;
        }
        out.reserve(out.capacity().max(4096));
    }

    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    Ok(Chunk {
        index,
        deflate: out,
        crc,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

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

    #[test]
    fn round_trips_through_a_standard_decoder() {
        for len in [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 17] {
            let data = sample(len);
            let gz = compress(&data, DEFAULT_LEVEL, 2).unwrap();
            assert_eq!(gunzip(&gz), data, "length {len}");
            // One member only: a single-member decoder reads it all too.
            let mut single = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut single)
                .unwrap();
            assert_eq!(single.len(), len);
        }
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
    fn header_is_fixed_and_trailer_holds_crc_and_length() {
        let data = sample(2 * CHUNK_SIZE + 5);
        let gz = compress(&data, 1, 2).unwrap();
        assert_eq!(gz[..10], GZIP_HEADER);
        let trailer = &gz[gz.len() - 8..];
        assert_eq!(
            u32::from_le_bytes(trailer[..4].try_into().unwrap()),
            crc32fast::hash(&data)
        );
        assert_eq!(
            u32::from_le_bytes(trailer[4..].try_into().unwrap()) as usize,
            data.len()
        );
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
        // Only the header went out; no chunk was compressed.
        assert_eq!(pieces, 1);
    }

    #[test]
    fn priming_keeps_the_ratio_of_a_single_stream() {
        let data = sample(4 * CHUNK_SIZE);
        let parallel = compress(&data, DEFAULT_LEVEL, 2).unwrap();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(DEFAULT_LEVEL));
        std::io::Write::write_all(&mut single, &data).unwrap();
        let single = single.finish().unwrap();
        // Four chunks cost four small flush markers, not a fresh dictionary each.
        assert!(
            parallel.len() <= single.len() + single.len() / 200,
            "parallel {} vs single {}",
            parallel.len(),
            single.len()
        );
    }
}
