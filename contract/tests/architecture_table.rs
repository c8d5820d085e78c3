//! The architecture table against the programs whose names it records:
//! rustc says what each Rust target's `target_arch`, byte order and pointer
//! width are, and qemu-user (Debian's qemu-user-static) says which ELF
//! machine, class and byte order each of its emulators loads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use openshell_contract::platform::{ARCHITECTURES, Architecture};
use openshell_testsupport::podman::run;
use openshell_testsupport::require;

/// `rustc --print cfg --target TARGET` as `key="value"` lines.
fn rustc_cfg(target: &str) -> Vec<String> {
    let mut command = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    command.args(["--print", "cfg", "--target", target]);
    let output = run(command);
    assert!(
        output.status.success(),
        "rustc does not know the target {target}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn rustc_agrees_with_every_rows_targets() {
    let mut checked = 0;
    for row in ARCHITECTURES {
        let targets = [row.musl_target, row.gnu_target]
            .into_iter()
            .chain(row.musl_variant_targets.iter().map(|(_, target)| *target));
        for target in targets {
            let cfg = rustc_cfg(target);
            let endian = if row.little_endian { "little" } else { "big" };
            for expected in [
                format!("target_arch=\"{}\"", row.rust_arch),
                format!("target_endian=\"{endian}\""),
                format!("target_pointer_width=\"{}\"", row.elf_class_bits),
                "target_os=\"linux\"".to_string(),
            ] {
                assert!(
                    cfg.contains(&expected),
                    "{} ({target}): rustc has no {expected} in {cfg:?}",
                    row.oci
                );
            }
            let env = if target.contains("-musl") {
                "musl"
            } else {
                "gnu"
            };
            assert!(
                cfg.contains(&format!("target_env=\"{env}\"")),
                "{target}: {cfg:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, ARCHITECTURES.len() * 2 + 1);
}

/// A minimal executable ELF of this machine, class and byte order: its
/// header and one `PT_LOAD` of
/// one zero-filled page, entered at the page's end (whatever the
/// emulator then does, it has accepted the machine).
fn tiny_elf(machine: u16, class_bits: u8, little_endian: bool) -> Vec<u8> {
    const PAGE: u64 = 4096;
    const BASE: u64 = 0x40_0000;
    const ET_EXEC: u16 = 2;
    const PT_LOAD: u32 = 1;
    const PF_R_X: u32 = 5;
    /// A header field: 2 bytes, 4 bytes, or an address (4 or 8 by class).
    enum Field {
        Half(u16),
        Word(u32),
        Addr(u64),
    }
    use Field::{Addr, Half, Word};
    let wide = class_bits == 64;
    let (ehsize, phentsize, shentsize) = if wide { (64, 56, 64) } else { (52, 32, 40) };
    let mut fields = vec![
        Half(ET_EXEC),
        Half(machine),
        Word(1),                 // e_version
        Addr(BASE + PAGE - 16),  // e_entry
        Addr(u64::from(ehsize)), // e_phoff: right after the header
        Addr(0),                 // e_shoff
        Word(0),                 // e_flags
        Half(ehsize),
        Half(phentsize),
        Half(1), // e_phnum
        Half(shentsize),
        Half(0), // e_shnum
        Half(0), // e_shstrndx
        Word(PT_LOAD),
    ];
    // p_flags comes second in a 64-bit program header, seventh in a 32-bit
    // one; between them, offset, vaddr, paddr, filesz and memsz.
    if wide {
        fields.push(Word(PF_R_X));
    }
    fields.extend([Addr(0), Addr(BASE), Addr(BASE), Addr(PAGE), Addr(PAGE)]);
    if !wide {
        fields.push(Word(PF_R_X));
    }
    fields.push(Addr(PAGE)); // p_align
    let mut out = vec![
        0x7f,
        b'E',
        b'L',
        b'F',
        if wide { 2 } else { 1 },
        if little_endian { 1 } else { 2 },
        1, // EV_CURRENT
    ];
    out.resize(16, 0);
    for field in fields {
        let (value, size) = match field {
            Half(value) => (u64::from(value), 2),
            Word(value) => (u64::from(value), 4),
            Addr(value) => (value, if wide { 8 } else { 4 }),
        };
        if little_endian {
            out.extend_from_slice(&value.to_le_bytes()[..size]);
        } else {
            out.extend_from_slice(&value.to_be_bytes()[8 - size..]);
        }
    }
    out.resize(PAGE as usize, 0);
    out
}

/// Whether qemu-user's `qemu-NAME-static` loads the file at `path` (it
/// refuses another machine, class or byte order in these words).
fn qemu_loads(name: &str, dir: &Path, path: &Path) -> bool {
    let mut command = Command::new(format!("qemu-{name}-static"));
    // In the test's own folder: a crash of the loaded program may leave a
    // core file there.
    command.arg(path).current_dir(dir);
    let output = run(command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    !stderr.contains("Invalid ELF image for this architecture")
}

#[test]
fn qemu_user_loads_each_rows_elf_and_refuses_the_next_rows() {
    let emulators: Vec<String> = ARCHITECTURES
        .iter()
        .map(|row| format!("qemu-{}-static", row.qemu))
        .collect();
    let names: Vec<&str> = emulators.iter().map(String::as_str).collect();
    if !require(
        "qemu_user_loads_each_rows_elf_and_refuses_the_next_rows",
        &names,
        "apt-get install qemu-user-static",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = |row: &Architecture| {
        let path = dir.path().join(row.oci);
        std::fs::write(
            &path,
            tiny_elf(row.elf_machine, row.elf_class_bits, row.little_endian),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        path
    };
    for (i, row) in ARCHITECTURES.iter().enumerate() {
        assert!(
            qemu_loads(row.qemu, dir.path(), &file(row)),
            "qemu-{}-static refuses an ELF of {}'s machine {}, {}-bit, {}",
            row.qemu,
            row.oci,
            row.elf_machine,
            row.elf_class_bits,
            if row.little_endian { "LE" } else { "BE" }
        );
        let next = &ARCHITECTURES[(i + 1) % ARCHITECTURES.len()];
        assert!(
            !qemu_loads(row.qemu, dir.path(), &file(next)),
            "qemu-{}-static loads an ELF of {} too",
            row.qemu,
            next.oci
        );
    }
}
