//! What can go wrong starting and stopping a service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the state folder (fs-err errors name the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("waiting for the {service} state lock")]
    Lock {
        service: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a {service}: neither {programs} nor docker is on PATH ({install})")]
    NothingToRun {
        service: &'static str,
        /// `docker-registry nor registry`.
        programs: String,
        install: &'static str,
    },
    #[error("cannot start the {service}: {programs} is not on PATH ({install})")]
    NotInstalled {
        service: &'static str,
        programs: String,
        install: &'static str,
    },
    #[error(
        "cannot start the {service}: something that is not a {service} already listens on {addr}; stop it, or give the {service} another port"
    )]
    PortInUse {
        service: &'static str,
        addr: SocketAddr,
    },
    #[error("cannot run {}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} {command} did not answer on {addr} within {seconds}s; the end of its log ({}):\n{tail}",
        program.display(),
        log.display()
    )]
    NotReady {
        program: PathBuf,
        /// The arguments, space-separated.
        command: String,
        addr: SocketAddr,
        seconds: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("{} {command} failed ({status}): {stderr} (log: {})", docker.display(), log.display())]
    ContainerFailed {
        docker: PathBuf,
        /// The arguments, space-separated.
        command: String,
        status: ExitStatus,
        stderr: String,
        log: PathBuf,
    },
    #[error(
        "the {image} container {name} did not answer on {addr} within {seconds}s (see `docker logs {name}`)"
    )]
    ContainerNotReady {
        image: String,
        name: String,
        addr: SocketAddr,
        seconds: u64,
    },
    #[error("the {service} started, but setting it up failed")]
    Init {
        service: &'static str,
        #[source]
        source: Box<im_process::RunError>,
    },
    #[error("{} belongs to user {owner}, not to this user ({me}): the {service} cannot use it", dir.display())]
    ForeignOwner {
        service: &'static str,
        dir: PathBuf,
        owner: u32,
        me: u32,
    },
    #[error("state.json names no {0}")]
    Incomplete(&'static str),
    #[error("{} rm --force {name} failed ({status}): {stderr}", docker.display())]
    RemoveFailed {
        docker: PathBuf,
        name: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("pid out of range")]
    PidOutOfRange(#[source] std::num::TryFromIntError),
    #[error("pid 0 is not a process")]
    PidZero,
    #[error("the {service} (pid {pid}, {}) did not stop", program.display())]
    DidNotStop {
        service: &'static str,
        pid: u32,
        program: PathBuf,
    },
}
