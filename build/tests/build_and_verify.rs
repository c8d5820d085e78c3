//! Building with `build-image --binary`, then verifying what was written;
//! reproducibility, reuse, and the refusals of bad input.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use openshell_contract::RELEASE_TAG;
use openshell_testsupport::BoundedOutput;

use common::{
    aarch64_copy, arm64_supervisor_copy, build_image, fails, ok, run, supervisor_copy, tempdir,
    verify_json,
};
use openshell_contract::build_result::BuildResult;

fn as_str(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn build_json(args: &[&str], epoch: Option<&str>) -> BuildResult {
    let mut command = build_image();
    command.args(args).arg("--json");
    if let Some(epoch) = epoch {
        command.env("SOURCE_DATE_EPOCH", epoch);
    }
    let stdout = ok(command.bounded_output());
    serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("not a BuildResult ({err}): {stdout}"))
}

#[test]
fn build_then_verify() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let result = build_json(
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--output",
            layout.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        result.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(result.platforms.len(), 1);
    let platform = &result.platforms[0];
    assert_eq!(platform.platform, "linux/amd64");
    let sha = openshell_contract::digest::sha256_hex(&std::fs::read(&binary).unwrap());
    assert_eq!(platform.binary_sha256, sha);
    // The release version first (what the driver's default image names),
    // then latest.
    assert_eq!(result.layout().unwrap().tag, RELEASE_TAG);
    assert_eq!(result.tags, [RELEASE_TAG, "latest"]);

    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &["--run"]);
    assert!(passed, "{report:#}");
    assert_eq!(report["platforms"][0]["manifest_digest"], result.digest);
    assert_eq!(report["platforms"][0]["binary_sha256"], sha);
    assert_eq!(common::check(&report, "run-version")["outcome"], "passed");
    assert_eq!(
        common::check(&report, "annotation-sha256")["outcome"],
        "passed"
    );

    // The layer holds exactly the contract's one file.
    let layer = layout
        .join("blobs/sha256")
        .join(platform.layer_digest.trim_start_matches("sha256:"));
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(
        std::fs::File::open(layer).unwrap(),
    ));
    let entries: Vec<(String, u32, u64, u64, u64)> = archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            (
                entry.path().unwrap().display().to_string(),
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.mtime().unwrap(),
            )
        })
        .collect();
    assert_eq!(entries, [("openshell-sandbox".to_string(), 0o555, 0, 0, 0)]);
}

#[test]
fn human_output_names_digest_size_sha_and_next_steps() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let output = run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
    ]);
    let stdout = ok(output);
    assert!(stdout.contains("image      sha256:"), "{stdout}");
    assert!(stdout.contains("binary sha256 "), "{stdout}");
    assert!(stdout.contains("bytes)"), "{stdout}");
    assert!(
        stdout.contains("/opt/openshell/bin/openshell-sandbox"),
        "{stdout}"
    );
    assert!(stdout.contains("skopeo copy oci:"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "containers-storage:openshell/supervisor:{RELEASE_TAG}"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "--push REGISTRY/openshell/supervisor:{RELEASE_TAG}"
        )),
        "{stdout}"
    );
}

#[test]
fn two_builds_give_one_digest_and_the_epoch_is_honoured() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let args = |name: &str| {
        vec![
            "--binary".to_string(),
            binary.display().to_string(),
            "--output".to_string(),
            dir.path().join(name).display().to_string(),
        ]
    };
    let one_args = args("one");
    let two_args = args("two");
    let three_args = args("three");
    let one = build_json(&as_str(&one_args), Some("1700000000"));
    let two = build_json(&as_str(&two_args), Some("1700000000"));
    assert_eq!(one.digest, two.digest);
    assert_eq!(one.platforms[0].layer_digest, two.platforms[0].layer_digest);
    let three = build_json(&as_str(&three_args), Some("1700000001"));
    assert_ne!(one.digest, three.digest);

    let config = |result: &BuildResult, name: &str| -> serde_json::Value {
        let layout = dir.path().join(name);
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                layout
                    .join("blobs/sha256")
                    .join(result.digest.trim_start_matches("sha256:")),
            )
            .unwrap(),
        )
        .unwrap();
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        serde_json::from_slice(
            &std::fs::read(layout.join("blobs/sha256").join(config_digest)).unwrap(),
        )
        .unwrap()
    };
    let config = config(&one, "one");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["history"][0]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
}

