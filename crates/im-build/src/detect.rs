//! Choosing a builder: the requested one (`--builder`, `builder:`) or the first
//! available of buildah, podman, Docker Engine (client present and daemon answering)
//! and BuildKit (`buildctl` with `BUILDKIT_HOST` set), saying why; for Docker, also
//! how to build (buildx, the engine's BuildKit, or the classic builder), from what the
//! client found in `PATH` can do and what the user asked for (`DOCKER_BUILDKIT`,
//! `buildkit:`). A missing builder is an error listing what was looked for and how to
//! install it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::command::CommandSpec;
use crate::settings::{BackendChoice, BuilderKind, BuilderSettings, DockerFlavor, DockerSettings};

/// How detection looks at the machine. [`SystemLookup`] is the real one.
pub trait ToolLookup {
    /// Where `program` is: a bare name is searched in `PATH`, a path is checked.
    fn which(&self, program: &Path) -> Option<PathBuf>;
    /// Every match of a bare name in `PATH`, in order (`which` is the first).
    fn which_all(&self, program: &Path) -> Vec<PathBuf> {
        self.which(program).into_iter().collect()
    }
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
            Ok(found) => {
                let why = match (settings.kind, kind) {
                    (Some(_), _) => "as requested",
                    (None, BuilderKind::Buildah) => "auto-detected: the default on Linux",
                    (None, _) => "auto-detected",
                };
                let note = found.note;
                let mut reason = format!("{kind} ({note}; {why})");
                if let Some(flavor) = found.docker_flavor {
                    reason = format!("{kind} with the {flavor} ({note}; {why})");
                }
                return Ok(BackendChoice {
                    kind,
                    program: found.program,
                    docker_flavor: found.docker_flavor,
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

/// A usable builder tool.
struct Found {
    program: PathBuf,
    docker_flavor: Option<DockerFlavor>,
    /// What was found, for the reason: `/usr/bin/buildah`.
    note: String,
}

impl Found {
    fn tool(program: PathBuf) -> Self {
        let note = program.display().to_string();
        Found {
            program,
            docker_flavor: None,
            note,
        }
    }
}

/// Whether `kind` is usable: what was found, or the problem.
fn probe(
    kind: BuilderKind,
    settings: &BuilderSettings,
    lookup: &dyn ToolLookup,
) -> Result<Found, String> {
    let find = |program: &Path| {
        lookup
            .which(program)
            .ok_or_else(|| format!("`{}` not found", program.display()))
    };
    match kind {
        BuilderKind::Buildah => find(&settings.buildah.program).map(Found::tool),
        BuilderKind::Podman => find(&settings.podman.program).map(Found::tool),
        BuilderKind::Buildkit => {
            let path = find(&settings.buildkit.program)?;
            let Some(addr) = &settings.buildkit.addr else {
                return Err(format!(
                    "{} found, but BUILDKIT_HOST is not set",
                    path.display()
                ));
            };
            let note = format!("{} at {addr}", path.display());
            Ok(Found {
                note,
                ..Found::tool(path)
            })
        }
        BuilderKind::Docker => {
            let docker = &settings.docker;
            let path = find(&docker.program)?;
            let daemon = docker.host.as_deref().unwrap_or("the default socket");
            if lookup
                .output(
                    &docker_command(&path, docker)
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
            let (program, flavor) = match docker.flavor {
                Some(flavor) => (path, flavor),
                None => docker_flavor(&path, docker, lookup)?,
            };
            let note = format!("{} talking to {daemon}", program.display());
            Ok(Found {
                program,
                docker_flavor: Some(flavor),
                note,
            })
        }
    }
}

/// `program`, with `DOCKER_HOST` when it is set.
fn docker_command(program: &Path, settings: &DockerSettings) -> CommandSpec {
    let cmd = CommandSpec::new(program);
    match &settings.host {
        Some(host) => cmd.env("DOCKER_HOST", host),
        None => cmd,
    }
}

/// How to find out, without building, whether a Docker client can build a way:
/// `docker buildx version` (buildx), `DOCKER_BUILDKIT=1 docker build --help` (the engine's
/// BuildKit: clients from 23 on refuse it without buildx) and `DOCKER_BUILDKIT=0 docker
/// build --help` (the classic builder).
fn docker_probe(program: &Path, settings: &DockerSettings, flavor: DockerFlavor) -> CommandSpec {
    let cmd = docker_command(program, settings);
    match flavor {
        DockerFlavor::Buildx => cmd.arg("buildx").arg("version"),
        DockerFlavor::BuildKit => cmd.env("DOCKER_BUILDKIT", "1").arg("build").arg("--help"),
        DockerFlavor::Classic => cmd.env("DOCKER_BUILDKIT", "0").arg("build").arg("--help"),
    }
}

/// The ways of building, best first.
const DOCKER_FLAVORS: [DockerFlavor; 3] = [
    DockerFlavor::Buildx,
    DockerFlavor::BuildKit,
    DockerFlavor::Classic,
];

/// Which client and how to build: the best way that fits what the user asked for
/// (`settings.buildkit`; buildx, then the engine's BuildKit, then the classic builder), with
/// the first `docker` in `PATH` that can (`first`, then the others in `PATH` order). So a
/// newer client without buildx found first does not turn a request for BuildKit into an
/// error, nor the default into the classic builder, when an older client in `PATH` drives
/// the engine's BuildKit. Probing stops at the first fit; when nothing fits, the error says
/// what each client can do and how to change the request.
fn docker_flavor(
    first: &Path,
    settings: &DockerSettings,
    lookup: &dyn ToolLookup,
) -> Result<(PathBuf, DockerFlavor), String> {
    let fits = |flavor: &DockerFlavor| match settings.buildkit {
        Some(true) => *flavor != DockerFlavor::Classic,
        Some(false) => *flavor == DockerFlavor::Classic,
        None => true,
    };
    let mut clients = vec![first.to_owned()];
    for other in lookup.which_all(&settings.program) {
        if !clients.contains(&other) {
            clients.push(other);
        }
    }
    for flavor in DOCKER_FLAVORS.into_iter().filter(fits) {
        for client in &clients {
            if lookup
                .output(&docker_probe(client, settings, flavor))
                .is_some()
            {
                return Ok((client.clone(), flavor));
            }
        }
    }
    let wanted = match settings.buildkit {
        Some(true) => "BuildKit (DOCKER_BUILDKIT=1 or `buildkit: true`)",
        Some(false) => "the classic builder (DOCKER_BUILDKIT=0 or `buildkit: false`)",
        None => "BuildKit or the classic builder",
    };
    let can: Vec<String> = clients
        .iter()
        .map(|client| {
            let flavors: Vec<String> = DOCKER_FLAVORS
                .into_iter()
                .filter(|flavor| {
                    lookup
                        .output(&docker_probe(client, settings, *flavor))
                        .is_some()
                })
                .map(|flavor| format!("the {flavor}"))
                .collect();
            let can = if flavors.is_empty() {
                "nothing".to_owned()
            } else {
                flavors.join(" or ")
            };
            format!("{} can use {can}", client.display())
        })
        .collect();
    let fix = match settings.buildkit {
        Some(true) => {
            "install the buildx plugin, or build with the classic builder (DOCKER_BUILDKIT=0, or `builder: {kind: docker, buildkit: false}`)"
        }
        Some(false) => "build with BuildKit (unset DOCKER_BUILDKIT=0 and `buildkit: false`)",
        None => "install a Docker client that matches the daemon",
    };
    Err(format!(
        "no docker client in PATH can build with {wanted}: {}; {fix}",
        can.join(", ")
    ))
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
        self.which_all(program).into_iter().next()
    }

    fn which_all(&self, program: &Path) -> Vec<PathBuf> {
        use std::os::unix::fs::PermissionsExt as _;
        let executable = |p: &Path| {
            fs_err::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        if program.components().count() > 1 {
            return executable(program)
                .then(|| program.to_owned())
                .into_iter()
                .collect();
        }
        let Some(path) = self.path.as_deref() else {
            return Vec::new();
        };
        // `/bin` is often a link to `/usr/bin`: one file found twice is one program.
        let mut seen = Vec::new();
        let mut found = Vec::new();
        for candidate in std::env::split_paths(path).map(|dir| dir.join(program)) {
            if !executable(&candidate) {
                continue;
            }
            let identity = fs_err::canonicalize(&candidate).unwrap_or_else(|_| candidate.clone());
            if !seen.contains(&identity) {
                seen.push(identity);
                found.push(candidate);
            }
        }
        found
    }

    fn output(&self, cmd: &CommandSpec) -> Option<String> {
        // A probe past its time limit counts as absent, like one that fails.
        im_process::Run::new(cmd)
            .deadline(Some(Instant::now() + self.timeout))
            .checked(None)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A machine described by a table: which programs exist (a name may be found in
    /// several folders of `PATH`, in order) and what commands print.
    struct Machine {
        programs: Vec<(&'static str, &'static str)>,
        outputs: BTreeMap<String, &'static str>,
    }

    impl Machine {
        fn new(
            programs: &[(&'static str, &'static str)],
            outputs: &[(&str, &'static str)],
        ) -> Self {
            Machine {
                programs: programs.to_vec(),
                outputs: outputs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            }
        }
    }

    impl ToolLookup for Machine {
        fn which(&self, program: &Path) -> Option<PathBuf> {
            self.which_all(program).into_iter().next()
        }
        fn which_all(&self, program: &Path) -> Vec<PathBuf> {
            self.programs
                .iter()
                .filter(|(name, _)| Path::new(name) == program)
                .map(|(_, path)| PathBuf::from(path))
                .collect()
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
                ("docker", "/usr/bin/docker"),
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

    const BUILDX: &str = "/usr/bin/docker buildx version";
    const ENGINE_BUILDKIT: &str = "DOCKER_BUILDKIT=1 /usr/bin/docker build --help";
    const CLASSIC: &str = "DOCKER_BUILDKIT=0 /usr/bin/docker build --help";

    fn docker_with(outputs: &[&str], buildkit: Option<bool>) -> Result<BackendChoice, DetectError> {
        let mut outputs: Vec<(&str, &'static str)> = outputs.iter().map(|o| (*o, "ok\n")).collect();
        outputs.push(DOCKER_UP);
        let m = Machine::new(&[("docker", "/usr/bin/docker")], &outputs);
        let mut settings = BuilderSettings {
            kind: Some(BuilderKind::Docker),
            ..BuilderSettings::default()
        };
        settings.docker.buildkit = buildkit;
        detect(&settings, &m)
    }

    #[test]
    fn docker_flavor_is_the_best_the_client_can_do_unless_one_is_asked_for() {
        use DockerFlavor::{BuildKit, Buildx, Classic};
        let cases: [(&[&str], Option<bool>, DockerFlavor); 7] = [
            (&[BUILDX, ENGINE_BUILDKIT, CLASSIC], None, Buildx),
            // Debian's 20.10 client: the engine's BuildKit, or classic when asked.
            (&[ENGINE_BUILDKIT, CLASSIC], None, BuildKit),
            (&[ENGINE_BUILDKIT, CLASSIC], Some(true), BuildKit),
            (&[ENGINE_BUILDKIT, CLASSIC], Some(false), Classic),
            // A newer client without buildx refuses BuildKit builds.
            (&[CLASSIC], None, Classic),
            (&[CLASSIC], Some(false), Classic),
            (&[BUILDX, CLASSIC], Some(true), Buildx),
        ];
        for (outputs, buildkit, want) in cases {
            let choice = docker_with(outputs, buildkit).unwrap();
            assert_eq!(
                choice.docker_flavor,
                Some(want),
                "{outputs:?} {buildkit:?}: {}",
                choice.reason
            );
            assert_eq!(choice.program, PathBuf::from("/usr/bin/docker"));
        }
    }

    #[test]
    fn buildkit_asked_of_a_client_that_refuses_it_is_an_error_with_the_fixes() {
        let err = docker_with(&[CLASSIC], Some(true)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the requested builder `docker` is not usable:\n  - docker: no docker client in PATH \
             can build with BuildKit (DOCKER_BUILDKIT=1 or `buildkit: true`): /usr/bin/docker \
             can use the classic builder; install the buildx plugin, or build with the classic \
             builder (DOCKER_BUILDKIT=0, or `builder: {kind: docker, buildkit: false}`) (to \
             install: apt-get install docker.io, then start dockerd)"
        );
    }

    #[test]
    fn a_client_further_along_path_that_drives_buildkit_is_preferred_to_the_classic_builder() {
        // This machine: a newer client without buildx first, Debian's 20.10 after it.
        let m = Machine::new(
            &[
                ("docker", "/usr/local/bin/docker"),
                ("docker", "/usr/bin/docker"),
            ],
            &[
                (
                    "/usr/local/bin/docker version --format '{{.Server.Version}}'",
                    "20.10.24\n",
                ),
                (
                    "DOCKER_BUILDKIT=0 /usr/local/bin/docker build --help",
                    "ok\n",
                ),
                (ENGINE_BUILDKIT, "ok\n"),
                (CLASSIC, "ok\n"),
            ],
        );
        let mut settings = BuilderSettings {
            kind: Some(BuilderKind::Docker),
            ..BuilderSettings::default()
        };
        for buildkit in [None, Some(true)] {
            settings.docker.buildkit = buildkit;
            let choice = detect(&settings, &m).unwrap();
            assert_eq!(
                (choice.program, choice.docker_flavor),
                (
                    PathBuf::from("/usr/bin/docker"),
                    Some(DockerFlavor::BuildKit)
                ),
                "{buildkit:?}"
            );
        }
        // The classic builder, asked for, comes from the first client.
        settings.docker.buildkit = Some(false);
        let choice = detect(&settings, &m).unwrap();
        assert_eq!(choice.program, PathBuf::from("/usr/local/bin/docker"));
        assert_eq!(choice.docker_flavor, Some(DockerFlavor::Classic));
        assert!(
            choice
                .reason
                .starts_with("docker with the classic builder (/usr/local/bin/docker talking to"),
            "{}",
            choice.reason
        );
    }

    #[test]
    fn the_docker_host_setting_reaches_the_probe() {
        let mut settings = BuilderSettings {
            kind: Some(BuilderKind::Docker),
            ..BuilderSettings::default()
        };
        settings.docker.host = Some("unix:///run/x.sock".to_owned());
        let m = Machine::new(&[("docker", "/usr/bin/docker")], &[DOCKER_UP]);
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
        let classic = (
            "DOCKER_BUILDKIT=0 DOCKER_HOST=unix:///run/x.sock /usr/bin/docker build --help",
            "ok\n",
        );
        let m = Machine::new(&[("docker", "/usr/bin/docker")], &[up, classic]);
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
