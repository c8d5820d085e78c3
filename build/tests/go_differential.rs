//! verify's document reader against Go's own `encoding/json`, the decoder
//! of containerd, CRI-O and the distribution registry: a small Go program
//! (built here with the Go toolchain) folds every Unicode code point as
//! `encoding/json` folds keys, and decodes thousands of seeded generated
//! manifests and indexes (keys in other cases, `ſ` and the Kelvin sign,
//! duplicates, nulls, numbers past int64) into the image-spec structs'
//! fields. Whatever verify's reader accepts, Go must read the same; the
//! fuzz target's model of Go must agree with Go on every document.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use oci_spec::image::{ImageIndex, ImageManifest};
use openshell_transport::document::{self, Kind};
use openshell_transport::go_json::fold_rune;
use serde_json::{Value, json};

/// Generated documents per run.
const CASES: usize = 3000;

/// The Go side: `fold` prints every code point that Go's `foldRune`
/// (encoding/json/fold.go: the smallest rune of its unicode.SimpleFold
/// orbit) changes; `decode` reads one JSON-quoted document per line and
/// prints what `json.Unmarshal` makes of it, or its error.
const GO_PROGRAM: &str = r#"package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"unicode"
)

type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type Descriptor struct {
	MediaType string    `json:"mediaType"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	Platform  *Platform `json:"platform,omitempty"`
}

// image-spec's specs-go/v1 Manifest and Index, the fields verify uses.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	ArtifactType  string       `json:"artifactType,omitempty"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
	Subject       *Descriptor  `json:"subject,omitempty"`
}