#[test]
fn an_invalid_source_date_epoch_is_refused_by_name() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let mut command = build_image();
    command
        .args(["--binary", binary.to_str().unwrap(), "--output"])
        .arg(dir.path().join("layout"))
        .env("SOURCE_DATE_EPOCH", "yesterday");
    let stderr = fails(command.bounded_output());
    assert!(
        stderr.contains("SOURCE_DATE_EPOCH=\"yesterday\" is not valid"),
        "{stderr}"
    );
    assert!(!dir.path().join("layout").exists());
}

#[test]
fn a_second_run_reuses_the_layer_and_a_changed_binary_does_not() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let args = [
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
    ];
    let first = build_image().args(args).bounded_output();
    let first_stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{first_stderr}");
    assert!(first_stderr.contains("compressing"), "{first_stderr}");
    let layer_blob = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .count();

    let second = build_image().args(args).bounded_output();
    let second_stderr = String::from_utf8_lossy(&second.stderr).into_owned();
    assert!(second.status.success(), "{second_stderr}");
    assert!(!second_stderr.contains("compressing"), "{second_stderr}");
    assert!(
        second_stderr.contains("binary unchanged"),
        "{second_stderr}"
    );
    assert!(second_stderr.contains("0 new blob(s)"), "{second_stderr}");
    assert_eq!(
        std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .count(),
        layer_blob
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).lines().next(),
        String::from_utf8_lossy(&second.stdout).lines().next()
    );

    // Same bytes, new file (new inode and times): read and hashed again,
    // and once the hash matches, the layer is reused.
    let copy = dir.path().join("copy");
    std::fs::copy(&binary, &copy).unwrap();
    std::fs::rename(&copy, &binary).unwrap();
    let third = build_image().args(args).bounded_output();
    let third_stderr = String::from_utf8_lossy(&third.stderr).into_owned();
    assert!(third.status.success(), "{third_stderr}");
    assert!(
        third_stderr.contains("compression called off"),
        "{third_stderr}"
    );
    assert!(third_stderr.contains("reusing layer"), "{third_stderr}");

    // Different bytes: compressed again.
    let mut bytes = std::fs::read(&binary).unwrap();
    bytes.extend_from_slice(b"appended");
    std::fs::write(&binary, bytes).unwrap();
    let fourth = build_image().args(args).bounded_output();
    let fourth_stderr = String::from_utf8_lossy(&fourth.stderr).into_owned();
    assert!(
        fourth.status.success() && fourth_stderr.contains("compressing"),
        "{fourth_stderr}"
    );

    // The layout stays valid throughout.
    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &[]);
    assert!(passed, "{report:#}");
}

