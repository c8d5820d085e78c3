//! The fault-injecting registry forwards what no fault claims, applies a
//! fault to as many requests as it was told, and logs every request.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use openshell_testsupport::{Action, Fault, FaultRegistry};

/// Sends `GET path` (with basic credentials when given) and returns the
/// status line and body, or the read error. A raw request rather than the
/// workspace's registry client: these tests check the fixture's wire
/// behaviour (an injected status, a body cut off, a stall), which the
/// client would retry or hide; `timeout` bounds each read.
fn get(
    host: &str,
    path: &str,
    credentials: Option<&(String, String)>,
    timeout: Duration,
) -> std::io::Result<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head.lines().next().unwrap_or("").to_string();
    Ok((status, response[end + 4..].to_vec()))
}

#[test]
fn requests_pass_unless_a_fault_claims_them() {
    let Some(faults) = FaultRegistry::start("requests_pass_unless_a_fault_claims_them") else {
        return;
    };
    let host = faults.host();
    let credentials = faults.credentials();
    let timeout = Duration::from_secs(10);

    // Forwarded: the registry's own answers, with and without credentials.
    let (status, _) = get(&host, "/v2/", None, timeout).unwrap();
    assert!(status.contains(" 401 "), "{status}");
    let (status, _) = get(&host, "/v2/", Some(&credentials), timeout).unwrap();
    assert!(status.contains(" 200 "), "{status}");

    // A status fault applies once, then requests pass again.
    faults.inject(Fault::exact("GET", "/v2/", Action::status(503)).times(1));
    let (status, body) = get(&host, "/v2/", Some(&credentials), timeout).unwrap();
    assert!(status.contains(" 503 "), "{status}");
    assert!(String::from_utf8_lossy(&body).contains("injected HTTP 503"));
    let (status, _) = get(&host, "/v2/", Some(&credentials), timeout).unwrap();
    assert!(status.contains(" 200 "), "{status}");

    // Replacing a body keeps the registry's status and reframes the body.
    faults.inject(Fault::exact("GET", "/v2/", Action::ReplaceBody(b"replaced".to_vec())).times(1));
    let (status, body) = get(&host, "/v2/", Some(&credentials), timeout).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, b"replaced");

    let actions: Vec<String> = faults.seen().into_iter().map(|seen| seen.action).collect();
    assert_eq!(
        actions,
        [
            "forward",
            "forward",
            "respond 503",
            "forward",
            "replace body"
        ]
    );
}

#[test]
fn a_stall_holds_the_answer_until_the_fixture_is_dropped() {
    let Some(faults) =
        FaultRegistry::start("a_stall_holds_the_answer_until_the_fixture_is_dropped")
    else {
        return;
    };
    faults.inject(Fault::exact("GET", "/v2/", Action::Stall));
    let started = Instant::now();
    let error = get(&faults.host(), "/v2/", None, Duration::from_millis(500)).unwrap_err();
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(450));
    let seen = faults.seen_matching("GET", "/v2/");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].action, "stall");
    // Dropping releases the held connection at once.
    let dropped = Instant::now();
    drop(faults);
    assert!(dropped.elapsed() < Duration::from_secs(5));
}
