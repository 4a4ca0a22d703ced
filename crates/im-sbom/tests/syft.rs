//! The real syft (installed by `scripts/setup`) on a real busybox OCI archive, and a syft
//! that crashes or prints garbage (a script standing in for it: fault injection).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use im_process::CancelToken;
use im_sbom::{SbomError, SbomFormat, Syft, image_digest};
use im_testkit::{Platform, busybox_base_image, syft_bin};

#[test]
fn real_syft_lists_busybox_in_every_format() {
    let image = busybox_base_image(Platform::LinuxAmd64);
    let syft = Syft::new(syft_bin());
    for format in SbomFormat::ALL {
        let scan = syft
            .scan(
                image.oci_archive(),
                format,
                ("registry.example.com/base", "1.0"),
                &CancelToken::new(),
            )
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        // syft recognises the busybox binary (and the gzip applet it carries).
        assert!(scan.packages >= 1, "{format}: {} packages", scan.packages);
        let text = String::from_utf8(scan.bytes).unwrap();
        assert!(text.contains("busybox"), "{format}");
        assert!(
            text.contains("registry.example.com/base"),
            "{format}: the SBOM names the image, not the archive's path"
        );
    }
    assert_eq!(
        image_digest(image.oci_archive()).unwrap(),
        image.manifest_digest()
    );
}

/// What `syft` does with a cyclonedx-json scan of some archive.
fn scan_with(syft: &Syft) -> Result<im_sbom::Scan, SbomError> {
    syft.scan(
        Path::new("/x/image.tar"),
        SbomFormat::CycloneDxJson,
        ("app", "1"),
        &CancelToken::new(),
    )
}

/// A stand-in for syft: a shell script.
fn fake_syft(dir: &Path, script: &str) -> PathBuf {
    let path = dir.join("syft");
    fs_err::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_crashing_syft_is_an_error_with_its_argv_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let syft = Syft::new(fake_syft(
        dir.path(),
        "echo 'panic: runtime error' >&2; exit 2",
    ));
    let error = scan_with(&syft).unwrap_err();
    let text = im_diag::error_chain(&error);
    assert!(matches!(error, SbomError::Run(_)), "{text}");
    assert!(text.contains("oci-archive:/x/image.tar"), "{text}");
    assert!(text.contains("panic: runtime error"), "{text}");
}

#[test]
fn output_that_is_not_the_sbom_asked_for_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = Syft::new(fake_syft(dir.path(), "echo 'not json'"));
    let error = scan_with(&garbage).unwrap_err();
    assert!(
        error.to_string().contains("no valid cyclonedx-json SBOM"),
        "{error}"
    );
    let other = tempfile::tempdir().unwrap();
    let spdx = Syft::new(fake_syft(
        other.path(),
        r#"echo '{"spdxVersion":"SPDX-2.3","packages":[]}'"#,
    ));
    let error = scan_with(&spdx).unwrap_err();
    assert!(error.to_string().contains("bomFormat"), "{error}");
}
