//! `image-manager inspect REF`: what a registry holds under a reference — digest, media type,
//! size, and per platform its manifest digest, size, labels and build key; and what refers to
//! the image and to each platform manifest (OCI 1.1 referrers: SBOMs, signatures), through
//! the registry's referrers API or the `sha256-<hex>` tag schema.
//!
//! A reference without a registry host (`app:1.0`) means that image in the project's default
//! registry when one is configured; `host[:port]/repository:tag` is read as written.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use im_registry::ops::inspect::inspect;
use im_registry::ops::referrers::list_referrers;
use im_registry::{Client, Digest, Reference, Repository};
use serde::Serialize;

use super::{Context, Outcome};
use crate::cli::{Format, InspectArgs};
use im_exec::human_bytes;
use im_exec::registry;
use im_exec::steps::BUILD_KEY_LABEL;

#[derive(Serialize)]
struct PlatformReport {
    platform: Option<String>,
    digest: String,
    media_type: String,
    size: u64,
    build_key: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    referrers: Vec<ReferrerReport>,
}

/// One manifest that refers to an image (an SBOM, a signature).
#[derive(Serialize)]
struct ReferrerReport {
    artifact_type: Option<String>,
    digest: String,
    media_type: String,
    size: u64,
    annotations: BTreeMap<String, String>,
}

/// What refers to `subject` in `repository`.
async fn referrers(
    client: &Client,
    repository: &Repository,
    subject: &Digest,
) -> Result<Vec<ReferrerReport>, im_registry::Error> {
    let (found, _) = list_referrers(client, repository, subject, None).await?;
    Ok(found
        .into_iter()
        .map(|r| ReferrerReport {
            artifact_type: r.artifact_type,
            digest: r.digest.to_string(),
            media_type: r.media_type,
            size: r.size,
            annotations: r.annotations,
        })
        .collect())
}

#[derive(Serialize)]
struct InspectReport {
    reference: String,
    digest: String,
    media_type: String,
    size: u64,
    platforms: Vec<PlatformReport>,
    annotations: BTreeMap<String, String>,
    referrers: Vec<ReferrerReport>,
}

/// Whether the first path component of `text` names a registry host.
fn has_registry(text: &str) -> bool {
    text.split_once('/')
        .is_some_and(|(first, _)| first.contains(['.', ':']) || first == "localhost")
}

pub fn run(context: &Context<'_>, args: &InspectArgs) -> anyhow::Result<Outcome> {
    let settings = im_project::Settings::load(&context.root, &crate::env_vars::lookup)?;
    let reference: Reference = if has_registry(&args.reference) {
        args.reference.parse()?
    } else if settings.default_registry().is_some() {
        let target = registry::default_target(&settings)?;
        format!("{}/{}", target.url(), args.reference).parse()?
    } else {
        args.reference.parse()?
    };
    let session = context.exec().session(&settings)?;
    let inspection = session.run(inspect(session.client(), &reference))?;
    let client = session.client();
    let repository = reference.repository();
    // Referrers are extra: a registry that cannot list them still gets inspected.
    let referrers_of = |digest: &Digest| match session.run(referrers(client, repository, digest)) {
        Ok(found) => found,
        Err(error) => {
            context.printer.diagnostic(
                &im_diag::Diagnostic::warning(format!("cannot list the referrers of {digest}"))
                    .with_note(im_exec::error_chain(&error)),
            );
            Vec::new()
        }
    };
    let platform_referrers: Vec<Vec<ReferrerReport>> = inspection
        .platforms
        .iter()
        .map(|platform| referrers_of(&platform.digest))
        .collect();
    let single =
        inspection.platforms.len() == 1 && inspection.platforms[0].digest == inspection.digest;
    let root_referrers = if single {
        Vec::new()
    } else {
        referrers_of(&inspection.digest)
    };
    let report = InspectReport {
        reference: reference.to_string(),
        digest: inspection.digest.to_string(),
        media_type: inspection.media_type.clone(),
        size: inspection.size,
        annotations: inspection.annotations.clone(),
        platforms: inspection
            .platforms
            .iter()
            .zip(platform_referrers)
            .map(|(p, referrers)| PlatformReport {
                platform: p.platform.as_ref().map(ToString::to_string),
                digest: p.digest.to_string(),
                media_type: p.media_type.clone(),
                size: p.size,
                build_key: p
                    .labels
                    .get(BUILD_KEY_LABEL)
                    .or_else(|| p.annotations.get(BUILD_KEY_LABEL))
                    .cloned(),
                labels: p.labels.clone(),
                annotations: p.annotations.clone(),
                referrers,
            })
            .collect(),
        referrers: root_referrers,
    };
    match args.format {
        Format::Json => context.printer.json(&report)?,
        Format::Text => context.printer.data(render(&report))?,
    }
    Ok(Outcome::Success)
}

fn render(report: &InspectReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "reference   {}", report.reference);
    let _ = writeln!(out, "digest      {}", report.digest);
    let _ = writeln!(out, "media type  {}", report.media_type);
    let _ = writeln!(
        out,
        "size        {} ({} bytes)",
        human_bytes(report.size),
        report.size
    );
    let platforms: Vec<&str> = report
        .platforms
        .iter()
        .map(|p| p.platform.as_deref().unwrap_or("unknown"))
        .collect();
    let _ = writeln!(out, "platforms   {}", platforms.join(", "));
    for (key, value) in &report.annotations {
        let _ = writeln!(out, "annotation  {key}={value}");
    }
    render_referrers(&mut out, "", &report.referrers);
    for platform in &report.platforms {
        let _ = writeln!(
            out,
            "\n{}  {}  {}",
            platform.platform.as_deref().unwrap_or("unknown"),
            platform.digest,
            human_bytes(platform.size)
        );
        let _ = writeln!(out, "  media type  {}", platform.media_type);
        let _ = writeln!(
            out,
            "  build key   {}",
            platform.build_key.as_deref().unwrap_or("(none)")
        );
        if !platform.labels.is_empty() {
            let _ = writeln!(out, "  labels");
            let width = platform.labels.keys().map(String::len).max().unwrap_or(0);
            for (key, value) in &platform.labels {
                let _ = writeln!(out, "    {key:width$}  {value}");
            }
        }
        render_referrers(&mut out, "  ", &platform.referrers);
    }
    out.trim_end().to_owned()
}

/// `referrer  application/vnd.cyclonedx+json  sha256:…  2.1 KiB`, one line each.
fn render_referrers(out: &mut String, indent: &str, referrers: &[ReferrerReport]) {
    for referrer in referrers {
        let _ = writeln!(
            out,
            "{indent}referrer    {}  {}  {}",
            referrer
                .artifact_type
                .as_deref()
                .unwrap_or(&referrer.media_type),
            referrer.digest,
            human_bytes(referrer.size)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_host_is_told_from_a_repository_path() {
        assert!(has_registry("127.0.0.1:5050/app:1"));
        assert!(has_registry("reg.example.com/team/app"));
        assert!(has_registry("localhost/app"));
        assert!(!has_registry("app:1.0"));
        assert!(!has_registry("team/app:1.0"));
    }
}
