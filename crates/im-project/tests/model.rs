//! The resolved model of small projects written to temp dirs.

use std::path::Path;

use im_project::Project;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(files: &[(&str, &str)]) -> Result<Project, String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    Project::load(dir.path(), &no_env)
        .map(|loaded| loaded.project)
        .map_err(|errors| errors.to_string())
}

#[test]
fn names_come_from_folders_by_the_documented_rules() {
    let project = load(&[
        (
            "images/base/image.yml",
            "is_base_image: true\ntags: [2025.10]\n",
        ),
        ("images/base/alpine/image.yml", "tags: ['3.20']\n"),
        ("images/dotnet/8.0/image.yml", "tags: [8.0.100]\n"),
        ("images/dotnet/9.0/image.yml", "tags: [9.0.100, 9.0.200]\n"),
        ("images/python/image.yml", "tags: [3.13.7]\n"),
        ("images/custom/x/image.yml", "name: renamed\ntags: [1]\n"),
    ])
    .unwrap();
    let names: Vec<&str> = project.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["alpine", "base", "dotnet", "python", "renamed"]);
    let base = project.image("base").unwrap();
    assert_eq!(base.tags[0].name, "2025.10", "numbers stay as written");
    let dotnet = project.image("dotnet").unwrap();
    let tags: Vec<&str> = dotnet.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tags, ["8.0.100", "9.0.100", "9.0.200"]);
    assert_eq!(dotnet.aliases.get("9").map(String::as_str), Some("9.0.200"));
    assert_eq!(dotnet.aliases.get("8").map(String::as_str), Some("8.0.100"));
}

#[test]
fn the_same_tag_in_two_files_names_both() {
    let error = load(&[
        ("images/dotnet/8.0/image.yml", "tags: [9.0.100]\n"),
        ("images/dotnet/9.0/image.yml", "tags: [9.0.100]\n"),
    ])
    .unwrap_err();
    assert!(
        error.contains("the tag `dotnet:9.0.100` is defined twice"),
        "{error}"
    );
    assert!(error.contains("images/dotnet/9.0/image.yml:1:8"), "{error}");
    assert!(
        error.contains("it is also defined at images/dotnet/8.0/image.yml:1:8"),
        "{error}"
    );
}

#[test]
fn cascade_image_then_tag_then_variant() {
    let project = load(&[(
        "images/python/image.yml",
        "versions: {python: '3.0', pip: 24}\nvariables: {a: image, b: image}\nrootfs_user: 1:1\n\
         tags:\n  - name: 3.13.7\n    versions: {python: 3.13.7}\n    variables: {b: tag}\n\
         variants:\n  - name: browser\n    tag_suffix: -browser\n    versions: {chrome: '120'}\n    variables: {a: variant}\n    rootfs_copy: false\n",
    )])
    .unwrap();
    let image = project.image("python").unwrap();
    let variant = image.tag("3.13.7-browser").unwrap();
    assert_eq!(variant.versions["python"], "3.13.7");
    assert_eq!(variant.versions["pip"], "24");
    assert_eq!(variant.versions["chrome"], "120");
    assert_eq!(*variant.variables["a"], "variant");
    assert_eq!(*variant.variables["b"], "tag");
    assert_eq!(variant.rootfs_user, "1:1");
    assert!(!variant.rootfs_copy);
    assert_eq!(variant.variant.as_ref().unwrap().base_tag, "3.13.7");
    let base = image.tag("3.13.7").unwrap();
    assert!(base.rootfs_copy);
    assert!(!base.versions.contains_key("chrome"));
}

