//! The docker-archives runtimes load: the image under test under a name of this run's own,
//! and the probe image that checks a runtime can start containers at all.
//!
//! Every runtime loads a docker-archive written here rather than the archive it was given:
//! `docker load`, `podman load` and `buildah pull` name an image after the names its archive
//! carries (`app:1.0`, an OCI `ref.name`), which would add or re-point a user's own tag.
//! The archive written here carries exactly one name, [`unique_name`], which no user owns.
//!
//! The probe image holds one static program, `/probe`, that exits 0: a handful of bytes of
//! machine code in an ELF header, for x86-64 and arm64 hosts.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use im_oci::{Algorithm, Digest, Platform};

use crate::runtime::RuntimeError;

/// A name for a loaded image that no user and no other load (of this or another process)
/// owns: `localhost/im-structure-test/<pid>-<n>:<nanoseconds>`.
pub fn unique_name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "localhost/im-structure-test/{}-{}:{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Collects the members of a docker-archive being written.
struct Writer<'a, W: Write> {
    builder: tar::Builder<W>,
    archive: &'a Path,
}

impl<W: Write> Writer<'_, W> {
    fn append(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<(), RuntimeError> {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        self.builder
            .append_data(&mut header, name, data)
            .map_err(|e| convert(self.archive, Box::new(e)))
    }

    /// Writes `config`, the layers (already added as `layer<i>/layer.tar`) and the manifest
    /// naming the image `name`.
    fn finish(mut self, config: &[u8], layers: usize, name: &str) -> Result<(), RuntimeError> {
        let config_name = format!("{}.json", Digest::of_bytes(Algorithm::Sha256, config).hex());
        self.append(&config_name, config.len() as u64, &mut &config[..])?;
        let layers: Vec<String> = (0..layers).map(|i| format!("layer{i}/layer.tar")).collect();
        let manifest = serde_json::to_vec(
            &serde_json::json!([{"Config": config_name, "RepoTags": [name], "Layers": layers}]),
        )
        .map_err(|e| convert(self.archive, Box::new(e)))?;
        self.append("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
        self.builder
            .finish()
            .map_err(|e| convert(self.archive, Box::new(e)))
    }
}

fn convert(archive: &Path, source: Box<dyn std::error::Error + Send + Sync>) -> RuntimeError {
    RuntimeError::Convert {
        archive: archive.to_owned(),
        source,
    }
}

fn temp_file(archive: &Path) -> Result<tempfile::NamedTempFile, RuntimeError> {
    tempfile::Builder::new()
        .prefix("im-structure-test-")
        .suffix(".tar")
        .tempfile()
        .map_err(|e| convert(archive, Box::new(e)))
}

/// Writes the image of `archive` (docker-archive, OCI archive or layout; `platform` picks
/// one) as a docker-archive naming it `name` only, layer blobs copied as stored.
pub fn docker_archive(
    archive: &Path,
    platform: Option<&Platform>,
    name: &str,
) -> Result<tempfile::NamedTempFile, RuntimeError> {
    let options = im_oci::OpenOptions {
        platform: platform.cloned(),
        ..im_oci::OpenOptions::default()
    };
    let image = im_oci::open_image(archive, &options).map_err(|e| convert(archive, Box::new(e)))?;
    let file = temp_file(archive)?;
    let mut writer = Writer {
        builder: tar::Builder::new(file.as_file()),
        archive,
    };
    for (i, layer) in image.layers().iter().enumerate() {
        let size = layer
            .size
            .ok_or_else(|| convert(archive, format!("layer {i} has no size").into()))?;
        let mut blob = image
            .open_layer_blob(i)
            .map_err(|e| convert(archive, Box::new(e)))?;
        writer.append(&format!("layer{i}/layer.tar"), size, &mut blob)?;
    }
    let config = serde_json::to_vec(image.config()).map_err(|e| convert(archive, Box::new(e)))?;
    writer.finish(&config, image.layers().len(), name)?;
    Ok(file)
}

/// A static ELF executable for `machine` (`e_machine`) whose whole text is `code`: one
/// read+execute segment loaded at 0x400000, entered right after the headers.
fn tiny_elf(machine: u16, code: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let total = HEADERS + code.len() as u64;
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or_default());
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\x00\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    out.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // program headers
    out.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    for half in [64u16, 56, 1, 0, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    out.extend_from_slice(&5u32.to_le_bytes()); // R + X
    for word in [0, BASE, BASE, total, total, 0x1000u64] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(code);
    out
}

/// The probe program for this host's architecture (`exit(0)`), with the platform it is for.
fn probe_program() -> Option<(Vec<u8>, &'static str)> {
    match std::env::consts::ARCH {
        // xor edi, edi; mov eax, 60 (exit); syscall
        "x86_64" => Some((
            tiny_elf(0x3e, &[0x31, 0xff, 0xb8, 0x3c, 0, 0, 0, 0x0f, 0x05]),
            "amd64",
        )),
        // mov x0, #0; mov x8, #93 (exit); svc #0
        "aarch64" => {
            let code: Vec<u8> = [0xd280_0000u32, 0xd280_0ba8, 0xd400_0001]
                .iter()
                .flat_map(|word| word.to_le_bytes())
                .collect();
            Some((tiny_elf(0xb7, &code), "arm64"))
        }
        _ => None,
    }
}

/// The probe image as a docker-archive named `name`: `/probe` exits 0. `None` on hosts
/// whose architecture has no probe program.
pub fn probe_archive(name: &str) -> Result<Option<tempfile::NamedTempFile>, RuntimeError> {
    let Some((program, architecture)) = probe_program() else {
        return Ok(None);
    };
    let label = Path::new("probe image");
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(program.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    layer
        .append_data(&mut header, "probe", &program[..])
        .map_err(|e| convert(label, Box::new(e)))?;
    let layer = layer
        .into_inner()
        .map_err(|e| convert(label, Box::new(e)))?;
    let diff_id = Digest::of_bytes(Algorithm::Sha256, &layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["/probe"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    }))
    .map_err(|e| convert(label, Box::new(e)))?;
    let file = temp_file(label)?;
    let mut writer = Writer {
        builder: tar::Builder::new(file.as_file()),
        archive: label,
    };
    writer.append("layer0/layer.tar", layer.len() as u64, &mut &layer[..])?;
    writer.finish(&config, 1, name)?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_program_runs_and_exits_0_on_this_host() {
        let Some((program, _)) = probe_program() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe");
        fs_err::write(&path, &program).unwrap();
        fs_err::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let status = std::process::Command::new(&path).status().unwrap();
        assert_eq!(status.code(), Some(0));
    }

    #[test]
    fn the_probe_archive_is_an_image_named_as_asked() {
        let Some(file) = probe_archive("localhost/im-structure-test/x:1").unwrap() else {
            return;
        };
        let image = im_oci::open_image(file.path(), &im_oci::OpenOptions::default()).unwrap();
        let view = image.filesystem().unwrap();
        assert_eq!(view.lstat("/probe").unwrap().mode & 0o777, 0o755);
        let manifest: serde_json::Value = serde_json::from_slice(
            &tar::Archive::new(fs_err::File::open(file.path()).unwrap())
                .entries()
                .unwrap()
                .map(Result::unwrap)
                .find(|e| e.path().unwrap().to_str() == Some("manifest.json"))
                .map(|mut e| {
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes).unwrap();
                    bytes
                })
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            manifest[0]["RepoTags"],
            serde_json::json!(["localhost/im-structure-test/x:1"])
        );
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name(), unique_name());
    }
}
