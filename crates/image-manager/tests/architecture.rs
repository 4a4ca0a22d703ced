//! The crate graph points one way: every crate depends only on crates of lower layers
//! (`crates/README.md` draws the flow). A new crate must be given a layer here.

use std::collections::BTreeMap;
use std::path::Path;

/// Lowest first: a crate may depend on crates of any layer below its own, never on its own
/// layer or above.
const LAYERS: &[&[&str]] = &[
    &["im-diag", "im-testkit"],
    &[
        "im-yaml",
        "im-input",
        "im-oci",
        "im-process",
        "im-ci",
        "im-report",
    ],
    &[
        "im-project",
        "im-dockerfile",
        "im-registry",
        "im-sign",
        "im-k8s",
        "im-source",
    ],
    &[
        "im-render",
        "im-build",
        "im-bases",
        "im-structure-test",
        "im-services",
        "im-lint",
        "im-lock",
        "im-sbom",
    ],
    &["im-graph"],
    &["im-plan"],
    &["im-exec"],
    &["image-manager"],
];

/// The workspace crates a manifest's `[dependencies]` (not dev or build) name by path.
fn path_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut out = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies
            && line.contains("path = \"../")
            && let Some((name, _)) = line.split_once('=')
        {
            out.push(name.trim().to_owned());
        }
    }
    out
}

#[test]
fn no_crate_depends_on_a_crate_above_it() {
    let layer: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(level, names)| names.iter().map(move |name| (*name, level)))
        .collect();
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut problems = Vec::new();
    let mut seen = 0;
    for entry in fs_err::read_dir(crates).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = fs_err::read_to_string(&manifest) else {
            continue;
        };
        seen += 1;
        let name = manifest
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Some(&own) = layer.get(name.as_str()) else {
            problems.push(format!(
                "{name} has no layer: add it to LAYERS in {}",
                file!()
            ));
            continue;
        };
        for dependency in path_dependencies(&text) {
            match layer.get(dependency.as_str()) {
                Some(&theirs) if theirs < own => {}
                Some(_) => problems.push(format!(
                    "{name} depends on {dependency}, which is not below it"
                )),
                None => problems.push(format!(
                    "{name} depends on {dependency}, which has no layer"
                )),
            }
        }
    }
    assert!(
        seen >= 10,
        "read only {seen} crates under {}",
        crates.display()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn only_the_dependencies_section_counts() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nim-diag = { path = \"../im-diag\" }\nserde = \"1\"\n[dev-dependencies]\nim-testkit = { path = \"../im-testkit\" }\n";
    assert_eq!(path_dependencies(manifest), ["im-diag"]);
}
