//! Drives our side of `scripts/bench-registry`: writes test images, pushes one image with
//! alias tags, and copies many images between registries, printing the wall time.
//!
//! ```text
//! bench-registry make-image DIR LAYERS LAYER_BYTES SEED [PLATFORM]
//! bench-registry push ARCHIVE REGISTRY/REPO:TAG ALIASES
//! bench-registry copy FROM_REGISTRY TO_REGISTRY PREFIX COUNT
//! ```

#[path = "../tests/support/images.rs"]
mod images;

use std::path::Path;
use std::time::Instant;

use futures_util::StreamExt as _;
use im_registry::ops::copy::{CopyOptions, copy_image};
use im_registry::ops::push::{PushOptions, push_image};
use im_registry::{Client, ClientConfig, LocalImage, Reference};

fn usage() -> ! {
    panic!(
        "usage: bench-registry make-image DIR LAYERS LAYER_BYTES SEED [PLATFORM] | push ARCHIVE REF ALIASES | copy FROM TO PREFIX COUNT"
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    let number = |i: usize| arg(i).parse::<u64>().unwrap_or_else(|_| usage());
    match arg(0).as_str() {
        "make-image" => {
            let platform = args
                .get(5)
                .cloned()
                .unwrap_or_else(|| "linux/amd64".to_owned());
            let spec = images::ImageSpec::new(
                &platform,
                usize::try_from(number(2)).unwrap(),
                usize::try_from(number(3)).unwrap(),
                number(4),
            );
            let written = images::write_image(Path::new(&arg(1)), &spec);
            println!("{}", written.archive.display());
        }
        "push" => {
            let client = Client::new(ClientConfig::default()).expect("client");
            let started = Instant::now();
            let image = LocalImage::open(Path::new(&arg(1))).expect("image opens");
            let target: Reference = arg(2).parse().expect("reference");
            let options = PushOptions {
                extra_tags: (1..=number(3)).map(|i| format!("alias-{i}")).collect(),
                ..PushOptions::default()
            };
            let published = push_image(&client, &image, &target, &options)
                .await
                .expect("push");
            println!(
                "pushed {} tags, {} blobs, {} bytes in {:.3}s",
                published.tags.len(),
                published.stats.blobs_uploaded,
                published.stats.bytes_uploaded,
                started.elapsed().as_secs_f64()
            );
        }
        "copy" => {
            let client = Client::new(ClientConfig::default()).expect("client");
            let started = Instant::now();
            let (from, to, prefix, count) = (arg(1), arg(2), arg(3), number(4));
            let options = CopyOptions::default();
            let copies = (0..count).map(|i| {
                let source: Reference = format!("{from}/src/img{i}:1").parse().expect("reference");
                let target: Reference = format!("{to}/{prefix}/img{i}:1")
                    .parse()
                    .expect("reference");
                let client = client.clone();
                let options = options.clone();
                async move { copy_image(&client, &source, &target, &options).await }
            });
            let results: Vec<_> = futures_util::stream::iter(copies)
                .buffer_unordered(8)
                .collect()
                .await;
            let mut uploaded = 0;
            for result in results {
                uploaded += result.expect("copy").stats.blobs_uploaded;
            }
            println!(
                "copied {count} images, {uploaded} blobs in {:.3}s",
                started.elapsed().as_secs_f64()
            );
        }
        _ => usage(),
    }
}
