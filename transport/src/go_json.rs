//! JSON object keys as Go's `encoding/json` matches them, so that a
//! document verify accepts is the document containerd, CRI-O and the
//! distribution registry decode (the class of CVE-2021-41190).
//!
//! Go decodes an object into a struct by looking each key up first by its
//! exact name, then by its *folded* name (`encoding/json/fold.go`,
//! `foldName`, Go 1.21 and later): ASCII letters upper-cased, every other
//! rune replaced by the smallest rune of its `unicode.SimpleFold` orbit. So
//! `Layers`, `LAYERS` and `layerſ` (U+017F folds to `S`) all fill the field
//! `layers`, and of several keys that fill one field the last wins. serde
//! matches exactly and keeps the first, or refuses a duplicate. The two
//! agree on a document exactly when no object has two keys that fold alike
//! (duplicates included) and no key reaches a known field by folding alone.
//! Those are refused here, at every depth, as is an integer beyond Go's
//! int64, which Go refuses and serde's u64 reads.
//!
//! Why a key check over serde's own tokens rather than a JSON crate that
//! reports duplicates: the check needs Go's folding anyway, serde_json
//! already decodes the keys (escapes included, as Go compares them), and a
//! visitor that keeps no values costs one more pass over documents of a few
//! kilobytes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// Go's `foldRune`: the smallest rune of `c`'s simple case-folding orbit.
///
/// The orbit comes from regex-syntax's simple case-folding table (Unicode's
/// CaseFolding.txt, statuses C and S: the data behind Go's
/// `unicode.SimpleFold`). Its Unicode version may be newer than Go's;
/// Unicode only ever adds case pairs, so a difference can only make this
/// fold more keys together, which refuses more, never less.
pub fn fold_rune(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};
    let mut class = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
    // Only fails when regex-syntax is built without its case tables
    // (`unicode-case`), which this crate's manifest turns on.
    if class.try_case_fold_simple().is_err() {
        return c;
    }
    class
        .ranges()
        .iter()
        .map(ClassUnicodeRange::start)
        .min()
        .unwrap_or(c)
}

/// Go's `foldName`: `foldName(x) == foldName(y)` exactly when Go's decoder
/// treats the keys `x` and `y` as the same field name.
pub fn fold_name(key: &str) -> String {
    key.chars().map(fold_rune).collect()
}

/// Which documents' field names a check knows, to refuse a key that
/// reaches one of them by folding alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// OCI and Docker image documents: index.json, indexes and manifest
    /// lists, manifests, configs, descriptors, referrers listings.
    Image,
    /// docker-archive's `manifest.json` (Docker's Go struct `manifestItem`,
    /// whose fields have no JSON tags: the keys are the Go field names).
    DockerArchive,
}

/// The JSON names of the fields of the Go structs that decode OCI and
/// Docker image documents (image-spec's `specs-go/v1`, distribution's
/// schema2 and manifest list, Docker's image config), in their exact
/// spelling.
const IMAGE_FIELDS: &[&str] = &[
    // Versioned, Manifest, Index, Descriptor, Platform.
    "schemaVersion",
    "mediaType",
    "artifactType",
    "config",
    "layers",
    "manifests",
    "subject",
    "annotations",
    "digest",
    "size",
    "urls",
    "data",
    "platform",
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "features",
    // Image (the config document), RootFS, History.
    "created",
    "author",
    "rootfs",
    "type",
    "diff_ids",
    "history",
    "created_by",
    "comment",
    "empty_layer",
    // Docker's config extras.
    "container",
    "container_config",
    "docker_version",
    "id",
    "parent",
    // ImageConfig (its Go field names are its keys).
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
    "Healthcheck",
    "Shell",
    "OnBuild",
    "Memory",
    "MemorySwap",
    "CpuShares",
];

/// docker-archive's `manifest.json` entry fields.
const ARCHIVE_FIELDS: &[&str] = &["Config", "RepoTags", "Layers", "Parent", "LayerSources"];

/// Fields whose value is a Go map: their keys are data, matched exactly,
/// so only duplicates and fold collisions are refused inside them.
const MAP_FIELDS: &[&str] = &[
    "annotations",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "LayerSources",
];

impl Schema {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Image => IMAGE_FIELDS,
            Self::DockerArchive => ARCHIVE_FIELDS,
        }
    }

    /// The field a key that is not spelled exactly as one reaches by
    /// folding, if any.
    fn folded_field(self, key: &str, folded: &str) -> Option<&'static str> {
        let fields = self.fields();
        if fields.contains(&key) {
            return None;
        }
        fields
            .iter()
            .copied()
            .find(|field| fold_name(field) == folded)
    }
}

/// Refuses a JSON document in which Go and serde could read different
/// values: an object with two keys that are equal under Go's folding
/// (duplicates included), or a key that only Go's folding matches to a
/// field of `schema`. The message says which keys and where (a JSONPath
/// such as `$.manifests[0]`); the document is otherwise not judged here.
pub fn check_keys(text: &str, schema: Schema) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Check {
        schema,
        path: &mut String::from("$"),
        in_map: false,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()
}

/// One value to check, at `path`.
struct Check<'p> {
    schema: Schema,
    path: &'p mut String,
    /// Whether this value is the value of a Go map field (its keys are data).
    in_map: bool,
}

