//! The static-ELF rules every supervisor binary must meet.
//!
//! The binary runs on top of whatever libc the agent image has, or none, so
//! it must carry no program interpreter and need no shared library. A
//! static-PIE (`ET_DYN` without `PT_INTERP`) is accepted whatever its
//! `DF_1` flags say: the kernel loads an `ET_DYN` with no interpreter at a
//! base of its choosing and jumps to its entry, never reading `DT_FLAGS_1`.
//! The checks of Linux's loader (`load_elf_binary` and `load_elf_phdrs` in
//! `fs/binfmt_elf.c`) are applied too, so a file `execve` refuses is refused
//! here: the program header table's entry size and total size, `p_filesz`
//! not above `p_memsz`, file offsets congruent to addresses modulo the page
//! size (else `mmap` fails), and at least one `PT_LOAD`.
//! Parsing is done by the `object` crate; this module only applies the rules.
//! A file can be inspected from memory ([`inspect`]) or from a reader
//! ([`inspect_reader`]), which reads only the headers and the small segments
//! the rules look at, so a binary of hundreds of MiB need not be in memory.

use std::fmt;
use std::io::{Read, Seek};

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, ReadRef};

use crate::platform::Architecture;

/// Largest `PT_INTERP` segment read: a path, at most `PATH_MAX` bytes.
const MAX_INTERPRETER_SIZE: u64 = 4096;

/// Largest `PT_DYNAMIC` segment read. Real ones hold a few dozen 16-byte
/// entries; a larger one is a hostile file asking the reader to buffer it.
const MAX_DYNAMIC_SIZE: u64 = 1024 * 1024;

/// Longest `DT_NEEDED` name read (`NAME_MAX` is 255).
const MAX_LIBRARY_NAME: u64 = 4096;

/// Largest program header table Linux loads: `load_elf_phdrs` in
/// `fs/binfmt_elf.c` refuses `e_phnum * sizeof(struct elf_phdr)` over 64 KiB
/// (1,170 entries in a 64-bit file, 2,048 in a 32-bit one).
pub const MAX_PROGRAM_HEADER_BYTES: u64 = 65536;

/// The smallest page size of the architectures OCI names: a `PT_LOAD`
/// whose offset and address disagree modulo it cannot be mapped.
const PAGE_SIZE: u64 = 4096;

/// Why bytes could not be read as an ELF file at all.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The bytes do not start with the ELF magic.
    #[error("not an ELF file (expected the magic bytes 7f 45 4c 46 at offset 0)")]
    NotElf,
    /// The headers are truncated or inconsistent.
    #[error("malformed ELF file: {0}")]
    Malformed(String),
}

impl From<object::read::Error> for ElfError {
    fn from(err: object::read::Error) -> Self {
        ElfError::Malformed(err.to_string())
    }
}

/// ELF object file type, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: a fixed-address executable.
    Executable,
    /// `ET_DYN`: a position-independent executable or a shared library.
    PositionIndependent,
    /// Anything else (`ET_REL`, `ET_CORE`, ...), with its `e_type`.
    Other(u16),
}

/// One `PT_LOAD` segment whose bytes lie beyond the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedSegment {
    /// Index of the program header.
    pub index: usize,
    /// `p_offset` of the segment.
    pub offset: u64,
    /// `p_filesz` of the segment.
    pub file_size: u64,
    /// Length of the file in bytes.
    pub file_len: u64,
}

/// What the rules need to know about an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// 32 or 64.
    pub class_bits: u8,
    /// Whether the file is little-endian.
    pub little_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// Object file type.
    pub kind: ElfKind,
    /// The `PT_INTERP` path, if there is one.
    pub interpreter: Option<String>,
    /// Libraries named by `DT_NEEDED` entries.
    pub needed: Vec<String>,
    /// Whether `DT_FLAGS_1` carries `DF_1_PIE`.
    pub pie_flag: bool,
    /// `PT_LOAD` segments that extend past the end of the file.
    pub truncated_segments: Vec<TruncatedSegment>,
    /// Length of the file in bytes.
    pub file_len: u64,
    /// What Linux's ELF loader refuses in this file, beyond the static
    /// rules (see the module documentation).
    pub loader_refusals: Vec<String>,
}

