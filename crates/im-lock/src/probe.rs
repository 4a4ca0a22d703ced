//! Reading package versions inside a base image: one shell script run in one container per
//! base and platform asks the image's own package manager (`apt-cache policy`, `apk policy`,
//! `dnf repoquery`) for the version an install would take — from the image's own sources and
//! mirrors, with no distribution web API — and prints one line per package.

use std::collections::BTreeMap;

/// The script, run as `sh -c SCRIPT sh PACKAGE...`. Exit 3: the package index could not
/// be updated (its output says why).
pub const SCRIPT: &str = r#"set -u
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "im-lock codename ${VERSION_CODENAME:-}"
if command -v apt-get >/dev/null 2>&1; then
  echo "im-lock manager apt"
  apt-get update -qq >&2 || exit 3
  for p in "$@"; do
    v=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | head -n 1)
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then echo "im-lock missing $p"; else echo "im-lock version $p $v"; fi
  done
elif command -v apk >/dev/null 2>&1; then
  echo "im-lock manager apk"
  apk update -q >&2 || exit 3
  for p in "$@"; do
    v=$(apk policy "$p" 2>/dev/null | sed -n '2s/^ *\(.*\):$/\1/p')
    if [ -z "$v" ]; then echo "im-lock missing $p"; else echo "im-lock version $p $v"; fi
  done
elif command -v dnf >/dev/null 2>&1 || command -v yum >/dev/null 2>&1; then
  echo "im-lock manager dnf"
  q=dnf; command -v dnf >/dev/null 2>&1 || q=yum
  for p in "$@"; do
    v=$($q repoquery -q --latest-limit 1 --qf '%{epoch}:%{version}-%{release}\n' "$p" 2>/dev/null | tail -n 1)
    v=${v#0:}
    if [ -z "$v" ]; then echo "im-lock missing $p"; else echo "im-lock version $p $v"; fi
  done
else
  echo "im-lock manager none"
fi
"#;

/// What the script found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probed {
    pub codename: Option<String>,
    /// `apt`, `apk`, `dnf`, or `none` (no package manager in the image).
    pub manager: Option<String>,
    pub versions: BTreeMap<String, String>,
    /// Packages the image's sources do not have.
    pub missing: Vec<String>,
}

/// Reads the script's standard output (other lines are ignored).
pub fn parse(stdout: &str) -> Probed {
    let mut probed = Probed::default();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("im-lock ") else {
            continue;
        };
        let mut parts = rest.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("codename"), Some(name), _) if !name.is_empty() => {
                probed.codename = Some(name.to_owned());
            }
            (Some("manager"), Some(name), _) => probed.manager = Some(name.to_owned()),
            (Some("version"), Some(package), Some(version)) => {
                probed
                    .versions
                    .insert(package.to_owned(), version.trim().to_owned());
            }
            (Some("missing"), Some(package), _) => probed.missing.push(package.to_owned()),
            _ => {}
        }
    }
    probed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_missing_and_codename() {
        let probed = parse(
            "im-lock codename bookworm\nim-lock manager apt\nnoise\nim-lock version curl 7.88.1-10+deb12u15\nim-lock missing nope\n",
        );
        assert_eq!(probed.codename.as_deref(), Some("bookworm"));
        assert_eq!(probed.manager.as_deref(), Some("apt"));
        assert_eq!(probed.versions["curl"], "7.88.1-10+deb12u15");
        assert_eq!(probed.missing, ["nope"]);
        assert_eq!(parse("im-lock codename \n").codename, None);
    }

    /// The script under a real shell, with stand-in package managers on `PATH` that print
    /// what the real ones print.
    #[test]
    fn the_script_reads_apt_and_apk_output() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        let write = |name: &str, body: &str| {
            let path = bin.join(name);
            fs_err::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
            let mut permissions = fs_err::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            fs_err::set_permissions(&path, permissions).unwrap();
        };
        write("apt-get", "exit 0\n");
        write(
            "apt-cache",
            "case \"$2\" in curl) printf 'curl:\\n  Installed: (none)\\n  Candidate: 7.88.1-10+deb12u15\\n  Version table:\\n';; *) printf '%s:\\n  Installed: (none)\\n  Candidate: (none)\\n' \"$2\";; esac\n",
        );
        // Only the stand-ins and the few tools the script uses: the host's own package
        // manager must not answer.
        for tool in ["sed", "head", "tail"] {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|dir| std::path::Path::new(dir).join(tool))
                .find(|path| path.exists())
                .unwrap();
            std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
        }
        let path = bin.display().to_string();
        let run = || {
            std::process::Command::new("/bin/sh")
                .args(["-c", SCRIPT, "sh", "curl", "nope"])
                .env("PATH", &path)
                .output()
                .unwrap()
        };
        let output = run();
        assert!(output.status.success(), "{output:?}");
        let probed = parse(&String::from_utf8_lossy(&output.stdout));
        assert_eq!(probed.manager.as_deref(), Some("apt"));
        assert_eq!(probed.versions["curl"], "7.88.1-10+deb12u15");
        assert_eq!(probed.missing, ["nope"]);

        fs_err::remove_file(bin.join("apt-get")).unwrap();
        write(
            "apk",
            "case \"$1\" in update) exit 0;; policy) case \"$2\" in curl) printf 'curl policy:\\n  8.11.1-r0:\\n    lib/apk/db/installed\\n';; esac;; esac\n",
        );
        let probed = parse(&String::from_utf8_lossy(&run().stdout));
        assert_eq!(probed.manager.as_deref(), Some("apk"));
        assert_eq!(probed.versions["curl"], "8.11.1-r0");
        assert_eq!(probed.missing, ["nope"]);
    }
}
