//! The SBOM attached to each platform manifest of the supervisor image, as
//! an OCI 1.1 referrer: an artifact manifest whose `subject` is the
//! platform manifest, whose config is the empty descriptor, and whose one
//! layer is the SBOM document.

/// `artifactType` (and layer media type) of an SPDX 2.x JSON SBOM.
pub const SPDX_JSON_ARTIFACT_TYPE: &str = "application/spdx+json";

/// `artifactType` (and layer media type) of a CycloneDX JSON SBOM.
pub const CYCLONEDX_JSON_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";

/// The artifact types `build-image verify` recognises as an SBOM.
pub const SBOM_ARTIFACT_TYPES: [&str; 2] = [SPDX_JSON_ARTIFACT_TYPE, CYCLONEDX_JSON_ARTIFACT_TYPE];

/// File name of the SBOM build-image writes (the layer's
/// `org.opencontainers.image.title`, the name `oras pull` saves it under).
pub const SPDX_FILE_NAME: &str = "openshell-sandbox.spdx.json";

/// The Cargo package whose dependencies the SBOM lists.
pub const SUPERVISOR_PACKAGE: &str = "openshell-sandbox";

/// What kind of SBOM `bytes` hold: its artifact type and a one-line
/// summary, or why it is not an SPDX 2.x / CycloneDX JSON document.
pub fn identify(bytes: &[u8]) -> Result<(&'static str, String), String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        format!("not JSON ({err}); expected an SPDX 2.x or CycloneDX JSON document")
    })?;
    let Some(object) = value.as_object() else {
        return Err(
            "the JSON is not an object; expected an SPDX 2.x or CycloneDX JSON document".into(),
        );
    };
    if let Some(version) = object.get("spdxVersion").and_then(|v| v.as_str()) {
        if !version.starts_with("SPDX-2.") {
            return Err(format!(
                "spdxVersion is {version:?}; expected SPDX-2.x (SPDX 3 JSON-LD is not attached as application/spdx+json)"
            ));
        }
        let packages = object
            .get("packages")
            .and_then(|packages| packages.as_array())
            .map_or(0, Vec::len);
        return Ok((
            SPDX_JSON_ARTIFACT_TYPE,
            format!("{version}, {packages} packages"),
        ));
    }
    if object.get("bomFormat").and_then(|v| v.as_str()) == Some("CycloneDX") {
        let version = object
            .get("specVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown");
        let components = object
            .get("components")
            .and_then(|components| components.as_array())
            .map_or(0, Vec::len);
        return Ok((
            CYCLONEDX_JSON_ARTIFACT_TYPE,
            format!("CycloneDX {version}, {components} components"),
        ));
    }
    Err("neither spdxVersion nor bomFormat \"CycloneDX\" is set; expected an SPDX 2.x or CycloneDX JSON document".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbom_files_are_recognised_or_refused() {
        let spdx = br#"{"spdxVersion":"SPDX-2.3","packages":[{},{}]}"#;
        assert_eq!(
            identify(spdx).unwrap(),
            (SPDX_JSON_ARTIFACT_TYPE, "SPDX-2.3, 2 packages".to_string())
        );
        let cyclonedx = br#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}"#;
        assert_eq!(identify(cyclonedx).unwrap().0, CYCLONEDX_JSON_ARTIFACT_TYPE);
        for (bad, why) in [
            (&b"not json"[..], "not JSON"),
            (b"[1,2]", "not an object"),
            (b"{\"spdxVersion\":\"SPDX-3.0\"}", "expected SPDX-2.x"),
            (b"{\"name\":\"x\"}", "neither spdxVersion nor bomFormat"),
        ] {
            let err = identify(bad).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
