//! Hostile and damaged images: limits, integrity checks, and archive-level tricks.
//!
//! Each test builds a real archive by hand, damages or inflates one thing, and checks that
//! reading it fails with the error naming that thing (never a pass on a partial filesystem).

mod common;

use common::{Comp, Layer, TestImage, compress, docker_members, oci_members, outer_tar, sha256};
use im_oci::{FileKind, LayerError, Limits, OciError, OpenOptions, Platform, open_image};

/// Opens and flattens `bytes`, written under the target's temp dir (files are read from the
/// archive after this returns, so it must outlive the call).
fn open(bytes: &[u8], options: &OpenOptions) -> Result<(im_oci::Image, im_oci::FsView), OciError> {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile-{}-{n}.tar", std::process::id()));
    fs_err::write(&path, bytes).unwrap();
    let untrusted = open_image(&path, options).and_then(|image| {
        let view = image.filesystem()?;
        Ok((image, view))
    });
    same_when_trusted(&path, options, &untrusted);
    untrusted
}

/// Every case read again with all its layers trusted (not hashed; plain layers indexed by
/// seeking, see `im_oci::trust`): the outcome must be the same, but where trust skips
/// exactly what it is meant to skip (the digest check).
fn same_when_trusted(
    path: &std::path::Path,
    options: &OpenOptions,
    untrusted: &Result<(im_oci::Image, im_oci::FsView), OciError>,
) {
    let trusted = open_image(path, options).and_then(|image| {
        let all = image
            .layers()
            .iter()
            .flat_map(|l| l.digest.iter().chain(l.diff_id.iter()))
            .cloned()
            .collect();
        let image = image.with_trusted_digests(all);
        let view = image.filesystem()?;
        Ok((image, view))
    });
    let kind = |e: &OciError| match e {
        OciError::Layer { source, .. } => format!("layer: {:?}", std::mem::discriminant(&**source)),
        other => format!("{:?}", std::mem::discriminant(other)),
    };
    match (untrusted, &trusted) {
        (Ok((_, a)), Ok((_, b))) => assert_eq!(a.walk_all(), b.walk_all()),
        (Err(OciError::DigestMismatch { .. }), _) => {}
        (Err(a), Err(b)) => assert_eq!(kind(a), kind(b), "untrusted: {a}\ntrusted: {b}"),
        (Err(a), Ok(_)) => panic!("trusted layers accepted what is rejected otherwise: {a}"),
        (Ok(_), Err(b)) => panic!("trusted layers rejected what is accepted otherwise: {b}"),
    }
}

fn oci(layers: Vec<Vec<u8>>, comp: Comp) -> Vec<u8> {
    let mut image = TestImage::new(layers);
    image.comp = comp;
    outer_tar(&oci_members(&[image]).0, &[])
}

fn layer_error(result: Result<(im_oci::Image, im_oci::FsView), OciError>) -> LayerError {
    match result {
        Err(OciError::Layer { source, .. }) => *source,
        Err(other) => panic!("expected a layer error, got: {other}"),
        Ok(_) => panic!("expected a layer error, got a filesystem"),
    }
}

fn small_layer() -> Layer {
    Layer::new()
        .dir("etc", 0o755)
        .file("etc/os-release", b"ID=test\n", 0o644)
        .symlink("etc/os-release", "os")
}

#[test]
fn gzip_zstd_and_plain_layers_read_the_same() {
    for comp in [Comp::None, Comp::Gzip, Comp::Zstd] {
        let (image, view) = open(
            &oci(vec![small_layer().finish()], comp),
            &OpenOptions::default(),
        )
        .unwrap();
        assert_eq!(
            image.read_file(&view, "/os").unwrap(),
            b"ID=test\n",
            "{comp:?}"
        );
    }
}