#[test]
fn other_tags_are_kept_and_the_same_tag_moves() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let build = |tag: &str, epoch: &str| {
        build_json(
            &[
                "--binary",
                binary.to_str().unwrap(),
                "--output",
                layout.to_str().unwrap(),
                "--tag",
                tag,
            ],
            Some(epoch),
        )
    };
    let stable = build("stable", "1");
    let first = build("latest", "2");
    let second = build("latest", "3");
    assert_ne!(first.digest, second.digest);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    // The SBOM referrers are untagged entries: the tags are the others.
    let (tagged, referrers): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .partition(|entry| {
                entry["annotations"]["org.opencontainers.image.ref.name"].is_string()
            });
    // One SBOM for each image a tag still names (the first latest's went
    // with it).
    assert_eq!(referrers.len(), 2, "{index:#}");
    let tags: Vec<(String, String)> = tagged
        .into_iter()
        .map(|entry| {
            (
                entry["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                entry["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        [
            ("stable".to_string(), stable.digest.clone()),
            ("latest".to_string(), second.digest.clone())
        ]
    );
    for tag in ["stable", "latest"] {
        let (passed, report) = verify_json(&format!("oci:{}:{tag}", layout.display()), &[]);
        assert!(passed, "{report:#}");
    }
}

#[test]
fn a_dynamically_linked_binary_is_refused_and_nothing_is_written() {
    let dir = tempdir();
    let layout = dir.path().join("layout");
    let exe = std::env::current_exe().unwrap();
    let stderr = fails(run(&[
        "--binary",
        exe.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
    ]));
    assert!(
        stderr.contains("is not a complete static executable"),
        "{stderr}"
    );
    assert!(stderr.contains("PT_INTERP"), "{stderr}");
    assert!(stderr.contains(exe.to_str().unwrap()), "{stderr}");
    assert!(!layout.exists());
}

#[test]
fn a_non_elf_binary_is_refused() {
    let dir = tempdir();
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let layout = dir.path().join("layout");
    let stderr = fails(run(&[
        "--binary",
        script.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
    ]));
    assert!(
        stderr.contains("script.sh is not a usable ELF executable: not an ELF file"),
        "{stderr}"
    );
    assert!(!layout.exists());
}

#[test]
fn a_wrong_architecture_binary_is_refused() {
    let dir = tempdir();
    let arm = aarch64_copy(dir.path());
    let layout = dir.path().join("layout");
    let stderr = fails(run(&[
        "--binary",
        &format!("linux/amd64={}", arm.display()),
        "--output",
        layout.to_str().unwrap(),
    ]));
    assert!(stderr.contains(&arm.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("is an ELF for arm64 (e_machine 183)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("given for platform linux/amd64"),
        "{stderr}"
    );
    assert!(!layout.exists());
}

#[test]
fn an_invalid_tag_is_refused() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let stderr = fails(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
        "--tag",
        "bad:tag",
    ]));
    assert!(stderr.contains("invalid tag \"bad:tag\""), "{stderr}");
    assert!(!layout.exists());
}

#[test]
fn an_invalid_push_reference_is_refused_before_any_work() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let stderr = fails(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
        "--push",
        "127.0.0.1:5000/UPPER/Case:x",
    ]));
    assert!(
        stderr.contains("invalid image reference '127.0.0.1:5000/UPPER/Case:x'"),
        "{stderr}"
    );
    assert!(!layout.exists());
}

