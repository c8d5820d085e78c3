//! A registry that misbehaves on cue: an HTTP/1.1 proxy on 127.0.0.1 in
//! front of a real docker-registry ([`Registry`]), scripted per test.
//!
//! Each [`Fault`] names a method and a path (part), how many requests it
//! applies to, and what happens to them ([`Action`]): no answer at all, an
//! answer that stops or breaks off mid-body, a made-up status, or the real
//! answer with its body tampered with or replaced. Requests no fault claims
//! go to the registry unchanged. Every request is logged ([`Seen`]) so a
//! test can assert what the client did (how many attempts, which `Range`).
//!
//! One request per connection: the proxy answers with `Connection: close`,
//! which keeps it a plain copy loop with no keep-alive bookkeeping.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

use crate::registry::{Registry, USERNAME};

/// Longest request or response head the proxy reads.
const HEAD_LIMIT: usize = 64 * 1024;

/// How long the proxy waits on a silent client or registry before it drops
/// the connection: a bound on every thread it starts.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a stalled connection is held at most (it is released at once
/// when the fault registry is dropped).
const LONGEST_STALL: Duration = Duration::from_secs(240);

/// What happens to a request a fault claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Read the request and never answer: a registry that stalls before the
    /// first byte.
    Stall,
    /// Forward the request, send the response head and the first `n` bytes
    /// of its body, then go silent: a stall mid-body.
    StallAfter(usize),
    /// Forward the request, send the response head and the first `n` bytes
    /// of its body, then reset the connection (TCP RST).
    ResetAfter(usize),
    /// Read the request head and `n` bytes of its body, then reset the
    /// connection without forwarding anything: an upload broken mid-way.
    ResetRequestAfter(usize),
    /// Read the request head and `n` bytes of its body, then stop reading
    /// and never answer: a registry that stalls mid-upload.
    StallRequestAfter(usize),
    /// Answer with this status, headers and body, without forwarding.
    Respond {
        /// HTTP status code.
        status: u16,
        /// Extra headers (`Retry-After`, ...).
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// Forward the request and flip the last byte of the response body:
    /// wrong bytes served for a digest.
    Tamper,
    /// Forward the request and serve this body instead of the real one,
    /// with the registry's own headers (its `Docker-Content-Digest`
    /// included).
    ReplaceBody(Vec<u8>),
    /// Answer 200 without forwarding, with these headers (a
    /// `Content-Length` among them is sent as given, however large) and a
    /// body that never ends: `prefix`, then `chunk` again and again, one
    /// every `every`, until the client goes away or the fixture stops. A
    /// token service or referrers listing that never ends, a blob that
    /// trickles.
    Endless {
        /// Extra headers; `Content-Type: application/json` unless one is given.
        headers: Vec<(String, String)>,
        /// Sent once, first.
        prefix: Vec<u8>,
        /// What is sent each time.
        chunk: Vec<u8>,
        /// The pause between two chunks (zero: as fast as the client reads).
        every: Duration,
    },
}

impl Action {
    /// A status answer with no extra headers and a registry-style JSON
    /// error body.
    pub fn status(status: u16) -> Self {
        Self::Respond {
            status,
            headers: Vec::new(),
            body: format!(
                r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected HTTP {status}"}}]}}"#
            )
            .into_bytes(),
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Stall => "stall".into(),
            Self::StallAfter(n) => format!("stall after {n} bytes"),
            Self::ResetAfter(n) => format!("reset after {n} bytes"),
            Self::ResetRequestAfter(n) => format!("reset after {n} request bytes"),
            Self::StallRequestAfter(n) => format!("stall after {n} request bytes"),
            Self::Respond { status, .. } => format!("respond {status}"),
            Self::Tamper => "tamper".into(),
            Self::ReplaceBody(_) => "replace body".into(),
            Self::Endless { .. } => "endless body".into(),
        }
    }
}

