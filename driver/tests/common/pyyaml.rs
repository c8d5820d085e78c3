//! PyYAML (YAML 1.1, as kubectl's go-yaml v2 reads it) as the reference
//! reader of the YAML differential tests, and their seeded generator.

use std::process::Command;

use openshell_testsupport::python_tools::python_tool;
use serde_json::Value;

/// A small seeded generator (xorshift64*), so a failure reproduces.
pub struct Seeded(pub u64);

impl Seeded {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound as u64).unwrap()
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Reads `yaml` with PyYAML's safe loader (YAML 1.1) and returns the tree
/// as JSON; `None` when the venv is missing outside CI.
pub fn read_with_pyyaml(test: &str, yaml: &str) -> Option<Value> {
    let python = python_tool(test, "python3")?;
    let script = "import json, sys, yaml\n\
        json.dump(yaml.safe_load(sys.stdin.read()), sys.stdout)\n";
    let mut command = Command::new(python);
    command.args(["-c", script]);
    let output = openshell_testsupport::podman::run_with_stdin(command, yaml.as_bytes());
    assert!(
        output.status.success(),
        "PyYAML could not read the output ({}):\n{yaml}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// Reads each of `documents` with PyYAML's safe loader in one Python run:
/// the tree as JSON, or PyYAML's error. `None` when the venv is missing
/// outside CI.
pub fn read_each_with_pyyaml(
    test: &str,
    documents: &[String],
) -> Option<Vec<Result<Value, String>>> {
    let python = python_tool(test, "python3")?;
    let script = "import json, sys, yaml\n\
        out = []\n\
        for text in json.load(sys.stdin):\n\
        \x20   try:\n\
        \x20       out.append({'ok': yaml.safe_load(text)})\n\
        \x20   except Exception as err:\n\
        \x20       out.append({'error': str(err)})\n\
        json.dump(out, sys.stdout)\n";
    let mut command = Command::new(python);
    command.args(["-c", script]);
    let input = serde_json::to_vec(documents).unwrap();
    let output = openshell_testsupport::podman::run_with_stdin(command, &input);
    assert!(
        output.status.success(),
        "PyYAML failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    Some(
        read.into_iter()
            .map(|mut result| match result.get_mut("ok") {
                Some(tree) => Ok(tree.take()),
                None => Err(result["error"].as_str().unwrap_or_default().to_string()),
            })
            .collect(),
    )
}
