//! Platforms (`os/architecture[/variant]`) and the one table of the
//! architectures the tools know: how the OCI image spec, Rust, the ELF
//! header and qemu-user each name the same machine.
//!
//! Every mapping between these names (an ELF binary's architecture, the
//! host's, the qemu-user emulator of a foreign binary, the Rust target a
//! platform's supervisor is built for or its SBOM lists the crates of) is a
//! lookup in [`ARCHITECTURES`], so a new architecture is one row.

use std::fmt;
use std::str::FromStr;

use object::elf;

use crate::paths::{ARM64_STATIC_TARGET, DEFAULT_PLATFORMS, DEFAULT_STATIC_TARGET};

/// One machine architecture, as each tool names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Architecture {
    /// The OCI / Go name (`GOARCH`): `amd64`, `arm64`, ...
    pub oci: &'static str,
    /// The variant an image may name that means the same as none (`v8` for
    /// `arm64`, the only arm64 variant Rust's targets build for).
    pub default_variant: Option<&'static str>,
    /// Rust's `target_arch` (`std::env::consts::ARCH`): `x86_64`, ...
    pub rust_arch: &'static str,
    /// Byte order (`target_endian`, the ELF header's `EI_DATA`): it alone
    /// tells `ppc64le` from `ppc64` and `mips64le` from `mips64`.
    pub little_endian: bool,
    /// The ELF header's `e_machine`.
    pub elf_machine: u16,
    /// The ELF class, 32 or 64 bits.
    pub elf_class_bits: u8,
    /// The qemu-user name (`qemu-NAME-static`, Debian's qemu-user-static).
    pub qemu: &'static str,
    /// The Rust musl target: links statically.
    pub musl_target: &'static str,
    /// The Rust glibc target of the same machine (static with
    /// `+crt-static`).
    pub gnu_target: &'static str,
    /// Variants whose musl target differs from [`Self::musl_target`].
    pub musl_variant_targets: &'static [(&'static str, &'static str)],
}

