//! The fuzz targets' bodies: what each target does with one input.
//!
//! Each function takes arbitrary bytes, feeds them to a reader of images and
//! panics when the reader misbehaves: a panic of its own, an error message
//! without the document it concerns, a bare `serde failed`, a document that
//! does not survive being written and read again, a tree that breaks its own
//! invariants. Allocation beyond libFuzzer's `-rss_limit_mb` and hangs past
//! its `-timeout` are crashes too, which is the point: nothing an image
//! declares may make a reader allocate from it or wait forever.
//!
//! The file is the library of the `openshell-fuzz` package, whose binaries
//! (`fuzz_targets/`) hand libFuzzer's inputs to it, and is also compiled
//! into build-image's `fuzz_corpus` test, which replays the committed
//! corpus and every crash found through these same functions on stable
//! Rust, without libFuzzer.

use std::io::Read;
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use openshell_transport::document;
use openshell_transport::{ImageSource, ReadLimits, TransportError};
use openshell_verify::filesystem::limits::Limits;
use openshell_verify::filesystem::{Extractor, Filesystem, FilesystemError, NodeKind};
use openshell_verify::verify::{self, NothingKnown, VerifyOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Separates the parts of an input that holds several (a top document and
/// blobs, or layers). Text, so that seeds stay readable; libFuzzer learns it
/// from the comparisons that look for it.
pub const SEPARATOR: &[u8] = b"\n--8<--\n";

/// Splits `data` at every [`SEPARATOR`].
pub fn split_parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest
        .windows(SEPARATOR.len())
        .position(|window| window == SEPARATOR)
    {
        parts.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

/// Joins parts with [`SEPARATOR`] (the inverse of [`split_parts`]), for
/// making seeds.
pub fn join_parts(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(SEPARATOR)
}

/// The `documents` target: `data` as a manifest, an index and a config.
///
/// A document that parses must be written (as build-image writes its own,
/// [`document::canonical_json`]) and read back to the same document; one
/// that does not must be refused with a message that names it and says what
/// is wrong, never oci-spec's bare `serde failed`.
pub fn documents(data: &[u8]) {
    parse_round_trip::<ImageManifest>("manifest sha256:fuzz", data);
    parse_round_trip::<ImageIndex>("index.json", data);
    parse_round_trip::<ImageConfiguration>("config sha256:fuzz", data);
    let stated = document::stated_media_type(data);
    let index = document::looks_like_index(None, data);
    if stated.as_deref().is_some_and(document::is_index_media_type) {
        assert!(index, "a document stating an index type is an index");
    }
}

fn parse_round_trip<T: DeserializeOwned + Serialize>(name: &str, data: &[u8]) {
    match document::parse::<T>(name, data) {
        Ok(parsed) => {
            let written = document::canonical_json(&parsed)
                .unwrap_or_else(|err| panic!("{name}: parsed but cannot be written: {err}"));
            let again: T = document::parse(name, &written).unwrap_or_else(|err| {
                panic!(
                    "{name}: written as {} and not read back: {err}",
                    String::from_utf8_lossy(&written)
                )
            });
            let rewritten = document::canonical_json(&again)
                .unwrap_or_else(|err| panic!("{name}: read back but cannot be written: {err}"));
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&rewritten),
                "{name}: writing, reading and writing again changed the document"
            );
        }
        Err(err) => check_message(name, &err),
    }
}

fn check_message(name: &str, err: &TransportError) {
    let message = err.to_string();
    assert!(
        message.starts_with(name),
        "the refusal does not name {name}: {message}"
    );
    assert!(
        !message.contains("serde failed"),
        "a bare serde failure: {message}"
    );
}

/// An image held in memory, read through the same [`ImageSource`] interface
/// as layouts, archives and registries.
///
/// Part 0 is the top-level document (what a layout's `index.json` or a
/// registry's tag holds); the other parts are blobs. A descriptor names the
/// blob whose sha256 it states, as in a real store; other digests of a
/// supported algorithm name one blob anyway (chosen by the digest's first
/// hex digit), so the fuzzer reaches what lies behind a digest mismatch
/// without having to find a hash.
pub struct MemoryImage {
    top: Vec<u8>,
    blobs: Vec<(String, Vec<u8>)>,
}

impl MemoryImage {
    /// An image from the parts of an input (see [`split_parts`]).
    pub fn from_input(data: &[u8]) -> Self {
        let mut parts = split_parts(data).into_iter();
        let top = parts.next().unwrap_or_default().to_vec();
        let blobs = parts
            .map(|blob| {
                (
                    openshell_contract::digest::sha256_digest(blob),
                    blob.to_vec(),
                )
            })
            .collect();
        Self { top, blobs }
    }

    fn find(&self, digest: &str) -> Option<&[u8]> {
        if let Some((_, bytes)) = self.blobs.iter().find(|(known, _)| known == digest) {
            return Some(bytes);
        }
        let (_, encoded) = digest.split_once(':')?;
        let first = encoded.chars().next()?.to_digit(16)? as usize;
        let count = self.blobs.len();
        (count > 0).then(|| self.blobs[first % count].1.as_slice())
    }
}

impl ImageSource for MemoryImage {
    fn describe(&self) -> String {
        "memory:fuzz".into()
    }

    fn top(
        &mut self,
        limits: &ReadLimits,
    ) -> Result<(Option<Descriptor>, Vec<u8>), TransportError> {
        // As a layout reads index.json: bounded, whatever its length.
        let bytes = openshell_transport::limits::read_bounded(
            &mut self.top.as_slice(),
            "index.json",
            limits,
            |err| TransportError::Missing(err.to_string()),
        )?;
        Ok((None, bytes))
    }

    fn open_blob(
        &mut self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        let digest = descriptor.digest().to_string();
        match self.find(&digest) {
            Some(bytes) => Ok(Box::new(bytes)),
            None => Err(TransportError::Missing(format!(
                "memory:fuzz: no blob {digest}"
            ))),
        }
    }

    /// Every blob whose `subject` names `subject`, as a layout lists its
    /// referrers (an SBOM attached to a platform manifest).
    fn referrers(
        &mut self,
        subject: &Descriptor,
        _limits: &ReadLimits,
    ) -> Result<Option<Vec<Descriptor>>, TransportError> {
        let wanted = subject.digest().to_string();
        let mut found = Vec::new();
        for (digest, bytes) in &self.blobs {
            let Some(facts) = openshell_transport::source::referrer_facts(bytes) else {
                continue;
            };
            if facts.subject.as_deref() != Some(wanted.as_str()) {
                continue;
            }
            let Ok(digest) = digest.parse::<oci_spec::image::Digest>() else {
                continue;
            };
            let mut descriptor =
                Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, digest);
            descriptor.set_artifact_type(facts.artifact_type.as_deref().map(MediaType::from));
            found.push(descriptor);
        }
        Ok(Some(found))
    }
}