/// Which requests a fault claims, and what it does to them.
#[derive(Debug, Clone)]
pub struct Fault {
    method: String,
    path: String,
    exact: bool,
    remaining: Option<usize>,
    action: Action,
}

impl Fault {
    /// Claims every `method` request (`*` for any) whose path contains
    /// `path_part`.
    pub fn on(method: &str, path_part: &str, action: Action) -> Self {
        Self {
            method: method.to_string(),
            path: path_part.to_string(),
            exact: false,
            remaining: None,
            action,
        }
    }

    /// Claims every `method` request whose path (without the query) is
    /// exactly `path`.
    pub fn exact(method: &str, path: &str, action: Action) -> Self {
        Self {
            exact: true,
            ..Self::on(method, path, action)
        }
    }

    /// Claims only the first `count` matching requests; later ones pass.
    pub fn times(mut self, count: usize) -> Self {
        self.remaining = Some(count);
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        if self.remaining == Some(0) {
            return false;
        }
        if self.method != "*" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        if self.exact {
            target.split('?').next() == Some(self.path.as_str())
        } else {
            target.contains(&self.path)
        }
    }
}

/// A request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Its `Range` header, if any.
    pub range: Option<String>,
    /// What the proxy did: `forward`, or the fault's action.
    pub action: String,
}

struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Vec<Fault>>,
    seen: Mutex<Vec<Seen>>,
    stopping: AtomicBool,
}

/// A scriptable, misbehaving proxy in front of a real registry; dropped,
/// it stops (releasing stalled connections) and so does the registry.
pub struct FaultRegistry {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    dir: TempDir,
    registry: Registry,
}

impl FaultRegistry {
    /// Starts docker-registry and the proxy in front of it, or returns
    /// `None` (after saying why) when docker-registry is missing outside CI.
    pub fn start(test: &str) -> Option<Self> {
        let registry = Registry::start(test)?;
        let upstream: SocketAddr = registry
            .host()
            .parse()
            .unwrap_or_else(|err| panic!("{test}: registry address: {err}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|err| panic!("{test}: could not bind the fault proxy: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("{test}: fault proxy address: {err}"));
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept(listener, shared))
        };
        let dir = tempfile::Builder::new()
            .prefix("openshell-fault-registry-")
            .tempdir()
            .unwrap_or_else(|err| panic!("{test}: temporary folder: {err}"));
        Some(Self {
            shared,
            addr,
            acceptor: Some(acceptor),
            dir,
            registry,
        })
    }

    /// `127.0.0.1:PORT` of the proxy: the registry host as references to
    /// the faulty registry name it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The registry behind the proxy (reached directly, it has no faults).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The user name and password the registry accepts.
    pub fn credentials(&self) -> (String, String) {
        (USERNAME.to_string(), self.registry.password().to_string())
    }

    /// An auth file with the right credentials for the proxy's host.
    pub fn auth_file(&self) -> PathBuf {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{USERNAME}:{}", self.registry.password()));
        let json = serde_json::json!({ "auths": { self.host(): { "auth": token } } });
        let path = self.dir.path().join("auth.json");
        std::fs::write(&path, json.to_string())
            .unwrap_or_else(|err| panic!("could not write {}: {err}", path.display()));
        path
    }

    /// Adds a fault; faults are tried in the order they were added.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Removes every fault: from now on requests pass unchanged.
    pub fn clear(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// The requests received so far with `method` whose target contains
    /// `part`.
    pub fn seen_matching(&self, method: &str, part: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.method.eq_ignore_ascii_case(method) && seen.target.contains(part))
            .collect()
    }

    /// Forgets the requests logged so far.
    pub fn forget_seen(&self) {
        lock(&self.shared.seen).clear();
    }
}

impl Drop for FaultRegistry {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor, which then sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers
        .iter()
        .any(|(key, _)| key.eq_ignore_ascii_case(name))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking connection thread must not take the fixture down.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = shared.clone();
        // Connection threads are not joined: each ends on its own, bounded
        // by IO_TIMEOUT and LONGEST_STALL, or at once when `stopping`.
        std::thread::spawn(move || {
            let _ = serve(stream, &shared);
        });
    }
}

