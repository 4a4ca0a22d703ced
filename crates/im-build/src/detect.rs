//! Choosing a builder: the requested one (`--builder`, `builder:`) or the first
//! available of buildah, podman, Docker Engine (client present and daemon answering)
//! and BuildKit (`buildctl` with `BUILDKIT_HOST` set), saying why; for Docker, also
//! how to build (buildx, the engine's BuildKit, or the classic builder). A missing
//! builder is an error listing what was looked for and how to install it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::backend::{BuilderKind, BuilderSettings};
use crate::command::CommandSpec;

/// How the docker backend builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerFlavor {
    /// `docker buildx build --load`.
    Buildx,
    /// `docker build` with `DOCKER_BUILDKIT=1` (the engine's built-in BuildKit).
    #[serde(rename = "buildkit")]
    BuildKit,
    /// `docker build` with `DOCKER_BUILDKIT=0`.
    Classic,
}

impl fmt::Display for DockerFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Buildx => "buildx",
            Self::BuildKit => "engine BuildKit",
            Self::Classic => "classic builder",
        })
    }
}

/// The chosen builder and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendChoice {
    pub kind: BuilderKind,
    /// For docker: how it builds.
    pub docker_flavor: Option<DockerFlavor>,
    /// One sentence for `-v`: `buildah found at /usr/bin/buildah (the default on Linux)`.
    pub reason: String,
}

/// How detection looks at the machine. [`SystemLookup`] is the real one.
pub trait ToolLookup {
    /// Where `program` is: a bare name is searched in `PATH`, a path is checked.
    fn which(&self, program: &Path) -> Option<PathBuf>;
    /// The command's stdout if it ran and exited 0.
    fn output(&self, cmd: &CommandSpec) -> Option<String>;
}

/// One builder that was looked for and not usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Looked {
    pub kind: BuilderKind,
    /// What was wrong: `buildah not found in PATH`.
    pub problem: String,
    /// How to get it: `apt-get install buildah`.
    pub install: &'static str,
}

/// No usable builder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", headline(requested.as_ref()), LookedList(looked_for))]
pub struct DetectError {
    pub requested: Option<BuilderKind>,
    pub looked_for: Vec<Looked>,
}

fn headline(requested: Option<&BuilderKind>) -> String {
    match requested {
        Some(kind) => format!("the requested builder `{kind}` is not usable:"),
        None => "no container image builder found; looked for:".to_owned(),
    }
}

struct LookedList<'a>(&'a [Looked]);

impl fmt::Display for LookedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in self.0 {
            write!(
                f,
                "\n  - {}: {} (to install: {})",
                l.kind, l.problem, l.install
            )?;
        }
        Ok(())
    }
}

fn install_hint(kind: BuilderKind) -> &'static str {
    match kind {
        BuilderKind::Buildah => "apt-get install buildah",
        BuilderKind::Podman => "apt-get install podman",
        BuilderKind::Docker => "apt-get install docker.io, then start dockerd",
        BuilderKind::Buildkit => {
            "run buildkitd, put buildctl in PATH and set BUILDKIT_HOST; Debian does not package BuildKit"
        }
    }
}

/// Picks the builder to use.
pub fn detect(
    settings: &BuilderSettings,
    lookup: &dyn ToolLookup,
) -> Result<BackendChoice, DetectError> {
    let candidates: Vec<BuilderKind> = match settings.kind {
        Some(kind) => vec![kind],
        None => vec![
            BuilderKind::Buildah,
            BuilderKind::Podman,
            BuilderKind::Docker,
            BuilderKind::Buildkit,
        ],
    };
    let mut looked_for = Vec::new();
    for kind in candidates {
        match probe(kind, settings, lookup) {
            Ok((docker_flavor, found)) => {
                let why = match (settings.kind, kind) {
                    (Some(_), _) => "as requested",
                    (None, BuilderKind::Buildah) => "auto-detected: the default on Linux",
                    (None, _) => "auto-detected",
                };
                let mut reason = format!("{kind} ({found}; {why})");
                if let Some(flavor) = docker_flavor {
                    reason = format!("{kind} with the {flavor} ({found}; {why})");
                }
                return Ok(BackendChoice {
                    kind,
                    docker_flavor,
                    reason,
                });
            }
            Err(problem) => looked_for.push(Looked {
                kind,
                problem,
                install: install_hint(kind),
            }),
        }
    }
    Err(DetectError {
        requested: settings.kind,
        looked_for,
    })
}