/// Limits small enough that the fuzzer reaches them with small inputs.
pub fn small_read_limits() -> ReadLimits {
    ReadLimits {
        max_document_size: 64 * 1024,
        max_index_depth: 3,
        max_index_manifests: 16,
        max_referrers: 4,
    }
}

/// The `image` target: `data` as an image (see [`MemoryImage`]), verified
/// the way `build-image verify` verifies any image: every index walked,
/// every manifest and config read, every layer streamed, decompressed and
/// applied, SBOM referrers listed and read, every check run.
///
/// Verify may refuse the image, but must not panic, and its report must be
/// consistent (an image that passes has no failed check and a platform) and
/// printable both as text and as JSON.
pub fn image(data: &[u8]) {
    let mut source = MemoryImage::from_input(data);
    let options = VerifyOptions {
        limits: small_read_limits(),
        ..VerifyOptions::default()
    };
    match verify::verify(&mut source, &NothingKnown, &options) {
        Ok(report) => {
            let text = report.to_string();
            let json = serde_json::to_string(&report)
                .unwrap_or_else(|err| panic!("the report cannot be written as JSON: {err}"));
            for printed in [&text, &json] {
                assert!(
                    !printed.contains("serde failed"),
                    "a bare serde failure: {printed}"
                );
            }
            if report.ok {
                assert!(report.failures().is_empty(), "passed with failures: {text}");
                assert!(
                    !report.platforms.is_empty(),
                    "passed with no platform: {text}"
                );
            }
        }
        Err(err) => {
            let message = err.to_string();
            assert!(!message.is_empty(), "an empty refusal");
            assert!(
                !message.contains("serde failed"),
                "a bare serde failure: {message}"
            );
        }
    }
}

