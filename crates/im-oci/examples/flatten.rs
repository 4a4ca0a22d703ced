//! Flattens an image tar and prints how many paths it has and how long it took:
//! `cargo run --release -p im-oci --example flatten -- IMAGE.tar [PATH...]`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let path = args.next().ok_or("usage: flatten IMAGE.tar [PATH...]")?;
    let start = Instant::now();
    let image = im_oci::open_image(path.as_ref(), &im_oci::OpenOptions::default())?;
    let view = image.filesystem()?;
    println!(
        "{} paths, {} entries, {:?}",
        view.walk_all().len(),
        view.entries_applied(),
        start.elapsed()
    );
    for wanted in args {
        let wanted = wanted.to_string_lossy().into_owned();
        match image.read_file(&view, &wanted) {
            Ok(bytes) => println!(
                "{wanted}: {} bytes ({:?})",
                bytes.len(),
                view.stat(&wanted)?
            ),
            Err(e) => println!("{wanted}: {e}"),
        }
    }
    Ok(())
}
