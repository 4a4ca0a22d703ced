//! Starting, stopping and reporting on the services of one project.

use std::ffi::OsString;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::state::{State, container_running};
use crate::{Error, Launch, Runner, Service, ServiceStatus};

/// How long a service may take to answer after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The services of the project at `root`, their programs looked for on `path` (`PATH`).
#[derive(Debug, Clone)]
pub struct Services {
    root: PathBuf,
    path: Option<OsString>,
}

/// What `stop` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// What `start` started is stopped.
    Stopped,
    /// Nothing this project started runs, but something answers on the address.
    Foreign,
    /// It was not running.
    NotRunning,
}

impl Services {
    pub fn new(root: &Path, path: Option<OsString>) -> Self {
        Services {
            root: root.to_owned(),
            path,
        }
    }

    /// `<project>/.image-manager/<service>`.
    fn dir(&self, service: &dyn Service) -> PathBuf {
        fs_err::canonicalize(&self.root)
            .unwrap_or_else(|_| self.root.clone())
            .join(".image-manager")
            .join(service.name())
    }

    /// What runs of `service`, and where its data and log are.
    pub fn status(&self, service: &dyn Service) -> Result<ServiceStatus, Error> {
        let dir = self.dir(service);
        let state = State::read(&dir)?.filter(State::alive);
        let addr = service.addr();
        let address = state
            .as_ref()
            .map_or_else(|| addr.to_string(), |s| s.addr.clone());
        let running = state.is_some() || service.answers(addr);
        Ok(ServiceStatus {
            service: service.name(),
            running,
            address,
            managed: state.is_some(),
            runner: state.as_ref().map(|s| s.runner),
            program: state.as_ref().map(|s| s.program.display().to_string()),
            pid: state.as_ref().and_then(|s| s.pid),
            container: state.as_ref().and_then(|s| s.container.clone()),
            data: dir.join("data").display().to_string(),
            log: dir.join(log_name(service)).display().to_string(),
        })
    }

    /// Starts `service` when nothing answers on its address yet; its status when this call
    /// started it.
    pub fn ensure(&self, service: &dyn Service) -> Result<Option<ServiceStatus>, Error> {
        if service.answers(service.addr()) {
            return Ok(None);
        }
        let (status, started) = self.start(service)?;
        Ok(started.then_some(status))
    }

    /// Starts `service` unless it already runs. Returns its status and whether this call
    /// started it.
    pub fn start(&self, service: &dyn Service) -> Result<(ServiceStatus, bool), Error> {
        let name = service.name();
        let dir = self.dir(service);
        fs_err::create_dir_all(dir.join("data"))?;
        check_owner(name, &dir)?;
        // Keep the state folder out of version control wherever the project lives.
        let ignore = self.root.join(".image-manager").join(".gitignore");
        if !ignore.exists() {
            fs_err::write(&ignore, "*\n")?;
        }
        let lock_file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        let mut lock = fd_lock::RwLock::new(lock_file);
        let _guard = lock.write().map_err(|source| Error::Lock {
            service: name,
            source,
        })?;

        if let Some(state) = State::read(&dir)?
            && state.alive()
        {
            if state.runner == Runner::Process {
                service.initialise(&dir, &state.program)?;
            }
            return Ok((self.status(service)?, false));
        }
        if service.answers(service.addr()) {
            // Something else (another project's service, a container) serves the address.
            return Ok((self.status(service)?, false));
        }
        if crate::probe::accepts(service.addr()) {
            return Err(Error::PortInUse {
                service: name,
                addr: service.addr(),
            });
        }
        let log = dir.join(log_name(service));
        let launch = service.launch(&dir)?;
        let state = if let Some(program) = launch.programs.iter().find_map(|p| self.find(p)) {
            start_process(service, &program, &launch.args, &log)?
        } else if let Some(docker) = self.find("docker").filter(|_| !launch.image.is_empty()) {
            start_container(service, &docker, &dir, &launch, &log)?
        } else if launch.image.is_empty() {
            return Err(Error::NotInstalled {
                service: name,
                programs: launch.programs.join(" nor "),
                install: launch.install,
            });
        } else {
            return Err(Error::NothingToRun {
                service: name,
                programs: launch.programs.join(" nor "),
                install: launch.install,
            });
        };
        // Written before setting up, so `stop` finds what runs even when that fails.
        state.write(&dir)?;
        if state.runner == Runner::Process {
            service.initialise(&dir, &state.program)?;
        }
        Ok((self.status(service)?, true))
    }

