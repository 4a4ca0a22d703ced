//! Applying locks while preparing a project: the pinned Dockerfiles, and the graph updated in
//! place equal to one built from the pinned Dockerfiles.

use std::path::Path;

use im_diag::display_path;
use im_graph::{Graph, NodeId, NodeInput};
use im_render::Options;

use crate::prepare::Prepared;

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

/// `base` (locked, with a rootfs the Dockerfile does not copy, and an external
/// `COPY --from`), `app` on it (locked too), and an unlocked `solo`.
fn project(root: &Path, digest: &str) {
    write(root, ".image-manager.yml", "platforms: [linux/amd64]\n");
    write(root, "images/base/image.yml", "tags: ['1']\n");
    write(
        root,
        "images/base/Dockerfile",
        "FROM debian:bookworm\nCOPY --from=debian:bookworm /etc/os-release /os-release\nRUN apt-get update && apt-get install -y curl\n",
    );
    write(root, "images/base/rootfs/etc/motd", "hello\n");
    write(
        root,
        "images/base/packages.lock",
        &format!(
            "bases:\n  debian:bookworm:\n    digest: {digest}\n    packages:\n      curl: 7.88.1-10\n"
        ),
    );
    write(root, "images/app/image.yml", "tags: ['2']\n");
    write(
        root,
        "images/app/Dockerfile",
        "FROM base:1\nRUN apt-get install -y less\n",
    );
    write(
        root,
        "images/app/packages.lock",
        &format!(
            "bases:\n  debian:bookworm:\n    digest: {digest}\n    packages:\n      less: 590-2\n"
        ),
    );
    write(root, "images/solo/image.yml", "tags: ['3']\n");
    write(root, "images/solo/Dockerfile", "FROM alpine:3\n");
}

#[test]
fn a_locked_tag_with_an_injected_rootfs_copy_is_pinned_and_its_graph_names_the_pinned_base() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let digest = format!("sha256:{}", "3".repeat(64));
    project(root, &digest);
    let prepared = Prepared::new(root, &|_| None, Options::default()).unwrap();
    let tag = |image: &str| {
        prepared
            .rendered
            .tags
            .iter()
            .find(|tag| tag.image == image)
            .unwrap()
    };

    // The rootfs `COPY` after the pinned `FROM`; the `COPY --from` keeps its tag.
    let base = tag("base");
    assert!(base.rootfs_injected);
    assert_eq!(
        base.dockerfile,
        format!(
            "FROM debian:bookworm@{digest}\nCOPY --chown=0:0 rootfs/ /\nCOPY --from=debian:bookworm /etc/os-release /os-release\nRUN apt-get update && apt-get install -y curl=7.88.1-10\n"
        )
    );
    // The parsed Dockerfile is the pinned one, without the injected line.
    assert_eq!(
        base.parsed.text(),
        format!(
            "FROM debian:bookworm@{digest}\nCOPY --from=debian:bookworm /etc/os-release /os-release\nRUN apt-get update && apt-get install -y curl=7.88.1-10\n"
        )
    );
    assert_eq!(
        tag("app").dockerfile,
        "FROM base:1\nRUN apt-get install -y less=590-2\n"
    );

    // The graph is the one the pinned Dockerfiles give when built from scratch.
    let inputs: Vec<NodeInput<'_>> = prepared
        .rendered
        .tags
        .iter()
        .map(|tag| NodeInput {
            id: NodeId::new(&tag.image, &tag.tag),
            dockerfile: &tag.parsed,
            source: display_path(root, &tag.dockerfile_source.path),
        })
        .collect();
    let rebuilt = Graph::build(&prepared.project, &inputs, None).unwrap();
    let graph = &prepared.graph;
    assert_eq!(graph.nodes, rebuilt.nodes);
    assert_eq!(graph.parents, rebuilt.parents);
    assert_eq!(graph.externals, rebuilt.externals);
    assert_eq!(graph.order, rebuilt.order);
    let node = graph.index_of(&NodeId::new("base", "1")).unwrap();
    let externals: Vec<(&str, Option<&str>)> = graph.externals[node]
        .iter()
        .map(|e| (e.reference.as_str(), e.digest.as_deref()))
        .collect();
    let pinned = format!("debian:bookworm@{digest}");
    assert_eq!(
        externals,
        [
            ("debian:bookworm", None),
            (pinned.as_str(), Some(digest.as_str()))
        ]
    );
    let app = graph.index_of(&NodeId::new("app", "2")).unwrap();
    assert_eq!(
        graph.parent_nodes(app).into_iter().collect::<Vec<_>>(),
        [node]
    );
}
