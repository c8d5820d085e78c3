//! The fuzz targets' committed corpus (`fuzz/corpus/TARGET/`) and every
//! input a fuzzer crashed on (`fuzz/regressions/TARGET/`), replayed through
//! the targets' own functions (`fuzz/src/lib.rs`, compiled in here) on
//! stable Rust, without libFuzzer: what the fuzzers once found stays found.
//!
//! `committed_seeds_are_current` checks the hand-made seeds against their
//! generator (and rewrites them with `OPENSHELL_WRITE_FUZZ_SEEDS=1`); the
//! corpus also holds what `scripts/fuzz --merge` kept.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs every file of the target's corpus and regressions through `body`;
/// fails naming each file that panics.
fn replay(target: &str, body: fn(&[u8])) {
    let mut ran = 0;
    let mut failed = Vec::new();
    for folder in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(folder).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            assert_ne!(folder, "corpus", "no corpus at {}", dir.display());
            continue;
        };
        let mut files: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            ran += 1;
            if std::panic::catch_unwind(|| body(&bytes)).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(ran > 0, "the {target} corpus is empty");
    assert!(
        failed.is_empty(),
        "{} of {ran} inputs of {target} failed (messages above):\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn documents_corpus_and_regressions_pass() {
    replay("documents", targets::documents);
}

#[test]
fn go_documents_corpus_and_regressions_pass() {
    replay("go_documents", targets::go_documents);
}

#[test]
fn image_corpus_and_regressions_pass() {
    replay("image", targets::image);
}

#[test]
fn layers_corpus_and_regressions_pass() {
    replay("layers", targets::layers);
}

/// The (name, version) pairs of a Cargo.lock.
fn locked_packages(lock: &Path) -> std::collections::BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(lock).unwrap();
    let mut packages = std::collections::BTreeSet::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_string());
        } else if let Some(value) = line.strip_prefix("version = ")
            && let Some(name) = name.take()
        {
            packages.insert((name, value.trim_matches('"').to_string()));
        }
    }
    packages
}

/// The fuzz targets build with the versions the workspace builds with:
/// every package of fuzz/Cargo.lock but libFuzzer's own is in Cargo.lock
/// at the same version (scripts/fuzz starts again from Cargo.lock when a
/// dependency is missing, and says so).
#[test]
fn the_fuzz_lock_follows_the_workspace_lock() {
    let workspace = locked_packages(&fuzz_dir().join("../Cargo.lock"));
    let fuzz = locked_packages(&fuzz_dir().join("Cargo.lock"));
    let fuzz_only = ["openshell-fuzz", "libfuzzer-sys", "arbitrary", "jobserver"];
    let behind: Vec<String> = fuzz
        .iter()
        .filter(|(name, _)| !fuzz_only.contains(&name.as_str()))
        .filter(|package| !workspace.contains(*package))
        .map(|(name, version)| format!("{name} {version}"))
        .collect();
    assert!(
        behind.is_empty(),
        "fuzz/Cargo.lock has versions Cargo.lock does not: {behind:?}; update it with: cp Cargo.lock fuzz/Cargo.lock && (cd fuzz && cargo tree >/dev/null)"
    );
}

// ---- seeds ---------------------------------------------------------------

/// A static x86-64 ELF executable of 129 bytes that exits 0: an ELF header,
/// one PT_LOAD segment, and `mov eax, 60; xor edi, edi; syscall`. Small, so
/// the fuzzers spend their time on the image rather than on a binary.
fn tiny_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let code = [0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
    let size = (64 + 56 + code.len()) as u64;
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + 120).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for word in [0, BASE, BASE, size, size, 0x1000] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(&code);
    elf
}

/// One entry of a seed layer.
enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A header whose size field claims this many bytes, and no data.
    Claims(&'a str, u64),
}

