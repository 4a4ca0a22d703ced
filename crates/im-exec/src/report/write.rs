//! Writing a site: every page rendered and written in parallel into a hidden temporary folder
//! next to the destination, then renamed into place (the previous site, if any, is moved
//! aside first and removed after), so a reader never sees half a report.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::ReportError;

/// What [`write`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub dir: PathBuf,
    pub pages: usize,
    pub bytes: u64,
    /// The largest page, `(path, bytes)`.
    pub largest: (String, u64),
}

/// Renders `site` into `dir`.
pub fn write(site: &im_report::Site, dir: &Path) -> Result<Written, ReportError> {
    let error = |path: &Path| {
        let path = path.to_owned();
        move |source| ReportError::Write { path, source }
    };
    let parent = dir.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent).map_err(error(parent))?;
    let name = dir
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let staging = parent.join(format!(".{name}.new-{}", std::process::id()));
    let _ = fs_err::remove_dir_all(&staging);
    let result = fill(site, &staging);
    let written = match result {
        Ok(written) => written,
        Err(e) => {
            let _ = fs_err::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    let had_old = dir.exists();
    if had_old {
        fs_err::rename(dir, &old).map_err(error(dir))?;
    }
    fs_err::rename(&staging, dir).map_err(error(dir))?;
    if had_old {
        remove_site(&old);
    }
    Ok(Written {
        dir: dir.to_owned(),
        ..written
    })
}

/// Removes a previous site: its image folders in parallel (tens of thousands of pages on a
/// large project), then the rest. What cannot be removed is left (a hidden `.<name>.old-*`).
fn remove_site(dir: &Path) {
    if let Ok(entries) = fs_err::read_dir(dir.join("images")) {
        let folders: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        folders.par_iter().for_each(|folder| {
            let _ = fs_err::remove_dir_all(folder);
        });
    }
    let _ = fs_err::remove_dir_all(dir);
}

fn fill(site: &im_report::Site, staging: &Path) -> Result<Written, ReportError> {
    let error = |path: &Path| {
        let path = path.to_owned();
        move |source| ReportError::Write { path, source }
    };
    let report = im_report::Report::new(site);
    let pages = report.pages();
    // Folders first (one per image), then the files in parallel.
    let mut dirs: Vec<PathBuf> = pages
        .iter()
        .filter_map(|p| Path::new(&p.path).parent().map(|d| staging.join(d)))
        .chain(
            im_report::ASSETS
                .iter()
                .filter_map(|(p, _)| Path::new(p).parent().map(|d| staging.join(d))),
        )
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        fs_err::create_dir_all(dir).map_err(error(dir))?;
    }
    for (path, content) in im_report::ASSETS {
        let path = staging.join(path);
        fs_err::write(&path, content).map_err(error(&path))?;
    }
    let sizes: Vec<(String, u64)> = pages
        .par_iter()
        .map(|page| {
            let html = report.render(page);
            let path = staging.join(&page.path);
            fs_err::write(&path, html.as_bytes()).map_err(error(&path))?;
            Ok((page.path.clone(), html.len() as u64))
        })
        .collect::<Result<_, ReportError>>()?;
    let largest = sizes
        .iter()
        .max_by_key(|(_, size)| *size)
        .cloned()
        .unwrap_or_default();
    Ok(Written {
        dir: staging.to_owned(),
        pages: sizes.len(),
        bytes: sizes.iter().map(|(_, size)| size).sum(),
        largest,
    })
}
