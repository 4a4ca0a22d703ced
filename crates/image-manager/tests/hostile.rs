//! Hostile and broken inputs: each test is the reproduction of a problem a hostile-input sweep
//! found (issue 13), run through the real binary under a time and memory limit. A hang, a
//! panic or an error without a place to look at fails the test.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use common::{Run, mkfifo, run_limited, write};

const LIMIT: Duration = Duration::from_secs(30);

/// A project with a base image, an image built on it, a shared template and a test config.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join(".image-manager.yml"),
        "platforms: [linux/amd64]\n",
    );
    write(
        &root.join("images/base/image.yml"),
        "is_base_image: true\ntags: [\"1.0\"]\n",
    );
    write(
        &root.join("images/base/Dockerfile.jinja2"),
        "FROM scratch\n{% include \"labels.jinja2\" %}\n",
    );
    write(
        &root.join("templates/labels.jinja2"),
        "LABEL tag={{ tag.name }}\n",
    );
    write(&root.join("images/tool/1/image.yml"), "tags: [\"0.3.1\"]\n");
    write(
        &root.join("images/tool/1/Dockerfile.jinja2"),
        "FROM {{ \"base\" | resolve_base_image }}\n",
    );
    write(
        &root.join("images/tool/1/test.yml.jinja2"),
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: sh, path: /bin/sh}\n",
    );
    dir
}

fn run(root: &Path, args: &[&str]) -> Run {
    run_limited(root, args, LIMIT)
}

/// Runs `check` and `generate`: both must exit 2 and say `message`.
fn refused(root: &Path, message: &str) -> String {
    let mut all = String::new();
    for command in ["check", "generate"] {
        let run = run(root, &[command]);
        assert_eq!(
            run.status, 2,
            "{command}: stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr.contains(message),
            "{command}: expected `{message}` in:\n{}",
            run.stderr
        );
        all.push_str(&run.stderr);
    }
    all
}

fn replace_with_link(path: &Path, target: &str) {
    fs_err::remove_file(path).unwrap();
    symlink(target, path).unwrap();
}

