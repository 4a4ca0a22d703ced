//! The pipelines `generate-ci` writes, run for real where a runner exists: the GitLab file
//! through gitlab-ci-local (shell executor, each job in a fresh copy of the repository with a
//! buildah store of its own, as on a CI runner) against an htpasswd registry, on a busybox
//! monorepo base → hello, web → web's `dev` variant for linux/amd64 and linux/arm64 (arm64
//! under qemu). There is no offline runner for GitHub Actions, so the workflow gets the same
//! job-graph assertions from its parsed YAML.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::write;
use im_testkit::{Platform, Registry};

const USER: &str = "ci";
/// The registry password: a CI secret, which no log may show.
const PASSWORD: &str = "canary-Pw-51d0c2e8";
const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];
/// Every image tag: its parents, and whether it has a test config.
const TAGS: [(&str, &[&str], bool); 4] = [
    ("base:1", &[], false),
    ("hello:1.0.0", &["base:1"], true),
    ("web:2.0.0", &["base:1"], true),
    ("web:2.0.0-dev", &["web:2.0.0"], true),
];
/// The image tags a change to the dev variant's files affects.
const LEAF: [(&str, &[&str], bool); 1] = [("web:2.0.0-dev", &["web:2.0.0"], true)];
/// The release tag and aliases of each image tag after a default-branch pipeline.
const RELEASED: [(&str, &[&str]); 4] = [
    ("base:1", &["1"]),
    ("hello:1.0.0", &["1.0.0", "1.0", "1", "latest"]),
    ("web:2.0.0", &["2.0.0", "2.0", "2"]),
    ("web:2.0.0-dev", &["2.0.0-dev", "2.0-dev", "2-dev"]),
];

/// How jobs get image-manager: `ci.install` puts the binary under test (its folder is a CI
/// variable, which generate-ci leaves to the job's shell) on PATH.
const INSTALL: &str = "ci:\n  install:\n    - export PATH=\"${IMAGE_MANAGER_DIR}:$PATH\"\n    - image-manager --version\n";

/// The monorepo in a fresh git repository on `main`, with the registry as its default.
struct Monorepo {
    dir: tempfile::TempDir,
    /// HOME and DOCKER_CONFIG of everything run, outside the repository.
    home: tempfile::TempDir,
    registry: Registry,
}

