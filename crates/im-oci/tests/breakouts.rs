//! Crafted layers against the view's path semantics.
//!
//! The first group is containerd's `TestBreakouts` list (archive/tar_test.go), each case with
//! the outcome containerd's extraction produces; the rest are the cases the test issue lists.
//! Every image is a real OCI archive tar written by hand and read through the public API.

mod common;

use common::{Comp, Layer, TestImage, oci_members, outer_tar, write_temp};
use im_oci::{FileKind, FsView, LayerError, OciError, OpenOptions, open_image};

fn flatten_with(
    layers: Vec<Vec<u8>>,
    comp: Comp,
) -> Result<(im_oci::Image, FsView, tempfile::TempDir), OciError> {
    let mut image = TestImage::new(layers);
    image.comp = comp;
    let (members, _) = oci_members(&[image]);
    let (dir, path) = write_temp(&outer_tar(&members, &[]));
    let image = open_image(&path, &OpenOptions::default())?;
    let view = image.filesystem()?;
    Ok((image, view, dir))
}

fn flatten(layers: &[&Layer]) -> Result<(im_oci::Image, FsView, tempfile::TempDir), OciError> {
    flatten_with(layers.iter().map(|l| l.finish()).collect(), Comp::Gzip)
}

fn layer_error(result: Result<(im_oci::Image, FsView, tempfile::TempDir), OciError>) -> LayerError {
    match result {
        Err(OciError::Layer { source, .. }) => *source,
        Err(other) => panic!("expected a layer error, got {other}"),
        Ok(_) => panic!("expected a layer error, got a filesystem"),
    }
}