/// One way an ELF file fails to be a complete static executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticViolation {
    /// It is not an executable at all (relocatable, core, ...).
    NotExecutable(u16),
    /// It names a program interpreter, so it is dynamically linked.
    Interpreter(String),
    /// It needs shared libraries.
    NeededLibraries(Vec<String>),
    /// A loadable segment lies (partly) beyond the end of the file.
    TruncatedSegment(TruncatedSegment),
    /// Linux's ELF loader refuses the file (`execve` fails), and why.
    KernelRefuses(String),
}

impl fmt::Display for StaticViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotExecutable(e_type) => write!(
                f,
                "ELF type {e_type} is not an executable (expected ET_EXEC, or ET_DYN without an interpreter)"
            ),
            Self::Interpreter(path) => write!(
                f,
                "dynamically linked: PT_INTERP names {path} (expected no interpreter: the binary must be static)"
            ),
            Self::NeededLibraries(libs) => write!(
                f,
                "dynamically linked: DT_NEEDED names {} (expected no shared libraries)",
                libs.join(", ")
            ),
            Self::TruncatedSegment(seg) => write!(
                f,
                "truncated: PT_LOAD segment {} spans bytes {}..{} but the file has only {} bytes",
                seg.index,
                seg.offset,
                seg.offset.saturating_add(seg.file_size),
                seg.file_len
            ),
            Self::KernelRefuses(reason) => {
                write!(f, "Linux's ELF loader refuses it (execve fails): {reason}")
            }
        }
    }
}

impl ElfInfo {
    /// Every way this file breaks the static-executable rules; empty when it
    /// meets them all.
    pub fn static_violations(&self) -> Vec<StaticViolation> {
        let mut violations = Vec::new();
        if let ElfKind::Other(e_type) = self.kind {
            violations.push(StaticViolation::NotExecutable(e_type));
        }
        if let Some(interp) = &self.interpreter {
            violations.push(StaticViolation::Interpreter(interp.clone()));
        }
        if !self.needed.is_empty() {
            violations.push(StaticViolation::NeededLibraries(self.needed.clone()));
        }
        violations.extend(
            self.truncated_segments
                .iter()
                .cloned()
                .map(StaticViolation::TruncatedSegment),
        );
        violations.extend(
            self.loader_refusals
                .iter()
                .cloned()
                .map(StaticViolation::KernelRefuses),
        );
        violations
    }

    /// Whether the file is a complete static executable.
    pub fn is_static(&self) -> bool {
        self.static_violations().is_empty()
    }

    /// The OCI / Go architecture name of `e_machine` (`amd64`, `arm64`, ...),
    /// or `None` for machines no OCI platform names.
    pub fn oci_architecture(&self) -> Option<&'static str> {
        oci_architecture(self.machine, self.class_bits, self.little_endian)
    }
}

/// The OCI / Go architecture name of an ELF machine ([`crate::platform`]'s
/// table).
pub fn oci_architecture(machine: u16, class_bits: u8, little_endian: bool) -> Option<&'static str> {
    Architecture::by_elf(machine, class_bits, little_endian).map(|row| row.oci)
}

/// The ELF machine number that an OCI architecture name stands for
/// ([`crate::platform`]'s table).
pub fn machine_for_oci_architecture(architecture: &str) -> Option<u16> {
    Architecture::by_oci(architecture).map(|row| row.elf_machine)
}

/// Reads the facts the rules need from an ELF file's bytes.
pub fn inspect(data: &[u8]) -> Result<ElfInfo, ElfError> {
    inspect_ref(data)
}

/// Reads the facts the rules need from an ELF file behind a reader (a
/// `File`, say), reading only its headers and the `PT_INTERP` and
/// `PT_DYNAMIC` segments: memory stays bounded whatever the file's size.
pub fn inspect_reader<R: Read + Seek>(reader: R) -> Result<ElfInfo, ElfError> {
    let cache = object::ReadCache::new(reader);
    inspect_ref(&cache)
}