#[test]
fn docker_archive_reads_files_in_place() {
    let lower = small_layer();
    let upper = Layer::new().file("etc/extra", b"upper", 0o600);
    let bytes = outer_tar(
        &docker_members(&[lower.finish(), upper.finish()], "amd64"),
        &[],
    );
    let (image, view) = open(&bytes, &OpenOptions::default()).unwrap();
    let files = image.read_files(&view, &["/etc/extra", "/os", "/missing", "/etc"]);
    assert_eq!(files[0].as_ref().unwrap(), b"upper");
    assert_eq!(files[1].as_ref().unwrap(), b"ID=test\n");
    assert!(files[2].is_err());
    assert!(files[3].is_err(), "a directory has no content");
    assert_eq!(
        image
            .config()
            .config()
            .as_ref()
            .unwrap()
            .env()
            .as_ref()
            .unwrap(),
        &["PATH=/bin".to_owned()]
    );
}

#[test]
fn gzip_bomb_stops_at_the_byte_limit() {
    let zeros = vec![0u8; 64 << 20];
    let bomb = Layer::new().file("zeros", &zeros, 0o644).finish();
    let bytes = oci(vec![bomb], Comp::Gzip);
    assert!(bytes.len() < 1 << 20, "the bomb is small compressed");
    let options = OpenOptions {
        limits: Limits {
            max_layer_bytes: 8 << 20,
            ..Limits::default()
        },
        ..OpenOptions::default()
    };
    assert!(
        matches!(layer_error(open(&bytes, &options)), LayerError::TooManyBytes { limit } if limit == 8 << 20)
    );
}

#[test]
fn entry_count_and_path_depth_are_limited() {
    let mut many = Layer::new();
    for i in 0..300 {
        many = many.file(&format!("f{i}"), b"", 0o644);
    }
    let options = OpenOptions {
        limits: Limits {
            max_entries: 100,
            ..Limits::default()
        },
        ..OpenOptions::default()
    };
    assert!(matches!(
        layer_error(open(&oci(vec![many.finish()], Comp::Gzip), &options)),
        LayerError::TooManyEntries { limit: 100 }
    ));

    let deep_name = "d/".repeat(300) + "leaf";
    let deep = Layer::new()
        .pax(&[("path", deep_name.as_bytes())])
        .file("placeholder", b"", 0o644);
    assert!(matches!(
        layer_error(open(
            &oci(vec![deep.finish()], Comp::Gzip),
            &OpenOptions::default()
        )),
        LayerError::PathTooDeep { depth: 301, .. }
    ));
}

#[test]
fn pax_size_wins_over_the_ustar_size() {
    // The ustar header says 0 bytes; the PAX record says 5. Go (and so Docker) reads 5 bytes
    // of data; a reader that trusts the ustar size would parse "hello" as the next header.
    let mut layer = Layer::new().pax(&[("size", b"5")]);
    layer = layer.raw(
        &common::header(b"file", common::FILE, 0, 0o644, b""),
        b"hello",
    );
    let layer = layer.file("after", b"next", 0o644);
    let (image, view) = open(
        &oci(vec![layer.finish()], Comp::Gzip),
        &OpenOptions::default(),
    )
    .unwrap();
    assert_eq!(image.read_file(&view, "/file").unwrap(), b"hello");
    assert_eq!(image.read_file(&view, "/after").unwrap(), b"next");
}

#[test]
fn huge_pax_records_are_refused_before_they_are_read() {
    let mut header = common::header(b"PaxHeader", b'x', 0, 0o644, b"");
    let mut h = tar::Header::from_byte_slice(&header).clone();
    h.set_size(1 << 40);
    h.set_cksum();
    header.copy_from_slice(h.as_bytes());
    let layer = Layer::new().raw(&header, b"");
    assert!(matches!(
        layer_error(open(&oci(vec![layer.finish()], Comp::Gzip), &OpenOptions::default())),
        LayerError::ExtensionTooLarge { size, .. } if size == 1 << 40
    ));
    let record = vec![b'a'; 2 << 20];
    let big = Layer::new()
        .pax(&[("comment", &record)])
        .file("x", b"", 0o644);
    assert!(matches!(
        layer_error(open(
            &oci(vec![big.finish()], Comp::Gzip),
            &OpenOptions::default()
        )),
        LayerError::ExtensionTooLarge { .. }
    ));
}