    /// Stops what `start` started.
    pub fn stop(&self, service: &dyn Service) -> Result<Stopped, Error> {
        let dir = self.dir(service);
        let stopped = match State::read(&dir)? {
            Some(state) => {
                let alive = state.alive();
                if alive {
                    stop_state(service, &state)?;
                }
                fs_err::remove_file(dir.join("state.json"))?;
                // Stopped means the address is free again.
                if let Ok(addr) = state.addr.parse::<SocketAddr>() {
                    let deadline = Instant::now() + STOP_TIMEOUT;
                    while service.answers(addr) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                alive
            }
            None => false,
        };
        Ok(if stopped {
            Stopped::Stopped
        } else if service.answers(service.addr()) {
            Stopped::Foreign
        } else {
            Stopped::NotRunning
        })
    }

    /// `program` on `PATH`.
    fn find(&self, program: &str) -> Option<PathBuf> {
        let path = self.path.as_deref()?;
        std::env::split_paths(path)
            .map(|dir| dir.join(program))
            .find(|candidate| {
                fs_err::metadata(candidate).is_ok_and(|m| {
                    use std::os::unix::fs::PermissionsExt as _;
                    m.is_file() && m.permissions().mode() & 0o111 != 0
                })
            })
    }
}

/// A state folder another user owns would be written with the wrong owner, or not at all.
fn check_owner(service: &'static str, dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    for path in [dir.to_owned(), dir.join("data")] {
        let owner = fs_err::metadata(&path)?.uid();
        if owner != me {
            return Err(Error::ForeignOwner {
                service,
                dir: path,
                owner,
                me,
            });
        }
    }
    Ok(())
}

/// `registry.log`.
fn log_name(service: &dyn Service) -> String {
    format!("{}.log", service.name())
}

/// `args` as one line, for messages.
fn joined(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits until `service` answers; `exited` says whether it died meanwhile.
fn wait_ready(service: &dyn Service, mut exited: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if service.answers(service.addr()) {
            return true;
        }
        if exited() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The last lines of a log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = fs_err::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

fn start_process(
    service: &dyn Service,
    program: &Path,
    args: &[OsString],
    log_path: &Path,
) -> Result<State, Error> {
    use std::os::unix::process::CommandExt as _;
    let log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let (log, _) = log.into_parts();
    tracing::debug!("starting {} {:?}", program.display(), args);
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C meant for this command does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: program.to_owned(),
            source,
        })?;
    let pid = child.id();
    let ready = wait_ready(service, || matches!(child.try_wait(), Ok(Some(_))));
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::NotReady {
            program: program.to_owned(),
            command: joined(args),
            addr: service.addr(),
            seconds: READY_TIMEOUT.as_secs(),
            log: log_path.to_owned(),
            tail: log_tail(log_path),
        });
    }
    Ok(State {
        runner: Runner::Process,
        addr: service.addr().to_string(),
        program: program.to_owned(),
        pid: Some(pid),
        container: None,
    })
}

/// A short stable name for the container of one project's service.
fn container_name(service: &dyn Service, dir: &Path) -> String {
    // FNV-1a of the state folder: projects side by side get their own containers.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dir.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "image-manager-{}-{:08x}",
        service.name(),
        hash & 0xffff_ffff
    )
}

fn start_container(
    service: &dyn Service,
    docker: &Path,
    dir: &Path,
    launch: &Launch,
    log_path: &Path,
) -> Result<State, Error> {
    let name = container_name(service, dir);
    // A stopped container of an earlier run would block the name.
    let _ = Command::new(docker)
        .args(["rm", "-f", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let mut argv: Vec<OsString> = vec![
        "run".into(),
        "--detach".into(),
        "--name".into(),
        name.clone().into(),
    ];
    argv.extend(launch.container_options.iter().cloned());
    argv.push(launch.image.clone().into());
    tracing::debug!("starting {} {:?}", docker.display(), argv);
    let output = Command::new(docker)
        .args(&argv)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: docker.to_owned(),
            source,
        })?;
    let mut log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    log.write_all(&output.stdout)?;
    log.write_all(&output.stderr)?;
    if !output.status.success() {
        return Err(Error::ContainerFailed {
            docker: docker.to_owned(),
            command: joined(&argv),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            log: log_path.to_owned(),
        });
    }
    if !wait_ready(service, || !container_running(docker, &name)) {
        return Err(Error::ContainerNotReady {
            image: launch.image.clone(),
            name,
            addr: service.addr(),
            seconds: READY_TIMEOUT.as_secs(),
        });
    }
    Ok(State {
        runner: Runner::Docker,
        addr: service.addr().to_string(),
        program: docker.to_owned(),
        pid: None,
        container: Some(name),
    })
}

