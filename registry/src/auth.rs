//! Credentials from the places docker, podman, skopeo and buildah keep them.
//!
//! The `docker_credential` crate reads only Docker's own config file; the
//! project must also honour `REGISTRY_AUTH_FILE` and podman's `auth.json`
//! locations (containers-auth.json(5)) and their per-repository keys, which
//! that crate does not know. The format is the same small JSON in all of
//! them, so it is read here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::{Reference, RegistryAuth, RegistryError, RegistryOptions};

/// Credentials for one registry, and where they came from.
#[derive(Debug, Clone)]
pub struct ResolvedAuth {
    /// What to send.
    pub auth: RegistryAuth,
    /// Where they came from, for messages: "user 'u' from FILE",
    /// "user 'u' from --username", or "no credentials".
    pub source: String,
}

/// The subset of docker's config.json / podman's auth.json used here.
#[derive(Debug, Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Where auth files are looked for, in order, and whether a missing file is
/// an error (it is when someone named it explicitly).
pub fn auth_file_candidates(options: &RegistryOptions) -> Vec<(PathBuf, bool)> {
    if let Some(path) = &options.auth_file {
        return vec![(path.clone(), true)];
    }
    let env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let mut candidates = Vec::new();
    if let Some(path) = env("REGISTRY_AUTH_FILE") {
        candidates.push((PathBuf::from(path), true));
    }
    if let Some(runtime) = env("XDG_RUNTIME_DIR") {
        candidates.push((PathBuf::from(runtime).join("containers/auth.json"), false));
    }
    let home = env("HOME").map(PathBuf::from);
    if let Some(config) = env("XDG_CONFIG_HOME").map(PathBuf::from) {
        candidates.push((config.join("containers/auth.json"), false));
    } else if let Some(home) = &home {
        candidates.push((home.join(".config/containers/auth.json"), false));
    }
    if let Some(docker) = env("DOCKER_CONFIG") {
        candidates.push((PathBuf::from(docker).join("config.json"), false));
    } else if let Some(home) = &home {
        candidates.push((home.join(".docker/config.json"), false));
    }
    candidates
}

/// Credentials for the reference's registry: explicit ones, else the first
/// auth file that has an entry for it, else anonymous.
pub fn resolve_auth(
    reference: &Reference,
    options: &RegistryOptions,
) -> Result<ResolvedAuth, RegistryError> {
    if let Some((username, password)) = &options.basic {
        return Ok(ResolvedAuth {
            auth: RegistryAuth::Basic(username.clone(), password.clone()),
            source: format!("user '{username}' from --username"),
        });
    }
    for (path, required) in auth_file_candidates(options) {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(err) => {
                return Err(auth_file_error(&path, format!("cannot be read: {err}")));
            }
        };
        let file: AuthFile = serde_json::from_str(&text).map_err(|err| {
            auth_file_error(
                &path,
                format!("is not a docker/podman auth file ({err}); expected {{\"auths\": {{\"REGISTRY\": {{\"auth\": \"BASE64(USER:PASSWORD)\"}}}}}}"),
            )
        })?;
        if let Some(found) = lookup(&file, reference, &path)? {
            return Ok(found);
        }
    }
    Ok(ResolvedAuth {
        auth: RegistryAuth::Anonymous,
        source: "no credentials (none given, and no auth file has an entry for this registry)"
            .to_string(),
    })
}

fn auth_file_error(path: &Path, reason: String) -> RegistryError {
    RegistryError::AuthFile {
        path: path.display().to_string(),
        reason,
    }
}

/// Keys that may name this reference's registry, most specific first, as
/// podman matches them (`host/namespace/repo`, then shorter), plus docker's
/// URL forms.
fn candidate_keys(reference: &Reference) -> Vec<String> {
    let registry = reference.registry();
    let mut keys = Vec::new();
    let mut path = format!("{registry}/{}", reference.repository());
    loop {
        keys.push(path.clone());
        match path.rfind('/') {
            Some(slash) => path.truncate(slash),
            None => break,
        }
    }
    keys.push(format!("https://{registry}"));
    keys.push(format!("http://{registry}"));
    if registry == "docker.io" {
        keys.push("https://index.docker.io/v1/".to_string());
        keys.push("index.docker.io".to_string());
    }
    keys
}

