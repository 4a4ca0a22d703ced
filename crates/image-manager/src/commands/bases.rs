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

use super::{Context, Prepared, plural};
use crate::registry::Session;

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
    context: &Context<'_>,
    prepared: &Prepared,
    options: &mut PlanOptions,
    mode: Mode,
    session: &mut Option<Session>,
) -> anyhow::Result<Result<Bases, im_diag::Diagnostics>> {
    let wanted = match im_plan::external_bases(&prepared.project, &prepared.graph, options) {
        Ok(wanted) => wanted,
        Err(diagnostics) => return Ok(Err(diagnostics)),
    };
    let mirrors = mirrors(&prepared.project.settings);
    let mut record = match Record::load(&context.dist) {
        Ok(record) => record,
        Err(error) => {
            return Ok(Err(Diagnostic::error(error_chain(&error))
                .with_help("delete the file; the next build resolves every base again")
                .into()));
        }
    };
    let mut fallbacks = Vec::new();
    let resolution = if wanted.is_empty() {
        Resolution::default()
    } else if mode == Mode::Offline {
        Resolution::from_record(&record, &wanted)
    } else {
        let session = session_for(session, &prepared.project.settings)?;
        let mut resolution = session.run(im_bases::resolve_all(
            session.client(),
            &wanted,
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
            context.printer.status(
                "Resolved",
                plural(resolution.resolved.len(), "external base"),
            );
        }
        resolution
    };
    for (reference, resolved) in &resolution.resolved {
        options.external_digests.insert(
            reference.clone(),
            resolved.platforms.clone().into_iter().collect(),
        );
    }
    Ok(Ok(Bases {
        resolution,
        mode,
        fallbacks,
        mirrors,
        cache: BaseCache::new(context.root.join(CACHE_DIR)),
    }))
}

fn session_for<'a>(
    session: &'a mut Option<Session>,
    settings: &Settings,
) -> anyhow::Result<&'a Session> {
    if session.is_none() {
        *session = Some(Session::new(settings)?);
    }
    Ok(session.as_ref().expect("just made"))
}

/// An external base as one node uses it: the reference as written and the platform.
pub type Need = (String, Platform);

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

    /// Pulls the archive of every (reference, platform) in `needed` that is not cached, a
    /// few at a time; offline, only the cache is used. Each pair gets its archive or why not.
    pub fn pull(
        &self,
        context: &Context<'_>,
        settings: &Settings,
        session: &mut Option<Session>,
        needed: &BTreeSet<Need>,
    ) -> anyhow::Result<BTreeMap<Need, Result<PathBuf, Unavailable>>> {
        let mut out = BTreeMap::new();
        let mut to_pull = Vec::new();
        for (reference, platform) in needed {
            let key = (reference.clone(), platform.clone());
            if let Some(error) = self.resolution.failed.get(reference) {
                out.insert(key, Err(unavailable(error)));
                continue;
            }
            let Some(digest) = self.resolution.digest(reference, platform) else {
                let error = BaseError::NoPlatform {
                    reference: reference.clone(),
                    platform: platform.to_string(),
                    available: self.resolution.resolved[reference]
                        .platforms
                        .keys()
                        .cloned()
                        .collect(),
                };
                out.insert(key, Err(unavailable(&error)));
                continue;
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
        let mut by_digest: BTreeMap<String, Vec<(Need, im_registry::Platform)>> = BTreeMap::new();
        for (key, wanted) in to_pull {
            let digest = self
                .resolution
                .digest(&key.0, &wanted)
                .expect("checked above")
                .to_owned();
            by_digest.entry(digest).or_default().push((key, wanted));
        }
        let session = session_for(session, settings)?;
        let client = session.client();
        let printer = context.printer;
        let results: Vec<(Vec<Need>, PullResult)> = session.run(
            futures_util::stream::iter(by_digest.into_values().map(|pairs| async move {
                let ((reference, _), wanted) = &pairs[0];
                let resolved = &self.resolution.resolved[reference];
                let result = self
                    .cache
                    .pull(client, reference, resolved, wanted, &self.mirrors)
                    .await;
                if let Ok((_, bytes)) = &result {
                    printer.status(
                        "Pulled",
                        format!(
                            "{reference} ({}) {} ({})",
                            pairs[0].0.1,
                            self.resolution
                                .digest(reference, wanted)
                                .unwrap_or_default(),
                            human_bytes(*bytes)
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

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn human_bytes(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64;
    if bytes >= 1 << 20 {
        format!("{:.1} MB", value / 1_048_576.0)
    } else if bytes >= 1 << 10 {
        format!("{:.1} kB", value / 1024.0)
    } else if bytes == 0 {
        "cached".to_owned()
    } else {
        format!("{bytes} B")
    }
}
