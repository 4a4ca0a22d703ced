//! The specification of planning, with no daemon: fixture projects are loaded, rendered and
//! graphed as the binary does, then planned against a ledger this test writes, and each plan
//! is pinned as a snapshot (node, platform, action, reasons, parents, a short key).
//!
//! A "build" here records each node to build in the ledger and writes a stand-in output file,
//! which is all a plan reads of a build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use im_graph::{Graph, NodeId, NodeInput};
use im_plan::{Action, Ledger, LedgerEntry, Plan, PlanOptions};
use im_project::{Platform, Project};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// base:1 → app:1.0 and app:2.0 (alias 2, latest) → app's `dev` variant; tool, alone,
    /// built from an external base; for linux/amd64 and linux/arm64.
    fn new() -> Self {
        let fixture = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        fixture.write(
            ".image-manager.yml",
            "platforms: [linux/amd64, linux/arm64]\n",
        );
        fixture.write("images/base/image.yml", "tags: ['1']\n");
        fixture.write("images/base/Dockerfile", "FROM scratch\nCOPY rootfs/ /\n");
        fixture.write("images/base/rootfs/etc/base.conf", "base\n");
        fixture.write(
            "images/app/image.yml",
            "tags: ['1.0.0', '2.0.0']\nlatest: true\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
        );
        fixture.write(
            "images/app/Dockerfile.jinja2",
            "FROM {{ \"base\" | resolve_base_image }}\nRUN echo {{ tag.name }} > /v\n",
        );
        fixture.write("images/app/rootfs/etc/app.conf", "app\n");
        fixture.write(
            "images/app/dev/Dockerfile.jinja2",
            "FROM {{ base_image }}\nRUN touch /dev-tools\n",
        );
        fixture.write(
            "images/tool/image.yml",
            "tags: ['0.1']\nplatforms: [linux/amd64]\n",
        );
        fixture.write(
            "images/tool/Dockerfile",
            "FROM debian:bookworm-slim\nRUN true\n",
        );
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn dist(&self) -> PathBuf {
        self.root().join("dist")
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.root().join(relative);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }

    /// Loads, renders and graphs the project, as the binary does.
    fn load(&self) -> Result<(Project, im_render::Rendered, Graph), String> {
        self.load_snapshot(None)
    }

    /// Loads as `--snapshot-id` renders it.
    fn load_snapshot(
        &self,
        snapshot_id: Option<&str>,
    ) -> Result<(Project, im_render::Rendered, Graph), String> {
        let project = Project::load(self.root(), &|_| None)
            .map_err(|d| format!("{d:?}"))?
            .project;
        let rendered = im_render::render(
            &project,
            &im_render::Options {
                snapshot_id: snapshot_id.map(str::to_owned),
                skip_tests: true,
                ..im_render::Options::default()
            },
        )
        .map_err(|d| format!("{d:?}"))?;
        let inputs: Vec<NodeInput<'_>> = rendered
            .tags
            .iter()
            .map(|tag| NodeInput {
                id: NodeId::new(&tag.image, &tag.tag),
                dockerfile: &tag.parsed,
                source: tag.dockerfile_source.path.clone(),
            })
            .collect();
        let graph = Graph::build(&project, &inputs, snapshot_id).map_err(|d| format!("{d:?}"))?;
        Ok((project, rendered, graph))
    }

    /// Plans, as `image-manager plan` does.
    fn plan(&self, options: &PlanOptions) -> Result<Plan, String> {
        let (project, rendered, graph) = self.load()?;
        let ledger = Ledger::load(&self.dist()).unwrap();
        im_plan::plan(
            &project,
            &graph,
            &rendered.tags,
            &ledger,
            &self.dist(),
            options,
        )
        .map_err(|diagnostics| {
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Records every node the plan builds as built, as `build` does.
    fn build(&self, plan: &Plan) {
        let dist = self.dist();
        let mut ledger = Ledger::load(&dist).unwrap();
        for node in plan.nodes.iter().filter(|n| n.action == Action::Build) {
            im_plan::ledger::record_inputs(&dist, &node.key, &node.inputs).unwrap();
            let output = dist.join(&node.output);
            fs_err::create_dir_all(output.parent().unwrap()).unwrap();
            fs_err::write(&output, node.key.as_bytes()).unwrap();
            ledger.nodes.insert(
                im_plan::ledger::entry_name(&node.id.to_string(), &node.platform.to_string()),
                LedgerEntry::new(node, format!("sha256:{}", &node.key[7..]), Duration::ZERO),
            );
        }
        ledger.save(&dist).unwrap();
    }
}

fn options() -> PlanOptions {
    PlanOptions {
        with_deps: true,
        builder: "buildah".to_owned(),
        external_digests: BTreeMap::from([(
            "debian:bookworm-slim".to_owned(),
            BTreeMap::from([("linux/amd64".to_owned(), "sha256:aaaa".to_owned())]),
        )]),
        ..PlanOptions::default()
    }
}

/// One line per node: what a reviewer of a plan wants to see.
fn show(plan: &Plan) -> String {
    let mut out = String::new();
    for node in &plan.nodes {
        let action = match node.action {
            Action::Build => "build",
            Action::UpToDate => "up to date",
        };
        let reasons: Vec<String> = node.reasons.iter().map(ToString::to_string).collect();
        let parents: Vec<String> = node
            .parents
            .iter()
            .map(|&p| plan.nodes[p].id.to_string())
            .collect();
        out.push_str(&format!(
            "{:<14} {:<12} {:<10} {}{}{}\n",
            node.id.to_string(),
            node.platform.to_string(),
            action,
            if node.selected { "" } else { "(needed) " },
            if reasons.is_empty() {
                String::new()
            } else {
                format!("[{}] ", reasons.join("; "))
            },
            if parents.is_empty() {
                String::new()
            } else {
                format!("<- {}", parents.join(", "))
            },
        ));
    }
    out
}

#[test]
fn a_new_project_builds_everything_in_dependency_order() {
    let fixture = Fixture::new();
    let plan = fixture.plan(&options()).unwrap();
    insta::assert_snapshot!(show(&plan));
    // Keys are stable: the same inputs plan the same keys.
    let again = fixture.plan(&options()).unwrap();
    let keys = |p: &Plan| p.nodes.iter().map(|n| n.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&plan), keys(&again));
}

#[test]
fn after_a_build_everything_is_up_to_date_and_a_missing_output_is_rebuilt() {
    let fixture = Fixture::new();
    fixture.build(&fixture.plan(&options()).unwrap());
    let plan = fixture.plan(&options()).unwrap();
    assert_eq!(plan.to_build(), 0, "{}", show(&plan));
    fs_err::remove_file(fixture.dist().join("app/2.0.0/linux-arm64/image.tar")).unwrap();
    insta::assert_snapshot!(show(&fixture.plan(&options()).unwrap()));
}

#[test]
fn a_changed_base_file_rebuilds_the_base_and_everything_built_on_it() {
    let fixture = Fixture::new();
    fixture.build(&fixture.plan(&options()).unwrap());
    fixture.write("images/base/rootfs/etc/base.conf", "base, changed\n");
    insta::assert_snapshot!(show(&fixture.plan(&options()).unwrap()));
}

#[test]
fn a_moved_external_base_rebuilds_exactly_its_dependents() {
    let fixture = Fixture::new();
    fixture.build(&fixture.plan(&options()).unwrap());
    let mut moved = options();
    moved.external_digests.insert(
        "debian:bookworm-slim".to_owned(),
        BTreeMap::from([("linux/amd64".to_owned(), "sha256:bbbb".to_owned())]),
    );
    insta::assert_snapshot!(show(&fixture.plan(&moved).unwrap()));
    let (project, _, graph) = fixture.load().unwrap();
    let wanted = im_plan::external_bases(&project, &graph, &moved).unwrap();
    assert_eq!(
        wanted,
        BTreeMap::from([(
            "debian:bookworm-slim".to_owned(),
            [Platform::linux("amd64")].into_iter().collect()
        )])
    );
}

#[test]
fn targets_dependents_force_and_no_deps() {
    let fixture = Fixture::new();
    fixture.build(&fixture.plan(&options()).unwrap());
    let mut out = String::new();
    let mut forced = options();
    forced.targets = vec!["app:2".to_owned()];
    forced.force = true;
    out.push_str("# app:2 --force\n");
    out.push_str(&show(&fixture.plan(&forced).unwrap()));
    forced.dependents = true;
    out.push_str("# app:2 --force --dependents\n");
    out.push_str(&show(&fixture.plan(&forced).unwrap()));
    // --no-deps with an outdated parent is an error naming it.
    fixture.write("images/base/rootfs/etc/base.conf", "base, changed\n");
    let mut no_deps = options();
    no_deps.targets = vec!["app:1.0".to_owned()];
    no_deps.with_deps = false;
    out.push_str("# app:1.0 --no-deps, base changed\n");
    out.push_str(&fixture.plan(&no_deps).unwrap_err());
    insta::assert_snapshot!(out);
}

#[test]
fn a_platform_the_parent_lacks_is_an_error_with_a_fix() {
    let fixture = Fixture::new();
    fixture.write(
        "images/base/image.yml",
        "tags: ['1']\nplatforms: [linux/amd64]\n",
    );
    insta::assert_snapshot!(fixture.plan(&options()).unwrap_err());
}

/// A snapshot build (`FROM base:1-ci-7`) has the key of the release build of the same
/// inputs, so a pipeline finds what another pipeline (or the release) already built; its
/// base name label names the release tag.
#[test]
fn a_snapshot_build_has_the_release_key() {
    let fixture = Fixture::new();
    let release = fixture.plan(&options()).unwrap();
    let (project, rendered, graph) = fixture.load_snapshot(Some("ci-7")).unwrap();
    let dev = rendered
        .tags
        .iter()
        .find(|t| t.image == "app" && t.tag == "1.0.0-dev")
        .unwrap();
    assert!(
        dev.dockerfile.contains("FROM app:1.0.0-ci-7"),
        "{}",
        dev.dockerfile
    );
    let snapshot = im_plan::plan(
        &project,
        &graph,
        &rendered.tags,
        &Ledger::default(),
        &fixture.dist(),
        &PlanOptions {
            snapshot_id: Some("ci-7".to_owned()),
            ..options()
        },
    )
    .unwrap();
    let keys = |plan: &Plan| -> Vec<(String, String)> {
        plan.nodes
            .iter()
            .map(|n| (format!("{} {}", n.id, n.platform), n.key.clone()))
            .collect()
    };
    assert_eq!(keys(&release), keys(&snapshot));
    let node = snapshot
        .nodes
        .iter()
        .find(|n| n.id.to_string() == "app:1.0.0-dev")
        .unwrap();
    assert_eq!(
        node.inputs.labels["org.opencontainers.image.base.name"],
        "app:1.0.0"
    );
    // A snapshot id written by the template itself is a real input: it changes the key.
    fixture.write(
        "images/app/dev/Dockerfile.jinja2",
        "FROM {{ base_image }}\nRUN echo {{ snapshot_id }}\n",
    );
    let dev_key = |id: &str| {
        let (project, rendered, graph) = fixture.load_snapshot(Some(id)).unwrap();
        let plan = im_plan::plan(
            &project,
            &graph,
            &rendered.tags,
            &Ledger::default(),
            &fixture.dist(),
            &PlanOptions {
                snapshot_id: Some(id.to_owned()),
                ..options()
            },
        )
        .unwrap();
        let node = plan
            .nodes
            .iter()
            .find(|n| n.id.to_string() == "app:1.0.0-dev");
        node.unwrap().key.clone()
    };
    assert_ne!(dev_key("ci-7"), dev_key("ci-8"));
}
