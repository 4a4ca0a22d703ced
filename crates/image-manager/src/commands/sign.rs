//! `image-manager sign --key KEY [targets]` and `image-manager verify --key PUB [targets]`:
//! cosign-compatible signatures of the manifests the default registry holds under the
//! project's tags (see [`im_sign`] and [`im_exec::publish::sign`]).

use std::path::Path;

use im_diag::{Diagnostic, Secret};
use im_exec::publish::sign::{self, SignReport};
use serde::Serialize;

use super::{Context, Outcome};
use crate::cli::{Format, SignArgs, VerifySignArgs};

/// A key file's text; what is wrong with it is the user's to fix.
fn read_key(path: &Path) -> anyhow::Result<String> {
    fs_err::read_to_string(path).map_err(|error| {
        Diagnostic::error(format!("cannot read the key {}: {error}", path.display()))
            .with_help("pass the path of a PEM key with --key")
            .into()
    })
}

fn key_error(path: &Path, error: &im_sign::KeyError) -> anyhow::Error {
    Diagnostic::error(format!("{}: {error}", path.display()))
        .with_help("make a P-256 key with `openssl ecparam -genkey -name prime256v1 -noout | openssl pkcs8 -topk8 -nocrypt -out cosign.key` and its public key with `openssl ec -in cosign.key -pubout -out cosign.pub`")
        .into()
}

/// The signing key at `path`, opened with the password in the environment variable `variable`.
pub fn signing_key(path: &Path, variable: &str) -> anyhow::Result<im_sign::SigningKey> {
    let text = read_key(path)?;
    let password = std::env::var(variable).ok().map(Secret::new);
    im_sign::SigningKey::from_pem(&text, password.as_ref(), variable)
        .map_err(|error| key_error(path, &error))
}

#[derive(Serialize)]
struct Json<'a> {
    registry: String,
    tags: &'a [SignReport],
}

/// The command's end: interrupted, or every tag `done`, or how many were not.
fn finish(
    context: &Context<'_>,
    opened: &super::Opened,
    reports: &[SignReport],
    format: Format,
    done: &str,
) -> anyhow::Result<Outcome> {
    if opened.session.interrupted() {
        return Ok(Outcome::Interrupted);
    }
    let registry = opened.target.url();
    let failed = reports.iter().filter(|r| !r.ok()).count();
    if format == Format::Json {
        context.printer.json(&Json {
            registry,
            tags: reports,
        })?;
    }
    if failed > 0 {
        context.printer.error(format!(
            "{} of {} not {done}",
            im_exec::plural(failed, "image tag"),
            reports.len()
        ));
        return Ok(Outcome::Failed);
    }
    context.printer.status(
        "Finished",
        format!("{} {done}", im_exec::plural(reports.len(), "image tag")),
    );
    Ok(Outcome::Success)
}

pub fn run_sign(context: &Context<'_>, args: &SignArgs) -> anyhow::Result<Outcome> {
    let key = signing_key(&args.key, &args.password_env)?;
    let opened = context.open_registry(args.snapshot_id.as_deref(), &args.targets, None)?;
    let reports = sign::sign(
        &opened.session,
        &opened.target,
        &opened.jobs,
        &key,
        context.printer,
    );
    finish(context, &opened, &reports, args.format, "signed")
}

pub fn run_verify(context: &Context<'_>, args: &VerifySignArgs) -> anyhow::Result<Outcome> {
    let text = read_key(&args.key)?;
    let key =
        im_sign::VerifyingKey::from_pem(&text).map_err(|error| key_error(&args.key, &error))?;
    let opened = context.open_registry(args.snapshot_id.as_deref(), &args.targets, None)?;
    let reports = sign::verify(
        &opened.session,
        &opened.target,
        &opened.jobs,
        &key,
        context.printer,
    );
    finish(context, &opened, &reports, args.format, "verified")
}