#[test]
fn malformed_pax_records_are_errors() {
    let layer = Layer::new().pax(&[("size", b"-5")]).file("x", b"", 0o644);
    assert!(matches!(
        layer_error(open(
            &oci(vec![layer.finish()], Comp::Gzip),
            &OpenOptions::default()
        )),
        LayerError::BadPax { .. }
    ));
}

#[test]
fn truncated_tar_and_truncated_gzip_are_errors() {
    let tar = small_layer().finish();
    let cut_tar = tar[..tar.len() - 1024 - 100].to_vec();
    assert!(matches!(
        layer_error(open(
            &oci(vec![cut_tar], Comp::Gzip),
            &OpenOptions::default()
        )),
        LayerError::Truncated { .. }
    ));
    let no_marker = small_layer().unfinished();
    assert!(matches!(
        layer_error(open(
            &oci(vec![no_marker], Comp::None),
            &OpenOptions::default()
        )),
        LayerError::Truncated { .. }
    ));

    // A gzip stream cut in half: the layer blob is consistent with its descriptor, but the
    // stream itself is incomplete.
    let gz = compress(&tar, Comp::Gzip);
    let half = gz[..gz.len() / 2].to_vec();
    let bytes = outer_tar(
        &raw_blob_layout(&half, &tar, "application/vnd.oci.image.layer.v1.tar+gzip"),
        &[],
    );
    assert!(matches!(
        layer_error(open(&bytes, &OpenOptions::default())),
        LayerError::Read { .. } | LayerError::Truncated { .. }
    ));
}

#[test]
fn trailing_garbage_after_tar_or_gzip_is_an_error() {
    let mut tar = small_layer().finish();
    tar.extend_from_slice(b"garbage!");
    assert!(matches!(
        layer_error(open(&oci(vec![tar], Comp::Gzip), &OpenOptions::default())),
        LayerError::TrailingGarbage { .. }
    ));

    let tar = small_layer().finish();
    let mut gz = compress(&tar, Comp::Gzip);
    gz.extend_from_slice(b"not another gzip member");
    let bytes = outer_tar(
        &raw_blob_layout(&gz, &tar, "application/vnd.oci.image.layer.v1.tar+gzip"),
        &[],
    );
    assert!(matches!(
        layer_error(open(&bytes, &OpenOptions::default())),
        LayerError::Read { .. }
    ));
}

/// A layout whose single layer is `blob` as stored (any bytes), described honestly.
fn raw_blob_layout(blob: &[u8], uncompressed: &[u8], media_type: &str) -> common::Members {
    let (mut members, _) = oci_members(&[TestImage::new(vec![uncompressed.to_vec()])]);
    let original = compress(uncompressed, Comp::Gzip);
    let old = sha256(&original);
    let new = sha256(blob);
    replace_blob(&mut members, &old, blob, &new, Some(media_type));
    members
}

/// Replaces blob `old` by `bytes` under digest `new`, rewriting the manifest and index.
fn replace_blob(
    members: &mut common::Members,
    old: &im_oci::Digest,
    bytes: &[u8],
    new: &im_oci::Digest,
    media_type: Option<&str>,
) {
    let old_member = format!("blobs/sha256/{}", old.hex());
    let position = members.iter().position(|(n, _)| *n == old_member).unwrap();
    let old_len = members[position].1.len();
    members[position] = (format!("blobs/sha256/{}", new.hex()), bytes.to_vec());
    rewrite_manifest(members, |manifest| {
        for layer in manifest["layers"].as_array_mut().unwrap() {
            if layer["digest"] == old.to_string() {
                layer["digest"] = new.to_string().into();
                if layer["size"] == old_len {
                    layer["size"] = bytes.len().into();
                }
                if let Some(media_type) = media_type {
                    layer["mediaType"] = media_type.into();
                }
            }
        }
    });
}