fn read(image: &im_oci::Image, view: &FsView, path: &str) -> Vec<u8> {
    image
        .read_file(view, path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn same_file(view: &FsView, a: &str, b: &str) -> bool {
    view.stat(a).unwrap().inode == view.stat(b).unwrap().inode
}

fn passwd_base() -> Layer {
    Layer::new()
        .dir("etc", 0o770)
        .file("/etc/passwd", b"inside", 0o644)
}

// ---- containerd TestBreakouts ----

#[test]
fn symlink_absolute() {
    let layer = Layer::new()
        .dir("etc", 0o755)
        .symlink("/etc", "localetc")
        .file("/localetc/unbroken", b"unbroken", 0o644);
    let (image, view, _dir) = flatten(&[&layer]).unwrap();
    assert_eq!(read(&image, &view, "/etc/unbroken"), b"unbroken");
}

#[test]
fn symlink_up_and_out() {
    let layer = Layer::new()
        .dir("etc", 0o755)
        .dir("dummy", 0o755)
        .symlink("/dummy/../etc", "localetc")
        .file("/localetc/unbroken", b"unbroken", 0o644);
    let (image, view, _dir) = flatten(&[&layer]).unwrap();
    assert_eq!(read(&image, &view, "/etc/unbroken"), b"unbroken");
}

#[test]
fn symlink_multiple_absolute_and_relative() {
    for first_link in ["/dummy/etc", "./dummy/etc"] {
        let layer = Layer::new()
            .dir("etc", 0o755)
            .dir("dummy", 0o755)
            .symlink("/etc", "/dummy/etc")
            .symlink(first_link, "localetc")
            .file("/dummy/etc/unbroken", b"unbroken", 0o644);
        let (image, view, _dir) = flatten(&[&layer]).unwrap();
        assert_eq!(read(&image, &view, "/etc/unbroken"), b"unbroken");
        assert_eq!(read(&image, &view, "/localetc/unbroken"), b"unbroken");
    }
}

#[test]
fn symlink_empty_file() {
    let layer = Layer::new()
        .dir("etc", 0o755)
        .file("etc/emptied", b"notempty", 0o644)
        .symlink("/etc", "localetc")
        .file("/localetc/emptied", b"", 0o644);
    let (image, view, _dir) = flatten(&[&layer]).unwrap();
    assert_eq!(read(&image, &view, "/etc/emptied"), b"");
}

#[test]
fn hardlinks_through_symlinked_directories_stay_inside() {
    let cases: [(&str, Layer, &str); 5] = [
        (
            "HardlinkRelative",
            passwd_base()
                .dir("breakouts", 0o755)
                .symlink("../../etc", "breakouts/d1")
                .hardlink("/breakouts/d1/passwd", "breakouts/mypasswd"),
            "/breakouts/mypasswd",
        ),
        (
            "HardlinkDownAndOut",
            passwd_base()
                .dir("breakouts", 0o755)
                .dir("downandout", 0o755)
                .symlink("../downandout/../../etc", "breakouts/d1")
                .hardlink("/breakouts/d1/passwd", "breakouts/mypasswd"),
            "/breakouts/mypasswd",
        ),
        (
            "HardlinkAbsolute",
            passwd_base()
                .symlink("/etc", "localetc")
                .hardlink("/localetc/passwd", "localpasswd"),
            "/localpasswd",
        ),
        (
            "HardlinkRelativeLong",
            passwd_base()
                .symlink("../../../../../../../etc", "localetc")
                .hardlink("/localetc/passwd", "localpasswd"),
            "/localpasswd",
        ),
        (
            "HardlinkRelativeUpAndOut",
            passwd_base()
                .symlink("upandout/../../../etc", "localetc")
                .hardlink("/localetc/passwd", "localpasswd"),
            "/localpasswd",
        ),
    ];
    for (name, layer, link) in cases {
        let (image, view, _dir) = flatten(&[&layer]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(same_file(&view, link, "/etc/passwd"), "{name}");
        assert_eq!(read(&image, &view, link), b"inside", "{name}");
    }
}

#[test]
fn hardlink_direct_relative_and_absolute_are_clamped_to_the_root() {
    for target in ["../../../../../etc/passwd", "/etc/passwd"] {
        let layer = passwd_base().hardlink(target, "localpasswd");
        let (_image, view, _dir) = flatten(&[&layer]).unwrap();
        assert!(same_file(&view, "/localpasswd", "/etc/passwd"), "{target}");
    }
}

#[test]
fn symlink_named_dotdot_is_rejected_as_an_escape() {
    // containerd ignores an entry named `..` (it resolves to the root); the issue asks for
    // names that climb out to be rejected, and `..` climbs out.
    let layer = passwd_base()
        .symlink("/etc/", "..")
        .hardlink("/etc/passwd", "localpasswd");
    assert!(matches!(
        layer_error(flatten(&[&layer])),
        LayerError::PathEscapes { .. }
    ));
}

#[test]
fn symlink_with_empty_name_is_ignored() {
    let layer = passwd_base()
        .symlink("/etc/", "")
        .hardlink("/etc/passwd", "localpasswd");
    let (_image, view, _dir) = flatten(&[&layer]).unwrap();
    assert!(same_file(&view, "/localpasswd", "/etc/passwd"));
    assert_eq!(view.lstat("/").unwrap().kind, FileKind::Directory);
}

#[test]
fn symlink_parent_relative_name_is_cleaned() {
    let layer = passwd_base()
        .symlink("/etc/", "localetc/sub/..")
        .hardlink("/etc/passwd", "/localetc/localpasswd");
    let (_image, view, _dir) = flatten(&[&layer]).unwrap();
    assert!(same_file(&view, "/localetc/localpasswd", "/etc/passwd"));
    assert_eq!(view.lstat("/localetc").unwrap().kind, FileKind::Symlink);
    assert!(view.stat("/etc/localpasswd").is_ok());
}

#[test]
fn symlink_slash_ended_directory() {
    let layer = passwd_base()
        .dir("localetc/", 0o770)
        .hardlink("/etc/passwd", "/localetc/localpasswd");
    let (_image, view, _dir) = flatten(&[&layer]).unwrap();
    assert!(same_file(&view, "/localetc/localpasswd", "/etc/passwd"));
}

#[test]
fn symlink_overrides_a_lower_directory() {
    for target in ["/etc", "../../etc"] {
        let lower = Layer::new()
            .dir("etc", 0o755)
            .file("etc/passwd", b"inside", 0o644)
            .dir("localetc", 0o755);
        let upper = Layer::new()
            .symlink(target, "localetc")
            .hardlink("/etc/passwd", "/localetc/localpasswd");
        let (_image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
        assert!(
            same_file(&view, "/localetc/localpasswd", "/etc/passwd"),
            "{target}"
        );
        assert_eq!(view.lstat("/localetc").unwrap().kind, FileKind::Symlink);
    }
}

#[test]
fn directory_overrides_a_lower_symlink() {
    let lower = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"inside", 0o644)
        .symlink("/etc", "localetc");
    let upper = Layer::new()
        .dir("/localetc/", 0o755)
        .hardlink("/etc/passwd", "/localetc/localpasswd");
    let (_image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    assert!(same_file(&view, "/localetc/localpasswd", "/etc/passwd"));
    assert_eq!(view.lstat("/localetc").unwrap().kind, FileKind::Directory);
    assert!(view.stat("/etc/localpasswd").is_err());
}

#[test]
fn directory_overrides_symlink_and_hardlink() {
    let lower = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"inside", 0o644)
        .symlink("etc", "localetc")
        .hardlink("/etc/passwd", "/localetc/localpasswd");
    let upper =
        Layer::new()
            .dir("/localetc/", 0o755)
            .file("/localetc/localpasswd", b"different", 0o644);
    let (image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    assert!(!same_file(&view, "/localetc/localpasswd", "/etc/passwd"));
    assert_eq!(read(&image, &view, "/etc/passwd"), b"inside");
    assert_eq!(read(&image, &view, "/localetc/localpasswd"), b"different");
}

#[test]
fn whiteouts_of_dot_and_dotdot_are_invalid() {
    for name in [".wh...", "etc/.wh...", ".wh..", "etc/.wh..", ".wh."] {
        let lower = passwd_base();
        let upper = Layer::new().file(name, b"", 0o644);
        assert!(
            matches!(
                layer_error(flatten(&[&lower, &upper])),
                LayerError::InvalidWhiteout { .. }
            ),
            "{name}"
        );
    }
}

#[test]
fn whiteout_removes_the_symlink_not_its_target() {
    let lower = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"all users", 0o644)
        .symlink("/etc", "localetc");
    let upper = Layer::new().file(".wh.localetc", b"", 0o644);
    let (image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    assert_eq!(read(&image, &view, "/etc/passwd"), b"all users");
    assert!(view.lstat("/localetc").is_err());
}

#[test]
fn whiteout_through_a_symlinked_parent_removes_in_the_target() {
    let lower = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"all users", 0o644)
        .file("etc/whitedout", b"ahhhh whiteout", 0o644)
        .symlink("/etc", "localetc");
    let upper = Layer::new().file("localetc/.wh.whitedout", b"", 0o644);
    let (image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    assert_eq!(read(&image, &view, "/etc/passwd"), b"all users");
    assert!(view.stat("/etc/whitedout").is_err());
}

#[test]
fn whiteout_prefix_on_a_directory_component_is_an_ordinary_name() {
    let lower = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"all users", 0o644);
    let upper = Layer::new().file(".wh.etc/somefile", b"non-empty", 0o644);
    let (image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    assert_eq!(read(&image, &view, "/etc/passwd"), b"all users");
    assert_eq!(read(&image, &view, "/.wh.etc/somefile"), b"non-empty");
}

#[test]
fn whiteout_under_a_dead_symlink_is_a_no_op() {
    let lower = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"all users", 0o644)
        .symlink("/dne", "localetc");
    let upper = Layer::new().file("localetc/.wh.etc", b"", 0o644);
    let (image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    assert_eq!(read(&image, &view, "/etc/passwd"), b"all users");
}

#[test]
fn whiteout_relative_path_is_cleaned_first() {
    let lower = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"all users", 0o644)
        .symlink("/dne", "localetc");
    let upper = Layer::new().file("dne/../.wh.etc", b"", 0o644);
    let (_image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    assert!(view.stat("/etc/passwd").is_err());
    assert!(view.stat("/etc").is_err());
}

#[test]
fn hardlink_to_a_symlink_created_before_its_target() {
    let layer = Layer::new()
        .dir("etc", 0o770)
        .symlink("/etc/passwd", "localpasswd")
        .hardlink("localpasswd", "localpasswd-dup")
        .file("/etc/passwd", b"after", 0o644);
    let (image, view, _dir) = flatten(&[&layer]).unwrap();
    assert!(same_file(&view, "/localpasswd-dup", "/etc/passwd"));
    assert_eq!(read(&image, &view, "/localpasswd-dup"), b"after");
}

#[test]
fn hardlink_to_a_symlink_is_the_symlink() {
    for target in ["../../../../../etc/passwd", "/etc/passwd"] {
        let layer = passwd_base()
            .symlink(target, "passwdlink")
            .hardlink("/passwdlink", "localpasswd");
        let (_image, view, _dir) = flatten(&[&layer]).unwrap();
        assert_eq!(
            view.lstat("/localpasswd").unwrap().inode,
            view.lstat("/passwdlink").unwrap().inode
        );
        assert_eq!(view.lstat("/localpasswd").unwrap().kind, FileKind::Symlink);
        assert!(same_file(&view, "/localpasswd", "/etc/passwd"), "{target}");
    }
}

#[test]
fn hardlink_to_a_symlink_pointing_at_a_host_path_never_reaches_the_host() {
    // HardlinkSymlinkChmod: the link's target names a real host file; the view must not see it.
    let host = tempfile::NamedTempFile::new().unwrap();
    let host_path = host.path().to_str().unwrap().to_owned();
    let layer = Layer::new()
        .symlink(&host_path, "also-exists-outside-root")
        .hardlink("also-exists-outside-root", "sketchylink");
    let (_image, view, _dir) = flatten(&[&layer]).unwrap();
    assert_eq!(view.lstat("/sketchylink").unwrap().kind, FileKind::Symlink);
    assert!(
        view.stat("/sketchylink").is_err(),
        "the host file must not be visible"
    );
}

// ---- the list ----

#[test]
fn entry_names_that_climb_out_are_rejected() {
    for name in ["../x", "a/../../x", "./../../etc/passwd"] {
        let layer = Layer::new().dir("a", 0o755).file(name, b"evil", 0o644);
        assert!(
            matches!(
                layer_error(flatten(&[&layer])),
                LayerError::PathEscapes { .. }
            ),
            "{name}"
        );
    }
}

#[test]
fn absolute_names_are_relative_to_the_image_root() {
    let layer = Layer::new().file("/etc/abs", b"root-relative", 0o600);
    let (image, view, _dir) = flatten(&[&layer]).unwrap();
    assert_eq!(read(&image, &view, "/etc/abs"), b"root-relative");
    assert_eq!(
        view.stat("/etc").unwrap().mode,
        0o755,
        "implicit parents are 0755"
    );
}

#[test]
fn in_root_absolute_symlinks_keep_working() {
    let layer = Layer::new()
        .dir("usr/lib64", 0o755)
        .file("usr/lib64/ld-linux-x86-64.so.2", b"ELF", 0o755)
        .symlink("/usr/lib64", "lib64")
        .symlink("../lib64/ld-linux-x86-64.so.2", "usr/bin/ld.so");
    let (image, view, _dir) = flatten(&[&layer]).unwrap();
    assert_eq!(read(&image, &view, "/lib64/ld-linux-x86-64.so.2"), b"ELF");
    assert_eq!(read(&image, &view, "/usr/bin/ld.so"), b"ELF");
    assert_eq!(view.read_dir("/lib64").unwrap().len(), 1);
}

#[test]
fn relative_symlinks_that_climb_out_are_confined() {
    let layer = Layer::new()
        .dir("etc", 0o755)
        .file("etc/shadow", b"image", 0o600)
        .symlink("../../../../../../etc/shadow", "home/user/link");
    let (image, view, _dir) = flatten(&[&layer]).unwrap();
    assert_eq!(read(&image, &view, "/home/user/link"), b"image");
}

#[test]
fn same_path_twice_symlink_then_file() {
    let layer = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"keep", 0o644)
        .symlink("/etc/passwd", "a")
        .file("a", b"file", 0o644);
    let (image, view, _dir) = flatten(&[&layer]).unwrap();
    assert_eq!(view.lstat("/a").unwrap().kind, FileKind::Regular);
    assert_eq!(read(&image, &view, "/a"), b"file");
    assert_eq!(read(&image, &view, "/etc/passwd"), b"keep");
}

#[test]
fn directory_replaced_by_file_and_file_by_directory() {
    let lower = Layer::new()
        .dir("d", 0o755)
        .file("d/x", b"x", 0o644)
        .file("f", b"f", 0o644);
    let upper = Layer::new()
        .file("d", b"now a file", 0o644)
        .dir("f", 0o700)
        .file("f/y", b"y", 0o644);
    let (image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    assert_eq!(read(&image, &view, "/d"), b"now a file");
    assert!(matches!(
        view.stat("/d/x"),
        Err(im_oci::LookupError::NotADirectory { .. })
    ));
    assert_eq!(view.stat("/f").unwrap().mode, 0o700);
    assert_eq!(read(&image, &view, "/f/y"), b"y");
}

#[test]
fn a_file_under_a_regular_file_is_an_error() {
    let layer = Layer::new().file("f", b"f", 0o644).file("f/x", b"x", 0o644);
    assert!(matches!(
        layer_error(flatten(&[&layer])),
        LayerError::NotADirectory { .. }
    ));
}

#[test]
fn whiteout_hides_lower_entries_only_and_never_shows() {
    let lower = Layer::new()
        .dir("d", 0o755)
        .file("d/x", b"x", 0o644)
        .file("d/keep", b"k", 0o644);
    let upper = Layer::new()
        .file("d/new", b"n", 0o644)
        .file("d/.wh.x", b"", 0o644)
        .file("d/.wh.new", b"", 0o644);
    let (_image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    let names: Vec<String> = view
        .read_dir("/d")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["keep", "new"], "a whiteout only hides lower layers");
    assert!(view.walk_all().iter().all(|(p, _)| !p.contains(".wh.")));
}

#[test]
fn opaque_directory_hides_lower_layers_after_the_whole_layer() {
    let lower = Layer::new()
        .dir("d", 0o755)
        .file("d/old", b"o", 0o644)
        .dir("d/sub", 0o755)
        .file("d/sub/deep", b"o", 0o644);
    // The marker comes after this layer's own files: they must survive it.
    let upper = Layer::new()
        .dir("d", 0o755)
        .file("d/new", b"n", 0o644)
        .dir("d/sub", 0o755)
        .file("d/sub/fresh", b"f", 0o644)
        .file("d/.wh..wh..opq", b"", 0o644);
    let (_image, view, _dir) = flatten(&[&lower, &upper]).unwrap();
    let all: Vec<String> = view.walk_all().into_iter().map(|(p, _)| p).collect();
    assert_eq!(all, ["/d", "/d/new", "/d/sub", "/d/sub/fresh"]);
}

#[test]
fn special_files_and_setuid_bits_are_reported_not_created() {
    let layer = Layer::new()
        .dir("dev", 0o755)
        .device("dev/null", b'3', 1, 3, 0o666)
        .device("dev/sda", b'4', 8, 0, 0o660)
        .device("run/fifo", b'6', 0, 0, 0o600)
        .file("bin/su", b"ELF", 0o4755)
        .dir("tmp", 0o1777);
    let (_image, view, dir) = flatten(&[&layer]).unwrap();
    let null = view.stat("/dev/null").unwrap();
    assert_eq!(
        (null.kind, null.device, null.mode),
        (FileKind::CharDevice, Some((1, 3)), 0o666)
    );
    assert_eq!(view.stat("/dev/sda").unwrap().kind, FileKind::BlockDevice);
    assert_eq!(view.stat("/run/fifo").unwrap().kind, FileKind::Fifo);
    assert_eq!(view.stat("/bin/su").unwrap().mode, 0o4755);
    assert_eq!(view.stat("/tmp").unwrap().mode, 0o1777);
    let on_host: Vec<_> = fs_err::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(on_host, ["image.tar"], "nothing is extracted onto the host");
}

#[test]
fn symlink_cycles_inside_the_image_are_loops() {
    let layer = Layer::new().symlink("b", "a").symlink("a", "b");
    let (_image, view, _dir) = flatten(&[&layer]).unwrap();
    assert!(matches!(
        view.stat("/a"),
        Err(im_oci::LookupError::Loop { .. })
    ));
    let writer = Layer::new()
        .symlink("b", "a")
        .symlink("a", "b")
        .file("a/x", b"", 0o644);
    assert!(matches!(
        layer_error(flatten(&[&writer])),
        LayerError::SymlinkLoop { .. }
    ));
}
