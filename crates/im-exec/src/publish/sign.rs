//! `sign` and `verify` (and `push --sign`): cosign-compatible signatures of the manifests the
//! registry holds under the project's tags (see [`im_sign`]), stored under
//! `sha256-<hex>.sig` next to the image.

use serde::Serialize;

use im_registry::{BlobSource, Client, Digest, Reference, parse_digest};
use im_sign::{SignatureLayer, SigningKey, VerifyingKey};

use super::jobs::TagJob;
use crate::context::Reporter;
use crate::registry::{Session, Target};

/// What happened to one image tag.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    /// `name:tag`.
    pub node: String,
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `signed`, `already-signed`, `verified`, `unsigned`, `rejected` or `failed`.
    pub result: &'static str,
    /// Why it was not signed or verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl SignReport {
    /// Whether the tag ends signed (`sign`) or verified (`verify`).
    pub fn ok(&self) -> bool {
        matches!(self.result, "signed" | "already-signed" | "verified")
    }
}

/// The tag's manifest digest in the registry.
async fn digest_of(client: &Client, reference: &Reference) -> anyhow::Result<Digest> {
    client
        .resolve_digest(reference)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{reference} is not in the registry: push it first"))
}

/// The signatures stored for `digest` in `reference`'s repository (none when there is no
/// signature tag).
async fn stored(
    client: &Client,
    reference: &Reference,
    digest: &Digest,
) -> anyhow::Result<(Reference, Vec<SignatureLayer>)> {
    let tag = reference
        .repository()
        .tag(&im_sign::signature_tag(&digest.to_string()))?;
    let layers = match client.get_manifest(&tag).await {
        Ok(document) => im_sign::signature_layers(document.bytes()),
        Err(im_registry::Error::ManifestNotFound { .. }) => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    Ok((tag, layers))
}

async fn sign_one(
    client: &Client,
    reference: &Reference,
    key: &SigningKey,
) -> anyhow::Result<(Digest, bool)> {
    let digest = digest_of(client, reference).await?;
    let payload =
        im_sign::Payload::new(&reference.repository().to_string(), &digest.to_string()).to_bytes();
    let layer = SignatureLayer {
        digest: im_sign::sha256(&payload),
        size: payload.len() as u64,
        signature: key.sign(&payload),
    };
    let (tag, mut layers) = stored(client, reference, &digest).await?;
    if layers.contains(&layer) {
        return Ok((digest, false));
    }
    layers.push(layer);
    let built = im_sign::signature_manifest(&layers);
    let repository = reference.repository();
    for bytes in [payload, built.config.clone()] {
        let blob = parse_digest(&im_sign::sha256(&bytes))?;
        let size = bytes.len() as u64;
        client
            .push_blob(
                repository,
                &blob,
                size,
                BlobSource::Bytes(bytes.into()),
                None,
            )
            .await?;
    }
    let document = im_registry::ManifestDocument::from_bytes(
        built.manifest.into(),
        Some(built.media_type),
        "signature manifest",
    )?;
    client.put_manifest(&tag, &document).await?;
    Ok((digest, true))
}

/// Signs the manifest each of `jobs`' tags points at in `target` with `key`; a signature the
/// key already made is not written again.
pub fn sign(
    session: &Session,
    target: &Target,
    jobs: &[TagJob],
    key: &SigningKey,
    reporter: &dyn Reporter,
) -> Vec<SignReport> {
    each(session, target, jobs, reporter, "Signed", |reference| {
        let (digest, written) = session.run(sign_one(session.client(), reference, key))?;
        Ok((
            digest,
            if written { "signed" } else { "already-signed" },
            Vec::new(),
        ))
    })
}

/// Runs `one` for each of `jobs`' references in `target` (it gives the manifest digest, the
/// result and the reasons), reporting each as `verb` or `Failed`; stops at Ctrl-C.
fn each(
    session: &Session,
    target: &Target,
    jobs: &[TagJob],
    reporter: &dyn Reporter,
    verb: &str,
    one: impl Fn(&Reference) -> anyhow::Result<(Digest, &'static str, Vec<String>)>,
) -> Vec<SignReport> {
    let mut out = Vec::new();
    for job in jobs {
        if session.interrupted() {
            break;
        }
        let report = match target.reference(&job.image, &job.published) {
            Err(error) => failed(job, String::new(), &error),
            Ok(reference) => match one(&reference) {
                Ok((digest, result, reasons)) => SignReport {
                    node: job.node(),
                    reference: reference.to_string(),
                    digest: Some(digest.to_string()),
                    result,
                    reasons,
                },
                Err(error) => failed(job, reference.to_string(), &error),
            },
        };
        reporter.status(
            if report.ok() { verb } else { "Failed" },
            &match (&report.digest, report.reasons.first()) {
                (_, Some(why)) => format!("{}: {why}", report.reference),
                (Some(digest), None) => format!("{} ({digest})", report.reference),
                (None, None) => report.reference.clone(),
            },
        );
        out.push(report);
    }
    out
}

fn failed(job: &TagJob, reference: String, error: &anyhow::Error) -> SignReport {
    SignReport {
        node: job.node(),
        reference,
        digest: None,
        result: "failed",
        reasons: vec![im_diag::error_chain(error.as_ref())],
    }
}

async fn verify_one(
    client: &Client,
    reference: &Reference,
    key: &VerifyingKey,
) -> anyhow::Result<(Digest, Result<(), Vec<String>>)> {
    let digest = digest_of(client, reference).await?;
    let (tag, layers) = stored(client, reference, &digest).await?;
    if layers.is_empty() {
        return Ok((
            digest,
            Err(vec![format!("no signature: {tag} does not exist")]),
        ));
    }
    let mut reasons = Vec::new();
    for layer in &layers {
        let blob = parse_digest(&layer.digest)?;
        let payload = match client
            .fetch_blob(reference.repository(), &blob, layer.size)
            .await
        {
            Ok(bytes) => bytes,
            Err(error) => {
                reasons.push(im_diag::error_chain(&error));
                continue;
            }
        };
        match im_sign::check(key, layer, &payload, &digest.to_string()) {
            Ok(_) => return Ok((digest, Ok(()))),
            Err(rejected) => reasons.push(rejected.to_string()),
        }
    }
    Ok((digest, Err(reasons)))
}

/// Checks that each of `jobs`' tags points at a manifest with a valid signature by `key`.
pub fn verify(
    session: &Session,
    target: &Target,
    jobs: &[TagJob],
    key: &VerifyingKey,
    reporter: &dyn Reporter,
) -> Vec<SignReport> {
    each(session, target, jobs, reporter, "Verified", |reference| {
        let (digest, checked) = session.run(verify_one(session.client(), reference, key))?;
        Ok(match checked {
            Ok(()) => (digest, "verified", Vec::new()),
            Err(reasons) if reasons.iter().any(|r| r.starts_with("no signature")) => {
                (digest, "unsigned", reasons)
            }
            Err(reasons) => (digest, "rejected", reasons),
        })
    })
}