fn rewrite_manifest(members: &mut common::Members, edit: impl Fn(&mut serde_json::Value)) {
    let index: serde_json::Value = serde_json::from_slice(&members[1].1).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let member = format!("blobs/sha256/{}", &digest[7..]);
    let position = members.iter().position(|(n, _)| *n == member).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&members[position].1).unwrap();
    edit(&mut manifest);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let new = sha256(&bytes);
    members[position] = (format!("blobs/sha256/{}", new.hex()), bytes.clone());
    let mut index = index;
    index["manifests"][0]["digest"] = new.to_string().into();
    index["manifests"][0]["size"] = bytes.len().into();
    members[1].1 = serde_json::to_vec(&index).unwrap();
}

#[test]
fn layer_digest_size_and_diff_id_mismatches_are_errors() {
    let tar = small_layer().finish();
    let blob = compress(&tar, Comp::Gzip);
    // Same size, one byte different: the digest check must catch it.
    let (mut members, _) = oci_members(&[TestImage::new(vec![tar.clone()])]);
    let member = format!("blobs/sha256/{}", sha256(&blob).hex());
    let position = members.iter().position(|(n, _)| *n == member).unwrap();
    let last = members[position].1.len() - 9;
    members[position].1[last] ^= 0xff;
    assert!(matches!(
        open(&outer_tar(&members, &[]), &OpenOptions::default()),
        Err(OciError::DigestMismatch { .. } | OciError::Layer { .. })
    ));

    // The manifest claims a different size.
    let (mut members, _) = oci_members(&[TestImage::new(vec![tar.clone()])]);
    rewrite_manifest(&mut members, |m| {
        m["layers"][0]["size"] = (blob.len() + 1).into();
    });
    assert!(matches!(
        open(&outer_tar(&members, &[]), &OpenOptions::default()),
        Err(OciError::SizeMismatch { .. })
    ));

    // A different, well-formed layer under an honest descriptor, but the config's diff_id
    // is for the original: the uncompressed stream must be checked too.
    let other = Layer::new().file("evil", b"x", 0o644).finish();
    let other_blob = compress(&other, Comp::Gzip);
    let (mut members, _) = oci_members(&[TestImage::new(vec![tar])]);
    replace_blob(
        &mut members,
        &sha256(&blob),
        &other_blob,
        &sha256(&other_blob),
        None,
    );
    assert!(matches!(
        open(&outer_tar(&members, &[]), &OpenOptions::default()),
        Err(OciError::DigestMismatch { .. })
    ));
}

#[test]
fn docker_archive_damage_is_reported() {
    let layer = small_layer().finish();
    // manifest.json over the metadata limit
    let bytes = outer_tar(&docker_members(std::slice::from_ref(&layer), "amd64"), &[]);
    let options = OpenOptions {
        limits: Limits {
            max_metadata_bytes: 16,
            ..Limits::default()
        },
        ..OpenOptions::default()
    };
    assert!(matches!(
        open(&bytes, &options),
        Err(OciError::MemberTooLarge { .. })
    ));

    // a layer member missing
    let mut members = docker_members(std::slice::from_ref(&layer), "amd64");
    members.retain(|(name, _)| !name.ends_with("layer.tar"));
    assert!(matches!(
        open(&outer_tar(&members, &[]), &OpenOptions::default()),
        Err(OciError::MissingMember { .. })
    ));

    // layer members that are symlinks to each other
    let mut members = docker_members(std::slice::from_ref(&layer), "amd64");
    members.retain(|(name, _)| !name.ends_with("layer.tar"));
    let bytes = outer_tar(
        &members,
        &[
            ("layer0/layer.tar", "../loop/layer.tar"),
            ("loop/layer.tar", "../layer0/layer.tar"),
        ],
    );
    assert!(matches!(
        open(&bytes, &OpenOptions::default()),
        Err(OciError::ArchiveSymlinkLoop { .. })
    ));

    // a layer member that is a symlink to another member (older docker save) works
    let mut members = docker_members(&[layer], "amd64");
    let data = members
        .iter()
        .find(|(n, _)| n.ends_with("layer.tar"))
        .unwrap()
        .1
        .clone();
    members.retain(|(name, _)| !name.ends_with("layer.tar"));
    members.push(("shared/layer.tar".to_owned(), data));
    let bytes = outer_tar(&members, &[("layer0/layer.tar", "../shared/layer.tar")]);
    let (image, view) = open(&bytes, &OpenOptions::default()).unwrap();
    assert_eq!(image.read_file(&view, "/os").unwrap(), b"ID=test\n");
}