/// A tar of `items`, names written raw so that any path can be stored.
fn tar_of(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        let (path, kind, link, data, mode, claimed) = match *item {
            Item::File(path, data, mode) => (path, tar::EntryType::Regular, "", data, mode, None),
            Item::Dir(path) => (path, tar::EntryType::Directory, "", &b""[..], 0o755, None),
            Item::Symlink(path, link) => {
                (path, tar::EntryType::Symlink, link, &b""[..], 0o777, None)
            }
            Item::Hardlink(path, link) => (path, tar::EntryType::Link, link, &b""[..], 0o644, None),
            Item::Claims(path, size) => (
                path,
                tar::EntryType::Regular,
                "",
                &b""[..],
                0o555,
                Some(size),
            ),
        };
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if !link.is_empty() {
            header.set_link_name(link).unwrap();
        }
        match claimed {
            Some(size) => {
                header.set_size(size);
                header.set_cksum();
                return [builder.into_inner().unwrap(), header.as_bytes().to_vec()].concat();
            }
            None => {
                header.set_cksum();
                builder.append(&header, data).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": openshell_contract::digest::sha256_digest(bytes), "size": bytes.len()})
}

/// How a seed image is put together.
#[derive(Clone, Copy, Default)]
struct Shape {
    /// Layers stored as plain tars rather than gzip.
    uncompressed: bool,
    /// Docker's media types (manifest list, manifest, config, layers).
    docker: bool,
    /// An index between index.json and the image's index.
    nested: bool,
    /// An SPDX SBOM attached to the platform manifest as an OCI 1.1
    /// referrer, as build-image attaches one.
    sbom: bool,
}

/// An `image` input: index.json, then the blobs it names, each exactly
/// once (an index, a manifest, a config, layers).
/// JSON bytes with every object's keys sorted, whichever serde_json
/// features the build unified (the driver turns on `preserve_order`, so a
/// workspace build would otherwise keep insertion order), so the seeds are
/// the same bytes however the tests were built.
fn json_bytes(mut value: serde_json::Value) -> Vec<u8> {
    value.sort_all_objects();
    serde_json::to_vec(&value).unwrap()
}

fn image_input(layers: &[Vec<u8>], shape: Shape) -> Vec<u8> {
    let (manifest_type, config_type, index_type) = if shape.docker {
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )
    } else {
        (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.index.v1+json",
        )
    };
    let layer_type = match (shape.docker, shape.uncompressed) {
        (false, false) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (false, true) => "application/vnd.oci.image.layer.v1.tar",
        (true, false) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        (true, true) => "application/vnd.docker.image.rootfs.diff.tar",
    };
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut layer_descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        diff_ids.push(openshell_contract::digest::sha256_digest(tar));
        let blob = if shape.uncompressed {
            tar.clone()
        } else {
            gzip(tar)
        };
        layer_descriptors.push(descriptor(layer_type, &blob));
        blobs.push(blob);
    }
    let config = json_bytes(json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/openshell-sandbox"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }));
    let manifest = json_bytes(json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(config_type, &config),
        "layers": layer_descriptors,
    }));
    let mut entry = descriptor(manifest_type, &manifest);
    if shape.sbom {
        let sbom = json_bytes(json!({
            "spdxVersion": "SPDX-2.3",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": "openshell-sandbox",
            "dataLicense": "CC0-1.0",
            "documentNamespace": "https://openshell.invalid/spdx/fuzz-seed",
            "creationInfo": {"created": "1970-01-01T00:00:00Z", "creators": ["Tool: build-image"]},
            "packages": [{"SPDXID": "SPDXRef-Package-openshell-sandbox", "name": "openshell-sandbox",
                          "downloadLocation": "NOASSERTION", "versionInfo": "0.1.0"}],
        }));
        let mut layer = descriptor("application/spdx+json", &sbom);
        layer["annotations"] =
            json!({"org.opencontainers.image.title": "openshell-sandbox.spdx.json"});
        let mut config = descriptor("application/vnd.oci.empty.v1+json", b"{}");
        config["data"] = json!("e30=");
        let referrer = json_bytes(json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/spdx+json",
            "config": config,
            "layers": [layer],
            "subject": entry.clone(),
        }));
        blobs.push(sbom);
        blobs.push(b"{}".to_vec());
        blobs.push(referrer);
    }
    entry["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let mut top = json!({"schemaVersion": 2, "mediaType": index_type, "manifests": [entry]});
    blobs.push(config);
    blobs.push(manifest);
    if shape.nested {
        let inner = json_bytes(top.clone());
        top["manifests"] = json!([descriptor(index_type, &inner)]);
        blobs.push(inner);
    }
    let top = json_bytes(top);
    let mut parts: Vec<&[u8]> = vec![&top];
    parts.extend(blobs.iter().map(Vec::as_slice));
    targets::join_parts(&parts)
}