/// Limits small enough that the fuzzer reaches each of them.
pub fn small_layer_limits() -> Limits {
    Limits {
        max_binary_size: 4096,
        max_uncompressed_size: 32 * 1024,
        max_entries: 64,
        max_path_depth: 16,
        max_path_length: 512,
        max_symlink_target: 256,
        max_symlink_targets_total: 2048,
        max_layers: 8,
    }
}

/// The `layers` target: `data` as a stack of uncompressed layers (see
/// [`split_parts`]), applied by the filesystem model three times:
///
/// - as umoci applies them (what verify checks), with the default limits,
///   once streamed and once from memory (the image just built is applied
///   from memory): both must give the same tree and the same verdicts;
/// - as containers/storage applies them, with limits small enough to be hit.
///
/// After each layer the tree must keep its invariants: paths clean and
/// relative, every ancestor a folder, the limits kept, kept contents
/// matching their file's size and hash, hard links sharing one inode's
/// metadata.
pub fn layers(data: &[u8]) {
    let stack = split_parts(data);
    let streamed = apply_stack(&stack, Limits::default(), Extractor::Umoci, false);
    let shared = apply_stack(&stack, Limits::default(), Extractor::Umoci, true);
    assert_eq!(
        streamed, shared,
        "applying the layers from memory differs from streaming them"
    );
    apply_stack(
        &stack,
        small_layer_limits(),
        Extractor::ContainersStorage,
        false,
    );
    // The strictest reading: umoci's tree with the vfs and overlay readings
    // beside it. Its own tree must be umoci's, whatever the others find.
    let mut strict = Filesystem::new(Limits::default());
    let mut umoci = Filesystem::with_extractor(Limits::default(), Extractor::Umoci);
    for (layer, tar) in stack.iter().enumerate() {
        let (left, right) = (
            strict.apply_layer(layer, *tar),
            umoci.apply_layer(layer, *tar),
        );
        assert_eq!(
            left.as_ref().map_err(ToString::to_string),
            right.as_ref().map_err(ToString::to_string),
            "the other readings changed umoci's outcome"
        );
        if left.is_err() {
            break;
        }
    }
    assert_eq!(
        strict.nodes, umoci.nodes,
        "the other readings changed umoci's tree"
    );
    for disagreement in strict.extractor_disagreements() {
        assert!(!disagreement.is_empty());
    }
}

/// Applies `stack` in order, checking the tree after each layer; returns a
/// summary of the tree and of how each layer went, for comparisons.
fn apply_stack(stack: &[&[u8]], limits: Limits, extractor: Extractor, shared: bool) -> Vec<String> {
    let mut filesystem = Filesystem::with_extractor(limits, extractor);
    let mut outcomes = Vec::new();
    for (layer, tar) in stack.iter().enumerate() {
        let result = if shared {
            filesystem.apply_layer_shared(layer, &Arc::new(tar.to_vec()))
        } else {
            filesystem.apply_layer(layer, *tar)
        };
        match result {
            Ok(()) => {
                check_tree(&filesystem);
                outcomes.push(format!("layer {layer} applied"));
            }
            Err(err) => {
                check_layer_error(layer, &limits, &err);
                outcomes.push(err.to_string());
                // Extractors stop at the first layer they cannot apply.
                break;
            }
        }
    }
    for (path, node) in &filesystem.nodes {
        // Kept contents compare by what they hold, not by where they are
        // kept (memory, the shared tar, the spill file).
        let kind = match &node.kind {
            NodeKind::File {
                size,
                sha256,
                contents,
            } => format!(
                "file {size} {} kept {:?}",
                hex::encode(sha256),
                contents
                    .as_ref()
                    .map(|contents| (contents.len(), contents.sha256()))
            ),
            other => format!("{other:?}"),
        };
        outcomes.push(format!(
            "{path}: {kind} mode {:o} owner {}:{} layer {} inode {}",
            node.mode, node.uid, node.gid, node.layer, node.inode
        ));
    }
    outcomes.extend(
        filesystem
            .removed
            .iter()
            .map(|(path, removal)| format!("removed {path} {removal:?}")),
    );
    outcomes.extend(
        filesystem
            .unsafe_entries
            .iter()
            .map(|entry| format!("unsafe {entry:?}")),
    );
    outcomes
}

