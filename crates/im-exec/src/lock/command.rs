//! `lock`: writes each image's `packages.lock` from what its Dockerfiles install.
//!
//! 1. What is needed: for each lock file, each external base its tags install from, the
//!    packages named and the platforms built.
//! 2. `--check` compares that with the locks and stops there (no registry, no container).
//! 3. Otherwise each base whose lock is incomplete (every base, with `--update`) is resolved
//!    through the registry client — its tag for `--update` and new bases, the locked digest
//!    otherwise — pulled once into the base cache the builds share, and probed: one container
//!    per base and platform asks the image's own package manager for the version an install
//!    takes ([`im_lock::probe`]).
//! 4. Each lock is written atomically when what it pins changed. A package the base's sources
//!    do not have, or that has different versions on two platforms, is an error naming the
//!    template line that installs it; nothing is written then.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use im_diag::{Diagnostic, Diagnostics, Location};
use im_lock::{BaseLock, LockFile};
use im_oci::Platform;
use im_structure_test::runtime::RunSpec;
use im_structure_test::{Runtime, RuntimeKind};
use rayon::prelude::*;
use serde::Serialize;

use super::{lock_path, read_lock, stage_bases};
use crate::bases::{Mode as BasesMode, resolve_references};
use crate::{ExecContext, Prepared, error_chain, plural};

/// What `lock` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Adds what is missing, keeps what is locked, drops what nothing uses.
    Write,
    /// Resolves every base and package again.
    Update,
    /// Writes nothing; reports locks that `lock` would change.
    Check,
}

/// `lock`'s options.
#[derive(Debug, Clone)]
pub struct LockOptions {
    pub mode: Mode,
    /// Only the locks of these images (every image's when empty).
    pub images: BTreeSet<String>,
    /// The container runtime to probe in (the first usable when `None`).
    pub runtime: Option<RuntimeKind>,
    /// What `_meta.generator` says.
    pub generator: String,
}

/// What `lock` did, for people and `--format json`.
#[derive(Debug, Default, Serialize)]
pub struct LockReport {
    pub files: Vec<FileReport>,
    /// Containers started to read versions (at most one per base and platform).
    pub containers: usize,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The lock file, relative to the project.
    pub path: String,
    /// `created`, `updated`, `unchanged`, or with `--check` `stale`/`missing`/`current`.
    pub status: &'static str,
    pub bases: Vec<BaseReport>,
    /// With `--check`: what differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BaseReport {
    pub reference: String,
    pub digest: Option<String>,
    pub codename: Option<String>,
    pub packages: usize,
}

impl LockReport {
    /// Whether `--check` found a lock to change.
    pub fn stale(&self) -> bool {
        self.files
            .iter()
            .any(|file| matches!(file.status, "stale" | "missing"))
    }
}

/// One lock file's needs: base → package → where it is first installed.
#[derive(Debug, Default)]
struct Needs {
    shown: PathBuf,
    bases: BTreeMap<String, BTreeMap<String, Location>>,
    /// Base → the platforms its tags are built for.
    platforms: BTreeMap<String, BTreeSet<Platform>>,
}

