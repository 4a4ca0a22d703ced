//! Tagging: pointing more tags of the same repository at an existing manifest (aliases,
//! snapshot promotion within a repository). Only the manifest bytes are written again; its
//! digest is unchanged and no blob moves.

use super::{Counters, Published, check_target_tags, platforms_of, write_tags};
use crate::{Client, Error, Reference};

/// Points `tags` (in `source`'s repository) at the manifest `source` resolves to.
pub async fn tag_image(
    client: &Client,
    source: &Reference,
    tags: &[String],
) -> Result<Published, Error> {
    let Some((first, rest)) = tags.split_first() else {
        return Err(Error::Invalid {
            operation: "tag",
            reference: source.to_string(),
            reason: "no tags were given".to_owned(),
        });
    };
    let target = source.repository().tag(first)?;
    check_target_tags("tag", &target, rest)?;
    let document = client.get_manifest(source).await?;
    let counters = Counters::default();
    let tags = write_tags(client, &target, first, rest, &document, &counters).await?;
    Ok(Published {
        reference: target.with_digest(document.digest()),
        digest: document.digest().clone(),
        media_type: document.media_type().to_owned(),
        tags,
        platforms: platforms_of(client, source.repository(), &document).await?,
        stats: counters.stats(),
    })
}
