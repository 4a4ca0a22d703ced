//! What the end-to-end test files of the `image-manager` binary share.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::path::Path;

/// What one run of the binary gave.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What one finished run gave.
    pub fn of(output: &std::process::Output) -> Self {
        Self {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Writes `text` to `path`, making its folder first.
pub fn write(path: &Path, text: &str) {
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

/// The entry of `node` (`name:tag`) in the list `list` of a command's JSON report (`tags` of
/// push, `nodes` of sbom).
pub fn report_entry<'a>(
    report: &'a serde_json::Value,
    list: &str,
    node: &str,
) -> &'a serde_json::Value {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no `{list}` in {report}"))
        .iter()
        .find(|entry| entry["node"] == node)
        .unwrap_or_else(|| panic!("{node} not in {report}"))
}

/// The nodes a `plan --format json` would build (`name:tag`), each with its reasons.
pub fn rebuilds(
    plan: &serde_json::Value,
) -> std::collections::BTreeMap<String, Vec<serde_json::Value>> {
    plan["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no `nodes` in {plan}"))
        .iter()
        .filter(|n| n["action"] == "build")
        .map(|n| {
            (
                format!(
                    "{}:{}",
                    n["id"]["image"].as_str().unwrap(),
                    n["id"]["tag"].as_str().unwrap()
                ),
                n["reasons"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

/// Each node of a `build --format json` report with its result (`built`, `up-to-date`, ...).
pub fn node_results(report: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    report["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no `nodes` in {report}"))
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().to_owned(),
                n["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `text` as JSON; the text is shown if it is not.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

/// The binary, run on the project at `root`: no colour, no log filter from the caller, no
/// stdin. Every test file starts its runs here.
pub fn command(root: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_image-manager"));
    command
        .arg("-C")
        .arg(root)
        .env("NO_COLOR", "1")
        .env_remove("IMAGE_MANAGER_LOG")
        .stdin(std::process::Stdio::null());
    command
}

/// Runs the binary on the project at `root` with `args` and exactly the extra `env`.
pub fn run_cli(
    root: &Path,
    args: &[&str],
    env: &std::collections::BTreeMap<String, String>,
) -> Run {
    let output = command(root).args(args).envs(env).output().unwrap();
    Run::of(&output)
}

/// `run` when it succeeded; a panic showing both streams otherwise.
pub fn succeeded(run: Run, args: &[&str]) -> Run {
    assert_eq!(
        run.status, 0,
        "image-manager {args:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run
}

/// Runs the binary on the project at `root` under a time and an address-space limit: a run
/// that hangs is killed and fails the test, one that runs out of memory ends with a signal
/// or an allocation failure instead of taking the machine down.
pub fn run_limited(root: &Path, args: &[&str], timeout: std::time::Duration) -> Run {
    use std::io::Read as _;
    // `ulimit -v` is in KiB; 4 GiB of address space leaves room for the allocator's and the
    // thread pool's reservations.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_image-manager"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("IMAGE_MANAGER_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`image-manager {}` in {} ran for more than {timeout:?}",
                args.join(" "),
                root.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let shown = root.display().to_string();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).replace(&shown, "[ROOT]");
    Run {
        status: status.code().unwrap_or(-1),
        stdout: text(out.join().unwrap()),
        stderr: text(err.join().unwrap()),
    }
}

/// The `builder:` setting for `builder` (`buildah`, `podman` or `docker`): buildah and podman
/// keep their image store in `storage` (vfs), so a test never touches the machine's.
pub fn builder_settings(builder: &str, storage: &Path) -> String {
    match builder {
        "docker" => "builder: docker\n".to_owned(),
        kind => format!(
            "builder:\n  kind: {kind}\n  storage_driver: vfs\n  root: {}\n  runroot: {}\n",
            storage.join("root").display(),
            storage.join("runroot").display()
        ),
    }
}

/// Every file under `dir` (but buildah's `.storage` stores) whose bytes contain `needle`:
/// where a secret was written.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs_err::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if path.file_name().is_some_and(|n| n == ".storage") {
                continue; // buildah's image store: layers, not our writing
            }
            found.extend(files_containing(&path, needle));
        } else if kind.is_file()
            && fs_err::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        {
            found.push(path);
        }
    }
    found
}

/// A project in a temp folder and the environment each run of the binary in it gets
/// (besides what [`command`] sets): `SOURCE_DATE_EPOCH` fixed, then what the test adds. The
/// end-to-end fixtures that drive real builders build on it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: std::collections::BTreeMap<String, String>,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: std::collections::BTreeMap::from([(
                "SOURCE_DATE_EPOCH".to_owned(),
                "1700000000".to_owned(),
            )]),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Sets `key` in the environment of every run.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.insert(key.to_owned(), value.into());
    }

    /// An empty Docker config in the project as `DOCKER_CONFIG`: no credentials of the
    /// machine's (buildah wants the file).
    pub fn empty_docker_config(&mut self) {
        let docker_config = self.root().join(".docker");
        write(&docker_config.join("config.json"), "{}\n");
        self.set("DOCKER_CONFIG", docker_config.display().to_string());
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_cli(self.root(), args, &self.env)
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        succeeded(self.run(args), args)
    }

    /// A file of the project, as text.
    pub fn read(&self, relative: &str) -> String {
        fs_err::read_to_string(self.root().join(relative)).unwrap()
    }
}

/// `PATH` with the folder of `program` first.
pub fn path_with(program: &Path) -> String {
    let dir = program.parent().unwrap().display().to_string();
    match std::env::var("PATH") {
        Ok(path) => format!("{dir}:{path}"),
        Err(_) => format!("{dir}:/usr/local/bin:/usr/bin:/bin"),
    }
}

/// A temp project the binary runs in (a small fluent builder in the style of `just`'s test
/// harness); runs show the project's path as `[ROOT]`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A project building with buildah (its store in the project's `.storage`) for
    /// linux/amd64 only.
    pub fn buildah_amd64() -> Self {
        let project = Self::new();
        let storage = project.path(".storage");
        project.file(
            ".image-manager.yml",
            &format!(
                "{}platforms: [linux/amd64]\n",
                builder_settings("buildah", &storage)
            ),
        )
    }

    pub fn file(self, path: &str, text: &str) -> Self {
        let path = self.dir.path().join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
        self
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        let path = self.dir.path().join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
        self
    }

    pub fn path(&self, relative: &str) -> std::path::PathBuf {
        self.dir.path().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        fs_err::read_to_string(self.path(relative)).unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = command(self.dir.path())
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let root = self.dir.path().display().to_string();
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).replace(&root, "[ROOT]"),
            stderr: String::from_utf8_lossy(&output.stderr).replace(&root, "[ROOT]"),
        }
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.status, 0,
            "stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run
    }

    pub fn fails(&self, args: &[&str], status: i32) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.status, status,
            "stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run
    }
}

/// `git -C root args` with a fixed author; its stdout, or a panic showing git's stderr.
pub fn git(root: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=CI", "-c", "user.email=ci@example.com"])
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
