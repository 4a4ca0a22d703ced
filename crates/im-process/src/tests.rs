//! The runner against real processes (`/bin/sh`).

use std::thread;
use std::time::{Duration, Instant};

use super::*;

fn sh(script: &str) -> CommandSpec {
    CommandSpec::new("/bin/sh").arg("-c").arg(script)
}

/// Whether process `pid` is gone (reaped by init, or a zombie at most).
fn gone(pid: i32) -> bool {
    thread::sleep(Duration::from_millis(100));
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("X");
    matches!(state, "X" | "Z" | "")
}

fn read_pid(path: &std::path::Path) -> i32 {
    fs_err::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn output_goes_to_the_log_and_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::create(&dir.path().join("build.log")).unwrap();
    let mut lines = Vec::new();
    run(
        &sh("echo out; echo err >&2; printf 'no newline'").env("X", "1"),
        &mut log,
        &CancelToken::new(),
        &mut |l| lines.push(l.to_owned()),
    )
    .unwrap();
    lines.sort();
    assert_eq!(lines, ["err", "no newline", "out"]);
    let text = fs_err::read_to_string(dir.path().join("build.log")).unwrap();
    assert!(
        text.starts_with("$ X=1 /bin/sh -c \"echo out; echo err >&2; printf 'no newline'\"\n"),
        "{text}"
    );
    assert!(text.contains("out\n") && text.contains("err\n"));
}

#[test]
fn a_failure_names_command_status_stderr_tail_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("build.log");
    let mut log = Log::create(&log_path).unwrap();
    let err = run(
        &sh("for i in $(seq 1 30); do echo line$i >&2; done; echo quiet; exit 3"),
        &mut log,
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap_err();
    let RunError::Failed {
        stderr_tail,
        status,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(stderr_tail.len(), STDERR_TAIL_LINES);
    assert_eq!(stderr_tail.first().unwrap(), "line11");
    assert_eq!(stderr_tail.last().unwrap(), "line30");
    assert_eq!(status, "exit status: 3");
    let message = err.to_string();
    assert!(
        message.starts_with("`sh` failed (exit status: 3)\n  command: /bin/sh -c "),
        "{message}"
    );
    assert!(message.contains("\n    | line30\n"), "{message}");
    assert!(
        message.ends_with(&format!("full log: {}", log_path.display())),
        "{message}"
    );
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::create(&dir.path().join("build.log")).unwrap();
    let err = run(
        &CommandSpec::new("/nonexistent/builder"),
        &mut log,
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, RunError::Spawn { .. }), "{err:?}");
    let err = Run::new(&CommandSpec::new("/nonexistent/runtime"))
        .capture(None)
        .unwrap_err();
    assert!(matches!(err, RunError::Spawn { .. }), "{err:?}");
}

#[test]
fn cancellation_kills_the_whole_process_group_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::create(&dir.path().join("build.log")).unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    // The shell ignores SIGTERM, so only SIGKILL stops it; its grandchild must die too.
    let script = format!(
        "trap '' TERM; sleep 60 & echo $! > {}; echo started; wait",
        pidfile.display()
    );
    let cancel = CancelToken::new();
    let started = Instant::now();
    let canceller = cancel.clone();
    let mut cancelled_at = None;
    let err = run(&sh(&script), &mut log, &cancel, &mut |line| {
        if line == "started" {
            canceller.cancel();
            cancelled_at = Some(Instant::now());
        }
    })
    .unwrap_err();
    assert!(matches!(err, RunError::Cancelled { .. }), "{err:?}");
    let took = cancelled_at.unwrap().elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid = read_pid(&pidfile);
    assert!(gone(pid), "grandchild {pid} still running");
}

#[test]
fn an_already_cancelled_token_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let mut log = Log::create(&dir.path().join("build.log")).unwrap();
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = run(
        &sh(&format!("touch {}", marker.display())),
        &mut log,
        &cancel,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, RunError::Cancelled { .. }));
    assert!(!marker.exists());
}

#[test]
fn capture_keeps_output_exact_and_a_failed_exit_is_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tools.log");
    let output = Run::new(&sh("printf 'a\\r\\nb'; printf 'e' >&2; exit 4"))
        .capture(Some(&log))
        .unwrap();
    assert_eq!(output.stdout, b"a\r\nb");
    assert_eq!(output.stderr, b"e");
    assert_eq!(output.status.code(), Some(4));
    let text = fs_err::read_to_string(&log).unwrap();
    assert_eq!(
        text,
        concat!(
            r#"$ /bin/sh -c "printf 'a\\r\\nb'; printf 'e' >&2; exit 4""#,
            "\na\r\nb\ne\n# sh exited: exit status: 4\n"
        )
    );
}

#[test]
fn checked_returns_stdout_or_a_failure_naming_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tools.log");
    assert_eq!(Run::new(&sh("echo hi")).checked(None).unwrap(), "hi\n");
    let err = Run::new(&sh("echo nope >&2; exit 1"))
        .checked(Some(&log))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("`sh` failed (exit status: 1)\n  command: /bin/sh -c "),
        "{message}"
    );
    assert!(message.contains("\n    | nope\n"), "{message}");
    assert!(
        message.ends_with(&format!("full log: {}", log.display())),
        "{message}"
    );
}

#[test]
fn a_deadline_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let script = format!(
        "sleep 60 & echo $! > {}; echo started; wait",
        pidfile.display()
    );
    let started = Instant::now();
    let err = Run::new(&sh(&script))
        .deadline(Some(Instant::now() + Duration::from_millis(300)))
        .capture(None)
        .unwrap_err();
    let RunError::TimedOut { argv, after, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(argv.starts_with("/bin/sh -c "), "{argv}");
    assert!(*after >= Duration::from_millis(300), "{after:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid = read_pid(&pidfile);
    assert!(gone(pid), "grandchild {pid} still running");
}

#[test]
fn a_cancelled_capture_stops_the_command() {
    let cancel = CancelToken::new();
    let canceller = cancel.clone();
    let thread = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        canceller.cancel();
    });
    let started = Instant::now();
    let err = Run::new(&sh("sleep 60"))
        .cancel(&cancel)
        .capture(None)
        .unwrap_err();
    assert!(matches!(err, RunError::Cancelled { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    thread.join().unwrap();
}
