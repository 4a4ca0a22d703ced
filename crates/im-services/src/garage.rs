//! Garage, the S3 server builds use as their shared layer cache: one node on loopback
//! addresses, its metadata and data under the state folder. After it starts, [`Garage`]
//! initialises it the way the proof of concept did, with the `garage` CLI and each step
//! skipped when done already (so a restart reuses everything): assign the node a role, apply
//! the layout, create the `buildkit-cache` bucket, create an access key, grant it the
//! bucket, and write the credentials (mode 0600) to `credentials.json`, which builds use as
//! their S3 cache when `cache:` is unset.

use fs_err::os::unix::fs::OpenOptionsExt as _;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use im_diag::Secret;
use im_process::{CommandSpec, Run};
use serde::{Deserialize, Serialize};

use crate::{Error, Launch, Service, probe};

/// The bucket the cache lives in.
pub const BUCKET: &str = "buildkit-cache";
/// The S3 region Garage answers as.
pub const REGION: &str = "garage";
/// The credentials file in the state folder.
pub const CREDENTIALS: &str = "credentials.json";

/// The local Garage: S3 on `addr`, RPC and admin on the next two ports.
#[derive(Debug, Clone)]
pub struct Garage {
    addr: SocketAddr,
}

/// What builds need to use the local Garage as an S3 cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// `http://127.0.0.1:3900`.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Credentials {
    /// The credentials `start garage` wrote for the project at `root`, if it did.
    pub fn read(root: &Path) -> Option<Credentials> {
        let path = root.join(".image-manager").join("garage").join(CREDENTIALS);
        let text = fs_err::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The secret key, wrapped so it never shows.
    pub fn secret(&self) -> Secret {
        Secret::new(self.secret_access_key.clone())
    }

    /// The S3 endpoint's `host:port`.
    pub fn endpoint_addr(&self) -> Option<SocketAddr> {
        self.endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .ok()
    }
}

impl Garage {
    /// Where Garage's S3 API listens unless the caller says otherwise (the proof of
    /// concept's port); RPC is on the next port, the admin API on the one after.
    pub const DEFAULT_ADDR: &str = "127.0.0.1:3900";

    pub fn new(addr: SocketAddr) -> Self {
        Garage { addr }
    }

    fn port(&self, offset: u16) -> SocketAddr {
        SocketAddr::new(self.addr.ip(), self.addr.port().wrapping_add(offset))
    }

    fn config_path(dir: &Path) -> PathBuf {
        dir.join("garage.toml")
    }

    /// `garage -c CONFIG ARGS…`, its output captured (never logged: it carries the key).
    fn cli(program: &Path, dir: &Path, args: &[&str]) -> Result<String, Error> {
        let spec = args.iter().fold(
            CommandSpec::new(program)
                .arg("-c")
                .arg(Self::config_path(dir)),
            |spec, arg| spec.arg(*arg),
        );
        Run::new(&spec)
            .deadline(Some(
                std::time::Instant::now() + std::time::Duration::from_secs(60),
            ))
            .checked(None)
            .map_err(|source| Error::Init {
                service: "garage",
                source: Box::new(source),
            })
    }
}

/// The configuration: one node, sqlite metadata, loopback addresses, fresh secrets.
fn config_toml(dir: &Path, garage: &Garage, rpc_secret: &str, admin_token: &str) -> String {
    let quote = |p: &Path| serde_json::to_string(&p.to_string_lossy()).unwrap_or_default();
    format!(
        "metadata_dir = {meta}\ndata_dir = {data}\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
         rpc_bind_addr = \"{rpc}\"\nrpc_public_addr = \"{rpc}\"\nrpc_secret = \"{rpc_secret}\"\n\n\
         [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"{s3}\"\nroot_domain = \".s3.garage.localhost\"\n\n\
         [admin]\napi_bind_addr = \"{admin}\"\nadmin_token = \"{admin_token}\"\n",
        meta = quote(&dir.join("data").join("meta")),
        data = quote(&dir.join("data").join("blocks")),
        rpc = garage.port(1),
        s3 = garage.addr,
        admin = garage.port(3),
    )
}

