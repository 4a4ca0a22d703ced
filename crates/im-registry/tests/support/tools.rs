//! Running skopeo, the independent client the end-to-end tests check against.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

const SKOPEO: &str = "/usr/bin/skopeo";

/// Runs skopeo with `args`, panicking with its stderr when it fails.
pub fn skopeo(args: &[&str]) -> String {
    assert!(
        Path::new(SKOPEO).exists(),
        "{SKOPEO} is missing: scripts/setup should have installed skopeo"
    );
    let output = Command::new(SKOPEO)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {SKOPEO}: {e}"));
    assert!(
        output.status.success(),
        "skopeo {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `skopeo inspect` of a reference in a plain-HTTP registry, as JSON.
pub fn skopeo_inspect(reference: &str, authfile: Option<&Path>) -> serde_json::Value {
    let target = format!("docker://{reference}");
    let mut args = vec!["inspect", "--tls-verify=false"];
    let authfile = authfile.map(|p| p.to_string_lossy().into_owned());
    if let Some(file) = &authfile {
        args.extend(["--authfile", file.as_str()]);
    }
    args.push(&target);
    serde_json::from_str(&skopeo(&args)).unwrap()
}

/// `skopeo inspect --raw`: the manifest bytes as stored.
pub fn skopeo_raw(reference: &str, authfile: Option<&Path>) -> Vec<u8> {
    let target = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    let authfile = authfile.map(|p| p.to_string_lossy().into_owned());
    if let Some(file) = &authfile {
        args.extend(["--authfile", file.as_str()]);
    }
    args.push(&target);
    skopeo(&args).into_bytes()
}

/// Writes a containers auth file for `host` (so passwords never go in skopeo's argv).
pub fn authfile(dir: &Path, host: &str, user: &str, password: &str) -> std::path::PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("auth.json");
    fs_err::write(
        &path,
        serde_json::to_vec(&serde_json::json!({"auths": {host: {"auth": auth}}})).unwrap(),
    )
    .unwrap();
    path
}
