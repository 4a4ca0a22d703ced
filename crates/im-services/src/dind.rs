//! An isolated Docker daemon for tests (the proof of concept's "dind"): `dockerd` with its own
//! data root, exec root, containerd namespace and pid file, listening on a loopback TCP
//! address only, with no iptables rules (its containers use the default `docker0` bridge, so
//! one dind runs per machine), so it never touches the
//! machine's own Docker or its networks. `test` uses it for command tests when `DOCKER_HOST`
//! is unset and Docker is the runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::{Error, Launch, Service, probe};

/// The isolated Docker daemon on one loopback address.
#[derive(Debug, Clone)]
pub struct Dind {
    addr: SocketAddr,
}

impl Dind {
    /// Where it listens unless the caller says otherwise (the proof of concept's port).
    pub const DEFAULT_ADDR: &str = "127.0.0.1:2375";

    pub fn new(addr: SocketAddr) -> Self {
        Dind { addr }
    }

    /// `DOCKER_HOST` for clients of this daemon.
    pub fn docker_host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// A short name unique to the state folder: the exec root holds unix sockets, whose
    /// paths must stay under about 100 bytes wherever the project lives.
    fn short_name(dir: &Path) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in dir.as_os_str().as_encoded_bytes() {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        format!("im-dind-{hash:08x}")
    }

    /// The exec root (sockets, containerd state): short, outside the project.
    fn exec_root(dir: &Path) -> PathBuf {
        Path::new("/tmp").join(Self::short_name(dir))
    }
}

impl Service for Dind {
    fn name(&self) -> &'static str {
        "dind"
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /_ping` answers 200.
    fn answers(&self, addr: SocketAddr) -> bool {
        probe::http_status(addr, "/_ping") == Some(200)
    }

    fn launch(&self, dir: &Path) -> Result<Launch, Error> {
        let config = dir.join("daemon.json");
        // Our own (empty) daemon.json: a machine-wide /etc/docker/daemon.json must not apply.
        fs_err::write(&config, "{}\n")?;
        let exec_root = Self::exec_root(dir);
        fs_err::create_dir_all(&exec_root)?;
        let name = Self::short_name(dir);
        let arg = |flag: &str, value: &Path| -> [std::ffi::OsString; 2] {
            [flag.into(), value.as_os_str().to_owned()]
        };
        let mut args = Vec::new();
        args.extend(arg("--config-file", &config));
        args.extend(arg("--data-root", &dir.join("data")));
        args.extend(arg("--exec-root", &exec_root));
        args.extend(arg("--pidfile", &dir.join("dockerd.pid")));
        args.extend([
            "--host".into(),
            self.docker_host().into(),
            "--iptables=false".into(),
            "--ip-masq=false".into(),
            "--containerd-namespace".into(),
            name.clone().into(),
            "--containerd-plugins-namespace".into(),
            format!("{name}-plugins").into(),
        ]);
        Ok(Launch {
            programs: &["dockerd"],
            args,
            image: String::new(),
            container_options: Vec::new(),
            install: "install Debian's docker.io package",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_keeps_to_its_own_folders_and_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let launch = Dind::new(Dind::DEFAULT_ADDR.parse().unwrap())
            .launch(dir.path())
            .unwrap();
        let argv: Vec<String> = launch
            .args
            .iter()
            .map(|a| {
                a.to_string_lossy()
                    .replace(&*dir.path().to_string_lossy(), "<dir>")
            })
            .collect();
        let exec_root = Dind::exec_root(dir.path());
        let argv = argv
            .join(" ")
            .replace(&*exec_root.to_string_lossy(), "/tmp/im-dind-<hash>");
        let name = Dind::short_name(dir.path());
        insta::assert_snapshot!(argv.replace(&name, "im-dind-<hash>"));
        assert!(exec_root.to_string_lossy().len() < 30);
        let _ = fs_err::remove_dir(exec_root);
    }
}