/// The value of `Key:   value` in the CLI's output.
fn field<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output.lines().find_map(|line| {
        line.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

impl Service for Garage {
    fn name(&self) -> &'static str {
        "garage"
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The S3 API answers any request with an S3 error document (403 without credentials).
    fn answers(&self, addr: SocketAddr) -> bool {
        matches!(probe::http_status(addr, "/"), Some(400..=403))
    }

    fn launch(&self, dir: &Path) -> Result<Launch, Error> {
        let config = Self::config_path(dir);
        // The secrets of an earlier start are kept: the node's identity and data depend on
        // them.
        if !config.is_file() {
            let text = config_toml(dir, self, &crate::random_hex(32)?, &crate::random_hex(32)?);
            let mut file = fs_err::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&config)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
        }
        Ok(Launch {
            programs: &["garage"],
            args: vec!["-c".into(), config.into_os_string(), "server".into()],
            image: String::new(),
            container_options: Vec::new(),
            install: "`cargo install garage --locked` (scripts/setup does it)",
        })
    }

    /// The five steps of the proof of concept, each skipped when done.
    fn initialise(&self, dir: &Path, program: &Path) -> Result<(), Error> {
        let credentials_path = dir.join(CREDENTIALS);
        let status = Self::cli(program, dir, &["status"])?;
        if status.contains("NO ROLE ASSIGNED") {
            let node = Self::cli(program, dir, &["node", "id", "-q"])?;
            let id = node.trim().split('@').next().unwrap_or_default().to_owned();
            Self::cli(
                program,
                dir,
                &["layout", "assign", "-z", "dc1", "-c", "1G", &id],
            )?;
            let layout = Self::cli(program, dir, &["layout", "show"])?;
            let current: u64 = field(&layout, "Current cluster layout version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let next = (current + 1).to_string();
            Self::cli(program, dir, &["layout", "apply", "--version", &next])?;
        }
        if Self::cli(program, dir, &["bucket", "info", BUCKET]).is_err() {
            Self::cli(program, dir, &["bucket", "create", BUCKET])?;
        }
        let existing = fs_err::read_to_string(&credentials_path)
            .ok()
            .and_then(|text| serde_json::from_str::<Credentials>(&text).ok())
            .filter(|c| Self::cli(program, dir, &["key", "info", &c.access_key_id]).is_ok());
        let mut credentials = match existing {
            Some(credentials) => credentials,
            None => {
                let created = Self::cli(program, dir, &["key", "create", "image-manager-cache"])?;
                let (Some(id), Some(secret)) =
                    (field(&created, "Key ID"), field(&created, "Secret key"))
                else {
                    return Err(Error::Incomplete(
                        "access key in `garage key create`'s output",
                    ));
                };
                Credentials {
                    endpoint: String::new(),
                    region: REGION.to_owned(),
                    bucket: BUCKET.to_owned(),
                    access_key_id: id.to_owned(),
                    secret_access_key: secret.to_owned(),
                }
            }
        };
        Self::cli(
            program,
            dir,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                BUCKET,
                "--key",
                &credentials.access_key_id,
            ],
        )?;
        credentials.endpoint = format!("http://{}", self.addr);
        write_private(&credentials_path, &serde_json::to_vec_pretty(&credentials)?)?;
        Ok(())
    }
}

/// Writes `bytes` to `path` readable by its owner only (also when it existed with other
/// permissions).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let partial = path.with_extension("json.partial");
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&partial)?;
    std::io::Write::write_all(&mut file, bytes)?;
    fs_err::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
    fs_err::rename(&partial, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_every_port_on_loopback() {
        let garage = Garage::new("127.0.0.1:3900".parse().unwrap());
        let toml = config_toml(Path::new("/p/.image-manager/garage"), &garage, "aa", "bb");
        insta::assert_snapshot!(toml);
    }

    #[test]
    fn fields_are_read_from_the_clis_tables() {
        let out = "==== ACCESS KEY INFORMATION ====\nKey ID:              GK96\nSecret key:          e283\n";
        assert_eq!(field(out, "Key ID"), Some("GK96"));
        assert_eq!(field(out, "Secret key"), Some("e283"));
        assert_eq!(field(out, "Created"), None);
    }
}