fn check_layer_error(layer: usize, limits: &Limits, err: &FilesystemError) {
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("layer {layer}")),
        "the refusal does not name layer {layer}: {message}"
    );
    if let FilesystemError::Limit { limit, max, .. } = err {
        assert_eq!(*max, limit.value(limits), "{message}");
        assert!(message.contains(limit.flag()), "no flag in: {message}");
    }
}

fn check_tree(filesystem: &Filesystem) {
    let limits = filesystem.limits();
    assert!(
        filesystem.entry_count() <= limits.max_entries,
        "{} entries, over the limit of {}",
        filesystem.entry_count(),
        limits.max_entries
    );
    assert!(
        filesystem.uncompressed_size() <= limits.max_uncompressed_size,
        "{} bytes read, over the limit of {}",
        filesystem.uncompressed_size(),
        limits.max_uncompressed_size
    );
    assert!(
        filesystem.root.kind == NodeKind::Dir,
        "the root is not a folder"
    );
    let mut inodes: std::collections::HashMap<u64, (&str, &openshell_verify::filesystem::Node)> =
        std::collections::HashMap::new();
    for (path, node) in &filesystem.nodes {
        assert!(
            !path.is_empty()
                && path
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != ".."),
            "an unclean path in the tree: {path:?}"
        );
        if let Some((parent, _)) = path.rsplit_once('/') {
            let kind = filesystem.nodes.get(parent).map(|node| &node.kind);
            assert!(
                kind == Some(&NodeKind::Dir),
                "{path:?} is in the tree but its parent {parent:?} is {kind:?}"
            );
        }
        if let NodeKind::File {
            size,
            sha256,
            contents: Some(contents),
        } = &node.kind
        {
            assert_eq!(
                contents.len(),
                *size,
                "{path}: kept contents of another size"
            );
            assert_eq!(
                contents.sha256_bytes(),
                *sha256,
                "{path}: kept contents of another hash"
            );
            assert!(
                *size <= limits.max_binary_size,
                "{path}: {size} bytes kept, over the binary size limit"
            );
            let mut read = Vec::new();
            contents
                .reader()
                .read_to_end(&mut read)
                .unwrap_or_else(|err| panic!("{path}: kept contents unreadable: {err}"));
            assert_eq!(read.len() as u64, *size, "{path}: kept contents read short");
        }
        if let Some((first, other)) = inodes.insert(node.inode, (path, node)) {
            assert!(
                other.kind == node.kind
                    && other.mode == node.mode
                    && other.uid == node.uid
                    && other.gid == node.gid,
                "hard links {first:?} and {path:?} share an inode but not its metadata: {other:?} and {node:?}"
            );
        }
    }
}

// ---- the go_documents target: serde against a model of Go's decoder ----

/// A JSON value as Go's `encoding/json` meets it: objects keep every key,
/// duplicates included, in document order (serde_json's `Value` keeps one).
#[derive(Debug, Clone)]
pub enum GoValue {
    /// `null`.
    Null,
    /// `true`, `false` (no field verify compares is one).
    Bool,
    /// A number that is an integer Go's int64 holds.
    Int(i64),
    /// Any other number (Go's int fields refuse it).
    OtherNumber,
    /// A string.
    String(String),
    /// An array.
    Array(Vec<GoValue>),
    /// An object: its members in order.
    Object(Vec<(String, GoValue)>),
}

