//! `sbom`: an SBOM of every selected built platform image, made by syft from its archive
//! (`dist/<name>/<tag>/<os>-<arch>/image.tar`) and written next to it, several at once. An
//! image whose SBOM of that format describes the image the archive holds now is skipped; a
//! node that is not built (or changed since) is an error naming the build to run first, as
//! for `push`. `push` attaches the current SBOMs to the platform manifests it pushes
//! ([`attach_sboms`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use im_build::{SystemLookup, ToolLookup as _};
use im_diag::Diagnostic;
use im_registry::ops::referrers::{Artifact, attach};
use im_registry::{Client, LocalImage, Repository};
use im_sbom::{INSTALL_HINT, Record, SbomFormat, Syft, current_sboms, image_digest};
use serde::Serialize;

use crate::context::{Environment, ExecContext};
use crate::prepare::Prepared;
use crate::{error_chain, publish};

/// What `sbom` does.
#[derive(Clone, Copy, Debug)]
pub struct SbomOptions {
    pub format: SbomFormat,
    /// SBOMs made at once.
    pub jobs: usize,
    /// Make SBOMs even where a current one exists.
    pub force: bool,
}

/// How one platform image ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SbomResult {
    /// syft ran and the SBOM was written.
    Made,
    /// The SBOM describes the image the archive holds: not made again.
    UpToDate,
    Failed,
    /// Not started: the command was interrupted.
    Skipped,
}

/// One platform image's SBOM.
#[derive(Clone, Debug, Serialize)]
pub struct NodeSbom {
    /// `name:tag`.
    pub node: String,
    pub platform: String,
    pub archive: PathBuf,
    /// The SBOM file.
    pub file: PathBuf,
    pub result: SbomResult,
    /// The manifest digest of the image the SBOM describes.
    pub image_digest: Option<String>,
    /// Packages the SBOM lists (not counting the image or its OS).
    pub packages: Option<usize>,
    pub seconds: f64,
    pub error: Option<String>,
}

/// What `sbom` did.
#[derive(Clone, Debug, Serialize)]
pub struct SbomReport {
    pub format: String,
    pub nodes: Vec<NodeSbom>,
    pub seconds: f64,
    pub interrupted: bool,
}

impl SbomReport {
    pub fn count(&self, result: SbomResult) -> usize {
        self.nodes.iter().filter(|n| n.result == result).count()
    }
}

/// syft on `PATH`, or an error saying how to install it.
pub fn find_syft(environment: &Environment) -> Result<PathBuf, Diagnostic> {
    SystemLookup::new(environment.path.clone())
        .which(Path::new("syft"))
        .ok_or_else(|| {
            Diagnostic::error("syft is not installed: `sbom` runs syft to list an image's packages")
                .with_help(INSTALL_HINT)
        })
}

/// One platform image to describe.
struct Item {
    node: String,
    image: String,
    tag: String,
    platform: String,
    archive: PathBuf,
}

/// Makes the SBOMs of the selected built nodes, `options.jobs` at a time.
pub fn make_sboms(
    exec: &ExecContext<'_>,
    prepared: &Prepared,
    targets: &[String],
    platforms: Option<&[im_project::Platform]>,
    options: SbomOptions,
) -> anyhow::Result<SbomReport> {
    let started = Instant::now();
    let syft = Syft::new(find_syft(&exec.environment)?);
    let jobs = publish::local_jobs(exec, prepared, targets, platforms)?;
    let items: Vec<Item> = jobs
        .iter()
        .flat_map(|job| {
            job.platforms
                .iter()
                .zip(&job.archives)
                .map(|(platform, archive)| Item {
                    node: job.node(),
                    image: job.image.clone(),
                    tag: job.tag.clone(),
                    platform: platform.to_string(),
                    archive: archive.clone(),
                })
        })
        .collect();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, NodeSbom)>> = Mutex::new(Vec::new());
    let workers = options.jobs.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(at) else { break };
                    let node = describe(exec, &syft, item, options);
                    done.lock().expect("sbom results").push((at, node));
                }
            });
        }
    });
    let mut nodes = done.into_inner().expect("sbom results");
    nodes.sort_by_key(|(at, _)| *at);
    Ok(SbomReport {
        format: options.format.name().to_owned(),
        nodes: nodes.into_iter().map(|(_, node)| node).collect(),
        seconds: started.elapsed().as_secs_f64(),
        interrupted: exec.cancel.is_cancelled(),
    })
}