/// Reads the facts the rules need through any [`ReadRef`]: a byte slice, or
/// an `object::ReadCache` over a file.
pub fn inspect_ref<'data, R: ReadRef<'data>>(data: R) -> Result<ElfInfo, ElfError> {
    // e_ident: 4 magic bytes, then the class byte.
    const CLASS_OFFSET: usize = 4;
    let ident = data
        .read_bytes_at(0, CLASS_OFFSET as u64 + 1)
        .map_err(|()| ElfError::NotElf)?;
    if ident[..4] != elf::ELFMAG {
        return Err(ElfError::NotElf);
    }
    match elf::FileClass(ident[CLASS_OFFSET]) {
        elf::ELFCLASS64 => inspect_class::<elf::FileHeader64<Endianness>, R>(data, 64),
        elf::ELFCLASS32 => inspect_class::<elf::FileHeader32<Endianness>, R>(data, 32),
        elf::FileClass(other) => Err(ElfError::Malformed(format!(
            "unknown ELF class {other} (expected 1 for 32-bit or 2 for 64-bit)"
        ))),
    }
}

/// Refuses a segment larger than `max` before it is read.
fn check_segment_size<P: ProgramHeader<Endian = Endianness>>(
    segment: &P,
    endian: Endianness,
    name: &str,
    max: u64,
) -> Result<(), ElfError> {
    let size: u64 = segment.p_filesz(endian).into();
    if size > max {
        return Err(ElfError::Malformed(format!(
            "its {name} segment is {size} bytes, expected at most {max}"
        )));
    }
    Ok(())
}

fn inspect_class<'data, Elf, R>(data: R, class_bits: u8) -> Result<ElfInfo, ElfError>
where
    Elf: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    let header = Elf::parse(data)?;
    let endian = header.endian()?;
    let e_type = header.e_type(endian);
    let kind = match e_type {
        elf::ET_EXEC => ElfKind::Executable,
        elf::ET_DYN => ElfKind::PositionIndependent,
        elf::FileType(other) => ElfKind::Other(other),
    };
    let file_len = data
        .len()
        .map_err(|()| ElfError::Malformed("its length cannot be read".into()))?;
    let mut loader_refusals = Vec::new();
    // load_elf_phdrs: the entry size must be the kernel's own, and the
    // table at most 64 KiB (the raw e_phnum: the kernel knows no PN_XNUM).
    let phentsize = u64::from(header.e_phentsize(endian));
    let phnum = u64::from(header.e_phnum(endian));
    let entry_size = std::mem::size_of::<Elf::ProgramHeader>() as u64;
    if phentsize != entry_size {
        return Err(ElfError::Malformed(format!(
            "e_phentsize is {phentsize}, expected {entry_size} (Linux's ELF loader refuses other sizes)"
        )));
    }
    let table = phnum * entry_size;
    if table == 0 || table > MAX_PROGRAM_HEADER_BYTES {
        loader_refusals.push(format!(
            "{phnum} program headers ({table} bytes), expected 1 to {} ({MAX_PROGRAM_HEADER_BYTES} bytes)",
            MAX_PROGRAM_HEADER_BYTES / entry_size
        ));
        // Not read further: a table this size is not what the kernel loads.
        return Ok(ElfInfo {
            class_bits,
            little_endian: endian == Endianness::Little,
            machine: header.e_machine(endian).0,
            kind,
            interpreter: None,
            needed: Vec::new(),
            pie_flag: false,
            truncated_segments: Vec::new(),
            file_len,
            loader_refusals,
        });
    }
    let segments = header.program_headers(endian, data)?;

    let mut interpreter = None;
    let mut truncated_segments = Vec::new();
    let mut dynamic = None;
    let mut loads = 0usize;
    for (index, segment) in segments.iter().enumerate() {
        match segment.p_type(endian) {
            elf::PT_INTERP => {
                check_segment_size(segment, endian, "PT_INTERP", MAX_INTERPRETER_SIZE)?;
                let path = segment.interpreter(endian, data)?.unwrap_or_default();
                interpreter = Some(String::from_utf8_lossy(path).into_owned());
            }
            elf::PT_DYNAMIC => {
                check_segment_size(segment, endian, "PT_DYNAMIC", MAX_DYNAMIC_SIZE)?;
                dynamic = segment.dynamic(endian, data)?;
            }
            elf::PT_LOAD => {
                let offset: u64 = segment.p_offset(endian).into();
                let file_size: u64 = segment.p_filesz(endian).into();
                let memory_size: u64 = segment.p_memsz(endian).into();
                let vaddr: u64 = segment.p_vaddr(endian).into();
                loads += 1;
                if file_size > memory_size {
                    loader_refusals.push(format!(
                        "PT_LOAD segment {index} has p_filesz {file_size} above its p_memsz {memory_size}"
                    ));
                }
                if offset % PAGE_SIZE != vaddr % PAGE_SIZE {
                    loader_refusals.push(format!(
                        "PT_LOAD segment {index} has offset {offset:#x} and address {vaddr:#x}, which differ modulo the {PAGE_SIZE}-byte page, so it cannot be mapped"
                    ));
                }
                if offset
                    .checked_add(file_size)
                    .is_none_or(|end| end > file_len)
                {
                    truncated_segments.push(TruncatedSegment {
                        index,
                        offset,
                        file_size,
                        file_len,
                    });
                }
            }
            _ => {}
        }
    }

    if loads == 0 {
        loader_refusals.push("no PT_LOAD segment, so nothing would be mapped".into());
    }

    let mut needed = Vec::new();
    let mut pie_flag = false;
    if let Some(entries) = dynamic {
        let mut strtab_vaddr = None;
        let mut needed_offsets = Vec::new();
        for entry in entries {
            let value: u64 = entry.d_val(endian).into();
            match entry.d_tag(endian) {
                elf::DT_NEEDED => needed_offsets.push(value),
                elf::DT_STRTAB => strtab_vaddr = Some(value),
                elf::DT_FLAGS_1 => pie_flag = value & elf::DF_1_PIE.0 != 0,
                elf::DT_NULL => break,
                _ => {}
            }
        }
        let strtab_offset = strtab_vaddr.and_then(|vaddr| file_offset(segments, endian, vaddr));
        for name_offset in needed_offsets {
            let name = strtab_offset
                .and_then(|base| base.checked_add(name_offset))
                .and_then(|start| c_string_at(data, start, file_len))
                .unwrap_or_else(|| format!("<unreadable name at string offset {name_offset}>"));
            needed.push(name);
        }
    }

    Ok(ElfInfo {
        class_bits,
        little_endian: endian == Endianness::Little,
        machine: header.e_machine(endian).0,
        kind,
        interpreter,
        needed,
        pie_flag,
        truncated_segments,
        file_len,
        loader_refusals,
    })
}