#[test]
fn the_sample_project_is_valid() {
    let dir = project();
    let run = run(dir.path(), &["check"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn an_error_past_column_65535_is_reported_not_a_panic() {
    let dir = project();
    write(
        &dir.path().join("images/tool/1/image.yml"),
        &format!("tags: [\"0.3.1\"]\n{}: 1\n", "k".repeat(65_536)),
    );
    let stderr = refused(dir.path(), "--> images/tool/1/image.yml:2:65537");
    assert!(stderr.lines().all(|line| line.len() < 300), "{stderr}");
}

#[test]
fn a_fifo_as_settings_is_refused_at_once() {
    let dir = project();
    let settings = dir.path().join(".image-manager.yml");
    fs_err::remove_file(&settings).unwrap();
    mkfifo(&settings);
    refused(
        dir.path(),
        "`.image-manager.yml` is a FIFO (named pipe); image-manager reads only regular files",
    );
}

#[test]
fn an_image_yml_link_inside_the_project_is_followed() {
    let dir = project();
    let root = dir.path();
    fs_err::rename(root.join("images/tool/1/image.yml"), root.join("tool.yml")).unwrap();
    symlink("../../../tool.yml", root.join("images/tool/1/image.yml")).unwrap();
    let run = run(root, &["list"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.contains("tool"), "{}", run.stdout);
}

/// Turns a file into something broken.
type Breaker<'a> = &'a dyn Fn(&Path);

#[test]
fn an_image_yml_that_is_a_fifo_a_loop_or_a_link_out_is_an_error() {
    let cases: [(&str, Breaker); 4] = [
        ("is a FIFO", &|path| {
            fs_err::remove_file(path).unwrap();
            mkfifo(path);
        }),
        ("is a symlink loop", &|path| {
            replace_with_link(path, "image.yml");
        }),
        ("is a link to `/etc/passwd`, outside the project", &|path| {
            replace_with_link(path, "/etc/passwd");
        }),
        ("is a link to `gone.yml`, which does not exist", &|path| {
            replace_with_link(path, "gone.yml");
        }),
    ];
    for (message, break_it) in cases {
        let dir = project();
        break_it(&dir.path().join("images/tool/1/image.yml"));
        let stderr = refused(
            dir.path(),
            &format!("error: `images/tool/1/image.yml` {message}"),
        );
        assert!(!stderr.contains("root:x:0:0"), "{stderr}");
    }
}

#[test]
fn templates_do_not_follow_links_out_of_the_project() {
    // The including template's shared file, the Dockerfile template itself, a plain
    // Dockerfile and a test config, each a link to /etc/passwd.
    for file in [
        "templates/labels.jinja2",
        "images/base/Dockerfile.jinja2",
        "images/tool/1/test.yml.jinja2",
    ] {
        let dir = project();
        replace_with_link(&dir.path().join(file), "/etc/passwd");
        let stderr = refused(
            dir.path(),
            &format!("`{file}` is a link to `/etc/passwd`, outside the project; it was not read"),
        );
        assert!(!stderr.contains("root:"), "{stderr}");
        assert!(
            !dir.path().join("dist").exists()
                || !std::process::Command::new("grep")
                    .args(["-rq", "root:"])
                    .arg(dir.path().join("dist"))
                    .status()
                    .unwrap()
                    .success(),
            "nothing of /etc/passwd lands in dist/"
        );
    }
    let dir = project();
    fs_err::remove_file(dir.path().join("images/base/Dockerfile.jinja2")).unwrap();
    symlink("/etc/passwd", dir.path().join("images/base/Dockerfile")).unwrap();
    refused(
        dir.path(),
        "`images/base/Dockerfile` is a link to `/etc/passwd`",
    );
}

#[test]
fn a_template_link_inside_the_project_is_followed() {
    let dir = project();
    let root = dir.path();
    fs_err::rename(
        root.join("templates/labels.jinja2"),
        root.join("templates/real.jinja2"),
    )
    .unwrap();
    symlink("real.jinja2", root.join("templates/labels.jinja2")).unwrap();
    let run = run(root, &["generate"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let dockerfile = fs_err::read_to_string(root.join("dist/base/1.0/Dockerfile")).unwrap();
    assert!(dockerfile.contains("LABEL tag=1.0"), "{dockerfile}");
}

#[test]
fn a_fifo_dockerfile_template_is_reported_as_what_it_is() {
    let dir = project();
    let template = dir.path().join("images/base/Dockerfile.jinja2");
    fs_err::remove_file(&template).unwrap();
    mkfifo(&template);
    let stderr = refused(
        dir.path(),
        "`images/base/Dockerfile.jinja2` is a FIFO (named pipe)",
    );
    assert!(!stderr.contains("no Dockerfile template"), "{stderr}");
    // An included template that is a FIFO too.
    let dir = project();
    let included = dir.path().join("templates/labels.jinja2");
    fs_err::remove_file(&included).unwrap();
    mkfifo(&included);
    refused(
        dir.path(),
        "`templates/labels.jinja2` is a FIFO (named pipe)",
    );
}

#[test]
fn invalid_utf8_and_oversized_files_point_at_their_line() {
    let dir = project();
    fs_err::write(
        dir.path().join("images/tool/1/image.yml"),
        b"tags: [\"0.3.1\"]\ndescription: caf\xe9\n",
    )
    .unwrap();
    refused(dir.path(), "--> images/tool/1/image.yml:2:17");

    let dir = project();
    let mut text = b"FROM scratch\n".to_vec();
    text.extend(b"# filler line\n".repeat(400_000));
    fs_err::write(dir.path().join("images/base/Dockerfile.jinja2"), &text).unwrap();
    let stderr = refused(
        dir.path(),
        "this file is larger than the 4194304 bytes an input file may have",
    );
    assert!(
        stderr.contains("--> images/base/Dockerfile.jinja2:299594:"),
        "{stderr}"
    );
}

#[test]
fn concurrent_generates_adding_the_same_new_tag_all_succeed() {
    let dir = project();
    let root = dir.path().to_path_buf();
    assert_eq!(run(&root, &["generate"]).status, 0);
    for round in 0..8 {
        // New tags (new folders renamed into place) in every round.
        let tags: Vec<String> = (0..20).map(|n| format!("\"0.4.{round}{n}\"")).collect();
        write(
            &root.join("images/tool/1/image.yml"),
            &format!("tags: [\"0.3.1\", {}]\n", tags.join(", ")),
        );
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let root = root.clone();
                std::thread::spawn(move || run(&root, &["generate"]))
            })
            .collect();
        for handle in runs {
            let run = handle.join().unwrap();
            assert_eq!(run.status, 0, "round {round}:\n{}", run.stderr);
        }
        assert!(
            root.join(format!("dist/tool/0.4.{round}0/Dockerfile"))
                .is_file()
        );
    }
}

#[test]
fn a_dockerfile_without_from_points_at_its_template() {
    let dir = project();
    write(
        &dir.path().join("images/tool/1/Dockerfile.jinja2"),
        "{# nothing yet #}\n",
    );
    let stderr = refused(dir.path(), "the Dockerfile has no `FROM` instruction");
    assert!(
        stderr.contains("--> images/tool/1/Dockerfile.jinja2:1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("--> dist/"), "{stderr}");
}

#[test]
fn an_extends_cycle_points_at_the_image_yml_lines() {
    let dir = project();
    write(
        &dir.path().join("images/base/image.yml"),
        "is_base_image: true\ntags: [\"1.0\"]\nextends: tool:0.3.1\n",
    );
    let stderr = refused(
        dir.path(),
        "the images depend on each other in a cycle: base:1.0 -> tool:0.3.1 -> base:1.0",
    );
    assert!(
        stderr.contains("--> images/base/image.yml:3:10"),
        "{stderr}"
    );
    assert!(
        stderr.contains("tool:0.3.1 builds on base:1.0 (`base:1.0`, line 1 of the Dockerfile rendered from images/tool/1/Dockerfile.jinja2)"),
        "{stderr}"
    );
    assert!(stderr.contains("`extends:`"), "{stderr}");
}

#[test]
fn check_validates_rendered_test_configs() {
    for (config, message, at) in [
        (
            "schemaVersion: 2.0.0\nfileExistenceTests: 5\n",
            "`fileExistenceTests` must be a list",
            "--> images/tool/1/test.yml.jinja2:2:21",
        ),
        (
            "schemaVersion: 2.0.0\nfileExistenceTests: [\n",
            "this is not valid YAML",
            "--> images/tool/1/test.yml.jinja2:",
        ),
        (
            "schemaVersion: 2.0.0\n{% if true %}\nmetadataTest: {cmd: 5}\n{% endif %}\n",
            "`cmd`",
            "--> images/tool/1/test.yml.jinja2:3:",
        ),
    ] {
        let dir = project();
        write(&dir.path().join("images/tool/1/test.yml.jinja2"), config);
        let run = run(dir.path(), &["check"]);
        assert_eq!(run.status, 2, "{config}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{config}: {}", run.stderr);
        assert!(run.stderr.contains(at), "{config}: {}", run.stderr);
    }
}

#[test]
fn registries_settings_are_checked() {
    let dir = project();
    let settings = dir.path().join(".image-manager.yml");
    write(&settings, "registries: []\n");
    refused(dir.path(), "`registries` is an empty list");
    write(&settings, "registry:\n  url: \"bot:hunter2@reg.example\"\n");
    let stderr = refused(
        dir.path(),
        "the registry `url` is malformed: it contains `@`",
    );
    assert!(stderr.contains("--> .image-manager.yml:2:8"), "{stderr}");
    write(
        &settings,
        "registries:\n  - {url: a.example}\n  - {url: b.example}\n",
    );
    let run = run(dir.path(), &["check"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("2 registries are listed and none is marked `default: true`"),
        "{}",
        run.stderr
    );
}

/// Starts `generate` while the test holds `dist/.lock`, so it waits (and says so) until the
/// lock is released; returns once it says it is waiting.
fn waiting_generate(root: &Path, ignore_sigint: bool) -> std::process::Child {
    use std::io::BufRead as _;
    let mut command = std::process::Command::new("sh");
    command.arg("-c");
    // A shell ignores SIGINT for `cmd &` in scripts the same way: the program inherits it.
    command.arg(if ignore_sigint {
        "trap '' INT; exec \"$0\" \"$@\""
    } else {
        "exec \"$0\" \"$@\""
    });
    let mut child = command
        .arg(env!("CARGO_BIN_EXE_image-manager"))
        .arg("-C")
        .arg(root)
        .arg("generate")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("Waiting") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "generate ended without waiting"
        );
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    child
}

fn interrupt(child: &std::process::Child) {
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn sigint_ends_a_run_unless_it_was_started_with_sigint_ignored() {
    let dir = project();
    let root = dir.path();
    fs_err::create_dir_all(root.join("dist")).unwrap();
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("dist/.lock"))
        .unwrap();
    let mut lock = fd_lock::RwLock::new(file);
    let guard = lock.write().unwrap();

    // Started as `image-manager generate &` from a script: SIGINT stays ignored.
    let mut ignoring = waiting_generate(root, true);
    for _ in 0..3 {
        interrupt(&ignoring);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ignoring.try_wait().unwrap().is_none(), "SIGINT was ignored");

    // Started normally: SIGINT ends it with 130, even while it waits for the lock.
    let mut normal = waiting_generate(root, false);
    interrupt(&normal);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = normal.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGINT did not end it"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));

    drop(guard);
    let status = ignoring.wait().unwrap();
    assert!(
        status.success(),
        "the ignoring run finished its work: {status}"
    );
    assert!(root.join("dist/tool/0.3.1/Dockerfile").is_file());
}

#[test]
fn a_fifo_as_a_test_config_is_refused_at_once() {
    let dir = project();
    let config = dir.path().join("config.yml");
    mkfifo(&config);
    let image = dir.path().join("image.tar");
    fs_err::write(&image, b"not an image").unwrap();
    let run = run(
        dir.path(),
        &[
            "test",
            "--image",
            image.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "`[ROOT]/config.yml` is a FIFO (named pipe); image-manager reads only regular files"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unreadable_folder_is_pointed_at() {
    let dir = project();
    let root = dir.path();
    let chmod = |mode: &str, path: &Path| {
        let status = std::process::Command::new("chmod")
            .arg(mode)
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    };
    chmod("755", root);
    chmod("000", &root.join("images/tool"));
    // root reads every folder: run as `nobody` then (the project is readable by all).
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    let mut command = if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        let mut command = std::process::Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        command.arg(env!("CARGO_BIN_EXE_image-manager"));
        command
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_image-manager"))
    };
    let output = command
        .arg("-C")
        .arg(root)
        .arg("check")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    chmod("755", &root.join("images/tool"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: cannot read this folder: Permission denied"),
        "{stderr}"
    );
    assert!(stderr.contains(" --> images/tool\n"), "{stderr}");
}