#[test]
fn variant_aliases_and_latest() {
    let project = load(&[(
        "images/dotnet/image.yml",
        "latest: true\ntags: [9.0.100, 9.0.200, 9.1.50, 10.0.0-rc.1]\nvariants:\n  - {name: semantic, tag_suffix: -semantic}\n",
    )])
    .unwrap();
    let image = project.image("dotnet").unwrap();
    let aliases: Vec<(&str, &str)> = image
        .aliases
        .iter()
        .map(|(a, t)| (a.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        aliases,
        [
            ("9", "9.1.50"),
            ("9-semantic", "9.1.50-semantic"),
            ("9.0", "9.0.200"),
            ("9.0-semantic", "9.0.200-semantic"),
            ("9.1", "9.1.50"),
            ("9.1-semantic", "9.1.50-semantic"),
            ("latest", "9.1.50"),
            ("latest-semantic", "9.1.50-semantic"),
        ]
    );
    assert_eq!(image.resolve("9.0").unwrap().name, "9.0.200");
}

#[test]
fn an_alias_that_equals_a_real_tag_is_an_error_unless_dropped() {
    let error = load(&[(
        "images/a/image.yml",
        "version_scheme: dotted\ntags: ['9', 9.1]\n",
    )])
    .unwrap_err();
    assert!(
        error.contains("the tag `a:9` is also the alias generated for `a:9.1`"),
        "{error}"
    );
    assert!(error.contains("aliases: {\"9\": false}"), "{error}");
    let project = load(&[(
        "images/a/image.yml",
        "version_scheme: dotted\ntags: ['9', 9.1]\naliases:\n  '9': false\n  lts: 9.1\n",
    )])
    .unwrap();
    let image = project.image("a").unwrap();
    assert_eq!(image.resolve("9").unwrap().name, "9");
    assert_eq!(image.aliases.get("lts").map(String::as_str), Some("9.1"));
}

#[test]
fn errors_from_many_files_are_all_reported() {
    let error = load(&[
        ("images/a/image.yml", "tags: [1.0.0]\nextends: nope\n"),
        ("images/b/image.yml", "tagz: [1]\n"),
        ("images/c/image.yml", "tags: [1]\nlatest: yes\n"),
    ])
    .unwrap_err();
    assert!(
        error.contains("`extends: nope` names an image that is not defined here"),
        "{error}"
    );
    assert!(error.contains("unknown key `tagz`"), "{error}");
    assert!(
        error.contains("`latest` must be `true` or `false`"),
        "{error}"
    );
}

#[test]
fn rootfs_and_templates_folders_are_not_searched() {
    let project = load(&[
        ("images/a/image.yml", "tags: [1]\n"),
        ("images/a/rootfs/etc/image.yml", "not: a definition\n"),
        ("images/templates/image.yml", "bad: file\n"),
    ])
    .unwrap();
    assert_eq!(project.images.len(), 1);
}

#[test]
fn missing_images_folder_says_how_to_fix() {
    let error = load(&[("README.md", "")]).unwrap_err();
    assert!(error.contains("there is no `images/` folder"), "{error}");
    assert!(error.contains("-C <project dir>"), "{error}");
}

#[test]
fn revision_is_an_image_flag_shared_by_its_definitions() {
    let project = load(&[
        (
            "images/py/3.12/image.yml",
            "name: py\ntags: [3.12.1, 3.12.1-rc1]\nrevision: true\n",
        ),
        ("images/py/3.13/image.yml", "name: py\ntags: [3.13.7]\n"),
        ("images/other/image.yml", "tags: [1.0-r3]\n"),
    ])
    .unwrap();
    assert!(project.image("py").unwrap().revision);
    // Without `revision: true` a tag may look like a revision.
    assert!(!project.image("other").unwrap().revision);

    let conflict = load(&[
        (
            "images/py/3.12/image.yml",
            "name: py\ntags: [3.12.1]\nrevision: true\n",
        ),
        (
            "images/py/3.13/image.yml",
            "name: py\ntags: [3.13.7]\nrevision: false\n",
        ),
    ])
    .unwrap_err();
    assert!(
        conflict.contains("`revision` of image `py` differs between its definitions"),
        "{conflict}"
    );
    let not_bool = load(&[("images/a/image.yml", "tags: [1]\nrevision: 'yes'\n")]).unwrap_err();
    assert!(
        not_bool.contains("images/a/image.yml:2:")
            && not_bool.contains("`revision` must be `true` or `false`, but this is `yes`"),
        "{not_bool}"
    );
}

#[test]
fn with_revision_no_tag_or_alias_may_be_named_like_a_revision_tag() {
    let error = load(&[(
        "images/a/image.yml",
        "tags: [1.0.0, 1.0.0-r3]\nrevision: true\naliases:\n  1.0.0-r1: 1.0.0\n  stable: 1.0.0\n",
    )])
    .unwrap_err();
    assert!(
        error.contains("images/a/image.yml:1:15")
            && error.contains(
                "the tag `a:1.0.0-r3` has the name of a revision tag of `a:1.0.0`, and `revision: true` writes those"
            ),
        "{error}"
    );
    assert!(
        error.contains("images/a/image.yml:4:3")
            && error.contains("alias `1.0.0-r1` has the name of a revision tag of `a:1.0.0`"),
        "{error}"
    );
    // A variant suffix that makes revision-shaped tags is refused at the variant.
    let variant = load(&[(
        "images/a/image.yml",
        "tags: [1.0.0]\nrevision: true\nvariants:\n  - {name: r2, tag_suffix: -r2}\n",
    )])
    .unwrap_err();
    assert!(
        variant.contains("the tag `a:1.0.0-r2` has the name of a revision tag of `a:1.0.0`"),
        "{variant}"
    );
}
