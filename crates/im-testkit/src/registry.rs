//! A real OCI registry for one test: Debian's `docker-registry` (the distribution
//! project's `registry:2`) on 127.0.0.1 with a free port and its own storage, optionally
//! behind htpasswd basic auth. It is killed when the [`Registry`] is dropped.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process;
use crate::settings;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const HTPASSWD_BIN: &str = "/usr/bin/htpasswd";
/// How long the registry may take to answer `/v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports are picked by binding port 0 and releasing it; another process can grab the port
/// in between, so starting is retried this many times.
const START_ATTEMPTS: usize = 5;

/// A running registry process; dropping it kills the process and removes its storage.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry with no authentication.
    pub fn start() -> Registry {
        Self::start_inner(None)
    }

    /// Starts a registry that requires basic auth as `user` / `password` (bcrypt
    /// htpasswd file; the password goes to `htpasswd` on stdin, never in an argv).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Registry {
        Self::start_inner(Some((user, password)))
    }

    fn start_inner(auth: Option<(&str, &str)>) -> Registry {
        settings::assert_executable(Path::new(REGISTRY_BIN), "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("im-test-registry-")
            .tempdir()
            .expect("a temp dir for the registry can be made");
        let htpasswd = auth.map(|(user, password)| write_htpasswd(dir.path(), user, password));
        let log_path = dir.path().join("registry.log");
        for _ in 0..START_ATTEMPTS {
            let addr = free_local_addr();
            let config = dir.path().join("config.yml");
            fs_err::write(&config, config_yaml(dir.path(), addr, htpasswd.as_deref()))
                .expect("the registry config can be written");
            let log = fs_err::File::create(&log_path).expect("the registry log can be made");
            let (log, _) = log.into_parts();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::from(
                    log.try_clone().expect("the log handle can be cloned"),
                ))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|err| {
                    panic!(
                        "cannot start {REGISTRY_BIN}: {err}: \
                         scripts/setup should have installed docker-registry"
                    )
                });
            if wait_ready(&mut child, addr, &log_path) {
                return Registry { child, addr, dir };
            }
            // It exited: most likely the port was taken in between. Try another one.
            let _ = child.wait();
        }
        let log = fs_err::read_to_string(&log_path).unwrap_or_default();
        panic!("docker-registry exited {START_ATTEMPTS} times on start; its last log:\n{log}")
    }

    /// `127.0.0.1:PORT`, the registry's host for image references.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address the registry listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where the registry keeps its blobs and manifests.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's own log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `GET path` with an optional `Authorization` header value and returns the HTTP
/// status code. A plain HTTP/1.1 request over std's TCP, for readiness checks and tests.
pub fn http_status(
    addr: SocketAddr,
    path: &str,
    authorization: Option<&str>,
) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{authorization}\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head = String::from_utf8_lossy(&response);
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok());
    status.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP response from {addr}"),
        )
    })
}

/// Sends `GET path` (no auth) and returns the status and the body: a plain HTTP/1.1 request
/// over std's TCP, an independent reader of what a registry serves. A chunked answer is
/// refused (the distribution registry sends lengths).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(format!("not an HTTP response from {addr}")))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(invalid(format!("a chunked answer from {addr}: {head}")));
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("no status in {head:?}")))?;
    Ok((status, response[split + 4..].to_vec()))
}

/// Waits until `GET /v2/` answers 200 or 401; false if the process exited first.
fn wait_ready(child: &mut Child, addr: SocketAddr, log_path: &Path) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(200 | 401) = http_status(addr, "/v2/", None) {
            return true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "docker-registry on {addr} did not answer /v2/ within {READY_TIMEOUT:?}; log: {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback address with a port nobody listens on right now.
fn free_local_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port can be found")
}

/// Writes a bcrypt htpasswd file for `user`, feeding the password on stdin.
fn write_htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    settings::assert_executable(Path::new(HTPASSWD_BIN), "apache2-utils (htpasswd)");
    let path = dir.join("htpasswd");
    // -c create, -B bcrypt (the only hash the registry accepts), -i password from stdin.
    let mut cmd = Command::new(HTPASSWD_BIN);
    cmd.args(["-c", "-B", "-i"]).arg(&path).arg(user);
    process::run_with_stdin(&mut cmd, password.as_bytes());
    path
}

/// The registry's configuration: loopback only, filesystem storage in `dir`, deletes
/// allowed, no background upload purging.
fn config_yaml(dir: &Path, addr: SocketAddr, htpasswd: Option<&Path>) -> String {
    let storage = yaml_string(&dir.join("storage"));
    let mut lines = vec![
        "version: 0.1".to_owned(),
        "log:".to_owned(),
        "  level: info".to_owned(),
        "  formatter: text".to_owned(),
        "storage:".to_owned(),
        "  filesystem:".to_owned(),
        format!("    rootdirectory: {storage}"),
        "  delete:".to_owned(),
        "    enabled: true".to_owned(),
        "  maintenance:".to_owned(),
        "    uploadpurging:".to_owned(),
        "      enabled: false".to_owned(),
        "http:".to_owned(),
        format!("  addr: {addr}"),
        "  secret: im-testkit-not-a-secret".to_owned(),
    ];
    if let Some(htpasswd) = htpasswd {
        lines.extend([
            "auth:".to_owned(),
            "  htpasswd:".to_owned(),
            "    realm: im-testkit".to_owned(),
            format!("    path: {}", yaml_string(htpasswd)),
        ]);
    }
    lines.join("\n") + "\n"
}

/// A path as a double-quoted YAML string (JSON strings are valid YAML).
fn yaml_string(path: &Path) -> String {
    serde_json::to_string(&path.to_string_lossy()).expect("a string serializes")
}
