//! What a publishing command (`push`, `build --push`, `promote`, `manifest`, `sync`) did, per
//! image tag and in total: the status line people read, the JSON report scripts read, and the
//! exit outcome.

use std::time::Instant;

use im_registry::ops::TransferStats;
use serde::Serialize;

use super::jobs::TagJob;
use crate::context::Reporter;
use crate::registry::Session;
use crate::{human_bytes, plural};

/// How one image tag ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Result_ {
    /// Something was written.
    Pushed,
    /// The registry had everything already.
    UpToDate,
    /// The source of a copy does not exist (sync).
    Missing,
    Failed,
}

impl Result_ {
    /// As the JSON report writes it: `pushed`, `up-to-date`, `missing`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Result_::Pushed => "pushed",
            Result_::UpToDate => "up-to-date",
            Result_::Missing => "missing",
            Result_::Failed => "failed",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Result_::Pushed => "Written",
            Result_::UpToDate => "Up to date",
            Result_::Missing => "Missing",
            Result_::Failed => "Failed",
        }
    }
}

/// What happened to one image tag.
#[derive(Debug, Clone, Serialize)]
pub struct TagReport {
    /// `name:tag` in the project.
    pub node: String,
    /// The reference written (`registry/repository:tag`).
    pub reference: String,
    pub result: Result_,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    /// Every tag written or confirmed, the main one first.
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_present: usize,
    pub bytes_uploaded: u64,
    pub manifests_written: usize,
    pub manifests_present: usize,
    /// SBOMs attached to platform manifests (push) or referrers copied along (sync).
    pub sboms_attached: usize,
    /// SBOMs not attached because they describe an earlier build (push).
    pub sboms_stale: usize,
    pub error: Option<String>,
    /// The revision tag of the release tag (images with `revision: true`).
    pub revision: Option<super::revision::RevisionReport>,
}

impl TagReport {
    pub fn new(job: &TagJob, reference: String) -> Self {
        Self {
            node: job.node(),
            reference,
            result: Result_::UpToDate,
            digest: None,
            media_type: None,
            tags: Vec::new(),
            platforms: job.platforms.iter().map(ToString::to_string).collect(),
            blobs_uploaded: 0,
            blobs_mounted: 0,
            blobs_present: 0,
            bytes_uploaded: 0,
            manifests_written: 0,
            manifests_present: 0,
            sboms_attached: 0,
            sboms_stale: 0,
            error: None,
            revision: None,
        }
    }

    /// Adds what one library call did.
    pub fn add(&mut self, published: &im_registry::ops::Published) {
        let TransferStats {
            blobs_uploaded,
            blobs_mounted,
            blobs_present,
            bytes_uploaded,
            manifests_written,
            manifests_present,
        } = published.stats;
        self.blobs_uploaded += blobs_uploaded;
        self.blobs_mounted += blobs_mounted;
        self.blobs_present += blobs_present;
        self.bytes_uploaded += bytes_uploaded;
        self.manifests_written += manifests_written;
        self.manifests_present += manifests_present;
        self.tags.extend(published.tags.iter().cloned());
        if self.platforms.is_empty() {
            // What the registry holds (sync reports it rather than the project's platforms).
            self.platforms = published
                .platforms
                .iter()
                .map(ToString::to_string)
                .collect();
        }
        if self.digest.is_none() {
            self.digest = Some(published.digest.to_string());
            self.media_type = Some(published.media_type.clone());
        }
        if self.blobs_uploaded + self.blobs_mounted + self.manifests_written > 0 {
            self.result = Result_::Pushed;
        }
    }

    /// Adds what one library call did, or records its failure.
    pub fn record(&mut self, result: Result<im_registry::ops::Published, im_registry::Error>) {
        match result {
            Ok(published) => self.add(&published),
            Err(error) => self.fail(&error.into()),
        }
    }

    pub fn fail(&mut self, error: &anyhow::Error) {
        self.result = Result_::Failed;
        self.error = Some(format!("{error:#}"));
    }

    /// The status line for people; `written` is the verb for a tag that was written
    /// (`Pushed`, `Copied`, ...).
    pub fn status(&self, reporter: &dyn Reporter, written: &str) {
        match self.result {
            Result_::Failed => reporter.error(&format!(
                "{}: {}",
                self.reference,
                self.error.as_deref().unwrap_or("failed")
            )),
            Result_::Missing => reporter.status(
                self.result.verb(),
                &format!("{} ({})", self.node, self.error.as_deref().unwrap_or("")),
            ),
            Result_::Pushed | Result_::UpToDate => {
                let mut details = Vec::new();
                if let Some(digest) = &self.digest {
                    details.push(short_digest(digest));
                }
                if self.result == Result_::Pushed {
                    details.push(format!(
                        "{} uploaded ({}), {} mounted, {} already there",
                        plural(self.blobs_uploaded, "blob"),
                        human_bytes(self.bytes_uploaded),
                        self.blobs_mounted,
                        self.blobs_present
                    ));
                }
                if self.sboms_attached > 0 {
                    details.push(plural(self.sboms_attached, "SBOM referrer"));
                }
                if self.sboms_stale > 0 {
                    details.push(format!(
                        "{} of an earlier build not attached: run `image-manager sbom` first",
                        plural(self.sboms_stale, "SBOM")
                    ));
                }
                let revision = self.revision.as_ref().map(|r| r.tag.as_str());
                let extra: Vec<&str> = self
                    .tags
                    .iter()
                    .skip(1)
                    .map(String::as_str)
                    .filter(|tag| Some(*tag) != revision)
                    .collect();
                if !extra.is_empty() {
                    details.push(format!("also {}", extra.join(", ")));
                }
                if let Some(revision) = &self.revision {
                    details.push(match revision.result {
                        super::revision::RevisionResult::Written => {
                            format!("revision {}", revision.tag)
                        }
                        super::revision::RevisionResult::Unchanged => {
                            format!("revision {} unchanged", revision.tag)
                        }
                    });
                }
                let verb = if self.result == Result_::Pushed {
                    written
                } else {
                    self.result.verb()
                };
                let details = if details.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", details.join("; "))
                };
                reporter.status(
                    verb,
                    &format!("{} → {}{details}", self.node, self.reference),
                );
            }
        }
    }
}

/// `sha256:0123456789ab`.
pub fn short_digest(digest: &str) -> String {
    digest.chars().take(19).collect()
}

/// What a publishing command did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub registry: String,
    pub snapshot_id: Option<String>,
    pub tags: Vec<TagReport>,
    pub seconds: f64,
    pub interrupted: bool,
}

impl Report {
    /// The report of a registry command that started at `started` and ran in `session`.
    pub fn new(
        registry: String,
        snapshot_id: Option<String>,
        tags: Vec<TagReport>,
        started: Instant,
        session: &Session,
    ) -> Self {
        Self {
            registry,
            snapshot_id,
            tags,
            seconds: started.elapsed().as_secs_f64(),
            interrupted: session.interrupted(),
        }
    }

    pub fn count(&self, result: Result_) -> usize {
        self.tags.iter().filter(|t| t.result == result).count()
    }
}