impl<'de> serde::Deserialize<'de> for GoValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = GoValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<GoValue, E> {
                Ok(GoValue::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<GoValue, E> {
                Ok(GoValue::Bool)
            }
            fn visit_i64<E>(self, v: i64) -> Result<GoValue, E> {
                Ok(GoValue::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<GoValue, E> {
                Ok(i64::try_from(v).map_or(GoValue::OtherNumber, GoValue::Int))
            }
            fn visit_f64<E>(self, _: f64) -> Result<GoValue, E> {
                Ok(GoValue::OtherNumber)
            }
            fn visit_str<E>(self, v: &str) -> Result<GoValue, E> {
                Ok(GoValue::String(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<GoValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(GoValue::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<GoValue, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    members.push((key, map.next_value()?));
                }
                Ok(GoValue::Object(members))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Why Go's decoder would refuse a document.
pub type GoError = String;

impl GoValue {
    /// A struct field as Go's decoder fills it: of the members whose key
    /// equals `name` under Go's folding, the last (`None`: no such member,
    /// or only `null`, which leaves a Go field untouched).
    pub fn field(&self, name: &str) -> Result<Option<&GoValue>, GoError> {
        let GoValue::Object(members) = self else {
            return Err(format!("not an object where {name} is looked up"));
        };
        let folded = openshell_transport::go_json::fold_name(name);
        Ok(members
            .iter()
            .rev()
            .find(|(key, _)| openshell_transport::go_json::fold_name(key) == folded)
            .map(|(_, value)| value)
            .filter(|value| !matches!(value, GoValue::Null)))
    }

    fn string(&self, name: &str) -> Result<String, GoError> {
        match self.field(name)? {
            None => Ok(String::new()),
            Some(GoValue::String(text)) => Ok(text.clone()),
            Some(other) => Err(format!("{name} is {other:?}, not a string")),
        }
    }

    fn int(&self, name: &str) -> Result<i64, GoError> {
        match self.field(name)? {
            None => Ok(0),
            Some(GoValue::Int(value)) => Ok(*value),
            Some(other) => Err(format!("{name} is {other:?}, not an int64")),
        }
    }

    fn array(&self, name: &str) -> Result<Option<&[GoValue]>, GoError> {
        match self.field(name)? {
            None => Ok(None),
            Some(GoValue::Array(items)) => Ok(Some(items)),
            Some(other) => Err(format!("{name} is {other:?}, not an array")),
        }
    }
}

/// The fields of a descriptor verify and containerd act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenDescriptor {
    /// `mediaType` ("" when absent).
    pub media_type: String,
    /// `digest`.
    pub digest: String,
    /// `size`.
    pub size: i64,
    /// `platform.os`, `platform.architecture` ("" when absent).
    pub platform: (String, String),
}

/// The fields of a manifest or index verify and containerd act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenDocument {
    /// `schemaVersion`.
    pub schema_version: i64,
    /// `mediaType` ("" when absent).
    pub media_type: String,
    /// `config` (manifests).
    pub config: Option<SeenDescriptor>,
    /// `layers` (manifests) or `manifests` (indexes).
    pub entries: Vec<SeenDescriptor>,
    /// `subject.digest` ("" when absent).
    pub subject: String,
    /// `artifactType` ("" when absent).
    pub artifact_type: String,
}

fn go_descriptor(value: &GoValue) -> Result<SeenDescriptor, GoError> {
    // oci-spec renames a few platform values as it reads them ("armbe"
    // becomes "arm64be"); verify accepts only linux on amd64 and arm64,
    // which it keeps as they are, so the model reads them the same way.
    let platform = match value.field("platform")? {
        None => (String::new(), String::new()),
        Some(platform) => (
            oci_spec::image::Os::from(platform.string("os")?.as_str()).to_string(),
            oci_spec::image::Arch::from(platform.string("architecture")?.as_str()).to_string(),
        ),
    };
    Ok(SeenDescriptor {
        media_type: value.string("mediaType")?,
        digest: value.string("digest")?,
        size: value.int("size")?,
        platform,
    })
}

/// Decodes `data` as Go's decoder would into image-spec's `Manifest`
/// (`index == false`) or `Index`: the fields both sides act on.
pub fn go_decode(data: &[u8], index: bool) -> Result<SeenDocument, GoError> {
    let value: GoValue = serde_json::from_slice(data).map_err(|err| err.to_string())?;
    let entries_field = if index { "manifests" } else { "layers" };
    let entries = match value.array(entries_field)? {
        None => Vec::new(),
        Some(items) => items.iter().map(go_descriptor).collect::<Result<_, _>>()?,
    };
    // image-spec's Manifest holds its config by value: absent, it is a
    // zero descriptor.
    let config = if index {
        None
    } else {
        Some(
            value
                .field("config")?
                .map(go_descriptor)
                .transpose()?
                .unwrap_or_default(),
        )
    };
    // Go decodes the whole subject descriptor (a size over int64 fails
    // there too), though only its digest is acted on.
    let subject = match value.field("subject")? {
        None => String::new(),
        Some(subject) => go_descriptor(subject)?.digest,
    };
    Ok(SeenDocument {
        schema_version: value.int("schemaVersion")?,
        media_type: value.string("mediaType")?,
        config,
        entries,
        subject,
        artifact_type: value.string("artifactType")?,
    })
}

fn seen(descriptor: &Descriptor) -> SeenDescriptor {
    SeenDescriptor {
        media_type: descriptor.media_type().to_string(),
        digest: descriptor.digest().to_string(),
        size: i64::try_from(descriptor.size()).unwrap_or(-1),
        platform: descriptor
            .platform()
            .as_ref()
            .map(|platform| {
                (
                    platform.os().to_string(),
                    platform.architecture().to_string(),
                )
            })
            .unwrap_or_default(),
    }
}

/// The `go_documents` target: `data` read as a manifest and as an index
/// both by verify's reader (serde, with the refusals of
/// `openshell_transport::go_json` and `document::check_kind`) and by a
/// model of Go's `encoding/json` (keys matched by Go's folding, the last
/// duplicate winning, int64 numbers). Whatever verify's reader accepts,
/// Go must read the same: any difference is a crash.
pub fn go_documents(data: &[u8]) {
    use openshell_transport::document::Kind;
    if let Ok(manifest) = document::parse::<ImageManifest>("manifest", data).and_then(|manifest| {
        document::check_kind("manifest", Kind::Manifest, None, data)?;
        Ok(manifest)
    }) {
        let go = go_decode(data, false)
            .unwrap_or_else(|err| panic!("verify reads a manifest that Go refuses: {err}"));
        let ours = SeenDocument {
            schema_version: i64::from(manifest.schema_version()),
            media_type: manifest
                .media_type()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            config: Some(seen(manifest.config())),
            entries: manifest.layers().iter().map(seen).collect(),
            subject: manifest
                .subject()
                .as_ref()
                .map(|subject| subject.digest().to_string())
                .unwrap_or_default(),
            artifact_type: manifest
                .artifact_type()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        };
        assert_eq!(ours, go, "verify and Go read this manifest differently");
    }
    if let Ok(index) = document::parse::<ImageIndex>("index", data).and_then(|index| {
        document::check_kind("index", Kind::Index, None, data)?;
        Ok(index)
    }) {
        let go = go_decode(data, true)
            .unwrap_or_else(|err| panic!("verify reads an index that Go refuses: {err}"));
        let ours = SeenDocument {
            schema_version: i64::from(index.schema_version()),
            media_type: index
                .media_type()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            config: None,
            entries: index.manifests().iter().map(seen).collect(),
            subject: index
                .subject()
                .as_ref()
                .map(|subject| subject.digest().to_string())
                .unwrap_or_default(),
            artifact_type: index
                .artifact_type()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        };
        assert_eq!(ours, go, "verify and Go read this index differently");
    }
}