/// The architectures the tools know, one row each.
pub const ARCHITECTURES: &[Architecture] = &[
    Architecture {
        oci: "amd64",
        default_variant: None,
        rust_arch: "x86_64",
        little_endian: true,
        elf_machine: elf::EM_X86_64.0,
        elf_class_bits: 64,
        qemu: "x86_64",
        musl_target: DEFAULT_STATIC_TARGET,
        gnu_target: "x86_64-unknown-linux-gnu",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "arm64",
        default_variant: Some("v8"),
        rust_arch: "aarch64",
        little_endian: true,
        elf_machine: elf::EM_AARCH64.0,
        elf_class_bits: 64,
        qemu: "aarch64",
        musl_target: ARM64_STATIC_TARGET,
        gnu_target: "aarch64-unknown-linux-gnu",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "386",
        default_variant: None,
        rust_arch: "x86",
        little_endian: true,
        elf_machine: elf::EM_386.0,
        elf_class_bits: 32,
        qemu: "i386",
        musl_target: "i686-unknown-linux-musl",
        gnu_target: "i686-unknown-linux-gnu",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "arm",
        default_variant: None,
        rust_arch: "arm",
        little_endian: true,
        elf_machine: elf::EM_ARM.0,
        elf_class_bits: 32,
        qemu: "arm",
        musl_target: "arm-unknown-linux-musleabihf",
        gnu_target: "arm-unknown-linux-gnueabihf",
        musl_variant_targets: &[("v7", "armv7-unknown-linux-musleabihf")],
    },
    Architecture {
        oci: "riscv64",
        default_variant: None,
        rust_arch: "riscv64",
        little_endian: true,
        elf_machine: elf::EM_RISCV.0,
        elf_class_bits: 64,
        qemu: "riscv64",
        musl_target: "riscv64gc-unknown-linux-musl",
        gnu_target: "riscv64gc-unknown-linux-gnu",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "ppc64le",
        default_variant: None,
        rust_arch: "powerpc64",
        little_endian: true,
        elf_machine: elf::EM_PPC64.0,
        elf_class_bits: 64,
        qemu: "ppc64le",
        musl_target: "powerpc64le-unknown-linux-musl",
        gnu_target: "powerpc64le-unknown-linux-gnu",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "ppc64",
        default_variant: None,
        rust_arch: "powerpc64",
        little_endian: false,
        elf_machine: elf::EM_PPC64.0,
        elf_class_bits: 64,
        qemu: "ppc64",
        musl_target: "powerpc64-unknown-linux-musl",
        gnu_target: "powerpc64-unknown-linux-gnu",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "s390x",
        default_variant: None,
        rust_arch: "s390x",
        little_endian: false,
        elf_machine: elf::EM_S390.0,
        elf_class_bits: 64,
        qemu: "s390x",
        musl_target: "s390x-unknown-linux-musl",
        gnu_target: "s390x-unknown-linux-gnu",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "loong64",
        default_variant: None,
        rust_arch: "loongarch64",
        little_endian: true,
        elf_machine: elf::EM_LOONGARCH.0,
        elf_class_bits: 64,
        qemu: "loongarch64",
        musl_target: "loongarch64-unknown-linux-musl",
        gnu_target: "loongarch64-unknown-linux-gnu",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "mips64le",
        default_variant: None,
        rust_arch: "mips64",
        little_endian: true,
        elf_machine: elf::EM_MIPS.0,
        elf_class_bits: 64,
        qemu: "mips64el",
        musl_target: "mips64el-unknown-linux-muslabi64",
        gnu_target: "mips64el-unknown-linux-gnuabi64",
        musl_variant_targets: &[],
    },
    Architecture {
        oci: "mips64",
        default_variant: None,
        rust_arch: "mips64",
        little_endian: false,
        elf_machine: elf::EM_MIPS.0,
        elf_class_bits: 64,
        qemu: "mips64",
        musl_target: "mips64-unknown-linux-muslabi64",
        gnu_target: "mips64-unknown-linux-gnuabi64",
        musl_variant_targets: &[],
    },
];

impl Architecture {
    /// The row of an OCI architecture name.
    pub fn by_oci(name: &str) -> Option<&'static Self> {
        ARCHITECTURES.iter().find(|row| row.oci == name)
    }

    /// The row of an ELF header's machine, class and byte order. The byte
    /// order decides only between rows that share machine and class
    /// (`ppc64le`/`ppc64`): a big-endian ARM file is still `arm`.
    pub fn by_elf(machine: u16, class_bits: u8, little_endian: bool) -> Option<&'static Self> {
        let mut rows = ARCHITECTURES
            .iter()
            .filter(|row| row.elf_machine == machine && row.elf_class_bits == class_bits);
        let first = rows.next()?;
        match rows.next() {
            None => Some(first),
            Some(second) => [first, second]
                .into_iter()
                .find(|row| row.little_endian == little_endian),
        }
    }

    /// The row of Rust's `target_arch` and byte order.
    pub fn by_rust_arch(arch: &str, little_endian: bool) -> Option<&'static Self> {
        ARCHITECTURES
            .iter()
            .find(|row| row.rust_arch == arch && row.little_endian == little_endian)
    }

    /// The row of the machine this program was compiled for.
    pub fn host() -> Option<&'static Self> {
        Self::by_rust_arch(std::env::consts::ARCH, cfg!(target_endian = "little"))
    }

    /// The musl target of this architecture with `variant`.
    pub fn musl_target_for(&self, variant: Option<&str>) -> &'static str {
        self.musl_variant_targets
            .iter()
            .find(|(name, _)| Some(*name) == variant)
            .map_or(self.musl_target, |(_, target)| target)
    }
}

/// The OCI architecture name of the machine this program was compiled for;
/// Rust's own name (`std::env::consts::ARCH`) for one the table lacks.
pub fn host_architecture() -> &'static str {
    Architecture::host().map_or(std::env::consts::ARCH, |row| row.oci)
}

