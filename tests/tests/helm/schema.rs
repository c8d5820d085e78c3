//! values.schema.json: each bad value the issue names is refused by helm,
//! and helm's error names the value's key (and, where it is text, the
//! value); README's values table agrees with the schema.

use std::collections::BTreeMap;

use openshell_driver_kubernetes::yaml_read::read_document;
use serde_json::Value;

use crate::{Helm, chart_dir};

/// Renders the chart with `values` (a values file's text) and returns
/// helm's error, asserting it failed.
fn refused(test: &str, values: &str) -> Option<String> {
    let helm = Helm::find(test)?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let stderr = helm.err(&[
        "template",
        "r",
        chart_dir().to_str().unwrap(),
        "-f",
        file.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("don't meet the specifications of the schema"),
        "not refused by the schema: {stderr}"
    );
    Some(stderr)
}

fn assert_names(stderr: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{needle:?} not in helm's error:\n{stderr}"
        );
    }
}

#[test]
fn schema_refuses_a_misspelled_sideload_method() {
    let Some(stderr) = refused(
        "schema_refuses_a_misspelled_sideload_method",
        "supervisor:\n  sideloadMethod: imagevolume\n",
    ) else {
        return;
    };
    assert_names(
        &stderr,
        &[
            "/supervisor/sideloadMethod",
            "'imagevolume'",
            "image-volume",
            "init-container",
        ],
    );
}

#[test]
fn schema_refuses_a_method_in_another_case() {
    let Some(stderr) = refused(
        "schema_refuses_a_method_in_another_case",
        "supervisor:\n  sideloadMethod: Init-Container\n",
    ) else {
        return;
    };
    assert_names(&stderr, &["/supervisor/sideloadMethod", "'Init-Container'"]);
}

#[test]
fn schema_refuses_a_digest_of_another_algorithm() {
    let digest = format!("sha512:{}", "a".repeat(128));
    let Some(stderr) = refused(
        "schema_refuses_a_digest_of_another_algorithm",
        &format!("supervisor:\n  image:\n    digest: {digest}\n"),
    ) else {
        return;
    };
    assert_names(&stderr, &["/supervisor/image/digest", &digest]);
}

#[test]
fn schema_refuses_a_short_digest() {
    let digest = format!("sha256:{}", "0".repeat(63));
    let Some(stderr) = refused(
        "schema_refuses_a_short_digest",
        &format!("supervisor:\n  image:\n    digest: {digest}\n"),
    ) else {
        return;
    };
    assert_names(&stderr, &["/supervisor/image/digest", &digest]);
}

#[test]
fn schema_refuses_a_digest_in_upper_case_hex() {
    let digest = format!("sha256:{}", "A".repeat(64));
    let Some(stderr) = refused(
        "schema_refuses_a_digest_in_upper_case_hex",
        &format!("supervisor:\n  image:\n    digest: {digest}\n"),
    ) else {
        return;
    };
    assert_names(&stderr, &["/supervisor/image/digest", &digest]);
}

#[test]
fn schema_refuses_a_bare_hex_digest() {
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let Some(stderr) = refused(
        "schema_refuses_a_bare_hex_digest",
        &format!("supervisor:\n  image:\n    digest: \"{digest}\"\n"),
    ) else {
        return;
    };
    assert_names(&stderr, &["/supervisor/image/digest", digest]);
}

#[test]
fn schema_refuses_an_unknown_pull_policy() {
    let Some(stderr) = refused(
        "schema_refuses_an_unknown_pull_policy",
        "supervisor:\n  image:\n    pullPolicy: Sometimes\n",
    ) else {
        return;
    };
    assert_names(
        &stderr,
        &[
            "/supervisor/image/pullPolicy",
            "'Sometimes'",
            "IfNotPresent",
        ],
    );
}

#[test]
fn schema_refuses_a_number_where_a_tag_goes() {
    // YAML reads `1.0` as a number: a tag must be quoted.
    let Some(stderr) = refused(
        "schema_refuses_a_number_where_a_tag_goes",
        "supervisor:\n  image:\n    tag: 1.0\n",
    ) else {
        return;
    };
    assert_names(
        &stderr,
        &["/supervisor/image/tag", "got number, want string"],
    );
}

#[test]
fn schema_refuses_text_where_a_boolean_goes() {
    let Some(stderr) = refused(
        "schema_refuses_text_where_a_boolean_goes",
        "supervisor:\n  imageVolumeFeatureGate: \"yes\"\n",
    ) else {
        return;
    };
    assert_names(
        &stderr,
        &[
            "/supervisor/imageVolumeFeatureGate",
            "got string, want boolean",
        ],
    );
}

#[test]
fn schema_refuses_a_list_of_numbers_as_pull_secrets() {
    let Some(stderr) = refused(
        "schema_refuses_a_list_of_numbers_as_pull_secrets",
        "supervisor:\n  imagePullSecrets: [1]\n",
    ) else {
        return;
    };
    assert_names(&stderr, &["/supervisor/imagePullSecrets/0", "want string"]);
}