/// A parsed request or response head, with the bytes read past it.
struct Head {
    /// The head's lines, without the blank line that ends it.
    lines: Vec<String>,
    /// Body bytes read along with the head.
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.lines.iter().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    /// The head with `Connection: close` and, when `body_len` is given, a
    /// `Content-Length` of it (and no chunked encoding).
    fn rewritten(&self, body_len: Option<usize>) -> Vec<u8> {
        let mut text = String::new();
        for (index, line) in self.lines.iter().enumerate() {
            if index > 0 {
                let key = line.split(':').next().unwrap_or("").trim();
                let dropped = key.eq_ignore_ascii_case("connection")
                    || (body_len.is_some()
                        && (key.eq_ignore_ascii_case("content-length")
                            || key.eq_ignore_ascii_case("transfer-encoding")));
                if dropped {
                    continue;
                }
            }
            text.push_str(line);
            text.push_str("\r\n");
        }
        if let Some(len) = body_len {
            text.push_str(&format!("Content-Length: {len}\r\n"));
        }
        text.push_str("Connection: close\r\n\r\n");
        text.into_bytes()
    }
}

fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Head>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buffer[..end]).into_owned();
            return Ok(Some(Head {
                lines: text.split("\r\n").map(str::to_string).collect(),
                rest: buffer[end + 4..].to_vec(),
            }));
        }
        if buffer.len() > HEAD_LIMIT {
            return Err(std::io::Error::other("head too long"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Reads exactly `n` more bytes after `have`. (Growing the buffer as bytes
/// arrive, not zeroing `n` bytes up front: this crate is built without
/// optimisation, and zeroing a large body byte by byte would stall the
/// client that is sending it.)
fn read_more(stream: &mut TcpStream, have: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
    let read = stream.take(n as u64).read_to_end(have)?;
    if read < n {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the body ended early",
        ));
    }
    Ok(())
}

/// The whole request body, raw (as framed), per its Content-Length or
/// chunked encoding.
fn read_request_body(stream: &mut TcpStream, head: &Head) -> std::io::Result<Vec<u8>> {
    let mut body = head.rest.clone();
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    if chunked {
        // Read until the last chunk and the blank line after it.
        let mut chunk = [0u8; 8192];
        while dechunk(&body).is_none() {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::other("request body ended early"));
            }
            body.extend_from_slice(&chunk[..n]);
        }
        return Ok(body);
    }
    let length: usize = head
        .header("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    if body.len() < length {
        let missing = length - body.len();
        read_more(stream, &mut body, missing)?;
    }
    Ok(body)
}

/// A complete chunked body decoded, or `None` while it is incomplete.
fn dechunk(raw: &[u8]) -> Option<Vec<u8>> {
    let mut decoded = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + find(&raw[at..], b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers (none expected) end with a blank line.
            find(&raw[at..], b"\r\n")?;
            return Some(decoded);
        }
        if raw.len() < at + size + 2 {
            return None;
        }
        decoded.extend_from_slice(&raw[at..at + size]);
        at += size + 2;
    }
}

