//! `outdated` for `source:` images: the ref now points at another commit than the last build
//! used (a branch moved, a tag was moved), or the repository has tags newer than the one
//! `ref:` names, read with the image's version scheme.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use im_plan::Ledger;
use im_project::VersionScheme;
use im_render::upstream::ResolvedSource;
use rayon::prelude::*;
use serde::Serialize;

use crate::Prepared;

/// A `source:` image whose upstream moved on.
#[derive(Debug, Clone, Serialize)]
pub struct MovedSource {
    pub image: String,
    pub git: String,
    #[serde(rename = "ref")]
    pub reference: String,
    /// `branch`, `tag` or `commit`.
    pub kind: String,
    /// The commit the last build used.
    pub built: String,
    /// The commit `ref` points at now, when it differs from `built`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// Tags newer than `ref` (by the image's version scheme), oldest first: moving `ref:` to
    /// one is an edit of `image.yml`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub newer_tags: Vec<String>,
    /// What a refresh rebuilds when `ref` moved (the image's tags and their descendants).
    pub nodes: Vec<String>,
}

/// A repository `outdated` could not ask.
#[derive(Debug, Clone, Serialize)]
pub struct UnreachableSource {
    pub image: String,
    pub git: String,
    pub error: String,
}

/// The moved sources among the `needed` nodes, and the repositories that did not answer.
pub fn check(
    prepared: &Prepared,
    ledger: &Ledger,
    dist: &Path,
    needed: &BTreeSet<usize>,
) -> (Vec<MovedSource>, Vec<UnreachableSource>) {
    let graph = &prepared.graph;
    // One entry per definition with a source (several upstream versions of one image are
    // several): its image, its checkout, its needed nodes.
    let mut work: Vec<(&str, &Arc<ResolvedSource>, BTreeSet<usize>)> = Vec::new();
    for tag in &prepared.rendered.tags {
        let Some(source) = &tag.source else {
            continue;
        };
        let Some(node) = graph.index_of(&im_graph::NodeId::new(&tag.image, &tag.tag)) else {
            continue;
        };
        if !needed.contains(&node) {
            continue;
        }
        match work
            .iter_mut()
            .find(|(_, seen, _)| Arc::ptr_eq(seen, source))
        {
            Some((_, _, nodes)) => {
                nodes.insert(node);
            }
            None => work.push((&tag.image, source, BTreeSet::from([node]))),
        }
    }
    let checker = Checker {
        prepared,
        ledger,
        dist,
        needed,
    };
    let results: Vec<Result<Option<MovedSource>, UnreachableSource>> = work
        .par_iter()
        .map(|(image, source, nodes)| checker.check(image, source, nodes))
        .collect();
    let mut moved = Vec::new();
    let mut unreachable = Vec::new();
    for result in results {
        match result {
            Ok(Some(found)) => moved.push(found),
            Ok(None) => {}
            Err(error) => unreachable.push(error),
        }
    }
    (moved, unreachable)
}

/// What checking one source compares with.
struct Checker<'a> {
    prepared: &'a Prepared,
    ledger: &'a Ledger,
    dist: &'a Path,
    needed: &'a BTreeSet<usize>,
}

