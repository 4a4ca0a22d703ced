//! BuildKit's daemon for the `buildkit` builder: `buildkitd` on a loopback TCP address with
//! its state under the state folder and its own `buildkitd.toml` (the OCI worker, rootless
//! when not run as root, the local registry reachable over plain HTTP). It is not installable
//! from the registries these machines reach, so only its argv and configuration are tested.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;

use crate::{Error, Launch, Service, probe};

/// BuildKit's daemon on one loopback address.
#[derive(Debug, Clone)]
pub struct Buildkitd {
    addr: SocketAddr,
    rootless: bool,
    /// Registries (`host:port`) reached over plain HTTP: the local registry.
    insecure_registries: Vec<String>,
}

impl Buildkitd {
    /// Where it listens unless the caller says otherwise (the proof of concept's port).
    pub const DEFAULT_ADDR: &str = "127.0.0.1:8372";

    /// The daemon on `addr`, rootless unless this process runs as root.
    pub fn new(addr: SocketAddr, insecure_registries: Vec<String>) -> Self {
        Buildkitd {
            addr,
            rootless: !rustix::process::geteuid().is_root(),
            insecure_registries,
        }
    }

    /// `BUILDKIT_HOST` for `buildctl`.
    pub fn buildkit_host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    fn config(&self, data: &Path) -> String {
        let mut toml = format!(
            "root = {}\n\n[grpc]\naddress = [\"{}\"]\n\n[worker.oci]\nenabled = true\nrootless = {}\n\n[worker.containerd]\nenabled = false\n",
            serde_json::to_string(&data.to_string_lossy()).unwrap_or_default(),
            self.buildkit_host(),
            self.rootless
        );
        for registry in &self.insecure_registries {
            toml.push_str(&format!(
                "\n[registry.\"{registry}\"]\nhttp = true\ninsecure = true\n"
            ));
        }
        toml
    }
}

impl Service for Buildkitd {
    fn name(&self) -> &'static str {
        "buildkitd"
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// It speaks gRPC: an accepted connection is all a probe can ask for.
    fn answers(&self, addr: SocketAddr) -> bool {
        probe::accepts(addr)
    }

    fn launch(&self, dir: &Path) -> Result<Launch, Error> {
        let config = dir.join("buildkitd.toml");
        fs_err::write(&config, self.config(&dir.join("data")))?;
        let mut args: Vec<OsString> = vec!["--config".into(), config.into_os_string()];
        if self.rootless {
            // Without root, processes of RUN steps share the daemon's PID namespace.
            args.push("--oci-worker-no-process-sandbox".into());
        }
        Ok(Launch {
            programs: &["buildkitd"],
            args,
            image: String::new(),
            container_options: Vec::new(),
            install: "install BuildKit's buildkitd and buildctl (https://github.com/moby/buildkit/releases)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_and_config_of_a_rootless_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = Buildkitd::new(
            Buildkitd::DEFAULT_ADDR.parse().unwrap(),
            vec!["127.0.0.1:5050".into()],
        );
        daemon.rootless = true;
        let launch = daemon.launch(dir.path()).unwrap();
        let shown = |text: &str| text.replace(&*dir.path().to_string_lossy(), "<dir>");
        let argv: Vec<String> = launch
            .args
            .iter()
            .map(|a| shown(&a.to_string_lossy()))
            .collect();
        let config = fs_err::read_to_string(dir.path().join("buildkitd.toml")).unwrap();
        insta::assert_snapshot!(format!("{}\n---\n{}", argv.join(" "), shown(&config)));
    }
}
