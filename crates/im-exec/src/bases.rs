//! External bases for `plan`, `why` and `build`: which references the plan needs, the digest
//! of each for every platform (asked of the registries, or read from `dist/bases.json`
//! offline), and — for `build` — their archives, pulled once per digest into
//! `.image-manager/cache/bases/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt as _;
use im_bases::{BaseCache, BaseError, Mirror, Record, Resolution};
use im_diag::Diagnostic;
use im_plan::PlanOptions;
use im_project::{Platform, Settings};

use crate::context::ExecContext;
use crate::plural;
use crate::prepare::Prepared;
use crate::registry::Session;
use im_diag::error_chain;

/// Where pulled bases are kept, under the project.
pub const CACHE_DIR: &str = ".image-manager/cache/bases";

/// How a command gets the digests of external bases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Ask the registries, then record the answers in `dist/bases.json`.
    Online,
    /// Use only `dist/bases.json` (and, for `build`, the cache).
    Offline,
}

/// The resolved bases of one plan, and the archive of each (reference, platform) a build
/// needs.
pub struct Bases {
    pub resolution: Resolution,
    pub mode: Mode,
    /// Warnings for bases whose registry could not be asked, used at the digest the last
    /// build resolved.
    pub fallbacks: Vec<Diagnostic>,
    /// The references whose registry could not be reached (whether or not an earlier digest
    /// stands in for them).
    pub unreachable: BTreeSet<String>,
    mirrors: Vec<Mirror>,
    cache: BaseCache,
}

/// The `registries:` entries with `mirror_of:`.
pub fn mirrors(settings: &Settings) -> Vec<Mirror> {
    settings
        .mirrors()
        .map(|(registry, of)| Mirror::new(&registry.url, of))
        .collect()
}

/// Resolves the external bases `options` needs and puts their digests into
/// `options.external_digests`. References that cannot be resolved are in
/// `resolution.failed`; the plan keys them without a digest.
pub fn resolve(
    context: &ExecContext<'_>,
    prepared: &Prepared,
    options: &mut PlanOptions,
    mode: Mode,
    session: &mut Option<Session>,
) -> anyhow::Result<Bases> {
    let wanted = im_plan::external_bases(&prepared.project, &prepared.graph, options)?;
    let bases = resolve_references(context, &prepared.project.settings, &wanted, mode, session)?;
    for (reference, resolved) in &bases.resolution.resolved {
        options.external_digests.insert(
            reference.clone(),
            resolved.platforms.clone().into_iter().collect(),
        );
    }
    Ok(bases)
}