#[test]
fn schema_refuses_an_unknown_key_under_supervisor() {
    let Some(stderr) = refused(
        "schema_refuses_an_unknown_key_under_supervisor",
        "supervisor:\n  sideloadMetod: image-volume\n",
    ) else {
        return;
    };
    assert_names(
        &stderr,
        &["at '/supervisor'", "'sideloadMetod' not allowed"],
    );
}

#[test]
fn schema_refuses_an_unknown_key_under_image() {
    let Some(stderr) = refused(
        "schema_refuses_an_unknown_key_under_image",
        "supervisor:\n  image:\n    repo: example/supervisor\n",
    ) else {
        return;
    };
    assert_names(&stderr, &["at '/supervisor/image'", "'repo' not allowed"]);
}

#[test]
fn schema_refuses_an_unknown_top_level_key() {
    let Some(stderr) = refused(
        "schema_refuses_an_unknown_top_level_key",
        "kubernetesVersion: v1.35.0\n",
    ) else {
        return;
    };
    assert_names(&stderr, &["'kubernetesVersion' not allowed"]);
}

#[test]
fn schema_refuses_a_kube_version_that_is_not_one() {
    let Some(stderr) = refused(
        "schema_refuses_a_kube_version_that_is_not_one",
        "kubeVersion: latest\n",
    ) else {
        return;
    };
    assert_names(&stderr, &["/kubeVersion", "'latest'"]);
}

#[test]
fn schema_refuses_a_repository_with_a_tag() {
    let Some(stderr) = refused(
        "schema_refuses_a_repository_with_a_tag",
        "supervisor:\n  image:\n    repository: openshell/supervisor:0.1.0\n",
    ) else {
        return;
    };
    assert_names(
        &stderr,
        &[
            "/supervisor/image/repository",
            "'openshell/supervisor:0.1.0'",
        ],
    );
}

#[test]
fn schema_refuses_an_unknown_security_profile() {
    let Some(stderr) = refused(
        "schema_refuses_an_unknown_security_profile",
        "supervisor:\n  securityProfile: strict\n",
    ) else {
        return;
    };
    assert_names(&stderr, &["/supervisor/securityProfile", "'strict'"]);
}

/// Every leaf of the schema: dotted key to its type and description.
fn schema_leaves() -> BTreeMap<String, (String, String)> {
    fn walk(prefix: &str, node: &Value, out: &mut BTreeMap<String, (String, String)>) {
        let Some(properties) = node["properties"].as_object() else {
            return;
        };
        for (key, child) in properties {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if child["type"] == "object" && child.get("properties").is_some() {
                walk(&path, child, out);
            } else if key != "global" {
                out.insert(
                    path,
                    (
                        child["type"].as_str().unwrap().to_string(),
                        child["description"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                );
            }
        }
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let mut leaves = BTreeMap::new();
    walk("", &schema, &mut leaves);
    leaves
}

/// The value at a dotted key of values.yaml, as JSON.
fn default_value(values: &Value, key: &str) -> Value {
    key.split('.')
        .fold(values, |node, part| &node[part])
        .clone()
}

#[test]
fn readme_values_table_lists_every_schema_key_with_its_type_and_default() {
    let readme = std::fs::read_to_string(crate::workspace_root().join("README.md")).unwrap();
    let values: Value =
        read_document(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap()).unwrap();
    // The table's rows: | `key` | type | `default` | description |
    let rows: BTreeMap<String, Vec<String>> = readme
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect();
            (cells[0].trim_matches('`').to_string(), cells)
        })
        .collect();
    let leaves = schema_leaves();
    assert!(leaves.len() >= 14, "{leaves:?}");
    for (key, (kind, _)) in &leaves {
        let row = rows
            .get(key)
            .unwrap_or_else(|| panic!("README's values table has no row for `{key}`"));
        assert_eq!(&row[1], kind, "README: the type of `{key}`");
        let default = default_value(&values, key);
        let shown = match &default {
            Value::String(text) => format!("`\"{text}\"`"),
            other => format!("`{other}`"),
        };
        assert_eq!(row[2], shown, "README: the default of `{key}`");
    }
    // And no row for a key the schema does not have (the values table's
    // rows are the dotted keys under the chart's top-level values).
    for key in rows.keys().filter(|key| {
        key.starts_with("supervisor.") || key.starts_with("configMap.") || *key == "kubeVersion"
    }) {
        assert!(
            leaves.contains_key(key),
            "README lists `{key}`, which the schema does not have"
        );
    }
}

#[test]
fn schema_refuses_a_relative_public_key_path() {
    let Some(stderr) = refused(
        "schema_refuses_a_relative_public_key_path",
        "supervisor:\n  publicKeyFile: keys/supervisor.pub\n",
    ) else {
        return;
    };
    assert_names(
        &stderr,
        &["/supervisor/publicKeyFile", "'keys/supervisor.pub'"],
    );
}
