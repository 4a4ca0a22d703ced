//! `image-manager start registry`, `stop registry` and `status`: a local distribution
//! registry for development, on a loopback address (`127.0.0.1:5050`, or
//! `IMAGE_MANAGER_REGISTRY_ADDR`), with its configuration, data, log and state under
//! `<project>/.image-manager/registry/`.
//!
//! It runs the `docker-registry` (Debian) or `registry` binary when one is on `PATH`, else the
//! `registry:2` container through Docker. The process is started in its own process group, so
//! it outlives the command and a Ctrl-C in the terminal; `state.json` records what was started
//! (pid and program, or the container) so `stop` ends exactly that and `status` can tell it
//! from something else listening on the address. `push` starts it by itself when the default
//! registry is that address and nothing answers there.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use im_diag::{Diagnostic, Diagnostics};
use serde::{Deserialize, Serialize};

use super::{Context, Outcome};
use crate::cli::{Format, ServiceArgs, StatusArgs};
use crate::env_vars;
use crate::printer::Printer;

/// Where the local registry listens unless `IMAGE_MANAGER_REGISTRY_ADDR` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5050";
/// The container image used when no registry binary is installed, unless
/// `IMAGE_MANAGER_REGISTRY_IMAGE` names another.
const CONTAINER_IMAGE: &str = "registry:2";
/// The registry binaries looked for on `PATH`, in order.
const PROGRAMS: [&str; 2] = ["docker-registry", "registry"];
/// How long the registry may take to answer `/v2/` after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How the registry runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Runner {
    Process,
    Docker,
}

/// What `start` recorded in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    runner: Runner,
    addr: String,
    /// The program (process runner) or the docker client (docker runner).
    program: PathBuf,
    pid: Option<u32>,
    container: Option<String>,
}

/// What `status` reports about the registry.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    service: &'static str,
    running: bool,
    address: String,
    /// Started by image-manager (as opposed to something else answering on the address).
    managed: bool,
    runner: Option<Runner>,
    program: Option<String>,
    pid: Option<u32>,
    container: Option<String>,
    data: String,
    log: String,
}

/// `<project>/.image-manager/registry`.
fn state_dir(root: &Path) -> PathBuf {
    fs_err::canonicalize(root)
        .unwrap_or_else(|_| root.to_owned())
        .join(".image-manager")
        .join("registry")
}

/// The loopback address of the local registry.
pub fn local_addr() -> Result<SocketAddr, Diagnostics> {
    let text = std::env::var(env_vars::IMAGE_MANAGER_REGISTRY_ADDR)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        Diagnostic::error(format!(
            "{} is `{text}`, which is not an ip:port address",
            env_vars::IMAGE_MANAGER_REGISTRY_ADDR
        ))
        .with_help("write a loopback address such as 127.0.0.1:5050")
    })?;
    if !addr.ip().is_loopback() {
        return Err(Diagnostic::error(format!(
            "{} is `{text}`: the local registry only listens on a loopback address",
            env_vars::IMAGE_MANAGER_REGISTRY_ADDR
        ))
        .with_help("use 127.0.0.1:PORT; a registry others reach belongs in `registry:` of .image-manager.yml")
        .into());
    }
    Ok(addr)
}

/// Whether `host` (`host:port` of a registry) is the local registry's address.
pub fn is_local(host: &str, addr: SocketAddr) -> bool {
    let Some((name, port)) = host.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().ok() == Some(addr.port())
        && (name == addr.ip().to_string() || (name == "localhost" && addr.ip().is_loopback()))
}

/// Whether a registry answers `GET /v2/` on `addr` (200, or 401 when it wants credentials).
fn answers(addr: SocketAddr) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        write!(
            stream,
            "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0_u8; 32];
        let read = stream.read(&mut head)?;
        let line = String::from_utf8_lossy(&head[..read]);
        Ok(line.starts_with("HTTP/1.1 200") || line.starts_with("HTTP/1.1 401"))
    };
    probe().unwrap_or(false)
}

/// `program` on `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env_vars::PATH)?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            fs_err::metadata(candidate).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt as _;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
}