/// Whether `kind` is usable: its Docker flavor and a note on what was found, or the problem.
fn probe(
    kind: BuilderKind,
    settings: &BuilderSettings,
    lookup: &dyn ToolLookup,
) -> Result<(Option<DockerFlavor>, String), String> {
    let find = |program: &Path| {
        lookup
            .which(program)
            .ok_or_else(|| format!("`{}` not found", program.display()))
    };
    match kind {
        BuilderKind::Buildah => {
            find(&settings.buildah.program).map(|p| (None, format!("{}", p.display())))
        }
        BuilderKind::Podman => {
            find(&settings.podman.program).map(|p| (None, format!("{}", p.display())))
        }
        BuilderKind::Buildkit => {
            let path = find(&settings.buildkit.program)?;
            let Some(addr) = &settings.buildkit.addr else {
                return Err(format!(
                    "{} found, but BUILDKIT_HOST is not set",
                    path.display()
                ));
            };
            Ok((None, format!("{} at {addr}", path.display())))
        }
        BuilderKind::Docker => {
            let docker = &settings.docker;
            let path = find(&docker.program)?;
            let mut cmd = CommandSpec::new(&path);
            if let Some(host) = &docker.host {
                cmd = cmd.env("DOCKER_HOST", host);
            }
            let daemon = docker.host.as_deref().unwrap_or("the default socket");
            if lookup
                .output(
                    &cmd.clone()
                        .arg("version")
                        .flag("--format", "{{.Server.Version}}"),
                )
                .is_none()
            {
                return Err(format!(
                    "{} found, but the Docker daemon at {daemon} does not answer",
                    path.display()
                ));
            }
            let flavor = match docker.flavor {
                Some(flavor) => flavor,
                None => docker_flavor(&cmd, lookup),
            };
            Ok((
                Some(flavor),
                format!("{} talking to {daemon}", path.display()),
            ))
        }
    }
}

/// buildx if the client has it; else the engine's BuildKit if the client is older than
/// 23 (which still drives it with `DOCKER_BUILDKIT=1`); else the classic builder, since
/// newer clients refuse BuildKit builds without buildx.
fn docker_flavor(cmd: &CommandSpec, lookup: &dyn ToolLookup) -> DockerFlavor {
    if lookup
        .output(&cmd.clone().arg("buildx").arg("version"))
        .is_some()
    {
        return DockerFlavor::Buildx;
    }
    let major = lookup
        .output(&cmd.clone().arg("--version"))
        .and_then(|v| client_major(&v));
    match major {
        Some(m) if m < 23 => DockerFlavor::BuildKit,
        _ => DockerFlavor::Classic,
    }
}

/// `Docker version 20.10.24+dfsg1, build 297e128` → 20.
fn client_major(version_line: &str) -> Option<u32> {
    let rest = version_line.trim().strip_prefix("Docker version ")?;
    rest.split('.').next()?.parse().ok()
}

/// Looks at the real machine: `PATH` as the binary read it, commands run with a time limit.
#[derive(Clone, Debug)]
pub struct SystemLookup {
    path: Option<OsString>,
    timeout: Duration,
}

impl SystemLookup {
    /// `path` is the value of `PATH`.
    pub fn new(path: Option<OsString>) -> Self {
        SystemLookup {
            path,
            timeout: Duration::from_secs(10),
        }
    }
}

impl ToolLookup for SystemLookup {
    fn which(&self, program: &Path) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt as _;
        let executable = |p: &Path| {
            fs_err::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        if program.components().count() > 1 {
            return executable(program).then(|| program.to_owned());
        }
        std::env::split_paths(self.path.as_deref()?)
            .map(|dir| dir.join(program))
            .find(|p| executable(p))
    }