/// Runs `lock` over `prepared` (rendered with `skip_locks`).
pub fn lock(
    exec: &ExecContext<'_>,
    prepared: &Prepared,
    options: &LockOptions,
) -> anyhow::Result<LockReport> {
    let needs = needs(prepared, &options.images);
    let mut existing: BTreeMap<PathBuf, Option<LockFile>> = BTreeMap::new();
    let mut errors = Diagnostics::new();
    for (path, need) in &needs {
        match read_lock(&prepared.project, path, &need.shown) {
            Ok(lock) => {
                existing.insert(path.clone(), lock);
            }
            Err(found) => errors.extend(found),
        }
    }
    if errors.has_errors() {
        return Err(errors.into());
    }
    if options.mode == Mode::Check {
        return Ok(check(&needs, &existing));
    }
    let (probed, containers) = probe_bases(exec, prepared, options, &needs, &existing)?;
    let mut report = LockReport {
        containers,
        ..LockReport::default()
    };
    let mut writes = Vec::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| crate::steps::rfc3339(i64::try_from(d.as_secs()).ok()?))
        .unwrap_or_default();
    for (path, need) in &needs {
        let old = existing[path].as_ref();
        let mut new = LockFile {
            // Written by `generate` for a `source:` image; `lock` keeps it.
            source: old.and_then(|lock| lock.source.clone()),
            ..LockFile::default()
        };
        for (base, packages) in &need.bases {
            let kept = old
                .and_then(|lock| lock.base(base))
                .filter(|_| options.mode == Mode::Write);
            let fresh = probed.get(base);
            let mut entry = BaseLock {
                digest: kept
                    .and_then(|k| k.digest.clone())
                    .or_else(|| fresh.map(|f| f.digest.clone())),
                codename: kept
                    .and_then(|k| k.codename.clone())
                    .or_else(|| fresh.and_then(|f| f.codename.clone())),
                ..BaseLock::default()
            };
            for package in packages.keys() {
                let version = kept
                    .and_then(|k| k.packages.get(package))
                    .or_else(|| fresh.and_then(|f| f.versions.get(package)));
                if let Some(version) = version {
                    entry.packages.insert(package.clone(), version.clone());
                }
            }
            new.bases.insert(base.clone(), entry);
        }
        let status = match old {
            None => "created",
            Some(old) if old.same_pins(&new) => "unchanged",
            Some(_) => "updated",
        };
        new.meta = match old {
            Some(old) if status == "unchanged" => old.meta.clone(),
            _ => BTreeMap::from([
                ("generator".to_owned(), options.generator.clone()),
                ("generated".to_owned(), now.clone()),
            ]),
        };
        report
            .files
            .push(file_report(need, &new, status, Vec::new()));
        if status != "unchanged" {
            writes.push((path.clone(), new.to_yaml()));
        }
    }
    // Every lock is complete before any is written: an error above leaves them all as they were.
    for (path, text) in writes {
        im_render::output::write_atomic(&path, text.as_bytes(), Some(0o644), None)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn file_report(
    need: &Needs,
    lock: &LockFile,
    status: &'static str,
    problems: Vec<String>,
) -> FileReport {
    FileReport {
        path: need.shown.display().to_string(),
        status,
        bases: lock
            .bases
            .iter()
            .map(|(reference, base)| BaseReport {
                reference: reference.clone(),
                digest: base.digest.clone(),
                codename: base.codename.clone(),
                packages: base.packages.len(),
            })
            .collect(),
        problems,
    }
}

/// What each lock file needs, for the images selected.
fn needs(prepared: &Prepared, images: &BTreeSet<String>) -> BTreeMap<PathBuf, Needs> {
    let graph = &prepared.graph;
    let bases = stage_bases(graph, &prepared.rendered);
    let rendered_tags: std::collections::HashMap<(&str, &str), &im_render::RenderedTag> = prepared
        .rendered
        .tags
        .iter()
        .map(|tag| ((tag.image.as_str(), tag.tag.as_str()), tag))
        .collect();
    let mut out: BTreeMap<PathBuf, Needs> = BTreeMap::new();
    for (node, id) in graph.nodes.iter().enumerate() {
        if !images.is_empty() && !images.contains(&id.image) {
            continue;
        }
        let (Some(tag), Some(rendered)) = (
            prepared.project.tag_of(&id.image, &id.tag),
            rendered_tags.get(&(id.image.as_str(), id.tag.as_str())),
        ) else {
            continue;
        };
        let (path, shown) = lock_path(&prepared.project, tag);
        let need = out.entry(path).or_insert_with(|| Needs {
            shown,
            ..Needs::default()
        });
        for arg in im_lock::package_args(&rendered.parsed) {
            if arg.unpinnable.is_some() {
                continue;
            }
            let Some(Some((base, _))) = bases[node].get(arg.stage) else {
                continue;
            };
            let location = rendered.parsed.location(
                rendered.parsed.position_of(arg.range.start),
                arg.range.len(),
            );
            need.bases
                .entry(base.clone())
                .or_default()
                .entry(arg.name.clone())
                .or_insert(location);
            need.platforms
                .entry(base.clone())
                .or_default()
                .extend(tag.platforms.iter().cloned());
        }
    }
    out
}

/// `--check`: each lock against its needs.
fn check(
    needs: &BTreeMap<PathBuf, Needs>,
    existing: &BTreeMap<PathBuf, Option<LockFile>>,
) -> LockReport {
    let mut report = LockReport::default();
    for (path, need) in needs {
        let Some(lock) = &existing[path] else {
            if !need.bases.is_empty() {
                report.files.push(FileReport {
                    path: need.shown.display().to_string(),
                    status: "missing",
                    bases: Vec::new(),
                    problems: vec!["no lock: its Dockerfiles install packages".to_owned()],
                });
            }
            continue;
        };
        let mut problems = Vec::new();
        for (base, packages) in &need.bases {
            let Some(entry) = lock.base(base) else {
                problems.push(format!("base `{base}` is not locked"));
                continue;
            };
            if entry.digest.is_none() {
                problems.push(format!("base `{base}` has no digest"));
            }
            for package in packages.keys() {
                if !entry.packages.contains_key(package) {
                    problems.push(format!("`{package}` from `{base}` is not locked"));
                }
            }
            for package in entry.packages.keys() {
                if !packages.contains_key(package) {
                    problems.push(format!(
                        "`{package}` from `{base}` is locked but not installed"
                    ));
                }
            }
        }
        for base in lock.bases.keys() {
            let canonical = im_lock::file::canonical(base);
            let used = need.bases.contains_key(base)
                || need
                    .bases
                    .keys()
                    .any(|used| canonical.is_some() && im_lock::file::canonical(used) == canonical);
            if !used {
                problems.push(format!("base `{base}` is locked but not used"));
            }
        }
        let status = if problems.is_empty() {
            "current"
        } else {
            "stale"
        };
        report.files.push(file_report(need, lock, status, problems));
    }
    report
}

/// What to probe of one base: the reference to resolve (at the locked digest unless
/// updating), the packages to read (each with where it is installed), the platforms.
type Probe = (String, BTreeMap<String, Location>, BTreeSet<Platform>);

/// What probing one base found.
#[derive(Debug)]
struct ProbedBase {
    digest: String,
    codename: Option<String>,
    versions: BTreeMap<String, String>,
}

/// Resolves, pulls and probes every base some lock needs versions of; returns what each base
/// gave and how many containers ran.
fn probe_bases(
    exec: &ExecContext<'_>,
    prepared: &Prepared,
    options: &LockOptions,
    needs: &BTreeMap<PathBuf, Needs>,
    existing: &BTreeMap<PathBuf, Option<LockFile>>,
) -> anyhow::Result<(BTreeMap<String, ProbedBase>, usize)> {
    let mut work: BTreeMap<String, Probe> = BTreeMap::new();
    for (path, need) in needs {
        let old = existing[path].as_ref();
        for (base, packages) in &need.bases {
            let entry = old.and_then(|lock| lock.base(base));
            let complete = entry.is_some_and(|entry| {
                entry.digest.is_some() && packages.keys().all(|p| entry.packages.contains_key(p))
            });
            let locked_digest = entry
                .and_then(|entry| entry.digest.clone())
                .filter(|_| options.mode == Mode::Write);
            let slot = work
                .entry(base.clone())
                .or_insert_with(|| (base.clone(), BTreeMap::new(), BTreeSet::new()));
            if let Some(digest) = locked_digest
                && !slot.0.contains('@')
            {
                slot.0 = format!("{}@{digest}", without_digest(base));
            }
            if complete && options.mode == Mode::Write {
                continue;
            }
            for (package, location) in packages {
                slot.1
                    .entry(package.clone())
                    .or_insert_with(|| location.clone());
            }
            slot.2.extend(need.platforms[base].iter().cloned());
        }
    }
    work.retain(|_, (_, packages, _)| !packages.is_empty());
    if work.is_empty() {
        return Ok((BTreeMap::new(), 0));
    }
    let settings = &prepared.project.settings;
    let wanted: BTreeMap<String, BTreeSet<Platform>> = work
        .values()
        .map(|(reference, _, platforms)| (reference.clone(), platforms.clone()))
        .collect();
    let mut session = None;
    let bases = resolve_references(exec, settings, &wanted, BasesMode::Online, &mut session)?;
    if let Some((reference, error)) = bases.resolution.failed.iter().next() {
        let mut diagnostic =
            Diagnostic::error(format!("cannot lock `{reference}`")).with_note(error_chain(error));
        if let Some(help) = error.help() {
            diagnostic = diagnostic.with_help(help);
        }
        return Err(Diagnostics::from(diagnostic).into());
    }
    let pulls: BTreeSet<(String, Platform)> = work
        .values()
        .flat_map(|(reference, _, platforms)| {
            platforms.iter().map(|p| (reference.clone(), p.clone()))
        })
        .collect();
    let archives = bases.pull(exec, settings, &mut session, &pulls)?;
    let log = exec.dist.join("lock.log");
    fs_err::create_dir_all(&exec.dist)?;
    let runtime = crate::test::container_runtime(
        exec,
        settings,
        options.runtime,
        "package version probes",
        Some(&log),
    )?;
    let jobs: Vec<(&String, &String, &BTreeMap<String, Location>, &Platform)> = work
        .iter()
        .flat_map(|(base, (reference, packages, platforms))| {
            platforms
                .iter()
                .map(move |p| (base, reference, packages, p))
        })
        .collect();
    exec.reporter.status(
        "Locking",
        &format!(
            "{} in {} ({})",
            plural(work.len(), "base"),
            plural(jobs.len(), "container"),
            runtime.kind().name()
        ),
    );
    let results: Vec<Result<(String, Platform, im_lock::probe::Probed), Diagnostic>> = jobs
        .par_iter()
        .map(|&(base, reference, packages, platform)| {
            let archive = archives
                .get(&(reference.clone(), platform.clone()))
                .and_then(|a| a.as_ref().ok())
                .ok_or_else(|| {
                    Diagnostic::error(format!("`{reference}` for {platform} could not be pulled"))
                })?;
            let probed =
                probe(runtime.as_ref(), archive, platform, packages.keys()).map_err(|e| {
                    Diagnostic::error(format!(
                        "cannot read package versions in `{reference}` for {platform}"
                    ))
                    .with_note(e)
                    .with_note(format!("the runtime's output is in {}", log.display()))
                })?;
            Ok((base.clone(), platform.clone(), probed))
        })
        .collect();
    let mut errors = Diagnostics::new();
    let mut out: BTreeMap<String, ProbedBase> = BTreeMap::new();
    let mut seen: BTreeMap<(String, String), (String, Platform)> = BTreeMap::new();
    for result in results {
        let (base, platform, probed) = match result {
            Ok(found) => found,
            Err(diagnostic) => {
                errors.push(diagnostic);
                continue;
            }
        };
        let (reference, packages, _) = &work[&base];
        for package in &probed.missing {
            errors.push(
                Diagnostic::error(format!(
                    "package `{package}` is not in the package sources of `{base}` ({platform})"
                ))
                .at(packages[package].clone())
                .with_help("check the name (`apt-cache search`, `apk search`, `dnf search` in the base), or install it from a source the Dockerfile adds first"),
            );
        }
        if probed.manager.as_deref() == Some("none") {
            errors.push(Diagnostic::error(format!(
                "`{base}` has no apt-get, apk or dnf: its packages cannot be locked"
            )));
            continue;
        }
        let resolved = &bases.resolution.resolved[reference];
        let entry = out.entry(base.clone()).or_insert_with(|| ProbedBase {
            digest: resolved.digest.clone(),
            codename: probed.codename.clone(),
            versions: BTreeMap::new(),
        });
        for (package, version) in probed.versions {
            let key = (base.clone(), package.clone());
            match seen.get(&key) {
                Some((other, other_platform)) if *other != version => {
                    errors.push(
                        Diagnostic::error(format!(
                            "`{package}` from `{base}` is {other} on {other_platform} but {version} on {platform}"
                        ))
                        .at(packages[&package].clone())
                        .with_note("one Dockerfile serves every platform, so it can pin one version only")
                        .with_help("build the platforms from a base whose package sources are in step, or install this package unpinned with a version range"),
                    );
                }
                _ => {
                    seen.insert(key, (version.clone(), platform.clone()));
                    entry.versions.insert(package, version);
                }
            }
        }
    }
    if errors.has_errors() {
        return Err(
            crate::prepare::in_templates(&prepared.project, &prepared.rendered, errors).into(),
        );
    }
    Ok((out, jobs.len()))
}

/// `repo:tag@sha256:...` → `repo:tag`.
fn without_digest(reference: &str) -> &str {
    reference
        .split_once('@')
        .map_or(reference, |(name, _)| name)
}

/// Runs the probe script in one container of `archive`.
fn probe<'a>(
    runtime: &dyn Runtime,
    archive: &Path,
    platform: &Platform,
    packages: impl Iterator<Item = &'a String>,
) -> Result<im_lock::probe::Probed, String> {
    let loaded = runtime
        .load(archive, Some(platform))
        .map_err(|e| error_chain(&e))?;
    let result = (|| {
        let mut session = runtime.session(&loaded).map_err(|e| error_chain(&e))?;
        let mut argv = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            im_lock::probe::SCRIPT.to_owned(),
            "sh".to_owned(),
        ];
        argv.extend(packages.cloned());
        let output = session
            .run(&RunSpec {
                argv,
                user: Some("0".to_owned()),
                ..RunSpec::default()
            })
            .map_err(|e| error_chain(&e));
        let closed = session.close().map_err(|e| error_chain(&e));
        let output = output?;
        closed?;
        if output.exit_code != 0 {
            let tail: Vec<&str> = output.stderr.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(match output.exit_code {
                3 => format!(
                    "the package index could not be updated:\n{}",
                    tail.join("\n")
                ),
                code => format!("the probe exited with {code}:\n{}", tail.join("\n")),
            });
        }
        Ok(im_lock::probe::parse(&output.stdout))
    })();
    let unloaded = runtime.unload(&loaded).map_err(|e| error_chain(&e));
    let probed = result?;
    unloaded?;
    Ok(probed)
}