/// The layers of the seed images: the good one, and the hostile ones the
/// verifier must see through (symlinked parents, whiteouts through them,
/// hard links, replaced types, a size claimed and not there).
fn seed_layer_stacks() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let elf = tiny_elf();
    let script = b"#!/bin/sh\necho not the supervisor\n";
    let good = tar_of(&[Item::File("openshell-sandbox", &elf, 0o555)]);
    vec![
        ("good", vec![good.clone()]),
        (
            "symlinked-parent",
            vec![
                good.clone(),
                tar_of(&[
                    Item::Symlink("d", "."),
                    Item::File("d/openshell-sandbox", script, 0o755),
                ]),
            ],
        ),
        (
            "whiteout-through-symlink",
            vec![
                good.clone(),
                tar_of(&[
                    Item::Symlink("d", "."),
                    Item::File("d/.wh.openshell-sandbox", b"", 0o644),
                ]),
            ],
        ),
        (
            "opaque-and-hardlink",
            vec![
                tar_of(&[
                    Item::Dir("usr/"),
                    Item::File("usr/openshell-sandbox", &elf, 0o555),
                    Item::File("usr/other", b"x", 0o644),
                ]),
                tar_of(&[
                    Item::File("usr/.wh..wh..opq", b"", 0o644),
                    Item::File("usr/new", b"y", 0o644),
                    Item::Hardlink("openshell-sandbox", "usr/new"),
                ]),
            ],
        ),
        (
            "type-replaced",
            vec![
                tar_of(&[
                    Item::Dir("openshell-sandbox/"),
                    Item::File("openshell-sandbox/inner", b"x", 0o644),
                ]),
                tar_of(&[
                    Item::File("openshell-sandbox", &elf, 0o555),
                    Item::Symlink("abs", "/usr/bin/env"),
                    Item::Symlink("up", "../../etc"),
                ]),
            ],
        ),
        (
            "claims-a-tebibyte",
            vec![tar_of(&[Item::Claims("openshell-sandbox", 1 << 40)])],
        ),
    ]
}

