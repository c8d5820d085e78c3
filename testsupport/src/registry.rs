//! A real distribution registry (`docker-registry`) on 127.0.0.1 with
//! htpasswd basic auth, for push and pull tests.

use crate::podman::BoundedOutput;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

use crate::tools::require;

/// apt-get line that installs what this fixture needs.
pub const INSTALL_HINT: &str = "apt-get install docker-registry apache2-utils";

/// User name the registry accepts.
pub const USERNAME: &str = "openshell";

/// How long the registry may take to answer after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running registry; dropped, it is stopped and its storage removed.
pub struct Registry {
    child: Child,
    dir: TempDir,
    addr: SocketAddr,
    password: String,
}

impl Registry {
    /// Starts a registry for `test`, or returns `None` (after printing why)
    /// when docker-registry or htpasswd is missing outside CI. In CI a missing
    /// tool fails the test.
    pub fn start(test: &str) -> Option<Self> {
        if !require(test, &["docker-registry", "htpasswd"], INSTALL_HINT) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("openshell-registry-")
            .tempdir()
            .unwrap_or_else(|err| panic!("could not create registry storage for {test}: {err}"));
        // Unique per fixture, so a test can never pass with another one's
        // credentials.
        let password = format!("pw-{}-{}", std::process::id(), dir_suffix(dir.path()));
        write_htpasswd(dir.path(), &password);

        // A free port can be taken by someone else between probing and the
        // registry's bind; try a few.
        for _ in 0..5 {
            let addr = free_loopback_port();
            let mut child = spawn_registry(dir.path(), addr);
            if wait_ready(&mut child, addr) {
                return Some(Self {
                    child,
                    dir,
                    addr,
                    password,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("{test}: docker-registry did not start on 127.0.0.1:\n{log}");
    }

    /// `127.0.0.1:PORT`: the registry host as it appears in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The user name the registry accepts.
    pub fn username(&self) -> &str {
        USERNAME
    }

    /// The password the registry accepts.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `USER:PASSWORD`, as skopeo's `--creds` takes it.
    pub fn creds(&self) -> String {
        format!("{USERNAME}:{}", self.password)
    }

    /// Writes a docker/podman auth file (`{"auths": {host: {"auth": ...}}}`)
    /// holding `password` for this registry, and returns its path.
    pub fn write_auth_file(&self, name: &str, password: &str) -> PathBuf {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{password}"));
        let json = serde_json::json!({ "auths": { self.host(): { "auth": token } } });
        let path = self.dir.path().join(name);
        std::fs::write(&path, json.to_string())
            .unwrap_or_else(|err| panic!("could not write {}: {err}", path.display()));
        path
    }

    /// An auth file with the right credentials.
    pub fn auth_file(&self) -> PathBuf {
        self.write_auth_file("auth.json", &self.password.clone())
    }

    /// The registry's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_registry(dir: &Path, addr: SocketAddr) -> Child {
    let config = dir.join("config.yml");
    let yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n  secret: openshell-test\n\
         auth:\n  htpasswd:\n    realm: openshell-test\n    path: {htpasswd}\n",
        storage = dir.join("storage").display(),
        htpasswd = dir.join("htpasswd").display(),
    );
    std::fs::write(&config, yaml)
        .unwrap_or_else(|err| panic!("could not write {}: {err}", config.display()));
    let log = std::fs::File::create(dir.join("registry.log"))
        .unwrap_or_else(|err| panic!("could not create the registry log: {err}"));
    let log_err = log
        .try_clone()
        .unwrap_or_else(|err| panic!("could not share the registry log: {err}"));
    Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .unwrap_or_else(|err| panic!("could not start docker-registry: {err}"))
}

fn wait_ready(child: &mut Child, addr: SocketAddr) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        // Any HTTP answer (401 without credentials) means it serves.
        if http_answers(addr) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Whether an HTTP server answers at `addr` at all. A raw request rather
/// than the workspace's registry client: any answer counts (the 401 of a
/// registry not yet given credentials too), and the caller's polling loop,
/// not the client's retries, bounds the wait; the connect and read here are
/// bounded too.
fn http_answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

fn free_loopback_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|err| panic!("could not bind a port on 127.0.0.1: {err}"));
    listener
        .local_addr()
        .unwrap_or_else(|err| panic!("could not read the bound address: {err}"))
}

fn write_htpasswd(dir: &Path, password: &str) {
    // htpasswd -B: bcrypt, the only hash the registry accepts.
    let output = Command::new("htpasswd")
        .args(["-Bbn", USERNAME, password])
        .bounded_output();
    assert!(
        output.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join("htpasswd");
    std::fs::write(&path, &output.stdout)
        .unwrap_or_else(|err| panic!("could not write {}: {err}", path.display()));
}

fn dir_suffix(dir: &Path) -> String {
    dir.file_name()
        .map(|name| {
            name.to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        })
        .unwrap_or_default()
}