fn reset(stream: &TcpStream) {
    // SO_LINGER 0: closing sends RST instead of FIN.
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

fn hold(shared: &Shared) {
    let started = Instant::now();
    while !shared.stopping.load(Ordering::SeqCst) && started.elapsed() < LONGEST_STALL {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let Some(head) = read_head(&mut client)? else {
        return Ok(());
    };
    let request_line = head.lines.first().cloned().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let action = {
        let mut faults = lock(&shared.faults);
        faults
            .iter_mut()
            .find(|fault| fault.matches(&method, &target))
            .map(|fault| {
                if let Some(remaining) = fault.remaining.as_mut() {
                    *remaining -= 1;
                }
                fault.action.clone()
            })
    };
    lock(&shared.seen).push(Seen {
        method: method.clone(),
        target: target.clone(),
        range: head.header("range").map(str::to_string),
        action: action
            .as_ref()
            .map_or_else(|| "forward".to_string(), Action::name),
    });
    match &action {
        Some(Action::Stall) => {
            hold(shared);
            return Ok(());
        }
        Some(Action::ResetRequestAfter(n)) => {
            let mut body = head.rest.clone();
            if body.len() < *n {
                let missing = n - body.len();
                read_more(&mut client, &mut body, missing)?;
            }
            reset(&client);
            return Ok(());
        }
        Some(Action::StallRequestAfter(n)) => {
            let mut body = head.rest.clone();
            if body.len() < *n {
                let missing = n - body.len();
                read_more(&mut client, &mut body, missing)?;
            }
            // The rest of the body fills the socket buffers, and the
            // client's writes stop.
            hold(shared);
            reset(&client);
            return Ok(());
        }
        Some(Action::Respond {
            status,
            headers,
            body,
        }) => {
            read_request_body(&mut client, &head)?;
            let mut text = format!("HTTP/1.1 {status} Injected\r\n");
            for (key, value) in headers {
                text.push_str(&format!("{key}: {value}\r\n"));
            }
            if !has_header(headers, "content-type") {
                text.push_str("Content-Type: application/json\r\n");
            }
            text.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ));
            client.write_all(text.as_bytes())?;
            client.write_all(body)?;
            return finish(client);
        }
        Some(Action::Endless {
            headers,
            prefix,
            chunk,
            every,
        }) => {
            read_request_body(&mut client, &head)?;
            let mut text = "HTTP/1.1 200 Injected\r\n".to_string();
            for (key, value) in headers {
                text.push_str(&format!("{key}: {value}\r\n"));
            }
            if !has_header(headers, "content-type") {
                text.push_str("Content-Type: application/json\r\n");
            }
            text.push_str("Connection: close\r\n\r\n");
            client.write_all(text.as_bytes())?;
            client.write_all(prefix)?;
            // Bounded like a stall: the client going away (a write error)
            // or the fixture stopping ends it.
            let started = Instant::now();
            while !shared.stopping.load(Ordering::SeqCst) && started.elapsed() < LONGEST_STALL {
                client.write_all(chunk)?;
                if !every.is_zero() {
                    client.flush()?;
                    std::thread::sleep(*every);
                }
            }
            return Ok(());
        }
        _ => {}
    }
    let body = read_request_body(&mut client, &head)?;
    let mut upstream = TcpStream::connect_timeout(&shared.upstream, IO_TIMEOUT)?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    // The request unchanged but for `Connection: close` (its framing
    // headers stay: the body is forwarded as it came).
    let mut forwarded = Vec::new();
    for line in &head.lines {
        let key = line.split(':').next().unwrap_or("").trim();
        if key.eq_ignore_ascii_case("connection") {
            continue;
        }
        forwarded.extend_from_slice(line.as_bytes());
        forwarded.extend_from_slice(b"\r\n");
    }
    forwarded.extend_from_slice(b"Connection: close\r\n\r\n");
    upstream.write_all(&forwarded)?;
    upstream.write_all(&body)?;
    let Some(response) = read_head(&mut upstream)? else {
        return Err(std::io::Error::other(
            "the registry closed without answering",
        ));
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    let length: Option<usize> = response
        .header("content-length")
        .and_then(|value| value.parse().ok())
        .filter(|_| !chunked);
    // The body is relayed as it arrives (a buffering proxy would delay the
    // first byte by the whole transfer, which a client's read timeout sees
    // as a stall); positions count bytes of the body as sent.
    let mut body = Relayed {
        rest: response.rest.clone(),
        at: 0,
        stream: &mut upstream,
    };
    match action {
        None => {
            client.write_all(&response.rewritten(None))?;
            std::io::copy(&mut body, &mut client)?;
        }
        Some(Action::Tamper) => match length {
            Some(length) if length > 0 => {
                client.write_all(&response.rewritten(None))?;
                std::io::copy(&mut (&mut body).take(length as u64 - 1), &mut client)?;
                let mut last = [0u8; 1];
                body.read_exact(&mut last)?;
                client.write_all(&[last[0] ^ 0x01])?;
            }
            _ => {
                let mut raw = Vec::new();
                body.read_to_end(&mut raw)?;
                let mut decoded = if chunked {
                    dechunk(&raw).unwrap_or(raw)
                } else {
                    raw
                };
                if let Some(last) = decoded.last_mut() {
                    *last ^= 0x01;
                }
                client.write_all(&response.rewritten(Some(decoded.len())))?;
                client.write_all(&decoded)?;
            }
        },
        Some(Action::ReplaceBody(replacement)) => {
            client.write_all(&response.rewritten(Some(replacement.len())))?;
            client.write_all(&replacement)?;
        }
        Some(Action::StallAfter(n)) => {
            client.write_all(&response.rewritten(None))?;
            std::io::copy(&mut (&mut body).take(n as u64), &mut client)?;
            client.flush()?;
            hold(shared);
            return Ok(());
        }
        Some(Action::ResetAfter(n)) => {
            client.write_all(&response.rewritten(None))?;
            std::io::copy(&mut (&mut body).take(n as u64), &mut client)?;
            client.flush()?;
            // Let the bytes reach the client before the reset discards
            // whatever is still queued.
            std::thread::sleep(Duration::from_millis(50));
            reset(&client);
            return Ok(());
        }
        // Answered before forwarding.
        Some(
            Action::Stall
            | Action::ResetRequestAfter(_)
            | Action::StallRequestAfter(_)
            | Action::Respond { .. }
            | Action::Endless { .. },
        ) => {
            return Ok(());
        }
    }
    finish(client)
}

/// A response body: the bytes read along with the head, then the rest of
/// the connection.
struct Relayed<'a> {
    rest: Vec<u8>,
    at: usize,
    stream: &'a mut TcpStream,
}