fn read_state(dir: &Path) -> anyhow::Result<Option<State>> {
    let path = dir.join("state.json");
    match fs_err::read_to_string(&path) {
        Ok(text) => Ok(serde_json::from_str(&text).ok()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn write_state(dir: &Path, state: &State) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(state)?;
    json.push(b'\n');
    let partial = dir.join("state.json.partial");
    fs_err::write(&partial, json)?;
    fs_err::rename(&partial, dir.join("state.json"))?;
    Ok(())
}

/// Whether `pid` is alive and is `program` (a reused pid or a zombie is not).
fn process_is(pid: u32, program: &Path) -> bool {
    let Ok(cmdline) = fs_err::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    !first.is_empty() && first == program.as_os_str().as_encoded_bytes()
}

/// Whether the container named `name` is running.
fn container_running(docker: &Path, name: &str) -> bool {
    Command::new(docker)
        .args(["inspect", "--format", "{{.State.Running}}", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true"
        })
}

/// Whether what `state` describes is still running.
fn state_alive(state: &State) -> bool {
    match state.runner {
        Runner::Process => state.pid.is_some_and(|pid| process_is(pid, &state.program)),
        Runner::Docker => state
            .container
            .as_deref()
            .is_some_and(|name| container_running(&state.program, name)),
    }
}

fn status_of(root: &Path, addr: SocketAddr) -> anyhow::Result<ServiceStatus> {
    let dir = state_dir(root);
    let state = read_state(&dir)?.filter(state_alive);
    let address = state
        .as_ref()
        .map_or_else(|| addr.to_string(), |s| s.addr.clone());
    let running = state.is_some() || answers(addr);
    Ok(ServiceStatus {
        service: "registry",
        running,
        address,
        managed: state.is_some(),
        runner: state.as_ref().map(|s| s.runner),
        program: state.as_ref().map(|s| s.program.display().to_string()),
        pid: state.as_ref().and_then(|s| s.pid),
        container: state.as_ref().and_then(|s| s.container.clone()),
        data: dir.join("data").display().to_string(),
        log: dir.join("registry.log").display().to_string(),
    })
}

/// The registry's configuration: loopback only, filesystem storage, deletes allowed.
fn config_yaml(data: &Path, addr: SocketAddr, secret: &str) -> anyhow::Result<String> {
    let data = serde_json::to_string(&data.to_string_lossy())?;
    Ok(format!(
        "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: {secret}\n"
    ))
}

/// 32 random hex digits for the registry's upload-state secret.
fn random_hex() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 16];
    fs_err::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

/// The last lines of a log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = fs_err::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Waits until the registry answers; `exited` says whether it died meanwhile.
fn wait_ready(addr: SocketAddr, mut exited: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if answers(addr) {
            return true;
        }
        if exited() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A short stable name for the container of one project's registry.
fn container_name(dir: &Path) -> String {
    // FNV-1a of the state folder: projects side by side get their own containers.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dir.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("image-manager-registry-{:08x}", hash & 0xffff_ffff)
}

/// Starts the local registry unless it already runs. Returns its status and whether this
/// call started it.
pub fn start(root: &Path, addr: SocketAddr) -> anyhow::Result<(ServiceStatus, bool)> {
    let dir = state_dir(root);
    fs_err::create_dir_all(dir.join("data"))?;
    // Keep the state folder out of version control wherever the project lives.
    let ignore = root.join(".image-manager").join(".gitignore");
    if !ignore.exists() {
        fs_err::write(&ignore, "*\n")?;
    }
    let lock_file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    let mut lock = fd_lock::RwLock::new(lock_file);
    let _guard = lock
        .write()
        .context("waiting for the registry state lock")?;

    if let Some(state) = read_state(&dir)?
        && state_alive(&state)
    {
        return Ok((status_of(root, addr)?, false));
    }
    if answers(addr) {
        // Something else (another project's registry, a container) serves the address.
        return Ok((status_of(root, addr)?, false));
    }
    let log_path = dir.join("registry.log");
    let config = dir.join("config.yml");
    fs_err::write(
        &config,
        config_yaml(&dir.join("data"), addr, &random_hex()?)?,
    )?;
    let state = if let Some(program) = PROGRAMS.iter().find_map(|p| find_on_path(p)) {
        start_process(&program, &config, &log_path, addr)?
    } else if let Some(docker) = find_on_path("docker") {
        start_container(&docker, &dir, &log_path, addr)?
    } else {
        anyhow::bail!(
            "cannot start a registry: neither {} nor docker is on PATH (install Debian's docker-registry package, or Docker)",
            PROGRAMS.join(" nor ")
        );
    };
    write_state(&dir, &state)?;
    Ok((status_of(root, addr)?, true))
}

fn start_process(
    program: &Path,
    config: &Path,
    log_path: &Path,
    addr: SocketAddr,
) -> anyhow::Result<State> {
    use std::os::unix::process::CommandExt as _;
    let log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let (log, _) = log.into_parts();
    let argv: Vec<OsString> = vec!["serve".into(), config.as_os_str().to_owned()];
    tracing::debug!("starting {} {:?}", program.display(), argv);
    let mut child = Command::new(program)
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C meant for this command does not reach it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let pid = child.id();
    let ready = wait_ready(addr, || matches!(child.try_wait(), Ok(Some(_))));
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!(
            "{} serve {} did not answer on {addr} within {}s; the end of its log ({}):\n{}",
            program.display(),
            config.display(),
            READY_TIMEOUT.as_secs(),
            log_path.display(),
            log_tail(log_path)
        );
    }
    Ok(State {
        runner: Runner::Process,
        addr: addr.to_string(),
        program: program.to_owned(),
        pid: Some(pid),
        container: None,
    })
}

fn start_container(
    docker: &Path,
    dir: &Path,
    log_path: &Path,
    addr: SocketAddr,
) -> anyhow::Result<State> {
    let name = container_name(dir);
    let image = std::env::var(env_vars::IMAGE_MANAGER_REGISTRY_IMAGE)
        .ok()
        .filter(|image| !image.trim().is_empty())
        .unwrap_or_else(|| CONTAINER_IMAGE.to_owned());
    // A stopped container of an earlier run would block the name.
    let _ = Command::new(docker)
        .args(["rm", "-f", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let mut volume = dir.join("data").into_os_string();
    volume.push(":/var/lib/registry");
    let argv: Vec<OsString> = vec![
        "run".into(),
        "--detach".into(),
        "--name".into(),
        name.clone().into(),
        "--publish".into(),
        format!("{addr}:5000").into(),
        "--volume".into(),
        volume,
        "--env".into(),
        "REGISTRY_STORAGE_DELETE_ENABLED=true".into(),
        image.clone().into(),
    ];
    tracing::debug!("starting {} {:?}", docker.display(), argv);
    let output = Command::new(docker)
        .args(&argv)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", docker.display()))?;
    let mut log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    log.write_all(&output.stdout)?;
    log.write_all(&output.stderr)?;
    if !output.status.success() {
        anyhow::bail!(
            "{} {} failed ({}): {} (log: {})",
            docker.display(),
            argv.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            log_path.display()
        );
    }
    if !wait_ready(addr, || !container_running(docker, &name)) {
        anyhow::bail!(
            "the {image} container {name} did not answer on {addr} within {}s (see `docker logs {name}`)",
            READY_TIMEOUT.as_secs()
        );
    }
    Ok(State {
        runner: Runner::Docker,
        addr: addr.to_string(),
        program: docker.to_owned(),
        pid: None,
        container: Some(name),
    })
}

/// Stops what `start` started. Returns whether something was stopped.
fn stop(root: &Path) -> anyhow::Result<bool> {
    let dir = state_dir(root);
    let Some(state) = read_state(&dir)? else {
        return Ok(false);
    };
    let stopped = if state_alive(&state) {
        match state.runner {
            Runner::Process => {
                let pid = state.pid.context("state.json names no pid")?;
                stop_process(pid, &state.program)?;
            }
            Runner::Docker => {
                let name = state
                    .container
                    .as_deref()
                    .context("state.json names no container")?;
                let output = Command::new(&state.program)
                    .args(["rm", "--force", name])
                    .stdin(Stdio::null())
                    .output()?;
                if !output.status.success() {
                    anyhow::bail!(
                        "{} rm --force {name} failed ({}): {}",
                        state.program.display(),
                        output.status,
                        String::from_utf8_lossy(&output.stderr).trim()
                    );
                }
            }
        }
        true
    } else {
        false
    };
    fs_err::remove_file(dir.join("state.json"))?;
    // Stopped means the address is free again.
    if let Ok(addr) = state.addr.parse::<SocketAddr>() {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while answers(addr) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(stopped)
}

fn stop_process(pid: u32, program: &Path) -> anyhow::Result<()> {
    use rustix::process::{Pid, Signal, kill_process_group};
    let raw = i32::try_from(pid).context("pid out of range")?;
    let group = Pid::from_raw(raw).context("pid 0 is not a process")?;
    // The registry leads its own process group (see `start_process`).
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
        anyhow::bail!(
            "the registry (pid {pid}, {}) did not stop",
            program.display()
        );
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

/// Starts the local registry when `host` is its address and nothing answers there yet
/// (`push` to `127.0.0.1:5050` just works).
pub fn ensure_for(root: &Path, host: &str, printer: &Printer) -> anyhow::Result<()> {
    let Ok(addr) = local_addr() else {
        return Ok(());
    };
    if !is_local(host, addr) || answers(addr) {
        return Ok(());
    }
    let (status, started) = start(root, addr)?;
    if started {
        printer.status("Started", describe(&status));
    }
    Ok(())
}

fn describe(status: &ServiceStatus) -> String {
    let how = match (status.runner, status.pid, status.container.as_deref()) {
        (Some(Runner::Process), Some(pid), _) => format!(
            "pid {pid}, {}",
            status.program.as_deref().unwrap_or_default()
        ),
        (Some(Runner::Docker), _, Some(name)) => format!("container {name}"),
        _ => "not started by image-manager".to_owned(),
    };
    format!("registry on {} ({how})", status.address)
}

fn print(printer: &Printer, format: Format, statuses: &[ServiceStatus]) -> anyhow::Result<()> {
    match format {
        Format::Json => printer.json(&statuses)?,
        Format::Text => {
            let mut out = String::new();
            for status in statuses {
                if status.running {
                    out.push_str(&format!(
                        "{}  running  {}\n",
                        status.service,
                        describe(status)
                    ));
                    if status.managed {
                        out.push_str(&format!(
                            "  data  {}\n  log   {}\n",
                            status.data, status.log
                        ));
                    }
                } else {
                    out.push_str(&format!(
                        "{}  stopped  (would listen on {})\n",
                        status.service, status.address
                    ));
                }
            }
            printer.data(out.trim_end())?;
        }
    }
    Ok(())
}

/// `image-manager start [registry]`.
pub fn run_start(context: &Context<'_>, args: &ServiceArgs) -> anyhow::Result<Outcome> {
    let addr = local_addr()?;
    let (status, started) = start(&context.root, addr)?;
    if started {
        context.printer.status("Started", describe(&status));
    } else {
        context.printer.status("Running", describe(&status));
    }
    if args.format == Format::Json {
        print(context.printer, args.format, &[status])?;
    }
    Ok(Outcome::Success)
}

/// `image-manager stop [registry]`.
pub fn run_stop(context: &Context<'_>, args: &ServiceArgs) -> anyhow::Result<Outcome> {
    let addr = local_addr()?;
    if stop(&context.root)? {
        context.printer.status("Stopped", "registry");
    } else if answers(addr) {
        context.printer.info(format!(
            "the registry on {addr} was not started by image-manager for this project; leaving it alone"
        ));
    } else {
        context
            .printer
            .status("Stopped", "registry (it was not running)");
    }
    if args.format == Format::Json {
        print(
            context.printer,
            args.format,
            &[status_of(&context.root, addr)?],
        )?;
    }
    Ok(Outcome::Success)
}

/// `image-manager status`.
pub fn run_status(context: &Context<'_>, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let addr = local_addr()?;
    print(
        context.printer,
        args.format,
        &[status_of(&context.root, addr)?],
    )?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_local_address_counts_as_local() {
        let addr: SocketAddr = "127.0.0.1:5050".parse().unwrap();
        assert!(is_local("127.0.0.1:5050", addr));
        assert!(is_local("localhost:5050", addr));
        assert!(!is_local("127.0.0.1:5000", addr));
        assert!(!is_local("registry.example.com:5050", addr));
        assert!(!is_local("127.0.0.1", addr));
    }

    #[test]
    fn the_container_name_is_stable_per_project() {
        let a = container_name(Path::new("/a/.image-manager/registry"));
        assert_eq!(a, container_name(Path::new("/a/.image-manager/registry")));
        assert_ne!(a, container_name(Path::new("/b/.image-manager/registry")));
        assert!(a.starts_with("image-manager-registry-"));
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
