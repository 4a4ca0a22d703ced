//! End-to-end test of `start garage`: on a fresh project folder it makes a working S3
//! endpoint (a real S3 client, Python's boto3, writes and reads an object with the
//! credentials it wrote, mode 0600), `status` reports it, `stop` stops it, and a second
//! `start` reuses the data and the credentials.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{Run, json, succeeded};

/// Four free loopback ports in a row (S3, RPC, -, admin), as `127.0.0.1:PORT` of the first.
fn free_addr() -> String {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if first > 65000 {
            continue;
        }
        let free = (0..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", first + i)).is_ok());
        if free {
            return format!("127.0.0.1:{first}");
        }
    }
    panic!("no four free ports in a row");
}

fn run(root: &Path, addr: &str, args: &[&str]) -> Run {
    let output = common::command(root)
        .args(args)
        .env("IMAGE_MANAGER_GARAGE_ADDR", addr)
        .output()
        .unwrap();
    succeeded(Run::of(&output), args)
}

/// Puts (`put`) or reads back (`get`) an object with boto3 through the credentials file.
fn s3(credentials: &Path, action: &str, body: &str) -> String {
    let python = std::env::var("IM_TEST_JINJA2_PYTHON")
        .expect("IM_TEST_JINJA2_PYTHON: source the env file scripts/setup writes");
    let script = r#"
import json, sys, boto3
from botocore.config import Config
c = json.load(open(sys.argv[1]))
s3 = boto3.client("s3", endpoint_url=c["endpoint"], region_name=c["region"],
    aws_access_key_id=c["access_key_id"], aws_secret_access_key=c["secret_access_key"],
    config=Config(s3={"addressing_style": "path"}))
if sys.argv[2] == "put":
    s3.put_object(Bucket=c["bucket"], Key="probe.txt", Body=sys.argv[3].encode())
print(s3.get_object(Bucket=c["bucket"], Key="probe.txt")["Body"].read().decode(), end="")
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(credentials)
        .args([action, body])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "boto3 {action}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Stops the Garage a test started, whatever happened.
struct Stop<'a>(&'a Path, &'a str);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = common::command(self.0)
            .args(["stop", "garage"])
            .env("IMAGE_MANAGER_GARAGE_ADDR", self.1)
            .output();
    }
}

#[test]
fn start_garage_makes_a_working_s3_endpoint_that_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let addr = free_addr();
    let _stop = Stop(root, &addr);

    let started = run(root, &addr, &["start", "garage", "--format", "json"]);
    let status = json(&started.stdout);
    assert_eq!(status[0]["service"], "garage");
    assert_eq!(status[0]["running"], true, "{}", started.stdout);
    let credentials = root.join(".image-manager/garage/credentials.json");
    let mode = fs_err::metadata(&credentials).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the credentials are the owner's only");
    let first = json(&fs_err::read_to_string(&credentials).unwrap());
    assert_eq!(first["bucket"], "buildkit-cache");
    assert_eq!(first["endpoint"], format!("http://{addr}"));
    let secret = first["secret_access_key"].as_str().unwrap().to_owned();
    assert!(
        !started.stdout.contains(&secret) && !started.stderr.contains(&secret),
        "the secret key is never printed"
    );

    assert_eq!(s3(&credentials, "put", "cached layer"), "cached layer");

    let status = json(&run(root, &addr, &["status", "garage", "--format", "json"]).stdout);
    assert_eq!(status[0]["running"], true);
    assert_eq!(status[0]["managed"], true);

    run(root, &addr, &["stop", "garage"]);
    let status = json(&run(root, &addr, &["status", "garage", "--format", "json"]).stdout);
    assert_eq!(status[0]["running"], false, "stop stopped it");

    run(root, &addr, &["start", "garage"]);
    let second = json(&fs_err::read_to_string(&credentials).unwrap());
    assert_eq!(
        second["access_key_id"], first["access_key_id"],
        "a restart keeps the key"
    );
    assert_eq!(
        s3(&credentials, "get", ""),
        "cached layer",
        "a restart keeps the data"
    );
}

#[test]
fn a_port_in_use_and_a_folder_of_another_user_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let output = common::command(root)
        .args(["start", "garage"])
        .env("IMAGE_MANAGER_GARAGE_ADDR", &addr)
        .output()
        .unwrap();
    let failed = Run::of(&output);
    assert_ne!(failed.status, 0);
    assert!(
        failed.stderr.contains(&format!(
            "something that is not a garage already listens on {addr}"
        )),
        "{}",
        failed.stderr
    );
    drop(listener);

    let other = tempfile::tempdir().unwrap();
    let state = other.path().join(".image-manager/garage");
    fs_err::create_dir_all(state.join("data")).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let output = common::command(other.path())
        .args(["start", "garage"])
        .env("IMAGE_MANAGER_GARAGE_ADDR", free_addr())
        .output()
        .unwrap();
    let failed = Run::of(&output);
    assert_ne!(failed.status, 0);
    assert!(
        failed.stderr.contains("belongs to user 65534"),
        "{}",
        failed.stderr
    );
}
