//! Running syft on one platform archive and checking what it printed.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use im_process::{CancelToken, CommandSpec, Run};
use serde_json::Value;

use crate::{SbomError, SbomFormat};

/// syft, as the caller found it.
#[derive(Clone, Debug)]
pub struct Syft {
    /// The program (`/usr/local/bin/syft`).
    pub program: PathBuf,
    /// Where each run's command and output are appended, if anywhere.
    pub log: Option<PathBuf>,
    /// How long one scan may take before it is killed.
    pub timeout: Duration,
}

/// One SBOM syft made.
#[derive(Clone, Debug)]
pub struct Scan {
    /// The SBOM as syft printed it.
    pub bytes: Vec<u8>,
    /// How many packages it lists (not counting the image or the OS itself).
    pub packages: usize,
}

impl Syft {
    pub fn new(program: PathBuf) -> Self {
        Self {
            program,
            log: None,
            timeout: Duration::from_secs(30 * 60),
        }
    }

    /// The command that scans `archive` (an OCI archive) into `format`, naming the image
    /// `name` at `version` in the SBOM (instead of the archive's path).
    pub fn command(
        &self,
        archive: &Path,
        format: SbomFormat,
        name: &str,
        version: &str,
    ) -> CommandSpec {
        let mut source = OsString::from("oci-archive:");
        source.push(archive.as_os_str());
        CommandSpec::new(&self.program)
            .arg("scan")
            .arg(source)
            .flag("--output", format.name())
            .flag("--source-name", name)
            .flag("--source-version", version)
            .arg("--quiet")
            // No network: syft would otherwise ask its release server for a newer version.
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
    }

    /// Scans `archive`; the SBOM it printed, checked and counted.
    pub fn scan(
        &self,
        archive: &Path,
        format: SbomFormat,
        (name, version): (&str, &str),
        cancel: &CancelToken,
    ) -> Result<Scan, SbomError> {
        let spec = self.command(archive, format, name, version);
        let stdout = Run::new(&spec)
            .cancel(cancel)
            .deadline(Some(Instant::now() + self.timeout))
            .checked(self.log.as_deref())?;
        let invalid = |reason: String| SbomError::InvalidOutput {
            archive: archive.to_owned(),
            format,
            reason,
        };
        let value: Value = serde_json::from_str(&stdout).map_err(|e| {
            let start: String = stdout.chars().take(80).collect();
            invalid(format!("it is not JSON ({e}); it starts with {start:?}"))
        })?;
        let packages = count_packages(format, &value).map_err(invalid)?;
        Ok(Scan {
            bytes: stdout.into_bytes(),
            packages,
        })
    }
}

/// The packages an SBOM of `format` lists: CycloneDX components other than the operating
/// system and files, SPDX packages other than the document's root (the image), syft's
/// artifacts. An SBOM that is not of `format` is an error saying what is wrong.
pub fn count_packages(format: SbomFormat, sbom: &Value) -> Result<usize, String> {
    Ok(package_entries(format, sbom)?.len())
}

/// A package an SBOM lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// CycloneDX's `type`, syft's `type`, SPDX's `primaryPackagePurpose` (when present).
    pub kind: String,
}

/// The packages [`count_packages`] counts, with their names, versions and kinds.
pub fn list_packages(format: SbomFormat, sbom: &Value) -> Result<Vec<Package>, String> {
    let text = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (version, kind) = match format {
        SbomFormat::CycloneDxJson | SbomFormat::SyftJson => ("version", "type"),
        SbomFormat::SpdxJson => ("versionInfo", "primaryPackagePurpose"),
    };
    Ok(package_entries(format, sbom)?
        .into_iter()
        .map(|entry| Package {
            name: text(entry, "name"),
            version: text(entry, version),
            kind: text(entry, kind),
        })
        .collect())
}