impl Monorepo {
    /// `split`: one build job per platform (the default), else one per image tag.
    fn new(split: bool) -> Self {
        let registry = Registry::start_with_htpasswd(USER, PASSWORD);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Each job keeps its buildah store in its own checkout (CI_PROJECT_DIR), so nothing
        // reaches a job but the repository and the registry.
        write(
            &root.join(".image-manager.yml"),
            &format!(
                "registry:\n  url: ${{IM_TEST_REGISTRY}}/acme\n  username: {USER}\n  password: ${{REGISTRY_PASSWORD}}\n{}platforms: [{}]\n{INSTALL}{}",
                common::builder_settings("buildah", Path::new("${CI_PROJECT_DIR}/.storage")),
                PLATFORMS.join(", "),
                if split {
                    ""
                } else {
                    "  platform_split: false\n"
                }
            ),
        );
        im_testkit::write_busybox_base_definition(root, &Platform::ALL);
        write(
            &root.join("images/hello/image.yml"),
            "tags: [1.0.0]\nlatest: true\n",
        );
        write(
            &root.join("images/hello/Dockerfile.jinja2"),
            "FROM {{ \"base\" | resolve_base_image }}\nRUN echo \"hello {{ tag.name }}\" > /hello.txt\n",
        );
        write(
            &root.join("images/hello/test.yml"),
            "schemaVersion: 2.0.0\nfileContentTests:\n  - name: hello\n    path: /hello.txt\n    expectedContents: ['hello 1\\.0\\.0']\n",
        );
        write(
            &root.join("images/web/image.yml"),
            "tags: [2.0.0]\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
        );
        write(
            &root.join("images/web/Dockerfile.jinja2"),
            "FROM {{ \"base\" | resolve_base_image }}\nRUN echo \"web {{ tag.name }}\" > /web.txt\n",
        );
        write(
            &root.join("images/web/test.yml"),
            "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: web\n    path: /web.txt\n    shouldExist: true\n",
        );
        write(
            &root.join("images/web/dev/Dockerfile.jinja2"),
            "FROM {{ base_image }}\nRUN cat /web.txt /etc/web-dev.conf > /dev.txt\n",
        );
        write(
            &root.join("images/web/dev/rootfs/etc/web-dev.conf"),
            "debug=1\n",
        );
        write(
            &root.join(".gitignore"),
            "dist/\n.storage/\n.image-manager/\n.gitlab-ci-local/\n",
        );
        write(
            &root.join(".gitlab-ci.yml"),
            "include:\n  - local: ci/images.gitlab-ci.yml\n",
        );
        let home = tempfile::tempdir().unwrap();
        // An empty Docker config: no credentials of the machine's (buildah wants the file).
        write(&home.path().join("docker/config.json"), "{}\n");
        let repo = Self {
            dir,
            home,
            registry,
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The environment of everything run here: the registry, the secret (as CI variables
    /// give it), a checkout directory, no colours and no Docker credentials of the machine.
    fn env(&self) -> BTreeMap<String, String> {
        let docker_config = self.home.path().join("docker");
        [
            ("IM_TEST_REGISTRY", self.registry.host_port()),
            ("REGISTRY_PASSWORD", PASSWORD.to_owned()),
            ("CI_PROJECT_DIR", self.root().display().to_string()),
            ("DOCKER_CONFIG", docker_config.display().to_string()),
            ("NO_COLOR", "1".to_owned()),
            ("LC_ALL", "C".to_owned()),
            ("TZ", "UTC".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn git(&self, args: &[&str]) -> String {
        common::git(self.root(), args)
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// Changes the dev variant's config file (and its test with it) and commits.
    fn change_leaf(&self) {
        write(
            &self.root().join("images/web/dev/rootfs/etc/web-dev.conf"),
            "debug=2\n",
        );
        write(
            &self.root().join("images/web/dev/test.yml"),
            &dev_test("debug=2"),
        );
        self.commit("web dev: debug=2");
    }

    /// `image-manager ARGS` in the repository.
    fn image_manager(&self, args: &[&str]) -> common::Run {
        common::succeeded(common::run_cli(self.root(), args, &self.env()), args)
    }

    /// Runs `.gitlab-ci.yml` with gitlab-ci-local: shell executor, each job in a fresh copy
    /// of the tracked files (`--shell-isolation`), the registry, its credentials and where
    /// image-manager is as CI variables, timestamps on every line.
    fn run_pipeline(&self, extra: &[&str]) -> Pipeline {
        let env = self.env();
        let binary = Path::new(env!("CARGO_BIN_EXE_image-manager"));
        let home = self.home.path();
        let mut command = Command::new(im_testkit::gitlab_ci_local_bin());
        // It runs in the repository (its --cwd takes only relative paths).
        command.arg("--home").arg(home).args([
            "--shell-executor-no-image",
            "--shell-isolation",
            "--timestamps",
            "--no-color",
            "--max-job-name-padding",
            "0",
        ]);
        for name in ["IM_TEST_REGISTRY", "REGISTRY_PASSWORD"] {
            command
                .arg("--variable")
                .arg(format!("{name}={}", env[name]));
        }
        command.arg("--variable").arg(format!(
            "IMAGE_MANAGER_DIR={}",
            binary.parent().unwrap().display()
        ));
        command
            .args(extra)
            .current_dir(self.root())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .envs(env.iter().filter(|(name, _)| {
                !matches!(
                    name.as_str(),
                    "CI_PROJECT_DIR" | "IM_TEST_REGISTRY" | "REGISTRY_PASSWORD"
                )
            }));
        let output = output_within(&mut command, PIPELINE_DEADLINE);
        let pipeline = Pipeline {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(
            output.status.success(),
            "gitlab-ci-local failed ({}):\n{}\n{}",
            output.status,
            pipeline.stdout,
            pipeline.stderr
        );
        assert!(
            !pipeline.stdout.contains(PASSWORD) && !pipeline.stderr.contains(PASSWORD),
            "a job showed the registry password"
        );
        pipeline
    }

    /// The job graph of the committed GitLab file.
    fn gitlab_jobs(&self) -> BTreeMap<String, JobSpec> {
        gitlab_jobs(&self.root().join("ci/images.gitlab-ci.yml"))
    }

    /// `GET /v2/PATH` with the credentials.
    fn api(&self, path: &str, accept: &[&str]) -> im_testkit::HttpResponse {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let accept = accept.join(", ");
        im_testkit::http_get(
            self.registry.addr(),
            &format!("/v2/{path}"),
            Some(&format!("Basic {basic}")),
            &[("Accept", accept.as_str())],
        )
        .unwrap()
    }

    /// The tags of `acme/IMAGE`.
    fn tags(&self, image: &str) -> BTreeSet<String> {
        let response = self.api(&format!("acme/{image}/tags/list"), &[]);
        assert_eq!(response.status, 200, "{image}: {response:?}");
        let list = common::json(&String::from_utf8_lossy(&response.body));
        list["tags"]
            .as_array()
            .unwrap_or_else(|| panic!("{list}"))
            .iter()
            .map(|tag| tag.as_str().unwrap().to_owned())
            .collect()
    }

    /// The digest and the manifest of `acme/IMAGE:TAG`.
    fn manifest(&self, image: &str, tag: &str) -> (String, serde_json::Value) {
        let response = self.api(
            &format!("acme/{image}/manifests/{tag}"),
            &[
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            ],
        );
        assert_eq!(response.status, 200, "{image}:{tag}: {response:?}");
        let digest = response
            .header("docker-content-digest")
            .unwrap_or_else(|| panic!("{image}:{tag} has no digest header: {response:?}"))
            .to_owned();
        (
            digest,
            common::json(&String::from_utf8_lossy(&response.body)),
        )
    }
}

/// The dev variant's test config: its `/dev.txt` holds `web.txt` and the `conf` it was built
/// with.
fn dev_test(conf: &str) -> String {
    format!(
        "schemaVersion: 2.0.0\nfileContentTests:\n  - name: dev\n    path: /dev.txt\n    expectedContents: ['web 2\\.0\\.0\\n{conf}']\n"
    )
}

/// The longest one pipeline may take (each takes seconds; a hang must not stall the suite).
const PIPELINE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `command` in a process group of its own and returns its output; past `deadline` the
/// whole group (gitlab-ci-local and its jobs) is stopped and the test fails.
fn output_within(command: &mut Command, deadline: std::time::Duration) -> std::process::Output {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    let mut child = command
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > deadline {
            let group = format!("-{}", child.id());
            for signal in ["-TERM", "-KILL"] {
                let _ = Command::new("kill").args([signal, "--", &group]).status();
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            let _ = child.wait();
            // Not the command: its arguments hold the registry password.
            panic!(
                "gitlab-ci-local ran for more than {deadline:?}:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// What gitlab-ci-local printed: its own lines and the jobs' stdout on stdout, the jobs'
/// stderr (where image-manager reports) on stderr.
struct Pipeline {
    stdout: String,
    stderr: String,
}

impl Pipeline {
    /// `node (platform)` of every `Built ...` line the jobs printed, in order.
    fn built(&self) -> Vec<String> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter_map(|line| line.split_once(" Built ").map(|(_, built)| built))
            .map(|built| {
                built
                    .rsplit_once(" in ")
                    .map_or(built, |(node, _)| node)
                    .to_owned()
            })
            .collect()
    }
}

/// `node (platform)` for each of `nodes` on each platform, sorted.
fn on_every_platform(nodes: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = nodes
        .iter()
        .flat_map(|node| PLATFORMS.map(|p| format!("{node} ({p})")))
        .collect();
    all.sort();
    all
}

/// A job as a generated file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobSpec {
    /// The names of the jobs it needs.
    needs: BTreeSet<String>,
    /// Runs only on pushes to the default branch.
    default_branch_only: bool,
    /// Its commands, one string.
    script: String,
}

fn yaml(path: &Path) -> im_yaml::Node {
    let text = fs_err::read_to_string(path).unwrap();
    im_yaml::parse(path, text, &im_yaml::Limits::default())
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
        .root
}

fn scalars(node: Option<&im_yaml::Node>) -> Vec<String> {
    match node.map(|n| &n.value) {
        None | Some(im_yaml::Value::Null) => Vec::new(),
        Some(im_yaml::Value::Scalar { text, .. }) => vec![text.clone()],
        Some(im_yaml::Value::Seq(items)) => items
            .iter()
            .map(|item| item.as_scalar().unwrap().to_owned())
            .collect(),
        Some(other) => panic!("not a list of strings: {other:?}"),
    }
}

/// The jobs of a GitLab CI file (keys that are not hidden `.templates` or global keywords).
fn gitlab_jobs(path: &Path) -> BTreeMap<String, JobSpec> {
    let root = yaml(path);
    root.as_map()
        .unwrap()
        .iter()
        .map(|(key, job)| (key.as_scalar().unwrap(), job))
        .filter(|(name, _)| {
            !name.starts_with('.')
                && !matches!(
                    *name,
                    "include" | "stages" | "variables" | "default" | "workflow"
                )
        })
        .map(|(name, job)| {
            let rules: Vec<String> = match job.get("rules").map(|rules| &rules.value) {
                None => Vec::new(),
                Some(im_yaml::Value::Seq(items)) => items
                    .iter()
                    .map(|rule| rule.get("if").unwrap().as_scalar().unwrap().to_owned())
                    .collect(),
                Some(other) => panic!("{name}: rules are {other:?}"),
            };
            let spec = JobSpec {
                needs: scalars(job.get("needs")).into_iter().collect(),
                // The branch test, or in a child pipeline the parent's verdict.
                default_branch_only: !rules.is_empty()
                    && rules.iter().all(|rule| {
                        (rule.contains("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH")
                            && rule.contains("$CI_MERGE_REQUEST_IID == null"))
                            || rule == "$IM_RELEASE == \"1\""
                    }),
                script: scalars(job.get("script")).join("\n"),
            };
            (name.to_owned(), spec)
        })
        .collect()
}

/// The jobs of a GitHub Actions workflow, by their `name:` (needs mapped from ids to names).
fn github_jobs(path: &Path) -> BTreeMap<String, JobSpec> {
    let root = yaml(path);
    let jobs = root.get("jobs").unwrap().as_map().unwrap();
    let names: BTreeMap<&str, &str> = jobs
        .iter()
        .map(|(id, job)| {
            (
                id.as_scalar().unwrap(),
                job.get("name").unwrap().as_scalar().unwrap(),
            )
        })
        .collect();
    jobs.iter()
        .map(|(id, job)| {
            let condition = job.get("if").and_then(|c| c.as_scalar()).unwrap_or("");
            let steps = match &job.get("steps").unwrap().value {
                im_yaml::Value::Seq(steps) => steps,
                other => panic!("steps are {other:?}"),
            };
            let script = steps
                .iter()
                .filter_map(|step| step.get("run").and_then(|r| r.as_scalar()))
                .collect::<Vec<_>>()
                .join("\n");
            let spec = JobSpec {
                needs: scalars(job.get("needs"))
                    .iter()
                    .map(|need| {
                        (*names
                            .get(need.as_str())
                            .unwrap_or_else(|| panic!("{need} is not a job")))
                        .to_owned()
                    })
                    .collect(),
                default_branch_only: condition.contains("github.event_name == 'push'")
                    && condition.contains("github.event.repository.default_branch"),
                script,
            };
            (names[id.as_scalar().unwrap()].to_owned(), spec)
        })
        .collect()
}

/// The job graph the fixture must get, whatever the provider: a build job per node needing
/// exactly its parents' builds on the same platform, a manifest after its tag's builds, a
/// test per platform after the manifest, and a promote after the tests (or the manifest),
/// only on the default branch. Unsplit (`split` false), one build job per image tag needs its
/// parents' and stands for the manifest.
fn expected_graph(
    tags: &[(&str, &[&str], bool)],
    split: bool,
) -> BTreeMap<String, (BTreeSet<String>, bool)> {
    let set = |names: Vec<String>| names.into_iter().collect::<BTreeSet<_>>();
    let legs: Vec<String> = if split {
        PLATFORMS.map(|p| format!(" {p}")).to_vec()
    } else {
        vec![String::new()]
    };
    let mut jobs = BTreeMap::new();
    for &(node, parents, tested) in tags {
        for leg in &legs {
            let needs = parents
                .iter()
                .filter(|parent| tags.iter().any(|(n, ..)| n == *parent))
                .map(|parent| format!("build {parent}{leg}"))
                .collect();
            jobs.insert(format!("build {node}{leg}"), (set(needs), false));
        }
        let builds: Vec<String> = legs
            .iter()
            .map(|leg| format!("build {node}{leg}"))
            .collect();
        let mut done = builds.clone();
        if split {
            jobs.insert(format!("manifest {node}"), (set(builds), false));
            done = vec![format!("manifest {node}")];
        }
        if tested {
            let tests: Vec<String> = PLATFORMS.map(|p| format!("test {node} {p}")).to_vec();
            for test in &tests {
                jobs.insert(test.clone(), (set(done.clone()), false));
            }
            done = tests;
        }
        jobs.insert(format!("promote {node}"), (set(done), true));
    }
    jobs
}

fn assert_job_graph(jobs: &BTreeMap<String, JobSpec>, tags: &[(&str, &[&str], bool)], split: bool) {
    let got: BTreeMap<String, (BTreeSet<String>, bool)> = jobs
        .iter()
        .map(|(name, job)| (name.clone(), (job.needs.clone(), job.default_branch_only)))
        .collect();
    assert_eq!(got, expected_graph(tags, split));
    // Each job does what its name says.
    for (name, job) in jobs {
        let words: Vec<&str> = name.split(' ').collect();
        let expected = match words.as_slice() {
            ["build", node, platform] => {
                format!("build --push --platform-tags --platform {platform} ")
                    + &format!("${{IM_SNAPSHOT_ID:+--snapshot-id \"$IM_SNAPSHOT_ID\"}} {node}")
            }
            ["build", node] => {
                format!(
                    "build --push ${{IM_SNAPSHOT_ID:+--snapshot-id \"$IM_SNAPSHOT_ID\"}} {node}"
                )
            }
            ["manifest", node] => {
                format!("manifest ${{IM_SNAPSHOT_ID:+--snapshot-id \"$IM_SNAPSHOT_ID\"}} {node}")
            }
            ["test", node, platform] => format!(
                "test --config dist/{}/test.yml --image \"{node}${{IM_SNAPSHOT_ID:+-$IM_SNAPSHOT_ID}}\" --platform {platform}",
                node.replace(':', "/")
            ),
            ["promote", node] => format!("promote --snapshot-id \"$IM_SNAPSHOT_ID\" {node}"),
            _ => panic!("unexpected job {name}"),
        };
        assert!(
            job.script.contains(&format!("image-manager {expected}")),
            "{name} runs:\n{}\nnot image-manager {expected}",
            job.script
        );
    }
}

/// When a job ran, as gitlab-ci-local's `--timestamps` lines say: the line number (the log
/// is written in the order things happen) and the wall-clock second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Moment {
    line: usize,
    second: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: Moment,
    end: Moment,
}

/// The start (`starting shell`) and end (`finished in`) of every job in `log`, from lines
/// `[HH:MM:SS DURATION] JOB-NAME MESSAGE`. Colour codes are ignored, a clock that goes back
/// by more than 12 hours passed midnight, and a timestamped line that names no job in `names`
/// (or a job that starts twice or never finishes) fails the test.
fn job_spans(log: &str, names: &BTreeSet<String>) -> BTreeMap<String, Span> {
    let mut by_length: Vec<&String> = names.iter().collect();
    by_length.sort_by_key(|name| std::cmp::Reverse(name.len()));
    let mut starts: BTreeMap<String, Moment> = BTreeMap::new();
    let mut spans = BTreeMap::new();
    let (mut day, mut last) = (0u64, 0u64);
    for (number, raw) in log.lines().enumerate() {
        let line = strip_ansi(raw);
        let Some((stamp, rest)) = line
            .strip_prefix('[')
            .and_then(|line| line.split_once("] "))
        else {
            continue;
        };
        let Some(clock) = stamp.split_whitespace().next().and_then(seconds_of_day) else {
            continue;
        };
        if clock + 12 * 3600 < last {
            day += 1;
        }
        last = clock;
        let moment = Moment {
            line: number,
            second: day * 86_400 + clock,
        };
        let name = by_length
            .iter()
            .find(|name| {
                rest.strip_prefix(name.as_str())
                    .is_some_and(|after| after.is_empty() || after.starts_with(' '))
            })
            .unwrap_or_else(|| panic!("line {}: no known job in {line:?}", number + 1));
        let message = rest[name.len()..].trim_start();
        if message.starts_with("starting ") {
            let before = starts.insert((*name).clone(), moment);
            assert!(before.is_none(), "{name} started twice");
        } else if message.starts_with("finished in ") {
            let start = starts
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{name} finished before it started"));
            let before = spans.insert(
                (*name).clone(),
                Span {
                    start: *start,
                    end: moment,
                },
            );
            assert!(before.is_none(), "{name} finished twice");
        }
    }
    for name in starts.keys() {
        assert!(spans.contains_key(name), "{name} never finished");
    }
    spans
}

/// `HH:MM:SS` (24 as 0, as some locales write midnight) in seconds.
fn seconds_of_day(clock: &str) -> Option<u64> {
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [h, m, s] if *h <= 24 && *m < 60 && *s < 61 => Some((h % 24) * 3600 + m * 60 + s),
        _ => None,
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// No job started before every job it needs had finished: in log order and by the clock.
fn assert_needs_respected(spans: &BTreeMap<String, Span>, jobs: &BTreeMap<String, JobSpec>) {
    for (name, job) in jobs {
        let Some(span) = spans.get(name) else {
            continue;
        };
        for need in &job.needs {
            let needed = spans
                .get(need)
                .unwrap_or_else(|| panic!("{name} ran, but {need}, which it needs, did not"));
            assert!(
                needed.end.line < span.start.line && needed.end.second <= span.start.second,
                "{name} started ({:?}) before {need} finished ({:?})",
                span.start,
                needed.end
            );
        }
    }
}

/// The one snapshot id (`ci-N`) of a pipeline that wrote `IMAGE:TAG-ci-N` and not `old`.
fn new_snapshot(tags: &BTreeSet<String>, tag: &str, old: &[String]) -> String {
    let ids: Vec<String> = tags
        .iter()
        .filter_map(|t| t.strip_prefix(&format!("{tag}-")))
        .filter(|id| {
            id.strip_prefix("ci-")
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        })
        .filter(|id| !old.iter().any(|o| o == id))
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 1, "one new snapshot of {tag} in {tags:?}");
    ids[0].clone()
}

/// The tags the registry must hold after a default-branch pipeline and others under
/// `snapshots`: per image tag, the release tag and aliases, and each snapshot's index and (with
/// `split` platforms) its per-platform tags.
fn expected_tags(snapshots: &[&str], split: bool) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (node, aliases) in RELEASED {
        let (image, version) = node.split_once(':').unwrap();
        let tags = expected.entry(image).or_default();
        tags.extend(aliases.iter().map(|t| (*t).to_owned()));
        for snapshot in snapshots {
            let snapshot_tag = format!("{version}-{snapshot}");
            if split {
                tags.extend(PLATFORMS.map(|p| format!("{snapshot_tag}-{}", p.replace('/', "-"))));
            }
            tags.insert(snapshot_tag);
        }
    }
    expected
}

/// Release tag and aliases of each image tag → the digest they point at, checking they agree
/// and the index has both platforms.
fn released_digests(repo: &Monorepo) -> BTreeMap<&'static str, String> {
    RELEASED
        .iter()
        .map(|&(node, aliases)| {
            let (image, version) = node.split_once(':').unwrap();
            let (digest, index) = repo.manifest(image, version);
            assert_eq!(index_platforms(&index), PLATFORMS, "{node}");
            for alias in aliases {
                assert_eq!(repo.manifest(image, alias).0, digest, "{image}:{alias}");
            }
            (node, digest)
        })
        .collect()
}

/// The registry holds exactly `expected`, and each snapshot's index of an image tag is its
/// release's (`released`).
fn assert_registry(
    repo: &Monorepo,
    expected: &BTreeMap<&str, BTreeSet<String>>,
    snapshots: &[&str],
    released: &BTreeMap<&str, String>,
) {
    for (image, tags) in expected {
        assert_eq!(&repo.tags(image), tags, "{image}");
    }
    for (node, digest) in released {
        let (image, version) = node.split_once(':').unwrap();
        for snapshot in snapshots {
            assert_eq!(
                &repo.manifest(image, &format!("{version}-{snapshot}")).0,
                digest,
                "{node} under {snapshot} is not its release"
            );
        }
    }
}

/// Every job of `jobs` ran but those `skipped`, none before the jobs it needs.
fn assert_ran(pipeline: &Pipeline, jobs: &BTreeMap<String, JobSpec>, skipped: fn(&str) -> bool) {
    let names: BTreeSet<String> = jobs.keys().cloned().collect();
    let spans = job_spans(&pipeline.stdout, &names);
    let wanted: BTreeSet<String> = names.into_iter().filter(|n| !skipped(n)).collect();
    assert_eq!(
        spans.keys().cloned().collect::<BTreeSet<_>>(),
        wanted,
        "{}",
        pipeline.stdout
    );
    assert_needs_respected(&spans, jobs);
}

/// The first pipeline of a repository, on the default branch: the committed GitLab file has
/// the fixture's job graph, every job runs (promote too) after the jobs it needs, each node is
/// built once, by its own job (the others take it from the registry), and the registry holds
/// exactly the snapshot's tags, the release tags and every alias, the release being the
/// snapshot's very index with both platforms. Returns the jobs, the snapshot id and the
/// release digests.
fn first_pipeline(
    repo: &Monorepo,
    split: bool,
) -> (
    BTreeMap<String, JobSpec>,
    String,
    BTreeMap<&'static str, String>,
) {
    repo.image_manager(&["generate-ci", "--provider", "gitlab"]);
    repo.commit("images");
    let jobs = repo.gitlab_jobs();
    assert_job_graph(&jobs, &TAGS, split);
    // gitlab-ci-local sets CI_COMMIT_BRANCH to the checked-out branch and, with no remote,
    // CI_DEFAULT_BRANCH to `main`: a default-branch pipeline.
    let pipeline = repo.run_pipeline(&[]);
    assert_ran(&pipeline, &jobs, |_| false);
    let mut built = pipeline.built();
    built.sort();
    assert_eq!(built, on_every_platform(&TAGS.map(|(node, ..)| node)));
    let main = new_snapshot(&repo.tags("base"), "1", &[]);
    let released = released_digests(repo);
    assert_registry(repo, &expected_tags(&[&main], split), &[&main], &released);
    (jobs, main, released)
}

// The test names start with what they run so that the longest (this one) starts first: the
// file's wall time is then about its own.
#[test]
fn gitlab_branch_merge_request_and_pruned_pipelines_run_in_order_and_publish() {
    let repo = Monorepo::new(true);
    let (jobs, main, released) = first_pipeline(&repo, true);

    // A merge request pipeline: every job but promote, under `mr-7`, and nothing is rebuilt
    // (the keys are at the release tags) or released.
    let request = repo.run_pipeline(&[
        "--variable",
        "CI_MERGE_REQUEST_IID=7",
        "--unset-variable",
        "CI_COMMIT_BRANCH",
    ]);
    assert_ran(&request, &jobs, |name| name.starts_with("promote "));
    assert_eq!(request.built(), Vec::<String>::new());
    assert!(
        request.stderr.contains(" In registry "),
        "{}",
        request.stderr
    );
    assert_eq!(released_digests(&repo), released);
    assert_registry(
        &repo,
        &expected_tags(&[&main, "mr-7"], true),
        &[&main, "mr-7"],
        &released,
    );

    // One leaf's file changes (and its test with it): the pipeline generated with
    // --affected-since runs exactly that leaf's jobs, takes its parent from the registry
    // instead of building it, and releases the leaf's new image.
    repo.change_leaf();
    repo.image_manager(&[
        "generate-ci",
        "--provider",
        "gitlab",
        "--affected-since",
        "HEAD~1",
    ]);
    let pruned = repo.gitlab_jobs();
    assert_job_graph(&pruned, &LEAF, true);
    // The keys the jobs pushed under their snapshots are the keys generate-ci computes with
    // none: --registry-keys leaves out every image tag but the changed leaf too.
    let by_keys = repo.root().join("registry-keys.gitlab-ci.yml");
    repo.image_manager(&[
        "generate-ci",
        "--provider",
        "gitlab",
        "--registry-keys",
        "--output",
        by_keys.to_str().unwrap(),
    ]);
    assert_job_graph(&gitlab_jobs(&by_keys), &LEAF, true);
    fs_err::remove_file(&by_keys).unwrap();
    let change = repo.run_pipeline(&[]);
    assert_ran(&change, &pruned, |_| false);
    let mut built = change.built();
    built.sort();
    assert_eq!(built, on_every_platform(&["web:2.0.0-dev"]));
    let leaf_snapshot = new_snapshot(
        &repo.tags("web"),
        "2.0.0-dev",
        &[main.clone(), "mr-7".into()],
    );
    let now = released_digests(&repo);
    assert_ne!(now["web:2.0.0-dev"], released["web:2.0.0-dev"]);
    assert_eq!(
        repo.manifest("web", &format!("2.0.0-dev-{leaf_snapshot}"))
            .0,
        now["web:2.0.0-dev"]
    );
    let mut unchanged = released.clone();
    unchanged.remove("web:2.0.0-dev");
    let mut expected = expected_tags(&[&main, "mr-7"], true);
    let web = expected.get_mut("web").unwrap();
    web.insert(format!("2.0.0-dev-{leaf_snapshot}"));
    // The leaf's build jobs tag only the leaf under the new snapshot, per platform: the
    // ancestors they took from the registry have no job in this pipeline to join them.
    for platform in PLATFORMS {
        let slug = platform.replace('/', "-");
        web.insert(format!("2.0.0-dev-{leaf_snapshot}-{slug}"));
    }
    assert_registry(&repo, &expected, &[&main, "mr-7"], &unchanged);

    // Nothing changed since the last commit: the pipeline is one job saying so, and it runs.
    repo.commit("pruned pipeline");
    repo.image_manager(&[
        "generate-ci",
        "--provider",
        "gitlab",
        "--affected-since",
        "HEAD",
    ]);
    let nothing = repo.gitlab_jobs();
    assert_eq!(nothing.keys().collect::<Vec<_>>(), ["nothing to build"]);
    let idle = repo.run_pipeline(&[]);
    assert_ran(&idle, &nothing, |_| false);
    assert_eq!(idle.built(), Vec::<String>::new());
    assert_registry(&repo, &expected, &[&main, "mr-7"], &unchanged);

    // No job wrote the password into its checkout (dist/, the ledger, ...) or its log.
    let leaked = common::files_containing(repo.root(), PASSWORD.as_bytes());
    assert_eq!(leaked, Vec::<std::path::PathBuf>::new());
}

/// `os/arch` of each manifest of an index.
fn index_platforms(index: &serde_json::Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn gitlab_unsplit_pipeline_builds_each_image_tag_for_every_platform_in_one_job() {
    first_pipeline(&Monorepo::new(false), false);
}

#[test]
fn gitlab_dynamic_pipeline_plans_a_child_pipeline_that_runs() {
    let repo = Monorepo::new(true);
    repo.image_manager(&["generate-ci", "--provider", "gitlab", "--shape", "dynamic"]);
    repo.commit("images");
    // The committed file's plan job writes the child pipeline (gitlab-ci-local copies the
    // artifact back into the repository). Its trigger job is left to GitLab: gitlab-ci-local
    // 4.60 looks for the artifact of a job whose name has a space under the wrong folder and
    // forwards no rules:variables, where GitLab passes both on.
    let plan = repo.run_pipeline(&["image-manager plan"]);
    assert!(
        plan.stderr.contains("Generated images-child.gitlab-ci.yml"),
        "{}",
        plan.stderr
    );
    let child = repo.root().join("images-child.gitlab-ci.yml");
    let jobs = gitlab_jobs(&child);
    assert_job_graph(&jobs, &TAGS, true);
    // The child pipeline, with what the parent hands down on the default branch.
    let pipeline = repo.run_pipeline(&[
        "--file",
        "images-child.gitlab-ci.yml",
        "--variable",
        "IM_SNAPSHOT_ID=ci-77",
        "--variable",
        "IM_RELEASE=1",
    ]);
    assert_ran(&pipeline, &jobs, |_| false);
    let mut built = pipeline.built();
    built.sort();
    assert_eq!(built, on_every_platform(&TAGS.map(|(node, ..)| node)));
    let released = released_digests(&repo);
    assert_registry(
        &repo,
        &expected_tags(&["ci-77"], true),
        &["ci-77"],
        &released,
    );
}

#[test]
fn github_workflow_has_the_same_job_graph() {
    let repo = Monorepo::new(true);
    let workflow = repo.root().join(".github/workflows/images.yml");
    repo.image_manager(&["generate-ci", "--provider", "github"]);
    assert_job_graph(&github_jobs(&workflow), &TAGS, true);
    repo.commit("images");
    repo.change_leaf();
    repo.image_manager(&[
        "generate-ci",
        "--provider",
        "github",
        "--affected-since",
        "HEAD~1",
    ]);
    assert_job_graph(&github_jobs(&workflow), &LEAF, true);
}

#[test]
fn job_spans_read_gitlab_ci_local_timestamps() {
    let names: BTreeSet<String> = ["build a:1 linux/amd64", "build a:1-dev linux/amd64"]
        .map(str::to_owned)
        .into();
    let log = "\
parsing and downloads finished in 156 ms.
[23:59:59   32 ms] build a:1 linux/amd64 starting shell (build)
[23:59:59  156 ms] build a:1 linux/amd64 $ image-manager build
\u{1b}[34m[24:00:01  1.43 s]\u{1b}[39m build a:1 linux/amd64 finished in 1.43 s
[00:00:01    6 ms] build a:1-dev linux/amd64 starting shell (build)
[00:01:02 1.02 min] build a:1-dev linux/amd64 >   Built a:1-dev in 61s
[00:01:02 1.02 min] build a:1-dev linux/amd64 finished in 1.02 min

 PASS  [ 1.43 s] build a:1 linux/amd64
";
    let spans = job_spans(log, &names);
    let a = spans["build a:1 linux/amd64"];
    let dev = spans["build a:1-dev linux/amd64"];
    assert_eq!((a.start.line, a.start.second), (1, 86_399));
    assert_eq!((a.end.line, a.end.second), (3, 86_401));
    assert_eq!((dev.start.line, dev.start.second), (4, 86_401));
    assert_eq!(dev.end.second, 86_462);
    let needs = |need: &str| JobSpec {
        needs: [need.to_owned()].into(),
        default_branch_only: false,
        script: String::new(),
    };
    let jobs = BTreeMap::from([(
        "build a:1-dev linux/amd64".to_owned(),
        needs("build a:1 linux/amd64"),
    )]);
    assert_needs_respected(&spans, &jobs);
    let reversed = BTreeMap::from([(
        "build a:1 linux/amd64".to_owned(),
        needs("build a:1-dev linux/amd64"),
    )]);
    let caught = std::panic::catch_unwind(|| assert_needs_respected(&spans, &reversed));
    assert!(
        caught.is_err(),
        "a job that started before its need finished passed"
    );
}