/// Tars as other programs write them: GNU tar in each of its formats (long
/// names and link targets, PAX records, hard links, folders with modes and
/// owners), and the tar crate's own long-name entries.
fn tars_of_other_writers() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let long = "a-rather-long-folder-name-for-the-old-header-field".repeat(2);
    let deep = root.join(&long).join("usr/bin");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(root.join("openshell-sandbox"), tiny_elf()).unwrap();
    std::fs::write(deep.join("tool"), b"#!/bin/sh\n").unwrap();
    std::fs::hard_link(root.join("openshell-sandbox"), deep.join("hard")).unwrap();
    std::os::unix::fs::symlink(format!("../../../{long}/usr/bin/tool"), deep.join("link")).unwrap();
    std::os::unix::fs::symlink(".", root.join("self")).unwrap();
    let mut tars = Vec::new();
    for format in ["gnu", "oldgnu", "pax", "ustar", "v7"] {
        let out = dir.path().join(format!("{format}.tar"));
        let status = std::process::Command::new("tar")
            .args([
                "--format",
                format,
                "--owner=0",
                "--group=0",
                "--numeric-owner",
            ])
            // The same bytes every time: PAX headers without the process
            // id in their names, and fixed access and change times.
            .args(
                (format == "pax")
                    .then_some("--pax-option=exthdr.name=%d/PaxHeaders/%f,atime:=0,ctime:=0"),
            )
            .args(["--mtime=@0", "--sort=name", "-C"])
            .arg(&root)
            .arg("-cf")
            .arg(&out)
            .arg(".")
            .status()
            .unwrap();
        // ustar and v7 refuse the longest names: what they wrote is kept.
        if status.success() || out.exists() {
            tars.push((format!("gnu-tar-{format}"), std::fs::read(&out).unwrap()));
        }
    }
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o555);
    builder
        .append_data(
            &mut header,
            format!("{long}/openshell-sandbox"),
            &b"ELF"[..],
        )
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(
            &mut header,
            "openshell-sandbox",
            format!("{long}/openshell-sandbox"),
        )
        .unwrap();
    tars.push(("tar-crate-long-names".into(), builder.into_inner().unwrap()));
    tars
}