/// Resolves `wanted` (reference as written → the platforms needed): through the registries
/// (mirrors first), or from `dist/bases.json` offline. A registry that cannot be reached
/// leaves a reference at the digest it resolved to before, with a warning.
pub fn resolve_references(
    context: &ExecContext<'_>,
    settings: &Settings,
    wanted: &BTreeMap<String, BTreeSet<Platform>>,
    mode: Mode,
    session: &mut Option<Session>,
) -> anyhow::Result<Bases> {
    let mirrors = mirrors(settings);
    let mut record = Record::load(&context.dist).map_err(|error| {
        Diagnostic::error(error_chain(&error))
            .with_help("delete the file; the next build resolves every base again")
    })?;
    let mut fallbacks = Vec::new();
    let mut unreachable_references = BTreeSet::new();
    let resolution = if wanted.is_empty() {
        Resolution::default()
    } else if mode == Mode::Offline {
        Resolution::from_record(&record, wanted)
    } else {
        let session = context.session_in(session, settings)?;
        let mut resolution = session.run(im_bases::resolve_all(
            session.client(),
            wanted,
            &mirrors,
            session.client().concurrency(),
        ));
        // A registry that cannot be reached (not one that answered "no") leaves the base at
        // the digest the last build used: nodes already built from it stay up to date.
        let unreachable: Vec<String> = resolution
            .failed
            .iter()
            .filter(|(_, error)| matches!(error, BaseError::Registry { .. }))
            .map(|(reference, _)| reference.clone())
            .collect();
        unreachable_references.extend(unreachable.iter().cloned());
        for reference in unreachable {
            let only = BTreeMap::from([(reference.clone(), wanted[&reference].clone())]);
            let recorded = Resolution::from_record(&record, &only);
            if let Some(known) = recorded.resolved.get(&reference) {
                let error = resolution.failed.remove(&reference).expect("listed above");
                fallbacks.push(
                    Diagnostic::warning(format!(
                        "{}; using {} as resolved before",
                        error_chain(&error),
                        known.digest
                    ))
                    .with_help("nodes that must be built from it use the pulled copy, if any"),
                );
                resolution.resolved.insert(reference, known.clone());
            }
        }
        if !resolution.resolved.is_empty() {
            record.update(&resolution.resolved);
            record.save(&context.dist)?;
        }
        for (reference, resolved) in &resolution.resolved {
            tracing::debug!(
                "base {reference}: {} from {} ({})",
                resolved.digest,
                resolved.source,
                resolved
                    .platforms
                    .iter()
                    .map(|(p, d)| format!("{p} {d}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !resolution.resolved.is_empty() {
            context.reporter.status(
                "Resolved",
                &plural(resolution.resolved.len(), "external base"),
            );
        }
        resolution
    };
    Ok(Bases {
        resolution,
        mode,
        fallbacks,
        unreachable: unreachable_references,
        mirrors,
        cache: BaseCache::new(context.root.join(CACHE_DIR)),
    })
}

/// An external base as one node uses it: the reference as written and the platform.
pub type Need = (String, Platform);

/// Every (reference, platform) the nodes `plan` builds start from or copy from.
pub fn needed(plan: &im_plan::Plan) -> BTreeSet<Need> {
    plan.nodes
        .iter()
        .filter(|node| node.action == im_plan::Action::Build)
        .flat_map(|node| {
            node.inputs
                .externals
                .keys()
                .map(|reference| (reference.clone(), node.platform.clone()))
        })
        .collect()
}

/// A pull's archive and bytes downloaded, or why it failed.
type PullResult = Result<(PathBuf, u64), BaseError>;

/// Why a (reference, platform) has no archive.
pub type Unavailable = Arc<dyn std::error::Error + Send + Sync>;

impl Bases {
    /// What cannot be resolved, as warnings (`plan`) — one per reference.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        self.resolution
            .failed
            .values()
            .map(|error| {
                let diagnostic = Diagnostic::warning(error_chain(error));
                match (self.mode, error) {
                    (Mode::Offline, BaseError::Offline { .. }) => diagnostic.with_help(
                        "its digest is not part of the build keys yet; `--refresh-bases` asks the registry",
                    ),
                    _ => match error.help() {
                        Some(help) => diagnostic.with_help(help),
                        None => diagnostic,
                    },
                }
            })
            .collect()
    }

    /// The digest `reference` has for `platform`, or why it has none.
    fn locate(&self, reference: &str, platform: &Platform) -> Result<&str, Unavailable> {
        if let Some(error) = self.resolution.failed.get(reference) {
            return Err(unavailable(error));
        }
        self.resolution.digest(reference, platform).ok_or_else(|| {
            unavailable(&BaseError::NoPlatform {
                reference: reference.to_owned(),
                platform: platform.to_string(),
                available: self.resolution.resolved[reference]
                    .platforms
                    .keys()
                    .cloned()
                    .collect(),
            })
        })
    }

    /// Where each of `needed` is, or will be once pulled, in the cache; or why it has no
    /// archive. Nothing is pulled (for `plan`).
    pub fn expected(
        &self,
        needed: &BTreeSet<Need>,
    ) -> BTreeMap<Need, Result<PathBuf, Unavailable>> {
        needed
            .iter()
            .map(|(reference, platform)| {
                let archive = self
                    .locate(reference, platform)
                    .map(|digest| self.cache.archive(digest));
                ((reference.clone(), platform.clone()), archive)
            })
            .collect()
    }

    /// Pulls the archive of every (reference, platform) in `needed` that is not cached, a
    /// few at a time; offline, only the cache is used. Each pair gets its archive or why not.
    pub fn pull(
        &self,
        context: &ExecContext<'_>,
        settings: &Settings,
        session: &mut Option<Session>,
        needed: &BTreeSet<Need>,
    ) -> anyhow::Result<BTreeMap<Need, Result<PathBuf, Unavailable>>> {
        let mut out = BTreeMap::new();
        let mut to_pull = Vec::new();
        for (reference, platform) in needed {
            let key = (reference.clone(), platform.clone());
            let digest = match self.locate(reference, platform) {
                Ok(digest) => digest,
                Err(error) => {
                    out.insert(key, Err(error));
                    continue;
                }
            };
            if self.cache.contains(digest) {
                out.insert(key, Ok(self.cache.archive(digest)));
            } else if self.mode == Mode::Offline {
                let error = BaseError::Offline {
                    reference: reference.clone(),
                    registry: self.resolution.resolved[reference].source.clone(),
                    what: "is not in the cache of pulled bases",
                };
                out.insert(key, Err(unavailable(&error)));
            } else {
                to_pull.push((key, platform.clone()));
            }
        }
        if to_pull.is_empty() {
            return Ok(out);
        }
        // One pull per digest: pairs that share one wait for the same download.
        let mut by_digest: BTreeMap<String, Vec<(Need, Platform)>> = BTreeMap::new();
        for (key, wanted) in to_pull {
            let digest = self
                .resolution
                .digest(&key.0, &wanted)
                .expect("checked above")
                .to_owned();
            by_digest.entry(digest).or_default().push((key, wanted));
        }
        let session = context.session_in(session, settings)?;
        let client = session.client();
        let reporter = context.reporter;
        let results: Vec<(Vec<Need>, PullResult)> = session.run(
            futures_util::stream::iter(by_digest.into_values().map(|pairs| async move {
                let ((reference, _), wanted) = &pairs[0];
                let resolved = &self.resolution.resolved[reference];
                let result = self
                    .cache
                    .pull(client, reference, resolved, wanted, &self.mirrors)
                    .await;
                if let Ok((_, bytes)) = &result {
                    reporter.status(
                        "Pulled",
                        &format!(
                            "{reference} ({}) {} ({})",
                            pairs[0].0.1,
                            self.resolution
                                .digest(reference, wanted)
                                .unwrap_or_default(),
                            if *bytes == 0 {
                                "cached".to_owned()
                            } else {
                                crate::human_bytes(*bytes)
                            }
                        ),
                    );
                }
                (pairs.into_iter().map(|(key, _)| key).collect(), result)
            }))
            .buffer_unordered(client.concurrency().clamp(1, 4))
            .collect(),
        );
        for (keys, result) in results {
            for key in keys {
                let value = match &result {
                    Ok((path, _)) => Ok(path.clone()),
                    Err(error) => Err(unavailable(error)),
                };
                out.insert(key, value);
            }
        }
        Ok(out)
    }
}

/// An error as a shareable source for every node that needs the same base.
fn unavailable(error: &BaseError) -> Unavailable {
    Arc::new(Message(error_chain(error)))
}

/// A message standing for an error already rendered with its causes.
#[derive(Debug)]
struct Message(String);

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}
