//! The local distribution registry: loopback only, filesystem storage under the state folder,
//! deletes allowed. It runs the `docker-registry` (Debian) or `registry` binary when one is on
//! `PATH`, else the `registry:2` container (or the image the caller names).

use std::net::SocketAddr;
use std::path::Path;

use crate::{Error, Launch, Service, probe};

/// The local registry on one loopback address.
#[derive(Debug, Clone)]
pub struct Registry {
    addr: SocketAddr,
    image: String,
}

/// Why an address is not one the local registry may listen on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("`{0}` is not an ip:port address")]
    NotAnAddress(String),
    #[error("`{0}` is not a loopback address")]
    NotLoopback(String),
}

impl Registry {
    /// Where the local registry listens unless the caller says otherwise.
    pub const DEFAULT_ADDR: &str = "127.0.0.1:5050";
    /// The container image used when no registry binary is installed, unless the caller
    /// names another.
    pub const DEFAULT_IMAGE: &str = "registry:2";
    /// The registry binaries looked for on `PATH`, in order.
    const PROGRAMS: &[&str] = &["docker-registry", "registry"];

    /// The registry on `addr`, run from `image` (blank or `None`: [`Self::DEFAULT_IMAGE`])
    /// when it runs as a container.
    pub fn new(addr: SocketAddr, image: Option<String>) -> Self {
        Registry {
            addr,
            image: image
                .filter(|image| !image.trim().is_empty())
                .unwrap_or_else(|| Self::DEFAULT_IMAGE.to_owned()),
        }
    }

    /// `text` as the local registry's address: `ip:port` on a loopback interface.
    pub fn parse_addr(text: &str) -> Result<SocketAddr, AddrError> {
        let addr: SocketAddr = text
            .trim()
            .parse()
            .map_err(|_| AddrError::NotAnAddress(text.to_owned()))?;
        if addr.ip().is_loopback() {
            Ok(addr)
        } else {
            Err(AddrError::NotLoopback(text.to_owned()))
        }
    }

    /// Whether `host` (`host:port` of a registry) is this registry's address.
    pub fn serves(&self, host: &str) -> bool {
        let Some((name, port)) = host.rsplit_once(':') else {
            return false;
        };
        port.parse::<u16>().ok() == Some(self.addr.port())
            && (name == self.addr.ip().to_string()
                || (name == "localhost" && self.addr.ip().is_loopback()))
    }
}

impl Service for Registry {
    fn name(&self) -> &'static str {
        "registry"
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /v2/` answers 200, or 401 when the registry wants credentials.
    fn answers(&self, addr: SocketAddr) -> bool {
        matches!(probe::http_status(addr, "/v2/"), Some(200 | 401))
    }

    fn launch(&self, dir: &Path) -> Result<Launch, Error> {
        let data = dir.join("data");
        let config = dir.join("config.yml");
        fs_err::write(
            &config,
            config_yaml(&data, self.addr, &crate::random_hex(16)?)?,
        )?;
        let mut volume = data.into_os_string();
        volume.push(":/var/lib/registry");
        Ok(Launch {
            programs: Self::PROGRAMS,
            args: vec!["serve".into(), config.into_os_string()],
            image: self.image.clone(),
            container_options: vec![
                "--publish".into(),
                format!("{}:5000", self.addr).into(),
                "--volume".into(),
                volume,
                "--env".into(),
                "REGISTRY_STORAGE_DELETE_ENABLED=true".into(),
            ],
            install: "install Debian's docker-registry package, or Docker",
        })
    }
}

/// The registry's configuration: loopback only, filesystem storage, deletes allowed.
fn config_yaml(data: &Path, addr: SocketAddr, secret: &str) -> Result<String, Error> {
    let data = serde_json::to_string(&data.to_string_lossy())?;
    Ok(format!(
        "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: {secret}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_local_address_counts_as_local() {
        let registry = Registry::new("127.0.0.1:5050".parse().unwrap(), None);
        assert!(registry.serves("127.0.0.1:5050"));
        assert!(registry.serves("localhost:5050"));
        assert!(!registry.serves("127.0.0.1:5000"));
        assert!(!registry.serves("registry.example.com:5050"));
        assert!(!registry.serves("127.0.0.1"));
    }

    #[test]
    fn the_address_must_be_loopback() {
        assert_eq!(
            Registry::parse_addr(" 127.0.0.1:6000 "),
            Ok("127.0.0.1:6000".parse().unwrap())
        );
        assert!(matches!(
            Registry::parse_addr("localhost:5050"),
            Err(AddrError::NotAnAddress(_))
        ));
        assert!(matches!(
            Registry::parse_addr("0.0.0.0:5050"),
            Err(AddrError::NotLoopback(_))
        ));
    }

    #[test]
    fn a_blank_image_is_the_default_one() {
        let addr = Registry::DEFAULT_ADDR.parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let launch = Registry::new(addr, Some(" ".into()))
            .launch(dir.path())
            .unwrap();
        assert_eq!(launch.image, Registry::DEFAULT_IMAGE);
        assert!(dir.path().join("config.yml").is_file());
    }

    #[test]
    fn the_config_keeps_the_registry_on_loopback() {
        let yaml = config_yaml(
            Path::new("/p/data"),
            "127.0.0.1:5050".parse().unwrap(),
            "ab",
        )
        .unwrap();
        assert!(yaml.contains("addr: 127.0.0.1:5050\n"), "{yaml}");
        assert!(yaml.contains("rootdirectory: \"/p/data\"\n"), "{yaml}");
    }
}