fn lookup(
    file: &AuthFile,
    reference: &Reference,
    path: &Path,
) -> Result<Option<ResolvedAuth>, RegistryError> {
    let registry = reference.registry();
    for key in candidate_keys(reference) {
        let entry = file
            .auths
            .get(&key)
            .or_else(|| file.auths.get(key.trim_end_matches('/')));
        let Some(entry) = entry else { continue };
        if let Some(encoded) = entry.auth.as_deref().filter(|auth| !auth.is_empty()) {
            let (username, password) = decode_basic(encoded)
                .map_err(|reason| auth_file_error(path, format!("entry \"{key}\": {reason}")))?;
            return Ok(Some(ResolvedAuth {
                source: format!("user '{username}' from {}", path.display()),
                auth: RegistryAuth::Basic(username, password),
            }));
        }
        if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(ResolvedAuth {
                auth: RegistryAuth::Bearer(token.to_string()),
                source: format!("identity token from {}", path.display()),
            }));
        }
    }
    let helper = file.cred_helpers.get(registry).or(file
        .creds_store
        .as_ref()
        .filter(|_| file.auths.contains_key(registry)));
    if let Some(helper) = helper {
        return Err(auth_file_error(
            path,
            format!(
                "credentials for {registry} are kept by the credential helper 'docker-credential-{helper}', which is not supported; give --username with --password-stdin, or an auth file with an \"auth\" entry for {registry}"
            ),
        ));
    }
    Ok(None)
}

fn decode_basic(encoded: &str) -> Result<(String, String), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|err| format!("\"auth\" is not base64 ({err})"))?;
    let text = String::from_utf8(bytes).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
    let (username, password) = text
        .split_once(':')
        .ok_or_else(|| "\"auth\" does not decode to USER:PASSWORD".to_string())?;
    Ok((username.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, json: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, json).unwrap();
        path
    }

    fn options(path: PathBuf) -> RegistryOptions {
        RegistryOptions {
            auth_file: Some(path),
            ..Default::default()
        }
    }

    fn basic(user: &str, password: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    }

    #[test]
    fn explicit_credentials_win() {
        let reference: Reference = "127.0.0.1:5000/sup:1".parse().unwrap();
        let resolved = resolve_auth(
            &reference,
            &RegistryOptions {
                basic: Some(("u".into(), "p".into())),
                auth_file: Some("/nonexistent/auth.json".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(resolved.auth, RegistryAuth::Basic(ref u, ref p) if u == "u" && p == "p"));
        assert!(resolved.source.contains("--username"));
    }

    #[test]
    fn most_specific_key_wins() {
        let dir = tempfile::tempdir().unwrap();
        let json = format!(
            r#"{{"auths": {{"reg.example": {{"auth": "{}"}}, "reg.example/team": {{"auth": "{}"}}}}}}"#,
            basic("host-user", "a"),
            basic("team-user", "b")
        );
        let path = write(dir.path(), "auth.json", &json);
        let team: Reference = "reg.example/team/sup:1".parse().unwrap();
        let other: Reference = "reg.example/other/sup:1".parse().unwrap();
        let team_auth = resolve_auth(&team, &options(path.clone())).unwrap();
        assert!(
            team_auth.source.starts_with("user 'team-user'"),
            "{}",
            team_auth.source
        );
        let other_auth = resolve_auth(&other, &options(path)).unwrap();
        assert!(
            other_auth.source.starts_with("user 'host-user'"),
            "{}",
            other_auth.source
        );
    }

    #[test]
    fn docker_hub_url_keys_are_understood() {
        let dir = tempfile::tempdir().unwrap();
        let json = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
            basic("hub", "pw")
        );
        let path = write(dir.path(), "config.json", &json);
        let reference: Reference = "openshell/supervisor:latest".parse().unwrap();
        let resolved = resolve_auth(&reference, &options(path)).unwrap();
        assert!(matches!(resolved.auth, RegistryAuth::Basic(ref u, _) if u == "hub"));
    }

    #[test]
    fn no_entry_means_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "auth.json", r#"{"auths": {}}"#);
        let reference: Reference = "reg.example/sup:1".parse().unwrap();
        let resolved = resolve_auth(&reference, &options(path)).unwrap();
        assert!(matches!(resolved.auth, RegistryAuth::Anonymous));
    }

    #[test]
    fn a_named_missing_file_is_an_error() {
        let reference: Reference = "reg.example/sup:1".parse().unwrap();
        let err = resolve_auth(&reference, &options("/nonexistent/auth.json".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/auth.json"), "{err}");
        assert!(err.contains("cannot be read"), "{err}");
    }

    #[test]
    fn a_malformed_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "auth.json", "{not json");
        let reference: Reference = "reg.example/sup:1".parse().unwrap();
        let err = resolve_auth(&reference, &options(path.clone()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("not a docker/podman auth file"), "{err}");
    }

    #[test]
    fn a_bad_auth_value_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "auth.json",
            r#"{"auths": {"reg.example": {"auth": "%%%"}}}"#,
        );
        let reference: Reference = "reg.example/sup:1".parse().unwrap();
        let err = resolve_auth(&reference, &options(path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry \"reg.example\""), "{err}");
        assert!(err.contains("not base64"), "{err}");
    }

    #[test]
    fn credential_helpers_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "config.json",
            r#"{"credHelpers": {"reg.example": "ecr-login"}}"#,
        );
        let reference: Reference = "reg.example/sup:1".parse().unwrap();
        let err = resolve_auth(&reference, &options(path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("docker-credential-ecr-login"), "{err}");
        assert!(err.contains("--password-stdin"), "{err}");
    }
}