/// An image platform, `os/architecture[/variant]` (`linux/arm64/v8`),
/// spelled as OCI and Kubernetes spell them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// Operating system (`GOOS`), e.g. `linux`.
    pub os: String,
    /// Architecture (`GOARCH`), e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8`.
    pub variant: Option<String>,
}

/// A platform string that is not `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid platform {text:?}: {reason} (expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64)"
)]
pub struct PlatformError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Platform {
    /// `linux/ARCH`.
    pub fn linux(architecture: &str) -> Self {
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// The platforms `build-image` builds by default ([`DEFAULT_PLATFORMS`]).
    pub fn defaults() -> Vec<Self> {
        DEFAULT_PLATFORMS
            .iter()
            .filter_map(|text| text.parse().ok())
            .collect()
    }

    /// Parses `os/architecture[/variant]`: two or three parts, each
    /// non-empty and of `a-z`, `0-9` and `_` only, as OCI spells them.
    pub fn parse(text: &str) -> Result<Self, PlatformError> {
        let refuse = |reason: String| PlatformError {
            text: text.into(),
            reason,
        };
        let parts: Vec<&str> = text.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(refuse(format!(
                "it has {} part{} separated by '/'",
                parts.len(),
                if parts.len() == 1 { "" } else { "s" }
            )));
        }
        for (part, name) in parts.iter().zip(["os", "architecture", "variant"]) {
            if part.is_empty() {
                return Err(refuse(format!("the {name} is empty")));
            }
            if let Some(bad) = part
                .chars()
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
            {
                return Err(refuse(format!(
                    "the {name} {part:?} has {bad:?}, not one of a-z, 0-9 and _"
                )));
            }
        }
        Ok(Self {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|variant| (*variant).to_string()),
        })
    }

    /// The table's row for this platform's architecture.
    pub fn arch(&self) -> Option<&'static Architecture> {
        Architecture::by_oci(&self.architecture)
    }

    /// Whether the variant is absent or the one that means the same
    /// (`linux/arm64/v8` is `linux/arm64`).
    pub fn has_default_variant(&self) -> bool {
        match (&self.variant, self.arch()) {
            (None, _) => true,
            (Some(variant), Some(row)) => row.default_variant == Some(variant.as_str()),
            (Some(_), None) => false,
        }
    }

    /// The Rust musl target a Linux platform's binary is built for; `None`
    /// for another OS or an architecture the table lacks.
    pub fn musl_target(&self) -> Option<&'static str> {
        if self.os != "linux" {
            return None;
        }
        self.arch()
            .map(|row| row.musl_target_for(self.variant.as_deref()))
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_maps_back_to_itself() {
        for row in ARCHITECTURES {
            assert_eq!(Architecture::by_oci(row.oci), Some(row), "{}", row.oci);
            assert_eq!(
                Architecture::by_elf(row.elf_machine, row.elf_class_bits, row.little_endian),
                Some(row),
                "{}",
                row.oci
            );
            assert_eq!(
                Architecture::by_rust_arch(row.rust_arch, row.little_endian),
                Some(row),
                "{}",
                row.oci
            );
            // Rust's target triples start with the machine: the musl and
            // gnu targets of a row are of one machine.
            let machine = |target: &str| target.split('-').next().map(str::to_string);
            assert_eq!(
                machine(row.musl_target),
                machine(row.gnu_target),
                "{}",
                row.oci
            );
            assert!(row.musl_target.contains("-linux-musl"), "{}", row.oci);
            assert!(row.gnu_target.contains("-linux-gnu"), "{}", row.oci);
            assert!(matches!(row.elf_class_bits, 32 | 64), "{}", row.oci);
        }
    }

    #[test]
    fn no_two_rows_share_a_name() {
        for (i, a) in ARCHITECTURES.iter().enumerate() {
            for b in &ARCHITECTURES[i + 1..] {
                assert_ne!(a.oci, b.oci);
                assert_ne!(a.qemu, b.qemu);
                assert_ne!(a.musl_target, b.musl_target);
                assert_ne!(a.gnu_target, b.gnu_target);
                assert!(
                    (a.rust_arch, a.little_endian) != (b.rust_arch, b.little_endian),
                    "{} and {}",
                    a.oci,
                    b.oci
                );
            }
        }
    }

    #[test]
    fn the_contract_targets_are_the_tables() {
        assert_eq!(
            Platform::linux("amd64").musl_target(),
            Some(DEFAULT_STATIC_TARGET)
        );
        assert_eq!(
            Platform::linux("arm64").musl_target(),
            Some(ARM64_STATIC_TARGET)
        );
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(v7.musl_target(), Some("armv7-unknown-linux-musleabihf"));
        let v6: Platform = "linux/arm/v6".parse().unwrap();
        assert_eq!(v6.musl_target(), Some("arm-unknown-linux-musleabihf"));
        assert_eq!(Platform::linux("mips").musl_target(), None);
        let windows: Platform = "windows/amd64".parse().unwrap();
        assert_eq!(windows.musl_target(), None);
    }

    #[test]
    fn byte_order_decides_only_between_rows_of_one_machine() {
        let ppc = elf::EM_PPC64.0;
        assert_eq!(Architecture::by_elf(ppc, 64, true).unwrap().oci, "ppc64le");
        assert_eq!(Architecture::by_elf(ppc, 64, false).unwrap().oci, "ppc64");
        let s390 = elf::EM_S390.0;
        assert_eq!(Architecture::by_elf(s390, 64, true).unwrap().oci, "s390x");
        // A 32-bit x86-64 header is no platform OCI names.
        assert_eq!(Architecture::by_elf(elf::EM_X86_64.0, 32, true), None);
        assert_eq!(Architecture::by_elf(elf::EM_SPARCV9.0, 64, false), None);
    }

    #[test]
    fn the_host_is_in_the_table() {
        let host = Architecture::host().expect("the build machine's architecture has a row");
        assert_eq!(host.rust_arch, std::env::consts::ARCH);
        assert_eq!(host_architecture(), host.oci);
    }

    #[test]
    fn platforms_round_trip() {
        for text in [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "windows/amd64",
            "linux/s390x",
        ] {
            let platform: Platform = text.parse().unwrap();
            assert_eq!(platform.to_string(), text);
            assert_eq!(Platform::parse(&platform.to_string()), Ok(platform));
        }
        for row in ARCHITECTURES {
            let platform = Platform::linux(row.oci);
            assert_eq!(platform.to_string().parse::<Platform>(), Ok(platform));
        }
        assert_eq!(
            Platform::defaults()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            DEFAULT_PLATFORMS
        );
    }

    #[test]
    fn bad_platforms_are_named_with_what_is_wrong() {
        let cases = [
            ("", "it has 1 part"),
            ("amd64", "it has 1 part"),
            ("linux/", "the architecture is empty"),
            ("linux//", "the architecture is empty"),
            ("/amd64", "the os is empty"),
            ("linux/arm64/", "the variant is empty"),
            ("linux/amd64/v8/x", "it has 4 parts"),
            ("Linux/amd64", "the os \"Linux\" has 'L'"),
            ("linux/AMD64", "the architecture \"AMD64\" has 'A'"),
            ("linux/arm64/v8 ", "the variant \"v8 \" has ' '"),
        ];
        for (text, reason) in cases {
            let err = Platform::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("invalid platform {text:?}: ")),
                "{message}"
            );
            assert!(message.contains(reason), "{text}: {message}");
            assert!(
                message.contains("expected os/architecture[/variant]"),
                "{message}"
            );
        }
    }

    #[test]
    fn only_the_default_variant_is_the_plain_platform() {
        let variant = |text: &str| text.parse::<Platform>().unwrap().has_default_variant();
        assert!(variant("linux/arm64"));
        assert!(variant("linux/arm64/v8"));
        assert!(!variant("linux/arm64/v9"));
        assert!(!variant("linux/amd64/v3"));
        assert!(!variant("linux/sparc/v9"));
    }
}