/// A key as serde_json decodes it (borrowed when it has no escapes).
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(value)))
            }
            fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value.to_string())))
            }
            fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<(), E> {
        // Every number of these documents is a Go int or int64 (sizes,
        // schemaVersion, memory): a larger one fails Go's decoder outright,
        // so the document is not one containerd can read.
        if value > i64::MAX as u64 {
            return Err(E::custom(format!(
                "the number {value} at {} is larger than Go's decoders read (expected at most {})",
                self.path,
                i64::MAX
            )));
        }
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let base = self.path.len();
        let mut index = 0usize;
        loop {
            self.path.truncate(base);
            self.path.push_str(&format!("[{index}]"));
            let item = Check {
                schema: self.schema,
                path: &mut *self.path,
                in_map: false,
            };
            if seq.next_element_seed(item)?.is_none() {
                break;
            }
            index += 1;
        }
        self.path.truncate(base);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let base = self.path.len();
        // Folded key → the key as written, for the message.
        let mut seen: HashMap<String, String> = HashMap::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            let folded = fold_name(&key);
            if let Some(earlier) = seen.get(&folded) {
                let at = self.path.as_str();
                return Err(A::Error::custom(if *earlier == *key {
                    format!(
                        "the key {key:?} appears twice in the object at {at} (Go's decoders take the last, others the first; expected each key once)"
                    )
                } else {
                    format!(
                        "the keys {earlier:?} and {key:?} of the object at {at} are one key to Go's decoders, which match keys without regard to case (expected keys that differ in more than case)"
                    )
                }));
            }
            if !self.in_map {
                if let Some(field) = self.schema.folded_field(&key, &folded) {
                    return Err(A::Error::custom(format!(
                        "the key {key:?} of the object at {} is read by Go's decoders as {field:?}, and by others not at all (expected exactly {field:?})",
                        self.path
                    )));
                }
            }
            self.path.truncate(base);
            self.path.push('.');
            self.path.push_str(&key);
            let value = Check {
                schema: self.schema,
                in_map: MAP_FIELDS.contains(&key.as_ref()),
                path: &mut *self.path,
            };
            map.next_value_seed(value)?;
            self.path.truncate(base);
            seen.insert(folded, key.into_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_gos() {
        // ASCII letters fold to upper case; the two non-ASCII runes that
        // fold into ASCII are the long s and the Kelvin sign.
        assert_eq!(fold_name("layers"), "LAYERS");
        assert_eq!(fold_name("layerſ"), "LAYERS");
        assert_eq!(fold_name("\u{212A}ey"), "KEY");
        assert_eq!(fold_name("os.version"), "OS.VERSION");
        assert_eq!(fold_rune('é'), 'É');
        assert_eq!(fold_rune('É'), 'É');
        // The orbit {Ω U+03A9, ω U+03C9, Ω U+2126 OHM SIGN}: the smallest.
        assert_eq!(fold_rune('\u{2126}'), '\u{03A9}');
        assert_eq!(fold_rune('\u{03C9}'), '\u{03A9}');
        // Σ, σ and final ς are one orbit.
        assert_eq!(fold_rune('ς'), fold_rune('Σ'));
        // No orbit: itself.
        assert_eq!(fold_rune('中'), '中');
        assert_eq!(fold_rune('_'), '_');
    }

    fn refusal(text: &str, schema: Schema) -> String {
        check_keys(text, schema).unwrap_err().to_string()
    }

    #[test]
    fn collisions_and_duplicates_are_refused_at_any_depth() {
        let err = refusal(r#"{"layers":[],"Layers":[]}"#, Schema::Image);
        assert!(
            err.contains(r#"the keys "layers" and "Layers" of the object at $"#),
            "{err}"
        );
        let err = refusal(r#"{"layers":[{"digest":"a","digeſt":"b"}]}"#, Schema::Image);
        assert!(err.contains("at $.layers[0]"), "{err}");
        let err = refusal(r#"{"a":{"b":1,"b":2}}"#, Schema::Image);
        assert!(
            err.contains(r#"the key "b" appears twice in the object at $.a"#),
            "{err}"
        );
        // An escaped key is the key it spells.
        let err = refusal(r#"{"layers":[],"\u006cayers":[]}"#, Schema::Image);
        assert!(err.contains("appears twice"), "{err}");
        // Inside annotations too (a map to Go, but ambiguous to others).
        let err = refusal(r#"{"annotations":{"k":"1","\u212a":"2"}}"#, Schema::Image);
        assert!(err.contains("$.annotations"), "{err}");
    }

    #[test]
    fn keys_that_reach_a_field_by_folding_alone_are_refused() {
        let err = refusal(r#"{"MediaType":"x"}"#, Schema::Image);
        assert!(
            err.contains(r#"read by Go's decoders as "mediaType""#),
            "{err}"
        );
        let err = refusal(r#"{"config":{"env":[]}}"#, Schema::Image);
        assert!(err.contains(r#"as "Env""#), "{err}");
        let err = refusal(r#"[{"layers":[]}]"#, Schema::DockerArchive);
        assert!(err.contains(r#"as "Layers""#), "{err}");
        // Annotation and label keys are data: any spelling is fine.
        check_keys(
            r#"{"annotations":{"MediaType":"x"},"config":{"Labels":{"SIZE":"1"}}}"#,
            Schema::Image,
        )
        .unwrap();
        check_keys(
            r#"{"schemaVersion":2,"mediaType":"m","layers":[{"size":1}],"unknown":{"X":1,"x2":2}}"#,
            Schema::Image,
        )
        .unwrap();
    }

    #[test]
    fn numbers_beyond_int64_are_refused() {
        let err = refusal(
            r#"{"layers":[{"size":9223372036854775808}]}"#,
            Schema::Image,
        );
        assert!(err.contains("at $.layers[0].size"), "{err}");
        check_keys(r#"{"size":9223372036854775807}"#, Schema::Image).unwrap();
    }

    #[test]
    fn malformed_json_is_left_to_the_parser() {
        assert!(check_keys("{", Schema::Image).is_err());
        assert!(check_keys("{} x", Schema::Image).is_err());
        check_keys(r#"[1, 2.5, null, true, "s"]"#, Schema::Image).unwrap();
    }
}