/// The entries of an SBOM that are packages (see [`count_packages`]).
fn package_entries(format: SbomFormat, sbom: &Value) -> Result<Vec<&Value>, String> {
    let list = |key: &str| -> Result<Vec<&Value>, String> {
        match sbom.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.iter().collect()),
            Some(_) => Err(format!("`{key}` is not a list")),
        }
    };
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    match format {
        SbomFormat::CycloneDxJson => {
            if text(sbom, "bomFormat").as_deref() != Some("CycloneDX") {
                return Err("it has no `bomFormat: CycloneDX`".to_owned());
            }
            Ok(list("components")?
                .into_iter()
                .filter(|c| {
                    !matches!(
                        text(c, "type").as_deref(),
                        Some("operating-system" | "file")
                    )
                })
                .collect())
        }
        SbomFormat::SpdxJson => {
            if !text(sbom, "spdxVersion").is_some_and(|v| v.starts_with("SPDX-")) {
                return Err("it has no `spdxVersion`".to_owned());
            }
            Ok(list("packages")?
                .into_iter()
                .filter(|p| {
                    !text(p, "SPDXID").is_some_and(|id| id.starts_with("SPDXRef-DocumentRoot"))
                })
                .collect())
        }
        SbomFormat::SyftJson => {
            if sbom.get("artifacts").is_none() || sbom.get("schema").is_none() {
                return Err("it has no `artifacts` and `schema`".to_owned());
            }
            list("artifacts")
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder renamed into place:
/// a reader sees the old file or the new one, never part of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SbomError> {
    let error = |source| SbomError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".sbom-")
        .tempfile_in(dir)
        .map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.as_file().sync_all().map_err(error)?;
    file.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packages_are_counted_per_format_without_the_image_and_the_os() {
        let cdx = json!({"bomFormat": "CycloneDX", "components": [
            {"type": "application", "name": "busybox"},
            {"type": "library", "name": "libc6"},
            {"type": "operating-system", "name": "debian"},
            {"type": "file", "name": "/etc/passwd"}
        ]});
        assert_eq!(count_packages(SbomFormat::CycloneDxJson, &cdx), Ok(2));
        let spdx = json!({"spdxVersion": "SPDX-2.3", "packages": [
            {"SPDXID": "SPDXRef-Package-deb-libc6-1", "name": "libc6"},
            {"SPDXID": "SPDXRef-DocumentRoot-Image-app", "name": "app"}
        ]});
        assert_eq!(count_packages(SbomFormat::SpdxJson, &spdx), Ok(1));
        let syft =
            json!({"artifacts": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "schema": {}});
        assert_eq!(count_packages(SbomFormat::SyftJson, &syft), Ok(3));
        // An empty image has no components at all.
        assert_eq!(
            count_packages(
                SbomFormat::CycloneDxJson,
                &json!({"bomFormat": "CycloneDX"})
            ),
            Ok(0)
        );
    }

    #[test]
    fn packages_are_listed_with_name_version_and_kind() {
        let cdx = json!({"bomFormat": "CycloneDX", "components": [
            {"type": "library", "name": "libc6", "version": "2.36"},
            {"type": "operating-system", "name": "debian"}
        ]});
        let spdx = json!({"spdxVersion": "SPDX-2.3", "packages": [
            {"SPDXID": "SPDXRef-Package-deb-libc6-1", "name": "libc6", "versionInfo": "2.36"},
            {"SPDXID": "SPDXRef-DocumentRoot-Image-app", "name": "app"}
        ]});
        let libc = |kind: &str| Package {
            name: "libc6".into(),
            version: "2.36".into(),
            kind: kind.into(),
        };
        assert_eq!(
            list_packages(SbomFormat::CycloneDxJson, &cdx),
            Ok(vec![libc("library")])
        );
        assert_eq!(
            list_packages(SbomFormat::SpdxJson, &spdx),
            Ok(vec![libc("")])
        );
    }

    #[test]
    fn an_sbom_of_another_format_is_refused() {
        let spdx = json!({"spdxVersion": "SPDX-2.3", "packages": []});
        assert!(count_packages(SbomFormat::CycloneDxJson, &spdx).is_err());
        assert!(count_packages(SbomFormat::SyftJson, &spdx).is_err());
        let cdx = json!({"bomFormat": "CycloneDX", "components": {}});
        assert_eq!(
            count_packages(SbomFormat::CycloneDxJson, &cdx),
            Err("`components` is not a list".to_owned())
        );
    }

    #[test]
    fn the_command_scans_the_oci_archive_without_asking_for_updates() {
        let syft = Syft::new("/opt/syft".into());
        let spec = syft.command(
            Path::new("/p/dist/app/1.0/linux-amd64/image.tar"),
            SbomFormat::SpdxJson,
            "registry.example.com/app",
            "1.0",
        );
        assert_eq!(
            spec.display(),
            "SYFT_CHECK_FOR_APP_UPDATE=false /opt/syft scan oci-archive:/p/dist/app/1.0/linux-amd64/image.tar --output spdx-json --source-name registry.example.com/app --source-version 1.0 --quiet"
        );
    }

    #[test]
    fn an_atomic_write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sbom.cdx.json");
        write_atomically(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"new");
        assert_eq!(
            fs_err::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
