//! A slowloris registry: a TCP server on 127.0.0.1 that reads each
//! request and then answers one byte at a time, a byte every interval,
//! never finishing. Neither a connect timeout nor a per-read timeout ends
//! such a conversation (a byte always comes before either runs out): only
//! a deadline does, and the tests show each command has one.
//!
//! Two ways to trickle ([`Trickle`]): the whole answer from its status
//! line, so the client never even sees the headers; or, for `GET`, the
//! headers of a `200` at once and then the body a byte at a time, so the
//! client reads (and counts as progress) every byte.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a request head may be before the server gives up reading it.
const HEAD_LIMIT: usize = 64 * 1024;

/// How long one connection is kept trickling at most: a bound on every
/// thread the fixture starts, whatever the client does.
const LONGEST_CONNECTION: Duration = Duration::from_secs(300);

/// How the answer trickles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trickle {
    /// Every answer, from the first byte of its status line.
    Head,
    /// A `GET` gets the headers of a `200` with a manifest's media type and
    /// a 1 MiB `Content-Length` at once, then its body a byte at a time;
    /// other methods trickle from the status line as in [`Trickle::Head`].
    Body,
}

/// A running slowloris registry; it stops, and every connection closes,
/// when dropped.
pub struct Slowloris {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    first: Arc<Mutex<Option<Instant>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Slowloris {
    /// Starts one on a free port of 127.0.0.1 that sends a byte every
    /// `interval`.
    pub fn start(interval: Duration, trickle: Trickle) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|err| panic!("could not bind a port on 127.0.0.1: {err}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("could not read the bound address: {err}"));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let first = Arc::new(Mutex::new(None));
        let acceptor = {
            let stop = Arc::clone(&stop);
            let connections = Arc::clone(&connections);
            let first = Arc::clone(&first);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = first.lock() {
                        first.get_or_insert_with(Instant::now);
                    }
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || serve(stream, interval, trickle, &stop));
                }
            })
        };
        Self {
            address,
            stop,
            connections,
            first,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT`, the registry part of a reference.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// When the first connection came: a command's time spent on the
    /// registry is measured from here, apart from what it did before.
    pub fn first_connection(&self) -> Option<Instant> {
        self.first.lock().ok().and_then(|first| *first)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Slowloris {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the acceptor, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Makes `command` (build-image or the driver) talk to a registry
/// anonymously and with the default network settings: no
/// `OPENSHELL_REGISTRY_*` variable from the developer's shell, and an empty
/// auth file written in `dir` (also as `REGISTRY_AUTH_FILE`), so no
/// credentials of the machine are found. Returns that file, for
/// `--authfile`.
pub fn anonymous_registry_client(command: &mut Command, dir: &Path) -> PathBuf {
    use openshell_contract::registry::{
        ENV_REGISTRY_ATTEMPTS, ENV_REGISTRY_CONNECT_TIMEOUT, ENV_REGISTRY_OPERATION_TIMEOUT,
        ENV_REGISTRY_READ_TIMEOUT,
    };
    let auth = dir.join("auth.json");
    std::fs::write(&auth, r#"{"auths": {}}"#)
        .unwrap_or_else(|err| panic!("could not write {}: {err}", auth.display()));
    for variable in [
        ENV_REGISTRY_ATTEMPTS,
        ENV_REGISTRY_CONNECT_TIMEOUT,
        ENV_REGISTRY_OPERATION_TIMEOUT,
        ENV_REGISTRY_READ_TIMEOUT,
    ] {
        command.env_remove(variable);
    }
    command.env("REGISTRY_AUTH_FILE", &auth);
    auth
}

/// Reads the request head, then trickles the answer until the client goes
/// away, the fixture stops, or [`LONGEST_CONNECTION`] passes.
fn serve(mut stream: TcpStream, interval: Duration, trickle: Trickle, stop: &AtomicBool) {
    let started = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
        if head.len() > HEAD_LIMIT {
            return;
        }
    }
    let is_get = head.starts_with(b"GET ");
    let answer_head: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1048576\r\n\r\n";
    let trickled: Vec<u8> = match trickle {
        Trickle::Body if is_get => {
            if stream.write_all(answer_head).is_err() {
                return;
            }
            b"{\"schemaVersion\": 2, ".to_vec()
        }
        _ => answer_head.to_vec(),
    };
    // The bytes, one per interval, again and again (never a whole answer).
    for byte in trickled.iter().cycle() {
        // Sleep in short steps, so a stopped fixture lets go at once.
        let next = Instant::now() + interval;
        while Instant::now() < next {
            if stop.load(Ordering::Relaxed) || started.elapsed() > LONGEST_CONNECTION {
                return;
            }
            std::thread::sleep(
                Duration::from_millis(50).min(next.saturating_duration_since(Instant::now())),
            );
        }
        if stream.write_all(&[*byte]).is_err() {
            return;
        }
    }
}