#[test]
fn an_output_that_is_not_a_layout_is_refused_and_left_untouched() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let folder = dir.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("cat.jpg"), "meow").unwrap();
    let stderr = fails(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        folder.to_str().unwrap(),
    ]));
    assert!(
        stderr.contains("refusing to write the image layout into"),
        "{stderr}"
    );
    assert!(stderr.contains("no oci-layout file"), "{stderr}");
    let names: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["cat.jpg"]);

    let file = dir.path().join("a-file");
    std::fs::write(&file, "data").unwrap();
    let stderr = fails(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        file.to_str().unwrap(),
    ]));
    assert!(stderr.contains("it is not a folder"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
}

#[test]
fn a_multi_platform_index() {
    let test = "a_multi_platform_index";
    let dir = tempdir();
    let amd64 = supervisor_copy(dir.path());
    let arm64 = arm64_supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let result = build_json(
        &[
            "--binary",
            &format!("linux/amd64={}", amd64.display()),
            "--binary",
            &format!("linux/arm64={}", arm64.display()),
            "--output",
            layout.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(result.media_type, "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<&str> = result
        .platforms
        .iter()
        .map(|platform| platform.platform.as_str())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(result.digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let architectures: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(architectures, ["amd64", "arm64"]);

    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &["--run"]);
    assert!(passed, "{report:#}");
    assert_eq!(report["platforms"].as_array().unwrap().len(), 2);
    let run_version = |platform: usize| {
        report["platforms"][platform]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "run-version")
            .unwrap()
            .clone()
    };
    assert_eq!(run_version(0)["outcome"], "passed");
    // The arm64 binary runs under qemu-user where it is installed (always
    // in CI); elsewhere the check says what to install.
    let arm_run = run_version(1);
    if openshell_testsupport::require(
        test,
        &["qemu-aarch64-static"],
        "apt-get install qemu-user-static",
    ) {
        assert_eq!(arm_run["outcome"], "passed", "{arm_run:#}");
    } else {
        assert_eq!(arm_run["outcome"], "skipped", "{arm_run:#}");
        assert!(
            arm_run["details"][0]
                .as_str()
                .unwrap()
                .contains("install qemu-aarch64-static (apt-get install qemu-user-static)"),
            "{arm_run:#}"
        );
    }
}

#[test]
fn verify_refuses_an_unknown_tag_and_a_bad_source() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    ok(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
        "--quiet",
    ]));
    let stderr = fails(run(&["verify", &format!("oci:{}:nope", layout.display())]));
    assert!(
        stderr.contains(&format!(
            "has no image tagged \"nope\" (tags there: {RELEASE_TAG}, latest)"
        )),
        "{stderr}"
    );
    let stderr = fails(run(&["verify", "somewhere/else"]));
    assert!(
        stderr.contains("invalid image reference \"somewhere/else\""),
        "{stderr}"
    );
}

#[test]
fn metadata_file_holds_the_build_result() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    let metadata = dir.path().join("result.json");
    let stdout = ok(run(&[
        "--binary",
        binary.to_str().unwrap(),
        "--output",
        layout.to_str().unwrap(),
        "--metadata-file",
        metadata.to_str().unwrap(),
        "--json",
    ]));
    let printed: BuildResult = serde_json::from_str(&stdout).unwrap();
    let written: BuildResult = serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    assert_eq!(printed, written);
    assert_eq!(written.layout().unwrap().path, layout.display().to_string());
}

#[test]
fn with_no_arguments_it_builds_the_supervisor_into_target_oci_supervisor() {
    // Make sure the release musl build is there (cargo's lock serialises
    // concurrent builds), then run build-image from the workspace root as
    // `cargo run -p build-image` would.
    openshell_testsupport::static_supervisor_binary();
    let workspace = openshell_testsupport::supervisor::workspace_root();
    let output = build_image().current_dir(&workspace).bounded_output();
    let stdout = ok(output);
    for tag in [RELEASE_TAG, "latest"] {
        assert!(
            stdout.contains(&format!("wrote      oci:target/oci/supervisor:{tag}")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("skopeo copy oci:target/oci/supervisor:{RELEASE_TAG} containers-storage:openshell/supervisor:{RELEASE_TAG}")),
        "{stdout}"
    );
    let layout = workspace.join(openshell_contract::DEFAULT_OCI_LAYOUT_DIR);
    let (passed, report) = verify_json(&format!("oci:{}:latest", layout.display()), &["--run"]);
    assert!(passed, "{report:#}");
    let built =
        std::fs::read(workspace.join("target/x86_64-unknown-linux-musl/release/openshell-sandbox"))
            .unwrap();
    assert_eq!(
        report["platforms"][0]["binary_sha256"],
        openshell_contract::digest::sha256_hex(&built)
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let dir = tempdir();
    let binary = supervisor_copy(dir.path());
    let layout = dir.path().join("layout");
    build_json(
        &[
            "--binary",
            binary.to_str().unwrap(),
            "--output",
            layout.to_str().unwrap(),
        ],
        None,
    );
    // stdout is a pipe whose reading end is already closed, as after
    // `build-image verify ... | head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = build_image()
        .args(["verify", &format!("oci:{}:latest", layout.display())])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}