    fn output(&self, cmd: &CommandSpec) -> Option<String> {
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .envs(&cmd.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if started.elapsed() < self.timeout => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
        let out = child.wait_with_output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A machine described by a table: which programs exist and what commands print.
    struct Machine {
        programs: BTreeMap<&'static str, &'static str>,
        outputs: BTreeMap<String, &'static str>,
    }

    impl Machine {
        fn new(
            programs: &[(&'static str, &'static str)],
            outputs: &[(&str, &'static str)],
        ) -> Self {
            Machine {
                programs: programs.iter().copied().collect(),
                outputs: outputs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            }
        }
    }

    impl ToolLookup for Machine {
        fn which(&self, program: &Path) -> Option<PathBuf> {
            self.programs.get(program.to_str()?).map(PathBuf::from)
        }
        fn output(&self, cmd: &CommandSpec) -> Option<String> {
            self.outputs.get(&cmd.display()).map(|s| (*s).to_owned())
        }
    }

    const DOCKER_UP: (&str, &str) = (
        "/usr/bin/docker version --format '{{.Server.Version}}'",
        "20.10.24\n",
    );

    #[test]
    fn buildah_is_preferred_when_installed() {
        let m = Machine::new(
            &[
                ("buildah", "/usr/bin/buildah"),
                ("/usr/bin/docker", "/usr/bin/docker"),
            ],
            &[DOCKER_UP],
        );
        let c = detect(&BuilderSettings::default(), &m).unwrap();
        assert_eq!(c.kind, BuilderKind::Buildah);
        assert_eq!(
            c.reason,
            "buildah (/usr/bin/buildah; auto-detected: the default on Linux)"
        );
    }

    #[test]
    fn docker_flavor_follows_buildx_and_the_client_version() {
        let cases = [
            (
                vec![DOCKER_UP, ("/usr/bin/docker buildx version", "v0.12")],
                DockerFlavor::Buildx,
            ),
            (
                vec![
                    DOCKER_UP,
                    (
                        "/usr/bin/docker --version",
                        "Docker version 20.10.24+dfsg1, build 297e128\n",
                    ),
                ],
                DockerFlavor::BuildKit,
            ),
            (
                vec![
                    DOCKER_UP,
                    (
                        "/usr/bin/docker --version",
                        "Docker version 27.3.1, build ce12230\n",
                    ),
                ],
                DockerFlavor::Classic,
            ),
        ];
        for (outputs, want) in cases {
            let m = Machine::new(&[("/usr/bin/docker", "/usr/bin/docker")], &outputs);
            let c = detect(&BuilderSettings::default(), &m).unwrap();
            assert_eq!((c.kind, c.docker_flavor), (BuilderKind::Docker, Some(want)));
        }
    }

    #[test]
    fn the_docker_host_setting_reaches_the_probe() {
        let mut settings = BuilderSettings {
            kind: Some(BuilderKind::Docker),
            ..BuilderSettings::default()
        };
        settings.docker.host = Some("unix:///run/x.sock".to_owned());
        let m = Machine::new(&[("/usr/bin/docker", "/usr/bin/docker")], &[DOCKER_UP]);
        let err = detect(&settings, &m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the requested builder `docker` is not usable:\n  - docker: /usr/bin/docker found, but the Docker \
             daemon at unix:///run/x.sock does not answer (to install: apt-get install docker.io, then start dockerd)"
        );
        let up = (
            "DOCKER_HOST=unix:///run/x.sock /usr/bin/docker version --format '{{.Server.Version}}'",
            "20.10\n",
        );
        let m = Machine::new(&[("/usr/bin/docker", "/usr/bin/docker")], &[up]);
        assert_eq!(
            detect(&settings, &m).unwrap().docker_flavor,
            Some(DockerFlavor::Classic)
        );
    }

    #[test]
    fn nothing_found_lists_every_builder_and_how_to_install_it() {
        let m = Machine::new(&[("buildctl", "/usr/local/bin/buildctl")], &[]);
        let err = detect(&BuilderSettings::default(), &m).unwrap_err();
        insta::assert_snapshot!(err.to_string());
    }

    #[test]
    fn buildkit_needs_an_address() {
        let mut settings = BuilderSettings::default();
        settings.buildkit.addr = Some("tcp://127.0.0.1:1234".to_owned());
        let m = Machine::new(&[("buildctl", "/usr/local/bin/buildctl")], &[]);
        let c = detect(&settings, &m).unwrap();
        assert_eq!(c.kind, BuilderKind::Buildkit);
        assert_eq!(
            c.reason,
            "buildkit (/usr/local/bin/buildctl at tcp://127.0.0.1:1234; auto-detected)"
        );
    }

    #[test]
    fn system_lookup_searches_the_given_path_only() {
        let lookup = SystemLookup::new(Some("/nonexistent:/bin".into()));
        assert_eq!(
            lookup.which(Path::new("sh")),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(lookup.which(Path::new("no-such-tool-im-build")), None);
        assert_eq!(SystemLookup::new(None).which(Path::new("sh")), None);
        assert_eq!(
            lookup.output(&CommandSpec::new("/bin/echo").arg("hi")),
            Some("hi\n".to_owned())
        );
        assert_eq!(lookup.output(&CommandSpec::new("/bin/false")), None);
    }
}