/// Seeds of the `go_documents` target: the good image's documents, and
/// the shapes Go and serde read differently (keys equal under Go's
/// folding, duplicates, a manifest that is also an index, int64 overflow).
fn go_document_seeds(good: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let input = image_input(good, Shape::default());
    let mut manifest = None;
    for (position, part) in targets::split_parts(&input).into_iter().enumerate() {
        if part.first() == Some(&b'{') {
            seeds.push((format!("oci-{position}"), part.to_vec()));
            if part.windows(8).any(|window| window == b"\"layers\"") && manifest.is_none() {
                manifest = Some(String::from_utf8(part.to_vec()).unwrap());
            }
        }
    }
    let manifest = manifest.expect("the good image has a manifest");
    let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
    let add = |text: &str, extra: &str| format!("{},{extra}}}", &text[..text.len() - 1]);
    for (name, text) in [
        ("manifest-layers-cased", add(&manifest, r#""Layers":[]"#)),
        ("manifest-long-s", add(&manifest, r#""layer\u017f":[]"#)),
        (
            "manifest-media-type-cased",
            add(
                &manifest,
                r#""MediaType":"application/vnd.oci.image.index.v1+json""#,
            ),
        ),
        ("manifest-duplicate", add(&manifest, r#""schemaVersion":2"#)),
        (
            "manifest-with-manifests",
            add(&manifest, r#""manifests":[]"#),
        ),
        (
            "manifest-subject-kelvin",
            add(
                &manifest,
                r#""subject":{"mediaType":"a","digest":"sha256:00","size":1,"\u212aey":1}"#,
            ),
        ),
        ("index-manifests-cased", add(index, r#""Manifests":[]"#)),
        (
            "index-with-config",
            add(index, r#""config":{},"layers":[]"#),
        ),
        (
            "index-digest-cased",
            index.replace(r#""size":2,"#, r#""size":2,"Digest":"sha256:11","#),
        ),
        (
            "index-size-int64",
            index.replace(r#""size":2"#, r#""size":9223372036854775808"#),
        ),
        (
            "index-null-media-type",
            index.replace(
                r#""mediaType":"application/vnd.oci.image.index.v1+json""#,
                r#""mediaType":null"#,
            ),
        ),
    ] {
        seeds.push((name.to_string(), text.into_bytes()));
    }
    seeds
}

/// The hand-made seeds of the committed corpus are what this file makes
/// now. After changing them, rewrite them with
/// `OPENSHELL_WRITE_FUZZ_SEEDS=1 cargo test -p build-image --test fuzz_corpus committed_seeds_are_current`.
#[test]
fn committed_seeds_are_current() {
    let rewrite = std::env::var_os("OPENSHELL_WRITE_FUZZ_SEEDS").is_some_and(|value| value == "1");
    let stale = std::cell::RefCell::new(Vec::new());
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        let path = dir.join(format!("seed-{name}"));
        if rewrite {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(bytes) {
            stale.borrow_mut().push(path.display().to_string());
        }
    };
    for (name, layers) in seed_layer_stacks() {
        write("image", name, &image_input(&layers, Shape::default()));
        let parts: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        write("layers", name, &targets::join_parts(&parts));
    }
    for (name, tar) in tars_of_other_writers() {
        write("layers", &name, &tar);
    }
    let good = &seed_layer_stacks()[0].1;
    let variants = [
        (
            "good-uncompressed",
            Shape {
                uncompressed: true,
                ..Shape::default()
            },
        ),
        (
            "good-docker",
            Shape {
                docker: true,
                ..Shape::default()
            },
        ),
        (
            "good-nested",
            Shape {
                nested: true,
                ..Shape::default()
            },
        ),
        (
            "good-sbom",
            Shape {
                sbom: true,
                ..Shape::default()
            },
        ),
    ];
    for (name, shape) in variants {
        write("image", name, &image_input(good, shape));
    }
    // The documents of the good images, one per file, and broken ones.
    for (name, shape) in [
        ("oci", Shape::default()),
        (
            "docker",
            Shape {
                docker: true,
                nested: true,
                ..Shape::default()
            },
        ),
    ] {
        let input = image_input(good, shape);
        for (position, part) in targets::split_parts(&input).into_iter().enumerate() {
            if part.first() == Some(&b'{') {
                write("documents", &format!("{name}-{position}"), part);
            }
        }
    }
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let documents: [(&str, Vec<u8>); 5] = [
        ("not-utf8", b"{\"schemaVersion\": 2,\n \"config\": \xff}".to_vec()),
        ("truncated", b"{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\"".to_vec()),
        (
            "sha512-descriptor",
            json_bytes(json!({
                "schemaVersion": 2,
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": sha512, "size": 7,
                               "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}],
                "annotations": {"org.opencontainers.image.ref.name": "latest"}
            })),
        ),
        (
            "attestation",
            json_bytes(json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": openshell_contract::digest::sha256_digest(b""), "size": 0,
                               "platform": {"architecture": "unknown", "os": "unknown"},
                               "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]
            })),
        ),
        (
            "wrong-types",
            br#"{"schemaVersion": "2", "config": {"size": -1, "digest": "md5:00"}, "layers": null}"#
                .to_vec(),
        ),
    ];
    for (name, bytes) in documents {
        write("documents", name, &bytes);
    }
    for (name, bytes) in go_document_seeds(good) {
        write("go_documents", &name, &bytes);
    }
    let stale = stale.into_inner();
    assert!(
        stale.is_empty(),
        "these committed seeds differ from what the generator makes now: {stale:#?}; \
         rewrite them with OPENSHELL_WRITE_FUZZ_SEEDS=1 cargo test -p build-image \
         --test fuzz_corpus committed_seeds_are_current"
    );
}

/// The good seeds pass verify, so the fuzzers start from inputs that reach
/// every check, and the hostile ones fail it.
#[test]
fn seeds_reach_every_check() {
    let dir = fuzz_dir().join("corpus/image");
    for (name, should_pass) in [
        ("seed-good", true),
        ("seed-good-uncompressed", true),
        ("seed-good-docker", true),
        ("seed-good-nested", true),
        ("seed-good-sbom", true),
        ("seed-claims-a-tebibyte", false),
        ("seed-symlinked-parent", false),
        ("seed-whiteout-through-symlink", false),
    ] {
        let input = std::fs::read(dir.join(name)).unwrap();
        let mut source = targets::MemoryImage::from_input(&input);
        let report = openshell_verify::verify::verify(
            &mut source,
            &openshell_verify::verify::NothingKnown,
            &openshell_verify::verify::VerifyOptions::default(),
        )
        .unwrap();
        assert_eq!(report.ok, should_pass, "{name}:\n{report}");
    }
}