/// Ends what `state` describes (it runs).
fn stop_state(service: &dyn Service, state: &State) -> Result<(), Error> {
    match state.runner {
        Runner::Process => {
            let pid = state.pid.ok_or(Error::Incomplete("pid"))?;
            stop_process(service, pid, &state.program)
        }
        Runner::Docker => {
            let name = state
                .container
                .as_deref()
                .ok_or(Error::Incomplete("container"))?;
            let output = Command::new(&state.program)
                .args(["rm", "--force", name])
                .stdin(Stdio::null())
                .output()?;
            if !output.status.success() {
                return Err(Error::RemoveFailed {
                    docker: state.program.clone(),
                    name: name.to_owned(),
                    status: output.status,
                    stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                });
            }
            Ok(())
        }
    }
}

fn stop_process(service: &dyn Service, pid: u32, program: &Path) -> Result<(), Error> {
    use rustix::process::{Pid, Signal, kill_process_group};
    let raw = i32::try_from(pid).map_err(Error::PidOutOfRange)?;
    let group = Pid::from_raw(raw).ok_or(Error::PidZero)?;
    // The service leads its own process group (see `start_process`).
    let _ = kill_process_group(group, Signal::TERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !exited(pid) {
        if Instant::now() > deadline {
            let _ = kill_process_group(group, Signal::KILL);
            std::thread::sleep(Duration::from_millis(200));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !exited(pid) {
        return Err(Error::DidNotStop {
            service: service.name(),
            pid,
            program: program.to_owned(),
        });
    }
    Ok(())
}

/// Whether `pid` has finished exiting: gone, or a zombie whose every thread is gone too. A
/// multi-threaded process's leader turns zombie before its other threads (which still hold
/// its sockets) are done, and a process part-way through exiting has lost its command line
/// already, so neither alone is a test.
fn exited(pid: u32) -> bool {
    let zombie = |stat: &str| {
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X' | 'x'))
    };
    let Ok(tasks) = fs_err::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        fs_err::read_to_string(task.path().join("stat")).map_or(true, |stat| zombie(&stat))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    /// A registry on a port nothing listens on (bound, then let go).
    fn unanswered_registry() -> Registry {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        Registry::new(addr, None)
    }

    #[test]
    fn the_container_name_is_stable_per_project() {
        let registry = Registry::new(Registry::DEFAULT_ADDR.parse().unwrap(), None);
        let a = container_name(&registry, Path::new("/a/.image-manager/registry"));
        assert_eq!(
            a,
            container_name(&registry, Path::new("/a/.image-manager/registry"))
        );
        assert_ne!(
            a,
            container_name(&registry, Path::new("/b/.image-manager/registry"))
        );
        assert!(a.starts_with("image-manager-registry-"));
    }

    #[test]
    fn stopping_what_never_ran_says_so() {
        let root = tempfile::tempdir().unwrap();
        let registry = unanswered_registry();
        let services = Services::new(root.path(), None);
        assert_eq!(services.stop(&registry).unwrap(), Stopped::NotRunning);
        let status = services.status(&registry).unwrap();
        assert!(!status.running && !status.managed);
        assert!(status.log.ends_with("registry.log"), "{}", status.log);
    }

    #[test]
    fn without_a_program_or_docker_start_says_what_to_install() {
        let root = tempfile::tempdir().unwrap();
        let registry = unanswered_registry();
        let error = Services::new(root.path(), None)
            .start(&registry)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot start a registry: neither docker-registry nor registry nor docker is on PATH \
             (install Debian's docker-registry package, or Docker)"
        );
    }
}
