//! Local services for development, each on a loopback address with its configuration, data,
//! log and state under `<project>/.image-manager/<service>/`: the distribution registry
//! ([`Registry`]), Garage, the S3 layer cache ([`Garage`]), BuildKit's daemon
//! ([`Buildkitd`]) and an isolated Docker daemon for tests ([`Dind`]).
//!
//! A [`Service`] says what it is called, where it listens, how to tell it answers, and how to
//! run it ([`Launch`]): as a program found on `PATH`, else as a container through Docker.
//! [`Services`] starts, stops and reports on services for one project: a started program
//! leads its own process group, so it outlives the command and a Ctrl-C in the terminal, and
//! `state.json` records what was started (pid and program, or the container) so `stop` ends
//! exactly that and `status` can tell it from something else listening on the address.
//!
//! Nothing here prints or reads the environment: the caller passes `PATH` and the settings in
//! and gets statuses back.

mod buildkitd;
mod dind;
mod error;
pub mod garage;
mod lifecycle;
mod probe;
mod registry;
mod state;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;

pub use buildkitd::Buildkitd;
pub use dind::Dind;
pub use error::Error;
pub use garage::Garage;
pub use lifecycle::{Services, Stopped};
pub use registry::{AddrError, Registry};
pub use state::{Runner, ServiceStatus};

/// One kind of local service.
pub trait Service {
    /// Its name (`registry`): it names the state folder, the log, the container and messages.
    fn name(&self) -> &'static str;
    /// Where it listens.
    fn addr(&self) -> SocketAddr;
    /// Whether a service of this kind answers on `addr`.
    fn answers(&self, addr: SocketAddr) -> bool;
    /// Writes what the service reads (its configuration) into `dir`, its state folder, and
    /// says how to run it.
    fn launch(&self, dir: &Path) -> Result<Launch, Error>;
    /// Sets up a running service started as `program` (Garage's layout, bucket and key);
    /// each `start` runs it, so it must skip what is done.
    fn initialise(&self, _dir: &Path, _program: &Path) -> Result<(), Error> {
        Ok(())
    }
}

/// `bytes` random bytes as hex, for secrets a service's configuration needs.
pub(crate) fn random_hex(bytes: usize) -> Result<String, Error> {
    use std::fmt::Write as _;
    use std::io::Read as _;
    let mut buffer = vec![0_u8; bytes];
    fs_err::File::open("/dev/urandom")?.read_exact(&mut buffer)?;
    Ok(buffer.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

/// How to run a service: one of `programs` with `args`, else the container `image`.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The programs that serve it, looked for on `PATH` in this order.
    pub programs: &'static [&'static str],
    /// Their arguments.
    pub args: Vec<OsString>,
    /// The container image run through Docker when no program is installed.
    pub image: String,
    /// The `docker run` options before the image: ports, volumes, environment.
    pub container_options: Vec<OsString>,
    /// What to install when neither a program nor Docker is there.
    pub install: &'static str,
}