impl Checker<'_> {
    /// The commit the last build of one of `nodes` used (from its key inputs).
    fn built(&self, nodes: &BTreeSet<usize>) -> Option<String> {
        let project = &self.prepared.project;
        let graph = &self.prepared.graph;
        nodes.iter().find_map(|&node| {
            let id = &graph.nodes[node];
            let tag = project.tag_of(&id.image, &id.tag)?;
            tag.platforms.iter().find_map(|platform| {
                let name = im_plan::ledger::entry_name(&id.to_string(), &platform.to_string());
                let entry = self.ledger.nodes.get(&name)?;
                let inputs = im_plan::ledger::load_inputs(self.dist, &entry.key)?;
                inputs.source.get("commit").cloned()
            })
        })
    }

    fn check(
        &self,
        image: &str,
        source: &ResolvedSource,
        nodes: &BTreeSet<usize>,
    ) -> Result<Option<MovedSource>, UnreachableSource> {
        let project = &self.prepared.project;
        let graph = &self.prepared.graph;
        let unreachable = |error: String| UnreachableSource {
            image: image.to_owned(),
            git: source.git.clone(),
            error,
        };
        // Never built: nothing to compare.
        let Some(built) = self.built(nodes) else {
            return Ok(None);
        };
        // A tag ref: one listing of the tags says where it points and what is newer. A
        // branch rendering asked about already; a commit does not move.
        let (now, newer_tags) = if source.kind == "tag" {
            let tags = im_source::remote::tags(&source.git)
                .map_err(|error| unreachable(im_source::git::message(&error)))?;
            let Some(now) = tags
                .iter()
                .find(|(name, _)| *name == source.reference)
                .map(|(_, commit)| commit.clone())
            else {
                return Err(unreachable(format!(
                    "the repository has no tag `{}` any more",
                    source.reference
                )));
            };
            let scheme = project
                .image(image)
                .map_or(VersionScheme::Semver, |image| project.version_scheme(image));
            let names = tags.into_iter().map(|(name, _)| name);
            (now, newer(&scheme, &source.reference, names))
        } else if source.kind == "commit" || source.asked {
            (source.commit.clone(), Vec::new())
        } else {
            // The branch's repository could not be reached while rendering: once more.
            let resolved = im_source::remote::resolve(&source.git, &source.reference)
                .map_err(|error| unreachable(error.to_string()))?;
            (resolved.commit, Vec::new())
        };
        if now == built && newer_tags.is_empty() {
            return Ok(None);
        }
        let moved = now != built;
        let rebuilds: Vec<String> = if moved {
            let all = im_plan::targets::with_descendants(graph, nodes);
            graph
                .order
                .iter()
                .filter(|node| all.contains(node) && self.needed.contains(node))
                .map(|&node| graph.nodes[node].to_string())
                .collect()
        } else {
            Vec::new()
        };
        Ok(Some(MovedSource {
            image: image.to_owned(),
            git: source.git.clone(),
            reference: source.reference.clone(),
            kind: source.kind.to_owned(),
            built,
            now: moved.then_some(now),
            newer_tags,
            nodes: rebuilds,
        }))
    }
}

/// The tags newer than `current` under `scheme`, oldest first. A `v` in front (`v1.2.3`) is
/// read past, and only tags written the same way (with or without it) count.
pub fn newer(
    scheme: &VersionScheme,
    current: &str,
    tags: impl Iterator<Item = String>,
) -> Vec<String> {
    let split = |tag: &str| match tag.strip_prefix('v') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => (true, rest.to_owned()),
        _ => (false, tag.to_owned()),
    };
    let (prefixed, bare) = split(current);
    let Some(version) = scheme.parse_tag(&bare) else {
        return Vec::new();
    };
    let mut found: Vec<(im_project::version::Version, String)> = tags
        .filter_map(|tag| {
            let (has_v, rest) = split(&tag);
            let parsed = scheme.parse_tag(&rest)?;
            (has_v == prefixed && parsed > version && !parsed.is_prerelease())
                .then_some((parsed, tag))
        })
        .collect();
    found.sort();
    found.dedup_by(|a, b| a.1 == b.1);
    found.into_iter().map(|(_, tag)| tag).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_tags_follow_the_scheme_and_the_v() {
        let tags = [
            "v1.2.2",
            "v1.2.3",
            "v1.3.0",
            "v1.10.0",
            "1.11.0",
            "v2.0.0-rc1",
            "latest",
            "v1.2.10",
        ]
        .map(str::to_owned);
        assert_eq!(
            newer(&VersionScheme::Semver, "v1.2.3", tags.clone().into_iter()),
            ["v1.2.10", "v1.3.0", "v1.10.0"]
        );
        assert_eq!(
            newer(&VersionScheme::Semver, "1.2.3", tags.into_iter()),
            ["1.11.0"]
        );
        assert!(newer(&VersionScheme::Semver, "main", std::iter::empty()).is_empty());
    }
}