impl Read for Relayed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.rest.len() {
            let n = buf.len().min(self.rest.len() - self.at);
            buf[..n].copy_from_slice(&self.rest[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.stream.read(buf)
    }
}

/// Ends an answered connection cleanly: FIN, and what the client still
/// sends is read and dropped (closing with unread bytes would send RST).
fn finish(mut client: TcpStream) -> std::io::Result<()> {
    client.flush()?;
    client.shutdown(Shutdown::Write)?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut sink = [0u8; 8192];
    while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_only_when_complete() {
        let raw = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(dechunk(raw), Some(b"hello world".to_vec()));
        assert_eq!(dechunk(&raw[..10]), None);
        assert_eq!(dechunk(&raw[..raw.len() - 2]), None);
    }

    #[test]
    fn faults_match_by_method_and_path_and_run_out() {
        let mut fault = Fault::on("GET", "/blobs/", Action::Tamper).times(1);
        assert!(fault.matches("get", "/v2/x/blobs/sha256:00"));
        assert!(!fault.matches("HEAD", "/v2/x/blobs/sha256:00"));
        fault.remaining = Some(0);
        assert!(!fault.matches("GET", "/v2/x/blobs/sha256:00"));
        let exact = Fault::exact("*", "/v2/", Action::Stall);
        assert!(exact.matches("GET", "/v2/"));
        assert!(exact.matches("GET", "/v2/?x=1"));
        assert!(!exact.matches("GET", "/v2/x/manifests/v1"));
    }

    #[test]
    fn rewritten_heads_close_and_reframe() {
        let head = Head {
            lines: vec![
                "HTTP/1.1 200 OK".into(),
                "Transfer-Encoding: chunked".into(),
                "Connection: keep-alive".into(),
                "Docker-Content-Digest: sha256:00".into(),
            ],
            rest: Vec::new(),
        };
        let text = String::from_utf8(head.rewritten(Some(3))).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:00\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
    }
}