#[test]
fn oci_layout_damage_is_reported() {
    // malformed digests never become paths
    let (mut members, _) = oci_members(&[TestImage::new(vec![small_layer().finish()])]);
    rewrite_manifest(&mut members, |m| {
        m["layers"][0]["digest"] = "sha256:../../../../etc/passwd".into();
    });
    let err = open(&outer_tar(&members, &[]), &OpenOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            OciError::MalformedDigest { .. } | OciError::Json { .. }
        ),
        "{err}"
    );

    // a missing blob
    let (mut members, _) = oci_members(&[TestImage::new(vec![small_layer().finish()])]);
    members.remove(2);
    assert!(matches!(
        open(&outer_tar(&members, &[]), &OpenOptions::default()),
        Err(OciError::MissingBlob { .. })
    ));
}

#[test]
fn several_images_need_a_tag() {
    let mut a = TestImage::new(vec![Layer::new().file("which", b"a", 0o644).finish()]);
    a.ref_name = Some("a".into());
    let mut b = TestImage::new(vec![Layer::new().file("which", b"b", 0o644).finish()]);
    b.ref_name = Some("b".into());
    let bytes = outer_tar(&oci_members(&[a, b]).0, &[]);
    match open(&bytes, &OpenOptions::default()) {
        Err(OciError::AmbiguousImage { candidates, .. }) => assert_eq!(candidates, ["a", "b"]),
        other => panic!("expected an ambiguity error, got {:?}", other.err()),
    }
    let (image, view) = open(
        &bytes,
        &OpenOptions {
            tag: Some("b".into()),
            ..OpenOptions::default()
        },
    )
    .unwrap();
    assert_eq!(image.read_file(&view, "/which").unwrap(), b"b");
    assert!(matches!(
        open(
            &bytes,
            &OpenOptions {
                tag: Some("c".into()),
                ..OpenOptions::default()
            }
        ),
        Err(OciError::NoSuchTag { .. })
    ));
}

#[test]
fn a_foreign_platform_is_an_error_naming_both() {
    let mut image = TestImage::new(vec![small_layer().finish()]);
    image.arch = "arm64".into();
    let bytes = outer_tar(&oci_members(&[image]).0, &[]);
    let options = OpenOptions {
        platform: Some(Platform::new("linux", "amd64", None)),
        ..OpenOptions::default()
    };
    let err = open(&bytes, &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image {} is for platform linux/arm64, but linux/amd64 was requested",
            image_name(&err)
        )
    );
    let docker = outer_tar(&docker_members(&[small_layer().finish()], "arm64"), &[]);
    let err = open(&docker, &options).unwrap_err();
    assert!(
        matches!(&err, OciError::PlatformMismatch { requested, found, .. } if requested == "linux/amd64" && found == "linux/arm64"),
        "{err}"
    );
    let arm = OpenOptions {
        platform: Some("linux/arm64".parse().unwrap()),
        ..OpenOptions::default()
    };
    let (image, _) = open(&docker, &arm).unwrap();
    assert_eq!(image.platform().to_string(), "linux/arm64");
}