/// Makes (or keeps) one platform image's SBOM, telling people how it went.
fn describe(exec: &ExecContext<'_>, syft: &Syft, item: &Item, options: SbomOptions) -> NodeSbom {
    let started = Instant::now();
    let dir = item.archive.parent().unwrap_or(Path::new("."));
    let mut node = NodeSbom {
        node: item.node.clone(),
        platform: item.platform.clone(),
        archive: item.archive.clone(),
        file: dir.join(options.format.file_name()),
        result: SbomResult::Skipped,
        image_digest: None,
        packages: None,
        seconds: 0.0,
        error: None,
    };
    if exec.cancel.is_cancelled() {
        return node;
    }
    let shown = format!("{} ({})", item.node, item.platform);
    match make_one(exec, syft, item, options, dir, &mut node) {
        Ok(()) => {
            let verb = if node.result == SbomResult::Made {
                "Described"
            } else {
                "Up to date"
            };
            exec.reporter.status(
                verb,
                &format!(
                    "{shown}: {} → {}",
                    crate::plural(node.packages.unwrap_or(0), "package"),
                    node.file.display()
                ),
            );
        }
        Err(error) => {
            node.result = SbomResult::Failed;
            let text = error_chain(error.as_ref());
            exec.reporter.error(&format!("{shown}: {text}"));
            node.error = Some(text);
        }
    }
    node.seconds = started.elapsed().as_secs_f64();
    node
}

fn make_one(
    exec: &ExecContext<'_>,
    syft: &Syft,
    item: &Item,
    options: SbomOptions,
    dir: &Path,
    node: &mut NodeSbom,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let digest = image_digest(&item.archive)?;
    node.image_digest = Some(digest.clone());
    let mut record = Record::load(dir)?;
    if !options.force
        && let Some(entry) = record.current(dir, options.format, &digest)
    {
        node.packages = Some(entry.packages);
        node.result = SbomResult::UpToDate;
        return Ok(());
    }
    let syft = Syft {
        log: Some(dir.join("sbom.log")),
        ..syft.clone()
    };
    let scan = syft.scan(
        &item.archive,
        options.format,
        (&item.image, &item.tag),
        &exec.cancel,
    )?;
    im_sbom::write_atomically(&node.file, &scan.bytes)?;
    record.set(options.format, &digest, &scan.bytes, scan.packages);
    record.save(dir)?;
    node.packages = Some(scan.packages);
    node.result = SbomResult::Made;
    Ok(())
}

/// What [`attach_sboms`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SbomsAttached {
    /// SBOMs attached (or found attached).
    pub attached: usize,
    /// Manifests that wrote.
    pub written: usize,
    /// SBOMs left out because they describe an earlier build of the image.
    pub stale: usize,
}

/// Attaches to each pushed platform manifest the SBOMs next to its archive that describe it
/// (as OCI 1.1 referrers, see [`im_registry::ops::referrers`]); SBOMs of an earlier build
/// are counted, not attached.
pub async fn attach_sboms(
    client: &Client,
    repository: &Repository,
    images: &[LocalImage],
    archives: &[PathBuf],
) -> anyhow::Result<SbomsAttached> {
    let mut done = SbomsAttached::default();
    for (image, archive) in images.iter().zip(archives) {
        let digest = image.root().digest();
        let sboms = current_sboms(archive, &digest.to_string())?;
        done.stale += sboms.stale.len();
        for (format, file) in sboms.current {
            let bytes = fs_err::read(&file)?;
            let artifact = Artifact {
                artifact_type: format.artifact_type().to_owned(),
                media_type: format.artifact_type().to_owned(),
                bytes: bytes.into(),
                annotations: std::collections::BTreeMap::new(),
                layer_annotations: std::collections::BTreeMap::from([(
                    "org.opencontainers.image.title".to_owned(),
                    format.file_name().to_owned(),
                )]),
            };
            let attached = attach(client, &repository.digest(digest), &artifact).await?;
            done.attached += 1;
            done.written += attached.stats.manifests_written;
        }
    }
    Ok(done)
}
