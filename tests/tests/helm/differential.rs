//! The schema predicts what the driver accepts: a repository, tag, digest
//! or Kubernetes version that helm lets through must be one the driver
//! takes from the chart's config file, or the chart would install a driver
//! that refuses to start. Seeded generated values, each through the real
//! helm and, whatever helm said, the real driver.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{Helm, chart_dir, config_file, driver_config};

/// A small deterministic generator (SplitMix64): the same seed, the same
/// cases, so a failure can be replayed.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn text(&mut self, alphabet: &str, max: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        let length = self.below(max + 1);
        (0..length)
            .map(|_| chars[self.below(chars.len())])
            .collect()
    }
}

/// The fields under test: the values path, and how a value goes to the
/// driver directly (as the reference or version the chart would make).
#[derive(Debug, Clone, Copy)]
enum Field {
    Repository,
    Tag,
    Digest,
    KubeVersion,
}

impl Field {
    fn generate(self, rng: &mut Seeded) -> String {
        match self {
            Self::Repository => {
                let host = rng.pick(&[
                    "",
                    "registry.example/",
                    "127.0.0.1:5000/",
                    "Registry.Example:443/",
                    "localhost/",
                    "-bad.host/",
                    "host_name/",
                ]);
                let path = rng.text("abcz019._-/", 14);
                format!("{host}{}{path}", rng.pick(&["", "openshell", "a"]))
            }
            Self::Tag => {
                if rng.below(10) == 0 {
                    return "t".repeat(127 + rng.below(3));
                }
                rng.text("aZ09_.-+:@", 12)
            }
            Self::Digest => {
                if rng.below(2) == 0 {
                    // Well-formed half the time, to reach both verdicts.
                    let hex: String = (0..64)
                        .map(|_| char::from(b"0123456789abcdef"[rng.below(16)]))
                        .collect();
                    return format!("sha256:{hex}");
                }
                let algorithm = rng.pick(&["sha256:", "sha256:", "sha512:", "SHA256:", ""]);
                let hex = rng.text("0123456789abcdef", 2);
                let length = 62 + rng.below(5);
                let body: String = (0..length)
                    .map(|index| hex.chars().nth(index % hex.len().max(1)).unwrap_or('0'))
                    .collect();
                let body = if rng.below(6) == 0 {
                    body.to_uppercase()
                } else {
                    body
                };
                format!("{algorithm}{body}")
            }
            Self::KubeVersion => {
                if rng.below(2) == 0 {
                    let spellings = crate::agreement::spellings(28 + rng.below(13) as u64);
                    return spellings[rng.below(spellings.len())].clone();
                }
                let prefix = rng.pick(&["", "v", "V"]);
                let major = rng.pick(&["1", "1", "1", "2", "01"]);
                let minor = rng.pick(&["28", "35", "40", "0", "x", ""]);
                let patch = rng.pick(&["", ".2", ".0", ".x", ".1.1"]);
                let suffix = rng.pick(&[
                    "",
                    "",
                    "-rc.1",
                    "+k3s1",
                    "-eks-4f1c2a3",
                    "-gke.1200",
                    "-",
                    "+",
                    "_x",
                ]);
                format!("{prefix}{major}.{minor}{patch}{suffix}")
            }
        }
    }

    fn values(self, value: &str) -> Value {
        match self {
            Self::Repository => json!({ "supervisor": { "image": { "repository": value } } }),
            Self::Tag => json!({ "supervisor": { "image": { "tag": value } } }),
            Self::Digest => json!({ "supervisor": { "image": { "digest": value } } }),
            Self::KubeVersion => json!({ "kubeVersion": value }),
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Repository => "/supervisor/image/repository",
            Self::Tag => "/supervisor/image/tag",
            Self::Digest => "/supervisor/image/digest",
            Self::KubeVersion => "/kubeVersion",
        }
    }

    /// The driver's flags for the value, as the chart would pass it.
    fn driver_args(self, value: &str) -> Vec<String> {
        let version = ["--kubernetes-version".to_string(), "v1.35.0".to_string()];
        let image = |reference: String| {
            let mut args = vec!["--supervisor-image".to_string(), reference];
            args.extend(version.clone());
            args
        };
        match self {
            Self::Repository => image(format!("{value}:{}", env!("CARGO_PKG_VERSION"))),
            Self::Tag if value.is_empty() => image(format!(
                "openshell/supervisor:{}",
                env!("CARGO_PKG_VERSION")
            )),
            Self::Tag => image(format!("openshell/supervisor:{value}")),
            Self::Digest if value.is_empty() => image(format!(
                "openshell/supervisor:{}",
                env!("CARGO_PKG_VERSION")
            )),
            Self::Digest => image(format!("openshell/supervisor@{value}")),
            Self::KubeVersion => vec!["--kubernetes-version".to_string(), value.to_string()],
        }
    }
}

/// Generated values per field.
const CASES_PER_FIELD: usize = 24;

/// The seed; change it to explore, keep it to replay.
const SEED: u64 = 0x0be5_4e11;

#[test]
fn every_value_the_schema_lets_through_the_driver_accepts() {
    let test = "every_value_the_schema_lets_through_the_driver_accepts";
    let Some(helm) = Helm::find(test) else {
        return;
    };
    let mut rng = Seeded(SEED);
    let dir = tempfile::tempdir().unwrap();
    let values_file = dir.path().join("values.json");
    let config = dir.path().join("config.yaml");
    let mut tally: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for field in [
        Field::Repository,
        Field::Tag,
        Field::Digest,
        Field::KubeVersion,
    ] {
        for _ in 0..CASES_PER_FIELD {
            let value = field.generate(&mut rng);
            std::fs::write(&values_file, field.values(&value).to_string()).unwrap();
            let output = helm.run(&[
                "template",
                "r",
                chart_dir().to_str().unwrap(),
                "--kube-version",
                "v1.35.0",
                "-f",
                values_file.to_str().unwrap(),
            ]);
            let schema_accepts = output.status.success();
            let driver = if schema_accepts {
                let documents = crate::documents(&String::from_utf8(output.stdout).unwrap());
                std::fs::write(&config, config_file(&documents)).unwrap();
                driver_config(&["--config", config.to_str().unwrap()], &[])
            } else {
                let stderr = String::from_utf8_lossy(&output.stderr);
                if !stderr.contains(field.path()) {
                    failures.push(format!(
                        "{field:?} {value:?}: helm's refusal does not name {}: {stderr}",
                        field.path()
                    ));
                }
                let args = field.driver_args(&value);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                driver_config(&args, &[])
            };
            let verdict = match (schema_accepts, driver.is_ok()) {
                (true, true) => "both accept",
                (false, false) => "both refuse",
                (false, true) => "only the schema refuses",
                (true, false) => {
                    failures.push(format!(
                        "{field:?} {value:?}: the schema lets it through, the driver refuses: {}",
                        driver.unwrap_err()
                    ));
                    "only the driver refuses"
                }
            };
            *tally.entry((field.path(), verdict)).or_default() += 1;
        }
    }
    eprintln!("seed {SEED:#x}, {CASES_PER_FIELD} values per field: {tally:#?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The generator reaches both sides of every field's rule.
    for field in [
        Field::Repository,
        Field::Tag,
        Field::Digest,
        Field::KubeVersion,
    ] {
        assert!(
            tally.contains_key(&(field.path(), "both accept")),
            "{tally:?}"
        );
        assert!(
            tally
                .keys()
                .any(|(path, verdict)| *path == field.path() && *verdict != "both accept"),
            "{tally:?}"
        );
    }
}