fn image_name(err: &OciError) -> String {
    match err {
        OciError::NoMatchingPlatform { image, .. } | OciError::PlatformMismatch { image, .. } => {
            image.clone()
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn compressed_outer_archives_and_non_images_are_refused() {
    let gz = compress(
        &outer_tar(&docker_members(&[small_layer().finish()], "amd64"), &[]),
        Comp::Gzip,
    );
    assert!(matches!(
        open(&gz, &OpenOptions::default()),
        Err(OciError::CompressedArchive { .. })
    ));
    let not_image = outer_tar(&[("hello.txt".to_owned(), b"hi".to_vec())], &[]);
    assert!(matches!(
        open(&not_image, &OpenOptions::default()),
        Err(OciError::NotAnImage { .. })
    ));
}

#[test]
fn oci_layout_directory_reads_like_the_archive() {
    let (members, _) = oci_members(&[TestImage::new(vec![small_layer().finish()])]);
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in &members {
        let path = dir.path().join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, data).unwrap();
    }
    let image = open_image(dir.path(), &OpenOptions::default()).unwrap();
    let view = image.filesystem().unwrap();
    assert_eq!(view.lstat("/os").unwrap().kind, FileKind::Symlink);
    assert_eq!(image.read_file(&view, "/os").unwrap(), b"ID=test\n");
}

/// Uncompressed layers are what trust speeds up (they are indexed by seeking over file
/// bodies): every damaged or inflated one is still refused, with the same error as when it
/// is hashed and streamed (`open` reads each case both ways).
#[test]
fn trusted_plain_layers_are_refused_for_the_same_damage() {
    let tar = small_layer().finish();
    let mut garbage = tar.clone();
    garbage.extend_from_slice(b"garbage!");
    let mut huge_pax = common::header(b"PaxHeader", b'x', 0, 0o644, b"");
    let mut h = tar::Header::from_byte_slice(&huge_pax).clone();
    h.set_size(1 << 40);
    h.set_cksum();
    huge_pax.copy_from_slice(h.as_bytes());
    let mut many = Layer::new();
    for i in 0..300 {
        many = many.file(&format!("f{i}"), b"", 0o644);
    }
    let big = Layer::new()
        .file("big", &vec![7u8; 4 << 20], 0o644)
        .finish();
    let cases: Vec<(&str, Vec<u8>, Limits)> = vec![
        (
            "cut inside the data",
            tar[..tar.len() - 1024 - 100].to_vec(),
            Limits::default(),
        ),
        (
            "no end marker",
            small_layer().unfinished(),
            Limits::default(),
        ),
        ("trailing garbage", garbage, Limits::default()),
        (
            "huge pax header",
            Layer::new().raw(&huge_pax, b"").finish(),
            Limits::default(),
        ),
        (
            "malformed pax size",
            Layer::new()
                .pax(&[("size", b"-5")])
                .file("x", b"", 0o644)
                .finish(),
            Limits::default(),
        ),
        (
            "too many entries",
            many.finish(),
            Limits {
                max_entries: 100,
                ..Limits::default()
            },
        ),
        (
            "over the byte budget",
            big,
            Limits {
                max_layer_bytes: 1 << 20,
                ..Limits::default()
            },
        ),
    ];
    for (what, layer, limits) in cases {
        let options = OpenOptions {
            limits,
            ..OpenOptions::default()
        };
        assert!(
            open(&oci(vec![layer], Comp::None), &options).is_err(),
            "{what} is refused"
        );
    }
    // And an intact plain layer reads the same both ways (file contents included).
    let (image, view) = open(
        &oci(vec![small_layer().finish()], Comp::None),
        &OpenOptions::default(),
    )
    .unwrap();
    assert_eq!(image.read_file(&view, "/os").unwrap(), b"ID=test\n");
}
