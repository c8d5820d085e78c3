//! build-image's layer is no bigger than buildah's for ordinary programs.
//!
//! build-image compresses in parallel chunks with libdeflate
//! (`build/src/gzip.rs`); buildah compresses with containers/image's gzip.
//! The promise is a layer no bigger than the one `buildah bud -f
//! Dockerfile.scratch` and `buildah push` write, on any ordinary program, so
//! each input here is packaged by both tools (the real buildah, in private storage) and the
//! layer blobs compared. The inputs are real programs found on every machine
//! that has buildah: the static supervisor followed by Go executables
//! (podman, buildah, skopeo: the kind on which an earlier level came out
//! bigger) or by the C ones the machine has, cut to 32 MiB. The
//! supervisor's ELF comes first, so each is a static executable that
//! `--binary` accepts. Speed is measured apart (BENCHMARKS.md).

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{build_image, run_ok};
use openshell_contract::BINARY_NAME;
use openshell_testsupport::supervisor::workspace_root;
use openshell_testsupport::tools::{test_tools_dir, which};
use openshell_testsupport::{Containers, require, static_supervisor_binary};

/// Size of each input, as in `build/benches/build-vs-buildah.sh`.
const INPUT_SIZE: usize = 32 * 1024 * 1024;

/// The inputs: a name and the programs whose bytes follow the supervisor.
/// Every program named is installed with buildah and podman, but helm
/// (from the test tools folder), qemu-aarch64-static and perl, which
/// `scripts/setup-test-env` installs. helm's upstream build is the kind of
/// program on which level 3 was closest to buildah's size.
const INPUTS: [(&str, &[&str]); 4] = [
    ("go-helm", &["helm"]),
    ("go-podman", &["podman", "buildah"]),
    ("go-skopeo", &["skopeo", "buildah", "podman"]),
    (
        "c-and-go",
        &["qemu-aarch64-static", "perl", "runc", "podman"],
    ),
];

/// The supervisor followed by the bytes of `programs`, cut to
/// [`INPUT_SIZE`], written to `path` as an executable.
fn write_input(path: &Path, programs: &[&str]) {
    let mut bytes = std::fs::read(static_supervisor_binary()).unwrap();
    for program in programs {
        let installed = test_tools_dir().join("bin").join(program);
        let found = if installed.is_file() {
            installed
        } else if let Some(found) = which(program) {
            found
        } else {
            panic!(
                "{program} is neither in {} nor on PATH (scripts/setup-test-env installs every program used here)",
                installed.display()
            );
        };
        bytes.extend(std::fs::read(found).unwrap());
    }
    assert!(
        bytes.len() >= INPUT_SIZE,
        "{programs:?} give only {} bytes",
        bytes.len()
    );
    bytes.truncate(INPUT_SIZE);
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o755))
        .unwrap();
}

/// The size of the one layer of the single-platform image in `layout`: the
/// layer descriptor's size in the manifest the index names.
fn layer_size(layout: &Path) -> u64 {
    let read_json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    };
    let blob = |digest: &serde_json::Value| {
        let digest = digest.as_str().unwrap();
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    };
    let index = read_json(layout.join("index.json"));
    let mut document = read_json(blob(&index["manifests"][0]["digest"]));
    // build-image writes an image index even for one platform.
    while document.get("manifests").is_some() {
        document = read_json(blob(&document["manifests"][0]["digest"]));
    }
    let layers = document["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{document:#}");
    let size = layers[0]["size"].as_u64().unwrap();
    assert_eq!(
        std::fs::metadata(blob(&layers[0]["digest"])).unwrap().len(),
        size,
        "the layer blob's size is not its descriptor's"
    );
    size
}

#[test]
fn build_image_layers_are_no_bigger_than_buildahs() {
    let test = "build_image_layers_are_no_bigger_than_buildahs";
    let Some(containers) = Containers::new(test) else {
        return;
    };
    if !require(test, &["buildah"], "apt-get install buildah") {
        return;
    }
    let dockerfile = workspace_root().join("Dockerfile.scratch");
    let mut compared = Vec::new();
    for (name, programs) in INPUTS {
        let context = containers.dir().join(name);
        std::fs::create_dir_all(&context).unwrap();
        let input = context.join(BINARY_NAME);
        write_input(&input, programs);

        let tag = format!("localhost/layer-size:{name}");
        containers.buildah_bud(Some(&dockerfile), &context, &tag);
        let buildah_layout = containers.dir().join(format!("{name}-buildah"));
        containers.buildah_ok([
            "push",
            "--quiet",
            &tag,
            &format!("oci:{}:latest", buildah_layout.display()),
        ]);

        let ours_layout = containers.dir().join(format!("{name}-build-image"));
        let mut build = build_image();
        build
            .arg("--binary")
            .arg(&input)
            .arg("--output")
            .arg(&ours_layout)
            .arg("--quiet");
        run_ok(build);

        let buildah = layer_size(&buildah_layout);
        let ours = layer_size(&ours_layout);
        // Both layers hold the same program: a layer far smaller than
        // buildah's would mean something is missing from it.
        assert!(
            ours * 10 > buildah * 8,
            "{name}: build-image's layer ({ours} B) is implausibly small against buildah's ({buildah} B)"
        );
        compared.push((name, ours, buildah));
    }
    let report: Vec<String> = compared
        .iter()
        .map(|(name, ours, buildah)| {
            format!(
                "{name}: build-image {ours} B, buildah {buildah} B ({:+.2} %)",
                (*ours as f64 / *buildah as f64 - 1.0) * 100.0
            )
        })
        .collect();
    let report = report.join("\n");
    println!("{report}");
    for (name, ours, buildah) in &compared {
        assert!(
            ours <= buildah,
            "{name}: build-image's layer is bigger than buildah's:\n{report}"
        );
    }
}