type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	ArtifactType  string       `json:"artifactType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
	Subject       *Descriptor  `json:"subject,omitempty"`
}

func decode(text string, doc interface{}) map[string]interface{} {
	if err := json.Unmarshal([]byte(text), doc); err != nil {
		return map[string]interface{}{"error": err.Error()}
	}
	return map[string]interface{}{"doc": doc}
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if os.Args[1] == "fold" {
		for r := rune(0); r <= unicode.MaxRune; r++ {
			if f := foldRune(r); f != r {
				fmt.Fprintf(out, "%x %x\n", r, f)
			}
		}
		return
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	for in.Scan() {
		var text string
		if err := json.Unmarshal(in.Bytes(), &text); err != nil {
			panic(err)
		}
		result := map[string]interface{}{
			"manifest": decode(text, &Manifest{}),
			"index":    decode(text, &Index{}),
		}
		line, _ := json.Marshal(result)
		out.Write(line)
		out.WriteString("\n")
	}
}
"#;

/// Builds the Go program; `None` (after saying why) without Go outside CI.
fn go_program(dir: &Path) -> Option<std::path::PathBuf> {
    if !openshell_testsupport::require("go_differential", &["go"], "apt-get install golang-go") {
        return None;
    }
    std::fs::write(dir.join("main.go"), GO_PROGRAM).unwrap();
    std::fs::write(dir.join("go.mod"), "module gojson\n\ngo 1.19\n").unwrap();
    let binary = dir.join("gojson");
    let mut command = Command::new("go");
    command
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(dir);
    let output = openshell_testsupport::podman::run(command);
    assert!(
        output.status.success(),
        "go build: {}",
        openshell_testsupport::podman::output_text(&output)
    );
    Some(binary)
}

#[test]
fn keys_fold_as_gos_encoding_json_folds_them_for_every_code_point() {
    let dir = tempfile::tempdir().unwrap();
    let Some(program) = go_program(dir.path()) else {
        return;
    };
    let output = openshell_testsupport::podman::run({
        let mut command = Command::new(&program);
        command.arg("fold");
        command
    });
    assert!(output.status.success());
    let mut go = std::collections::HashMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let (from, to) = line.split_once(' ').unwrap();
        go.insert(
            u32::from_str_radix(from, 16).unwrap(),
            u32::from_str_radix(to, 16).unwrap(),
        );
    }
    // Go changes some 1,400 code points (each orbit keeps its smallest).
    assert!(go.len() > 1000, "Go folded only {} code points", go.len());
    assert_eq!(go.get(&0x17f), Some(&u32::from('S')));
    assert_eq!(go.get(&0x212a), Some(&u32::from('K')));
    let mut differ = Vec::new();
    let mut newer = Vec::new();
    for code in (0..=0x10ffffu32).filter(|code| !(0xd800..0xe000).contains(code)) {
        let c = char::from_u32(code).unwrap();
        let ours = u32::from(fold_rune(c));
        match go.get(&code) {
            Some(&expected) if expected != ours => differ.push(format!("{code:x}")),
            Some(_) => {}
            // Unicode's later versions only add case pairs: where Go's
            // tables (its Unicode version) have none, ours may.
            None if ours != code => newer.push(code),
            None => {}
        }
    }
    assert!(differ.is_empty(), "folded unlike Go: {differ:?}");
    // The pairs Unicode added after Go's version: a few hundred at most.
    assert!(newer.len() < 400, "{} more folds than Go's", newer.len());
    eprintln!(
        "{} code points folded by Go, all alike here; {} more from newer Unicode",
        go.len(),
        newer.len()
    );
}

/// A small deterministic generator (xorshift), seeded per case, with how
/// hostile the case is: 0 writes documents as they are, 1 and 2 respell,
/// repeat and null more and more often.
struct Rng(u64, u64);

impl Rng {
    /// A hostile change, `percent` at level 2, a fifth of it at level 1.
    fn mutate(&mut self, percent: u64) -> bool {
        match self.1 {
            0 => false,
            1 => self.next() % 500 < percent,
            _ => self.chance(percent),
        }
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// `key` as a hostile writer might spell it: its own, another case, `ſ`
/// for s, the Kelvin sign for k.
fn respell(key: &str, rng: &mut Rng) -> String {
    if !rng.mutate(25) {
        return key.to_string();
    }
    key.chars()
        .map(|c| match (c, rng.below(6)) {
            ('s' | 'S', 0) => "\u{17f}".to_string(),
            ('k' | 'K', 0) => "\u{212a}".to_string(),
            (c, 1) => c.to_ascii_uppercase().to_string(),
            (c, 2) => c.to_ascii_lowercase().to_string(),
            (c, _) => c.to_string(),
        })
        .collect()
}

/// Writes `value` as JSON text, respelling keys, sometimes repeating a
/// member (same or respelled key, another value) or nulling a value.
fn write_value(value: &Value, rng: &mut Rng, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            let mut first = true;
            for (key, member) in map {
                let mut emit = |key: &str, member: &Value, rng: &mut Rng, out: &mut String| {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&serde_json::to_string(key).unwrap());
                    out.push(':');
                    write_value(member, rng, out);
                };
                let member = if rng.mutate(3) { &Value::Null } else { member };
                emit(&respell(key, rng), member, rng, out);
                if rng.mutate(8) {
                    let other = match member {
                        Value::Array(_) => json!([]),
                        Value::String(_) => json!("application/vnd.other"),
                        Value::Number(_) => json!(7),
                        _ => member.clone(),
                    };
                    emit(&respell(key, rng), &other, rng, out);
                }
            }
            if rng.mutate(5) {
                let extra = ["manifests", "config", "layers", "mediaType"][rng.below(4)];
                if !first {
                    out.push(',');
                }
                out.push_str(&format!("\"{}\":[]", respell(extra, rng)));
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                write_value(item, rng, out);
            }
            out.push(']');
        }
        Value::Number(_) if rng.mutate(3) => out.push_str("9223372036854775808"),
        other => out.push_str(&other.to_string()),
    }
}

fn digest(n: u64) -> String {
    format!("sha256:{:064x}", n)
}

fn descriptor(media_type: &str, n: u64, platform: bool) -> Value {
    let mut value = json!({ "mediaType": media_type, "digest": digest(n), "size": n % 5000 });
    if platform {
        value["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    }
    value
}

/// A seeded manifest or index, hostile spellings included.
fn generated(seed: u64) -> String {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, seed % 3);
    let value = if rng.chance(50) {
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", rng.next(), false),
            "layers": (0..1 + rng.below(3))
                .map(|_| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", rng.next(), false))
                .collect::<Vec<_>>(),
        });
        if rng.chance(20) {
            manifest["subject"] = descriptor(
                "application/vnd.oci.image.manifest.v1+json",
                rng.next(),
                false,
            );
            manifest["artifactType"] = json!("application/spdx+json");
        }
        manifest
    } else {
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": (0..1 + rng.below(3))
                .map(|_| descriptor("application/vnd.oci.image.manifest.v1+json", rng.next(), true))
                .collect::<Vec<_>>(),
        })
    };
    let mut text = String::new();
    write_value(&value, &mut rng, &mut text);
    text
}

/// What Go's decoder made of a document, as the fuzz model's fields.
fn go_seen(result: &Value, index: bool) -> Result<targets::SeenDocument, String> {
    let result = &result[if index { "index" } else { "manifest" }];
    if let Some(error) = result.get("error") {
        return Err(error.to_string());
    }
    let doc = &result["doc"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let descriptor = |value: &Value| targets::SeenDescriptor {
        media_type: text(&value["mediaType"]),
        digest: text(&value["digest"]),
        size: value["size"].as_i64().unwrap(),
        platform: if value["platform"].is_null() {
            (String::new(), String::new())
        } else {
            (
                text(&value["platform"]["os"]),
                text(&value["platform"]["architecture"]),
            )
        },
    };
    let list = |value: &Value| {
        value
            .as_array()
            .map(|items| items.iter().map(descriptor).collect())
            .unwrap_or_default()
    };
    Ok(targets::SeenDocument {
        schema_version: doc["schemaVersion"].as_i64().unwrap(),
        media_type: text(&doc["mediaType"]),
        config: (!index).then(|| descriptor(&doc["config"])),
        entries: list(if index {
            &doc["manifests"]
        } else {
            &doc["layers"]
        }),
        subject: if doc["subject"].is_null() {
            String::new()
        } else {
            text(&doc["subject"]["digest"])
        },
        artifact_type: text(&doc["artifactType"]),
    })
}

/// Whether some object of the document has two keys equal under Go's
/// folding.
fn has_fold_duplicates(bytes: &[u8]) -> bool {
    fn walk(value: &targets::GoValue) -> bool {
        match value {
            targets::GoValue::Object(members) => {
                let mut seen = std::collections::HashSet::new();
                members.iter().any(|(key, member)| {
                    !seen.insert(openshell_transport::go_json::fold_name(key)) || walk(member)
                })
            }
            targets::GoValue::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    serde_json::from_slice::<targets::GoValue>(bytes).is_ok_and(|value| walk(&value))
}

#[test]
fn documents_verify_accepts_are_read_alike_by_go_and_the_fuzz_model_is_go() {
    let dir = tempfile::tempdir().unwrap();
    let Some(program) = go_program(dir.path()) else {
        return;
    };
    let documents: Vec<String> = (0..CASES as u64).map(generated).collect();
    let mut child = Command::new(&program)
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = documents
        .iter()
        .map(|text| serde_json::to_string(text).unwrap() + "\n")
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success());
    let results: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(results.len(), documents.len());

    let (mut accepted, mut refused, mut model_checked) = (0, 0, 0);
    for (text, result) in documents.iter().zip(&results) {
        let bytes = text.as_bytes();
        // Duplicates (under folding) are refused by verify, so the model
        // need not follow Go's merging of repeated objects: it is held to
        // Go on every document without them.
        let duplicates = has_fold_duplicates(bytes);
        for index in [false, true] {
            let go = go_seen(result, index);
            // The fuzz target's model of Go agrees with Go: both refuse,
            // or both read the same fields.
            let model = targets::go_decode(bytes, index);
            if !duplicates {
                match (&go, &model) {
                    (Ok(go), Ok(model)) => assert_eq!(go, model, "model and Go differ on {text}"),
                    (Err(_), Err(_)) => {}
                    _ => panic!("model {model:?} and Go {go:?} differ on {text}"),
                }
                model_checked += 1;
            }
            let ours = if index {
                document::check_kind("doc", Kind::Index, None, bytes)
                    .and_then(|()| document::parse::<ImageIndex>("doc", bytes).map(|_| ()))
            } else {
                document::check_kind("doc", Kind::Manifest, None, bytes)
                    .and_then(|()| document::parse::<ImageManifest>("doc", bytes).map(|_| ()))
            };
            match ours {
                Ok(()) => {
                    accepted += 1;
                    // What verify accepts, Go reads, and reads alike (the
                    // fuzz target's comparison, with Go itself).
                    let go = go.unwrap_or_else(|err| panic!("Go refuses {text}: {err}"));
                    let model = model.unwrap();
                    assert_eq!(go, model, "{text}");
                    targets::go_documents(bytes);
                }
                Err(_) => refused += 1,
            }
        }
    }
    eprintln!(
        "{CASES} generated documents: {accepted} readings accepted and read alike by Go, {refused} refused, {model_checked} model readings equal to Go's"
    );
    // Each document is read both ways, and one of them is the wrong kind.
    assert!(accepted > CASES / 4, "only {accepted} accepted");
    assert!(refused > CASES, "only {refused} refused");
}
