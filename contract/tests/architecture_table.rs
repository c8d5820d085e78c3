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
    let mut out = Vec::new();
    let mut put = |bytes: &[u8]| out.extend_from_slice(bytes);
    let half = |value: u16| {
        if little_endian {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        }
    };
    let word = |value: u32| {
        if little_endian {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        }
    };
    let long = |value: u64| {
        if little_endian {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        }
    };
    let wide = class_bits == 64;
    let mut ident = [0u8; 16];
    ident[..4].copy_from_slice(b"\x7fELF");
    ident[4] = if wide { 2 } else { 1 };
    ident[5] = if little_endian { 1 } else { 2 };
    ident[6] = 1;
    put(&ident);
    put(&half(2)); // ET_EXEC
    put(&half(machine));
    put(&word(1));
    let entry = BASE + PAGE - 16;
    if wide {
        put(&long(entry));
        put(&long(64)); // e_phoff
        put(&long(0)); // e_shoff
        put(&word(0)); // e_flags
        put(&half(64));
        put(&half(56));
        put(&half(1));
        put(&half(64));
        put(&half(0));
        put(&half(0));
        put(&word(1)); // PT_LOAD
        put(&word(5)); // R+X
        put(&long(0));
        put(&long(BASE));
        put(&long(BASE));
        put(&long(PAGE));
        put(&long(PAGE));
        put(&long(PAGE));
    } else {
        put(&word(entry as u32));
        put(&word(52));
        put(&word(0));
        put(&word(0));
        put(&half(52));
        put(&half(32));
        put(&half(1));
        put(&half(40));
        put(&half(0));
        put(&half(0));
        put(&word(1));
        put(&word(0));
        put(&word(BASE as u32));
        put(&word(BASE as u32));
        put(&word(PAGE as u32));
        put(&word(PAGE as u32));
        put(&word(5));
        put(&word(PAGE as u32));
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
