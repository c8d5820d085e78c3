//! The kept contents of files named like the binary: hashed while they
//! stream, held in memory while small, else in one anonymous temporary file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use openshell_contract::elf::{self, ElfError, ElfInfo};
use sha2::{Digest, Sha256};

/// Kept contents held in memory at most, across a whole filesystem; larger
/// files go to the spill file, so memory stays bounded by this whatever the
/// image holds.
pub const MEMORY_BUDGET: u64 = 8 * 1024 * 1024;

/// One anonymous temporary file (unlinked at creation, gone when closed)
/// that all spilled contents of a filesystem are appended to.
#[derive(Debug, Default)]
pub struct Spill {
    file: Mutex<Option<(File, u64)>>,
}

impl Spill {
    /// Appends what `source` yields (at most `limit` bytes) and returns the
    /// offset it starts at, the bytes written, and their sha256.
    fn append(&self, source: &mut dyn Read, limit: u64) -> io::Result<(u64, u64, [u8; 32])> {
        let mut guard = self
            .file
            .lock()
            .map_err(|_| io::Error::other("the spill file's lock is poisoned"))?;
        if guard.is_none() {
            *guard = Some((tempfile::tempfile()?, 0));
        }
        let Some((file, end)) = guard.as_mut() else {
            return Err(io::Error::other("the spill file could not be created"));
        };
        let start = *end;
        file.seek(SeekFrom::Start(start))?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        let mut limited = Read::take(source, limit);
        loop {
            let read = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            hasher.update(&buf[..read]);
            file.write_all(&buf[..read])?;
            written += read as u64;
        }
        *end = start + written;
        Ok((start, written, hasher.finalize().into()))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let guard = self
            .file
            .lock()
            .map_err(|_| io::Error::other("the spill file's lock is poisoned"))?;
        match guard.as_ref() {
            Some((file, _)) => file.read_at(buf, offset),
            None => Ok(0),
        }
    }
}

#[derive(Debug)]
enum Data {
    /// Read into memory.
    Memory(Vec<u8>),
    /// A range of a tar already in memory (the image just built): no copy.
    Shared { buffer: Arc<Vec<u8>>, start: usize },
    /// A range of the spill file.
    Spilled { spill: Arc<Spill>, offset: u64 },
}

/// The kept contents of a file, and their sha256.
#[derive(Debug)]
pub struct FileContents {
    sha256: [u8; 32],
    len: u64,
    data: Data,
}

impl PartialEq for FileContents {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256 && self.len == other.len
    }
}

impl Eq for FileContents {}

impl FileContents {
    /// Contents held in memory (hashed here).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            sha256: Sha256::digest(&bytes).into(),
            len: bytes.len() as u64,
            data: Data::Memory(bytes),
        }
    }

    /// `len` bytes of `buffer` from `start`, which must be in range; hashed
    /// here, not copied.
    pub(crate) fn shared(buffer: Arc<Vec<u8>>, start: usize, len: usize) -> Option<Self> {
        let bytes = buffer.get(start..start.checked_add(len)?)?;
        Some(Self {
            sha256: Sha256::digest(bytes).into(),
            len: len as u64,
            data: Data::Shared { buffer, start },
        })
    }

    /// Reads `source` to its end into memory, hashing it.
    pub(crate) fn read_to_memory(source: &mut dyn Read, capacity: usize) -> io::Result<Self> {
        let mut bytes = Vec::with_capacity(capacity);
        source.read_to_end(&mut bytes)?;
        Ok(Self::from_bytes(bytes))
    }

    /// Streams `source` (at most `limit` bytes) into the spill file.
    pub(crate) fn spill(spill: &Arc<Spill>, source: &mut dyn Read, limit: u64) -> io::Result<Self> {
        let (offset, len, sha256) = spill.append(source, limit)?;
        Ok(Self {
            sha256,
            len,
            data: Data::Spilled {
                spill: Arc::clone(spill),
                offset,
            },
        })
    }

    /// sha256 of the contents, lowercase hex.
    pub fn sha256(&self) -> String {
        hex::encode(self.sha256)
    }

    /// The raw sha256.
    pub fn sha256_bytes(&self) -> [u8; 32] {
        self.sha256
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, when they are in memory (not spilled to disk).
    pub fn in_memory(&self) -> Option<&[u8]> {
        match &self.data {
            Data::Memory(bytes) => Some(bytes),
            Data::Shared { buffer, start } => {
                let len = usize::try_from(self.len).ok()?;
                buffer.get(*start..start.checked_add(len)?)
            }
            Data::Spilled { .. } => None,
        }
    }

    /// A reader over the contents (`Read + Seek`), wherever they are.
    pub fn reader(&self) -> ContentsReader<'_> {
        ContentsReader {
            contents: self,
            position: 0,
        }
    }

    /// Reads the ELF facts: from memory, or through a read cache over the
    /// spill file that fetches only the headers and small segments.
    pub fn inspect_elf(&self) -> Result<ElfInfo, ElfError> {
        match self.in_memory() {
            Some(bytes) => elf::inspect(bytes),
            None => elf::inspect_reader(self.reader()),
        }
    }

    /// Copies the contents to `out`.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<u64> {
        io::copy(&mut self.reader(), out)
    }
}

/// A `Read + Seek` view of [`FileContents`].
pub struct ContentsReader<'a> {
    contents: &'a FileContents,
    position: u64,
}

impl Read for ContentsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.contents.len.saturating_sub(self.position);
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let read = match (&self.contents.data, self.contents.in_memory()) {
            (_, Some(bytes)) => {
                let start = usize::try_from(self.position).map_err(io::Error::other)?;
                buf[..want].copy_from_slice(&bytes[start..start + want]);
                want
            }
            (Data::Spilled { spill, offset }, None) => {
                spill.read_at(&mut buf[..want], offset + self.position)?
            }
            _ => 0,
        };
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for ContentsReader<'_> {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        let target = match position {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.contents.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.position = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_contents_read_back_and_hash_like_memory() {
        let spill = Arc::new(Spill::default());
        let bytes: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
        let first = FileContents::spill(&spill, &mut &b"first"[..], 100).unwrap();
        let spilled = FileContents::spill(&spill, &mut &bytes[..], u64::MAX).unwrap();
        let memory = FileContents::from_bytes(bytes.clone());
        assert_eq!(spilled, memory);
        assert_eq!(spilled.sha256(), hex::encode(Sha256::digest(&bytes)));
        assert!(spilled.in_memory().is_none());
        let mut back = Vec::new();
        spilled.write_to(&mut back).unwrap();
        assert_eq!(back, bytes);
        let mut reader = spilled.reader();
        reader.seek(SeekFrom::Start(299_990)).unwrap();
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &bytes[299_990..]);
        let mut head = Vec::new();
        first.reader().read_to_end(&mut head).unwrap();
        assert_eq!(head, b"first");
    }

    #[test]
    fn an_elf_is_inspected_the_same_from_memory_and_from_the_spill() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let spill = Arc::new(Spill::default());
        let spilled = FileContents::spill(&spill, &mut &exe[..], u64::MAX).unwrap();
        let shared = FileContents::shared(Arc::new(exe.clone()), 0, exe.len()).unwrap();
        assert_eq!(
            spilled.inspect_elf().unwrap(),
            shared.inspect_elf().unwrap()
        );
    }
}
