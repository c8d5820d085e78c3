//! The YAML output read by a YAML 1.1 reader (PyYAML, as kubectl's go-yaml
//! v2 reads YAML 1.1) and by the driver's own reader: every string comes
//! back a string, every number a number. A differential test over seeded
//! generated strings, plus the words the issue names, plus a rendered pod.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the
// failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pyyaml::{Seeded, read_with_pyyaml};
use openshell_driver_kubernetes::input::parse_yaml;
use openshell_driver_kubernetes::yaml::to_yaml;
use serde_json::{Value, json};

/// Strings a YAML 1.1 reader resolves to something else when plain.
const NAMED: &[&str] = &[
    "1_000",
    "0b101",
    "1_0.5",
    "yes",
    "on",
    "Yes",
    "ON",
    "off",
    "y",
    "n",
    "N",
    "no",
    "true",
    "False",
    "null",
    "~",
    "",
    "0x1F",
    "0o17",
    "017",
    "+1",
    "-1",
    "1:20",
    "190:20:30.15",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    ".inf",
    "-.inf",
    ".NaN",
    "1e3",
    "1.5e+3",
    "6.8523015e+5",
    "685.230_15e+03",
    "0.",
    "._",
    "<<",
    "=",
    " a",
    "a ",
    "3.13",
    "10m",
    "16Mi",
    "1Gi",
    "0",
    "00",
    "-",
    "- a",
    "? a",
    "a: b",
    "a #b",
    "#a",
    "&a",
    "*a",
    "!a",
    "|",
    ">",
    "%a",
    "@a",
    "`a",
    "[a]",
    "{a}",
    "a,b",
    "'a'",
    "\"a\"",
    "a\\b",
    "line\nbreak",
    "tab\tin",
    "nel\u{85}in",
    "ls\u{2028}in",
    "bom\u{feff}",
    "bell\u{7}",
    "del\u{7f}",
    "é",
    "python:3.13",
];

/// Strings built from the characters YAML's resolvers and indicators care
/// about, weighted towards number-like shapes.
fn generated(count: usize, seed: u64) -> Vec<String> {
    let tricky: Vec<char> = "0123456789_.:-+eExXoObByYnNaZTt ~#<=!&*%@`[]{},?|>'\"\\\n\té\u{85}"
        .chars()
        .collect();
    let numeric: Vec<char> = "0123456789_.:-+eExob".chars().collect();
    let mut rng = Seeded(seed);
    (0..count)
        .map(|_| {
            let length = 1 + rng.below(8);
            let alphabet = if rng.below(2) == 0 { &numeric } else { &tricky };
            (0..length)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        })
        .collect()
}

fn assert_same_for_pyyaml(test: &str, strings: &[String]) {
    // Each string as a value, as a key, and inside a list.
    let values: serde_json::Map<String, Value> = strings
        .iter()
        .enumerate()
        .map(|(index, text)| (format!("k{index}"), json!(text)))
        .collect();
    let keys: serde_json::Map<String, Value> = strings
        .iter()
        .enumerate()
        .map(|(index, text)| (text.clone(), json!(index)))
        .collect();
    let tree = json!({
        "values": values,
        "keys": keys,
        "list": strings,
        "numbers": [0, -7, 4294967295_u64, 1.5, -0.25, 1e-7, 6.02e23],
        "flags": [true, false, null],
        "empty": { "map": {}, "list": [] },
        "nested": [[["a", "1_000"], []], [{ "on": "off" }]],
    });
    let yaml = to_yaml(&tree);
    // The driver's own reader takes its output back unchanged too.
    assert_eq!(parse_yaml(&yaml).unwrap(), tree, "{yaml}");
    let Some(read) = read_with_pyyaml(test, &yaml) else {
        return;
    };
    for (name, expected) in tree.as_object().unwrap() {
        assert_eq!(
            &read[name], expected,
            "{name} differs after PyYAML read:\n{yaml}"
        );
    }
}

#[test]
fn the_strings_the_issue_names_come_back_as_strings() {
    let strings: Vec<String> = NAMED.iter().map(|text| (*text).to_string()).collect();
    assert_same_for_pyyaml("the_strings_the_issue_names_come_back_as_strings", &strings);
}

#[test]
fn seeded_generated_strings_come_back_unchanged() {
    for seed in 1..=4_u64 {
        let strings = generated(2500, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        assert_same_for_pyyaml("seeded_generated_strings_come_back_unchanged", &strings);
    }
}

#[test]
fn a_rendered_pod_reads_the_same_in_yaml_1_1() {
    let test = "a_rendered_pod_reads_the_same_in_yaml_1_1";
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("pod.yaml");
    std::fs::write(
        &template,
        "metadata:\n  labels:\n    on: \"yes\"\n    version: \"1_000\"\nspec:\n  containers:\n  - name: agent\n    image: \"registry.example/app:1_0.5\"\n    env:\n    - name: FLAG\n      value: \"on\"\n    - name: MASK\n      value: \"0b101\"\n",
    )
    .unwrap();
    let template = template.to_str().unwrap();
    let args = [
        "render",
        "--template",
        template,
        "--",
        "echo",
        "yes",
        "1_000",
        "0b101",
    ];
    let (json_text, _) = common::run_ok(&args, &[]);
    let mut yaml_args = args.to_vec();
    yaml_args.splice(1..1, ["--format", "yaml"]);
    let (yaml, _) = common::run_ok(&yaml_args, &[]);
    let Some(read) = read_with_pyyaml(test, &yaml) else {
        return;
    };
    let expected: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(read, expected, "{yaml}");
}