/// Maps a virtual address to a file offset through the `PT_LOAD` segments;
/// `DT_STRTAB` holds an address, and section headers may be stripped.
fn file_offset<P: ProgramHeader<Endian = Endianness>>(
    segments: &[P],
    endian: Endianness,
    vaddr: u64,
) -> Option<u64> {
    segments
        .iter()
        .filter(|segment| segment.p_type(endian) == elf::PT_LOAD)
        .find_map(|segment| {
            let start: u64 = segment.p_vaddr(endian).into();
            let size: u64 = segment.p_filesz(endian).into();
            let offset: u64 = segment.p_offset(endian).into();
            (vaddr >= start && vaddr - start < size).then(|| offset + (vaddr - start))
        })
}

fn c_string_at<'data, R: ReadRef<'data>>(data: R, start: u64, file_len: u64) -> Option<String> {
    let end = start.saturating_add(MAX_LIBRARY_NAME).min(file_len);
    let bytes = data.read_bytes_at_until(start..end, 0).ok()?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_bytes() {
        assert!(matches!(
            inspect(b"#!/bin/sh\necho hi\n"),
            Err(ElfError::NotElf)
        ));
        assert!(matches!(inspect(b""), Err(ElfError::NotElf)));
    }

    #[test]
    fn the_test_runner_itself_is_parsed() {
        // The test executable is a real ELF file of the host's architecture.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = inspect(&exe).unwrap();
        assert_eq!(info.class_bits, 64);
        assert!(info.oci_architecture().is_some());
        assert!(info.truncated_segments.is_empty());
        // Test binaries are linked dynamically against glibc on the gnu target.
        if cfg!(all(target_env = "gnu", not(target_feature = "crt-static"))) {
            assert!(info.interpreter.is_some());
            assert!(info.needed.iter().any(|lib| lib.starts_with("libc.so")));
            assert!(!info.is_static());
        }
    }

    #[test]
    fn a_reader_gives_the_same_facts_as_the_bytes() {
        let path = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let from_reader = inspect_reader(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(from_reader, inspect(&bytes).unwrap());
        assert!(matches!(
            inspect_reader(std::io::Cursor::new(b"#!/bin/sh\n")),
            Err(ElfError::NotElf)
        ));
        assert!(matches!(
            inspect_reader(std::io::Cursor::new(b"\x7fEL")),
            Err(ElfError::NotElf)
        ));
    }

    #[test]
    fn an_oversized_dynamic_segment_is_refused_before_it_is_read() {
        let mut exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let header = elf::FileHeader64::<Endianness>::parse(&*exe).unwrap();
        let endian = header.endian().unwrap();
        let phoff = usize::try_from(header.e_phoff(endian)).unwrap();
        let phentsize = usize::from(header.e_phentsize(endian));
        let index = header
            .program_headers(endian, &*exe)
            .unwrap()
            .iter()
            .position(|segment| segment.p_type(endian) == elf::PT_DYNAMIC);
        let Some(index) = index else {
            // A static test runner has no PT_DYNAMIC to enlarge.
            return;
        };
        // p_filesz sits at offset 32 of an Elf64_Phdr.
        let at = phoff + index * phentsize + 32;
        exe[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let err = inspect_reader(std::io::Cursor::new(exe)).unwrap_err();
        assert!(
            err.to_string()
                .contains("PT_DYNAMIC segment is 1099511627776 bytes"),
            "{err}"
        );
    }

    #[test]
    fn truncation_is_reported() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // Cut the file one byte short of the end of its last loadable segment.
        let header = elf::FileHeader64::<Endianness>::parse(&*exe).unwrap();
        let endian = header.endian().unwrap();
        let load_end = header
            .program_headers(endian, &*exe)
            .unwrap()
            .iter()
            .filter(|segment| segment.p_type(endian) == elf::PT_LOAD)
            .map(|segment| segment.p_offset(endian) + segment.p_filesz(endian))
            .max()
            .unwrap();
        let cut = &exe[..usize::try_from(load_end).unwrap() - 1];
        let violations = inspect(cut).unwrap().static_violations();
        let truncated: Vec<_> = violations
            .iter()
            .filter(|v| matches!(v, StaticViolation::TruncatedSegment(_)))
            .collect();
        assert_eq!(truncated.len(), 1, "{violations:?}");
        assert!(truncated[0].to_string().contains("truncated"));
    }

    /// A minimal x86-64 ELF: the header, `phnum` program headers (the first
    /// a `PT_LOAD` of the whole file, the rest `PT_NULL`), then code bytes.
    fn tiny_elf(e_type: elf::FileType, phnum: u16, load_offset: u64) -> Vec<u8> {
        let phoff = 64u64;
        let mut file = vec![0u8; 64];
        file[..4].copy_from_slice(&elf::ELFMAG);
        file[4] = 2; // ELFCLASS64
        file[5] = 1; // little-endian
        file[6] = 1; // EV_CURRENT
        file[16..18].copy_from_slice(&e_type.0.to_le_bytes());
        file[18..20].copy_from_slice(&elf::EM_X86_64.0.to_le_bytes());
        file[20..24].copy_from_slice(&1u32.to_le_bytes());
        file[24..32].copy_from_slice(&0x40_1000u64.to_le_bytes());
        file[32..40].copy_from_slice(&phoff.to_le_bytes());
        file[52..54].copy_from_slice(&64u16.to_le_bytes());
        file[54..56].copy_from_slice(&56u16.to_le_bytes());
        file[56..58].copy_from_slice(&phnum.to_le_bytes());
        let total = 64 + 56 * u64::from(phnum) + 16;
        for index in 0..phnum {
            let mut phdr = [0u8; 56];
            if index == 0 {
                phdr[..4].copy_from_slice(&elf::PT_LOAD.0.to_le_bytes());
                phdr[4..8].copy_from_slice(&5u32.to_le_bytes());
                phdr[8..16].copy_from_slice(&load_offset.to_le_bytes());
                phdr[16..24].copy_from_slice(&0x40_0000u64.to_le_bytes());
                phdr[32..40].copy_from_slice(&(total - load_offset).to_le_bytes());
                phdr[40..48].copy_from_slice(&(total - load_offset).to_le_bytes());
            }
            file.extend_from_slice(&phdr);
        }
        file.extend_from_slice(&[0xcc; 16]);
        file
    }

    #[test]
    fn a_static_pie_without_the_pie_flag_is_accepted() {
        // ET_DYN, no PT_INTERP, no PT_DYNAMIC at all (so no DF_1_PIE): the
        // kernel runs it.
        let info = inspect(&tiny_elf(elf::ET_DYN, 1, 0)).unwrap();
        assert!(!info.pie_flag);
        assert_eq!(info.static_violations(), []);
        assert_eq!(
            inspect(&tiny_elf(elf::ET_EXEC, 3, 0))
                .unwrap()
                .static_violations(),
            []
        );
    }

    #[test]
    fn more_program_headers_than_the_kernel_loads_are_refused() {
        // 1,170 entries of 56 bytes fit in 64 KiB; 1,171 and 1,200 do not.
        assert!(
            inspect(&tiny_elf(elf::ET_EXEC, 1170, 0))
                .unwrap()
                .is_static()
        );
        for phnum in [1171, 1200] {
            let violations = inspect(&tiny_elf(elf::ET_EXEC, phnum, 0))
                .unwrap()
                .static_violations();
            assert_eq!(violations.len(), 1, "{violations:?}");
            let message = violations[0].to_string();
            assert!(message.contains("execve fails"), "{message}");
            assert!(
                message.contains(&format!("{phnum} program headers")),
                "{message}"
            );
        }
    }

    #[test]
    fn other_loader_checks_refuse_what_execve_refuses() {
        // No program header at all.
        let none = inspect(&tiny_elf(elf::ET_EXEC, 0, 0)).unwrap();
        assert!(
            none.static_violations()[0]
                .to_string()
                .contains("0 program headers")
        );
        // No PT_LOAD.
        let mut no_load = tiny_elf(elf::ET_EXEC, 1, 0);
        no_load[64..68].copy_from_slice(&elf::PT_NOTE.0.to_le_bytes());
        let message = inspect(&no_load).unwrap().static_violations()[0].to_string();
        assert!(message.contains("no PT_LOAD"), "{message}");
        // An offset that disagrees with the address modulo the page.
        let message = inspect(&tiny_elf(elf::ET_EXEC, 1, 8))
            .unwrap()
            .static_violations()[0]
            .to_string();
        assert!(message.contains("cannot be mapped"), "{message}");
        // p_filesz above p_memsz.
        let mut bss = tiny_elf(elf::ET_EXEC, 1, 0);
        bss[64 + 40..64 + 48].copy_from_slice(&1u64.to_le_bytes());
        let message = inspect(&bss).unwrap().static_violations()[0].to_string();
        assert!(message.contains("above its p_memsz"), "{message}");
        // A program header entry size other than the kernel's.
        let mut odd = tiny_elf(elf::ET_EXEC, 1, 0);
        odd[54..56].copy_from_slice(&64u16.to_le_bytes());
        assert!(
            inspect(&odd)
                .unwrap_err()
                .to_string()
                .contains("e_phentsize")
        );
    }

    #[test]
    fn architecture_names_round_trip() {
        for arch in ["amd64", "arm64", "386", "arm", "riscv64", "s390x"] {
            let machine = machine_for_oci_architecture(arch).unwrap();
            let bits = if matches!(arch, "386" | "arm") {
                32
            } else {
                64
            };
            assert_eq!(oci_architecture(machine, bits, true), Some(arch));
        }
        assert_eq!(machine_for_oci_architecture("sparc"), None);
    }
}
