//! hadolint on many Dockerfiles: each distinct Dockerfile is written once into a scratch
//! folder, the files are cut into batches (one hadolint process per batch saves its start-up
//! for every other file), and `jobs` batches run at a time. The first failure stops the
//! others from starting and is the result.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use im_lint::{Hadolint, HadolintFinding};
use im_process::CancelToken;

use super::{LintError, cancelled};

/// At most this many files per hadolint process: small enough that `jobs` processes share
/// the work evenly, large enough that start-up is a small part of each.
const MAX_BATCH: usize = 64;

/// The files of `count` in batches for `jobs` processes.
fn batches(count: usize, jobs: usize) -> Vec<std::ops::Range<usize>> {
    let size = count.div_ceil(jobs.max(1)).clamp(1, MAX_BATCH);
    (0..count)
        .step_by(size)
        .map(|start| start..(start + size).min(count))
        .collect()
}

/// hadolint's findings for each of `dockerfiles` (the texts), in their order.
pub fn run(
    hadolint: &Hadolint,
    dockerfiles: &[&str],
    jobs: usize,
    cancel: &CancelToken,
) -> Result<Vec<Vec<HadolintFinding>>, LintError> {
    let scratch = tempfile::Builder::new()
        .prefix("image-manager-lint-")
        .tempdir()
        .map_err(|source| LintError::Scratch {
            dir: std::env::temp_dir(),
            source,
        })?;
    let paths: Vec<PathBuf> = dockerfiles
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let path = scratch.path().join(format!("{index}.Dockerfile"));
            fs_err::write(&path, text).map_err(|source| LintError::Scratch {
                dir: scratch.path().to_owned(),
                source,
            })?;
            Ok(path)
        })
        .collect::<Result<_, LintError>>()?;
    let batches = batches(paths.len(), jobs);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Vec<HadolintFinding>>> = Mutex::new(vec![Vec::new(); paths.len()]);
    let failure: Mutex<Option<LintError>> = Mutex::new(None);
    let workers = jobs.clamp(1, batches.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(at) else { break };
                    if failure.lock().expect("lint failure lock").is_some() {
                        break;
                    }
                    let files = &paths[batch.clone()];
                    match hadolint.lint(files, cancel) {
                        Ok(found) => {
                            let mut results = results.lock().expect("lint results lock");
                            for finding in found {
                                let slot = batch.start
                                    + files
                                        .iter()
                                        .position(|f| *f == finding.file)
                                        .expect("hadolint::lint checks each file was asked about");
                                results[slot].push(finding);
                            }
                        }
                        Err(error) => {
                            failure
                                .lock()
                                .expect("lint failure lock")
                                .get_or_insert(cancelled(error));
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().expect("lint failure lock") {
        return Err(error);
    }
    if cancel.is_cancelled() {
        return Err(LintError::Cancelled);
    }
    Ok(results.into_inner().expect("lint results lock"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_cover_every_file_once_and_spread_over_the_jobs() {
        assert_eq!(super::batches(0, 4), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(super::batches(3, 4), [0..1, 1..2, 2..3]);
        assert_eq!(super::batches(10, 2), [0..5, 5..10]);
        let many = super::batches(1000, 2);
        assert_eq!(many.len(), 16);
        assert!(many.iter().all(|b| b.len() <= super::MAX_BATCH));
        assert_eq!(many.last().unwrap().end, 1000);
    }
}
