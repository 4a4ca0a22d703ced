//! Filling an [`im_report::Site`] from `dist/`, the project model, the ledger, the records
//! of `test` and `lint`, SBOMs and, when asked, the registry. Tags are gathered in parallel;
//! only built platforms open their archive.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use im_plan::ledger::{Ledger, entry_name};
use im_project::Project;
use im_render::dist::{INDEX_FILE, Index, IndexTag};
use im_report::model::{
    Image, Layer, LintFinding, OutdatedBase, PlatformBuild, RegistryDigest, Sbom, Site, Tag,
    TestResult, TestRun,
};
use rayon::prelude::*;
use serde_json::Value;

use super::records::{TestResults, load_lint};
use super::{ReportError, when};
use crate::registry::{Session, Target};

/// Outdated external bases, when another command recorded them: `{"bases": [{"reference",
/// "current", "latest", "affected": ["image:tag", ...]}]}`.
pub const OUTDATED_FILE: &str = "outdated.json";

/// What [`gather`] reads.
pub struct Gather<'a> {
    pub dist: &'a Path,
    pub project: &'a Project,
    /// The project's name for titles.
    pub name: String,
    /// Ask this registry for the digest of every tag and alias.
    pub registry: Option<(&'a Target, &'a Session)>,
    /// When the report is made (seconds since the epoch).
    pub now: i64,
    /// Only these image tags: `name`, `name:tag`, `name:alias` or globs; none means all.
    pub targets: &'a [String],
}

