//! `dist/.lock`: one image-manager run writes a project's `dist/` at a time.
//!
//! `build`, `generate` and `test` regenerate `dist/`; two runs renaming the same new tag
//! folder into place at once made one of them fail ("Directory not empty"). Each takes this
//! exclusive `flock` before it reads or writes `dist/`; a second run says it is waiting and
//! waits. The lock is released when the run ends, however it ends (the kernel drops it with
//! the file descriptor).

use anyhow::Context as _;
use rustix::fs::FlockOperation;

use super::Context;

/// Held while a run writes `dist/`.
pub struct DistLock {
    _file: fs_err::File,
}

/// Takes `dist/.lock`, waiting (and saying so) while another run holds it.
pub fn dist(context: &Context<'_>) -> anyhow::Result<DistLock> {
    fs_err::create_dir_all(&context.dist)?;
    let path = context.dist.join(".lock");
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        context.printer.status(
            "Waiting",
            format!(
                "for another image-manager run writing this project's dist/ to finish ({})",
                path.display()
            ),
        );
        loop {
            match rustix::fs::flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(errno) => {
                    return Err(std::io::Error::from(errno))
                        .with_context(|| format!("waiting for {}", path.display()));
                }
            }
        }
    }
    Ok(DistLock { _file: file })
}
