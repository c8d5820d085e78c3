//! Kubernetes object names, checked before a pod reaches the API server.

/// Longest DNS subdomain name Kubernetes accepts (pods, secrets).
const MAX_SUBDOMAIN_LEN: usize = 253;

/// Checks a DNS-1123 subdomain name (RFC 1123), the rule for pod and secret
/// names: at most 253 characters, lowercase letters, digits, `-` and `.`,
/// each dot-separated part starting and ending with a letter or digit.
/// The error says what is wrong, for messages that name the value.
pub fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_string());
    }
    if name.len() > MAX_SUBDOMAIN_LEN {
        return Err(format!(
            "it is {} characters long (at most {MAX_SUBDOMAIN_LEN})",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "{bad:?} is not allowed (only lowercase letters, digits, '-' and '.')"
        ));
    }
    for part in name.split('.') {
        let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !alphanumeric(part.chars().next()) || !alphanumeric(part.chars().last()) {
            return Err(format!(
                "{part:?} must start and end with a lowercase letter or digit"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["openshell-sandbox", "a", "sandbox-1.team", "0abc"] {
            assert_eq!(check_dns_subdomain(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_uppercase() {
        assert_eq!(
            check_dns_subdomain("Sandbox"),
            Err("'S' is not allowed (only lowercase letters, digits, '-' and '.')".to_string())
        );
    }

    #[test]
    fn rejects_underscore() {
        assert!(
            check_dns_subdomain("my_secret")
                .unwrap_err()
                .contains("'_'")
        );
    }

    #[test]
    fn rejects_edges_and_empty_parts() {
        assert_eq!(
            check_dns_subdomain("-sandbox"),
            Err("\"-sandbox\" must start and end with a lowercase letter or digit".to_string())
        );
        assert!(check_dns_subdomain("a..b").unwrap_err().contains("\"\""));
        assert!(check_dns_subdomain("sandbox.").is_err());
    }

    #[test]
    fn rejects_empty_and_long_names() {
        assert_eq!(check_dns_subdomain(""), Err("it is empty".to_string()));
        let long = "a".repeat(254);
        assert_eq!(
            check_dns_subdomain(&long),
            Err("it is 254 characters long (at most 253)".to_string())
        );
    }
}