/// Everything known about the project, as the report shows it.
pub fn gather(input: &Gather<'_>) -> Result<Site, ReportError> {
    let index_path = input.dist.join(INDEX_FILE);
    let bytes = match fs_err::read(&index_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::NoIndex { path: index_path });
        }
        Err(source) => {
            return Err(ReportError::Index {
                path: index_path,
                source,
            });
        }
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|source| ReportError::BadIndex {
        path: index_path.clone(),
        source,
    })?;
    let ledger = Ledger::load(input.dist)?;
    let tests = TestResults::load(input.dist);
    let lint = load_lint(input.dist);
    let mut used_by: HashMap<&str, Vec<String>> = HashMap::new();
    for [from, to] in &index.edges {
        used_by.entry(from.as_str()).or_default().push(to.clone());
    }
    let mut findings: HashMap<String, Vec<LintFinding>> = HashMap::new();
    for finding in lint.iter().flatten() {
        let text = |key: &str| finding.get(key).and_then(Value::as_str).unwrap_or_default();
        let place = finding.get("location");
        let location = match place.and_then(|p| p.get("line")).and_then(Value::as_u64) {
            Some(line) => format!(
                "{}:{line}",
                place
                    .and_then(|p| p.get("file"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ),
            None => place
                .and_then(|p| p.get("file"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        let model = LintFinding {
            rule: text("rule").to_owned(),
            level: text("level").to_owned(),
            message: text("message").to_owned(),
            location,
            help_uri: finding
                .get("help_uri")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        for tag in finding
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(tag) = tag.as_str() {
                findings
                    .entry(tag.to_owned())
                    .or_default()
                    .push(model.clone());
            }
        }
    }
    let context = TagContext {
        dist: input.dist,
        project: input.project,
        ledger: &ledger,
        tests: tests.as_ref(),
        used_by: &used_by,
        findings: &findings,
    };
    let selection = Selection::new(input.targets)?;
    let mut images: Vec<Image> = index
        .images
        .par_iter()
        .map(|image| Image {
            name: image.name.clone(),
            definitions: image.definitions.clone(),
            aliases: image.aliases.clone(),
            tags: image
                .tags
                .iter()
                .filter(|tag| selection.keeps(&image.name, tag))
                .map(|tag| context.tag(&image.name, tag))
                .collect(),
        })
        .filter(|image| !image.tags.is_empty())
        .collect();
    if images.is_empty() && !input.targets.is_empty() {
        return Err(ReportError::NoMatch {
            targets: input.targets.join(" "),
        });
    }
    images.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some((target, session)) = input.registry {
        registry_digests(&mut images, target, session);
    }
    Ok(Site {
        project: input.name.clone(),
        generated_at: when(input.now),
        images,
        registry: input.registry.map(|(target, _)| target.url()),
        outdated: outdated(input.dist),
        external_bases: index.external_bases,
        tests_recorded: tests.is_some(),
        lint_recorded: lint.is_some(),
    })
}

/// Which tags the targets name.
struct Selection(Vec<globset::GlobMatcher>);

impl Selection {
    fn new(targets: &[String]) -> Result<Selection, ReportError> {
        targets
            .iter()
            .map(|target| {
                globset::Glob::new(target)
                    .map(|glob| glob.compile_matcher())
                    .map_err(|error| ReportError::BadTarget {
                        target: target.clone(),
                        message: error.to_string(),
                    })
            })
            .collect::<Result<_, _>>()
            .map(Selection)
    }

    fn keeps(&self, image: &str, tag: &IndexTag) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|m| {
                m.is_match(image)
                    || std::iter::once(&tag.name)
                        .chain(&tag.aliases)
                        .any(|t| m.is_match(format!("{image}:{t}")))
            })
    }
}

struct TagContext<'a> {
    dist: &'a Path,
    project: &'a Project,
    ledger: &'a Ledger,
    tests: Option<&'a TestResults>,
    used_by: &'a HashMap<&'a str, Vec<String>>,
    findings: &'a HashMap<String, Vec<LintFinding>>,
}

impl TagContext<'_> {
    fn tag(&self, image: &str, tag: &IndexTag) -> Tag {
        let node = format!("{image}:{}", tag.name);
        let model = self.project.tag_of(image, &tag.name);
        let dir = self.dist.join(image).join(&tag.name);
        let mut labels: Vec<(String, String)> = self
            .project
            .settings
            .labels
            .resolve(image, &tag.name)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let builds: Vec<PlatformBuild> = tag
            .platforms
            .iter()
            .map(|platform| {
                let (build, built_labels) = self.build(&node, platform);
                if let Some(built) = built_labels
                    && !built.is_empty()
                {
                    labels = built;
                }
                build
            })
            .collect();
        Tag {
            name: tag.name.clone(),
            variant: tag.variant.clone(),
            base_tag: tag.base_tag.clone(),
            aliases: tag.aliases.clone(),
            platforms: tag.platforms.clone(),
            depends_on: tag.depends_on.clone(),
            used_by: self.used_by.get(node.as_str()).cloned().unwrap_or_default(),
            external: tag.external.clone(),
            versions: model
                .map(|t| {
                    t.versions
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            variables: model
                .map(|t| {
                    t.variables
                        .iter()
                        .map(|(k, v)| {
                            let text = match &**v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (k.clone(), text)
                        })
                        .collect()
                })
                .unwrap_or_default(),
            dockerfile: fs_err::read_to_string(dir.join("Dockerfile")).ok(),
            template: tag.sources.dockerfile.clone(),
            dockerfile_kind: tag.sources.dockerfile_kind.clone(),
            upstream: tag
                .sources
                .upstream
                .as_ref()
                .map(|u| (u.git.clone(), u.reference.clone(), u.commit.clone())),
            test_source: tag.sources.test.clone(),
            labels,
            builds,
            tests: self.tests(&node, &tag.platforms),
            lint: self.findings.get(&node).cloned().unwrap_or_default(),
            registry: Vec::new(),
        }
    }

    /// One platform's last build, and the labels of its image when it has one.
    fn build(&self, node: &str, platform: &str) -> (PlatformBuild, Option<Labels>) {
        let Some(entry) = self.ledger.nodes.get(&entry_name(node, platform)) else {
            return (
                PlatformBuild {
                    platform: platform.to_owned(),
                    ..PlatformBuild::default()
                },
                None,
            );
        };
        let archive = self.dist.join(&entry.output);
        let (layers, labels) = read_archive(&archive).unwrap_or_default();
        let sbom = archive
            .parent()
            .and_then(|dir| sbom(self.dist, dir, &entry.digest));
        (
            PlatformBuild {
                platform: platform.to_owned(),
                key: Some(entry.key.clone()),
                digest: Some(entry.digest.clone()),
                built_at: Some(entry.built_at),
                built_at_text: Some(when(entry.built_at)),
                duration_ms: Some(entry.duration_ms),
                builder: Some(entry.builder.clone()).filter(|b| !b.is_empty()),
                reasons: entry.reasons.clone(),
                bases: entry
                    .bases
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                layers,
                sbom,
            },
            Some(labels),
        )
    }

    fn tests(&self, node: &str, platforms: &[String]) -> Vec<TestRun> {
        let Some(tests) = self.tests else {
            return Vec::new();
        };
        platforms
            .iter()
            .filter_map(|platform| {
                let entry = tests.images.get(&format!("{node} {platform}"))?;
                let report = &entry.report;
                let results = report
                    .get("results")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|result| TestResult {
                        name: test_name(result),
                        pass: result.get("pass").and_then(Value::as_bool).unwrap_or(false),
                        message: result
                            .get("failures")
                            .and_then(|f| f.get(0))
                            .and_then(|f| f.get("message"))
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    })
                    .collect();
                Some(TestRun {
                    platform: platform.clone(),
                    driver: report
                        .get("driver")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    seconds: report
                        .get("duration")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
                    ran_at: Some(when(entry.ran_at)),
                    error: report
                        .get("error")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    results,
                })
            })
            .collect()
    }
}

/// `Command Test: runs` as container-structure-test names it.
fn test_name(result: &Value) -> String {
    if let Some(full) = result.get("full_name").and_then(Value::as_str) {
        return full.to_owned();
    }
    let name = result
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = result
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() || name.is_empty() {
        format!("{kind}{name}")
    } else {
        format!("{kind}: {name}")
    }
}

/// Label name → value, in order.
type Labels = Vec<(String, String)>;

/// The layers and labels of the image in a platform archive.
fn read_archive(archive: &Path) -> Option<(Vec<Layer>, Labels)> {
    let opened = im_oci::OciArchive::open(archive).ok()?;
    let image = opened.image().ok()?;
    let layers = image
        .manifest
        .layers()
        .iter()
        .map(|layer| Layer {
            digest: layer.digest().to_string(),
            size: layer.size(),
            media_type: layer.media_type().to_string(),
        })
        .collect();
    let config: Value =
        serde_json::from_slice(&opened.read_blob(&image.config_digest).ok()?).ok()?;
    let labels = config
        .get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Some((layers, labels))
}

/// The first current SBOM next to an archive of the image `digest`.
fn sbom(dist: &Path, dir: &Path, digest: &str) -> Option<Sbom> {
    let record = im_sbom::Record::load(dir).ok()?;
    im_sbom::SbomFormat::ALL.into_iter().find_map(|format| {
        let entry = record.current(dir, format, digest)?;
        let path = dir.join(&entry.file);
        let value: Value = serde_json::from_slice(&fs_err::read(&path).ok()?).ok()?;
        let packages = im_sbom::list_packages(format, &value).ok()?;
        Some(Sbom {
            format: format.name().to_owned(),
            file: path
                .strip_prefix(dist)
                .unwrap_or(&path)
                .display()
                .to_string(),
            packages: packages
                .into_iter()
                .map(|p| im_report::model::Package {
                    name: p.name,
                    version: p.version,
                    kind: p.kind,
                })
                .collect(),
        })
    })
}

/// `dist/outdated.json`, when some command wrote it.
fn outdated(dist: &Path) -> Option<Vec<OutdatedBase>> {
    let bytes = fs_err::read(dist.join(OUTDATED_FILE)).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let bases = value.get("bases").unwrap_or(&value).as_array()?;
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(
        bases
            .iter()
            .map(|base| OutdatedBase {
                reference: text(base, "reference"),
                current: text(base, "current"),
                latest: text(base, "latest"),
                affected: base
                    .get("affected")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            })
            .collect(),
    )
}

/// The digest of every tag and alias in the registry, 16 requests at a time.
fn registry_digests(images: &mut [Image], target: &Target, session: &Session) {
    use futures_util::StreamExt as _;
    let mut wanted: Vec<(usize, usize, String, String)> = Vec::new();
    for (i, image) in images.iter().enumerate() {
        for (t, tag) in image.tags.iter().enumerate() {
            for name in std::iter::once(&tag.name).chain(&tag.aliases) {
                wanted.push((i, t, image.name.clone(), name.clone()));
            }
        }
    }
    let client = session.client();
    let answers: BTreeMap<(usize, usize, String), RegistryDigest> = session.run(
        futures_util::stream::iter(wanted)
            .map(|(i, t, image, tag)| async move {
                let shown = format!("{image}:{tag}");
                let digest = match target.reference(&image, &tag) {
                    Ok(reference) => client
                        .resolve_digest(&reference)
                        .await
                        .map(|d| d.map(|d| d.to_string()))
                        .map_err(|e| im_diag::error_chain(&e)),
                    Err(e) => Err(e.to_string()),
                };
                let (digest, error) = match digest {
                    Ok(digest) => (digest, None),
                    Err(error) => (None, Some(error)),
                };
                (
                    (i, t, tag),
                    RegistryDigest {
                        reference: shown,
                        digest,
                        error,
                    },
                )
            })
            .buffer_unordered(16)
            .collect(),
    );
    for ((i, t, _), answer) in answers {
        images[i].tags[t].registry.push(answer);
    }
}
