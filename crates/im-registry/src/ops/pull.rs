//! Pulling one platform image out of a registry into an OCI archive on disk (an OCI image
//! layout in a tar, as the builders write and read them). Blobs are verified while they
//! stream in and the archive appears under its final name only when it is complete, so a
//! reader never sees a half-written one and two processes pulling the same image at once
//! both end with a whole archive.

use std::path::{Path, PathBuf};

use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::digest::{Digest, descriptor_digest};
use crate::local::REF_NAME_ANNOTATION;
use crate::manifest::{ManifestDocument, ManifestKind, OCI_INDEX};
use crate::{Client, Error, Platform, Reference};

/// What [`pull_archive`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// The platform image's manifest digest (the archive holds exactly these bytes).
    pub manifest_digest: Digest,
    /// Bytes of blobs downloaded.
    pub bytes: u64,
}

/// Downloads the `platform` image of `reference` (a tag, an index digest or a manifest
/// digest) into `dest` as an OCI archive whose `index.json` names it `ref_name`.
pub async fn pull_archive(
    client: &Client,
    reference: &Reference,
    platform: &Platform,
    dest: &Path,
    ref_name: &str,
) -> Result<Pulled, Error> {
    let manifest = super::inspect::select_platform(client, reference, platform).await?;
    let ManifestKind::Image(_) = manifest.kind() else {
        return Err(Error::Invalid {
            operation: "pull",
            reference: reference.to_string(),
            reason: format!("the entry for {platform} is not an image manifest"),
        });
    };
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let dir = dest.parent().unwrap_or_else(|| Path::new("."));
    fs_err::create_dir_all(dir).map_err(io(dir))?;
    let scratch = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(dir)
        .map_err(io(dir))?;
    let repository = reference.repository();
    let blobs: Vec<(Digest, u64, PathBuf)> = manifest
        .blobs()
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            Ok((
                descriptor_digest(d.digest())?,
                d.size(),
                scratch.path().join(i.to_string()),
            ))
        })
        .collect::<Result<_, Error>>()?;
    futures_util::stream::iter(blobs.iter().map(|(digest, size, path)| async move {
        client.download_blob(repository, digest, *size, path).await
    }))
    .buffer_unordered(client.concurrency())
    .try_collect::<Vec<()>>()
    .await?;
    let partial = scratch.path().join("image.tar");
    write_archive(&partial, &manifest, &blobs, ref_name).map_err(io(&partial))?;
    fs_err::rename(&partial, dest).map_err(io(dest))?;
    Ok(Pulled {
        manifest_digest: manifest.digest().clone(),
        bytes: blobs.iter().map(|(_, size, _)| size).sum(),
    })
}

/// Writes an OCI archive holding one image: `oci-layout`, `index.json`, the manifest and its
/// blobs (already on disk, verified), every entry with fixed metadata.
fn write_archive(
    path: &Path,
    manifest: &ManifestDocument,
    blobs: &[(Digest, u64, PathBuf)],
    ref_name: &str,
) -> std::io::Result<()> {
    fn header(size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header
    }
    let blob_path = im_oci::archive::blob_member;
    let file = fs_err::File::create(path)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    tar.append_data(&mut header(layout.len() as u64), "oci-layout", &layout[..])?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": manifest.media_type(),
            "digest": manifest.digest().to_string(),
            "size": manifest.size(),
            "annotations": { REF_NAME_ANNOTATION: ref_name },
        }],
    });
    let index = serde_json::to_vec(&index)?;
    tar.append_data(&mut header(index.len() as u64), "index.json", &index[..])?;
    let mut written = std::collections::HashSet::new();
    tar.append_data(
        &mut header(manifest.size()),
        blob_path(manifest.digest()),
        &manifest.bytes()[..],
    )?;
    written.insert(manifest.digest().clone());
    for (digest, size, file) in blobs {
        if written.insert(digest.clone()) {
            let reader = fs_err::File::open(file)?;
            tar.append_data(&mut header(*size), blob_path(digest), reader)?;
        }
    }
    let mut writer = tar.into_inner()?;
    std::io::Write::flush(&mut writer)?;
    writer
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()?;
    Ok(())
}
