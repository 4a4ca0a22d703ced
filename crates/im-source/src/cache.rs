//! The cache of fetched repositories: one bare repository per URL, each fetched commit kept
//! under a ref of its own (so `git gc` never drops it), and checkouts of a commit with its
//! patches applied, written into a temporary folder and renamed into place (a checkout that
//! exists is complete).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use im_process::RunError;
use sha2::{Digest, Sha256};

use crate::git;
use crate::patch::{self, Patch, PatchError};

fn absolute(path: &Path) -> Result<PathBuf, CheckoutError> {
    std::path::absolute(path).map_err(|source| CheckoutError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A name no other run or thread uses at the same time: the process and a counter.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// A bare repository caching one URL.
#[derive(Debug, Clone)]
pub struct Repository {
    pub url: String,
    pub dir: PathBuf,
}

/// Why a checkout could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("cannot fetch {commit} from the repository: {}", git::message(source))]
    Fetch {
        commit: String,
        #[source]
        source: RunError,
    },
    #[error("cannot make the repository cache {}: {}", path.display(), git::message(source))]
    Init {
        path: PathBuf,
        #[source]
        source: RunError,
    },
    #[error("cannot check out {commit}: {}", git::message(source))]
    Git {
        commit: String,
        #[source]
        source: RunError,
    },
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A commit checked out with its patches: the folder and what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub dir: PathBuf,
    /// SHA-256 of each patch's bytes, in order (patch as shown → `sha256:<hex>`).
    pub patches: Vec<(String, String)>,
}

impl Repository {
    /// The cache of `url` under `cache`, created on first use.
    pub fn open(cache: &Path, url: &str) -> Result<Repository, CheckoutError> {
        // git changes into the work tree it is given: every path it gets is absolute.
        let cache = &absolute(cache)?;
        let name = hex::encode(&Sha256::digest(url.as_bytes())[..10]);
        let dir = cache.join(format!("{name}.git"));
        if !dir.join("HEAD").is_file() {
            let io = |source| CheckoutError::Io {
                path: dir.clone(),
                source,
            };
            fs_err::create_dir_all(cache).map_err(io)?;
            // Initialised next to its place and renamed: two runs starting at once both end
            // with a complete repository.
            let scratch = cache.join(format!("{name}.git.tmp-{}", unique()));
            let _ = fs_err::remove_dir_all(&scratch);
            git::run(
                None,
                &[
                    OsStr::new("init"),
                    OsStr::new("--quiet"),
                    OsStr::new("--bare"),
                    scratch.as_os_str(),
                ],
                &[],
            )
            .map_err(|source| CheckoutError::Init {
                path: dir.clone(),
                source,
            })?;
            if fs_err::rename(&scratch, &dir).is_err() {
                let _ = fs_err::remove_dir_all(&scratch);
            }
        }
        Ok(Repository {
            url: url.to_owned(),
            dir,
        })
    }

    fn git(&self, args: &[&OsStr]) -> Result<String, RunError> {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--git-dir"), self.dir.as_os_str()];
        all.extend(args);
        git::run(None, &all, &[])
    }

    /// Whether the cache holds `commit`.
    pub fn has_commit(&self, commit: &str) -> bool {
        let object = format!("{commit}^{{commit}}");
        self.git(&[
            OsStr::new("cat-file"),
            OsStr::new("-e"),
            OsStr::new(&object),
        ])
        .is_ok()
    }

    /// Makes sure the cache holds `commit`: fetched shallowly by `refname` (the branch or tag
    /// it was resolved from) or by its SHA, else with the remote's whole history (servers
    /// that refuse a SHA nobody's ref points at). Returns whether anything was fetched.
    pub fn fetch(&self, commit: &str, refname: Option<&str>) -> Result<bool, CheckoutError> {
        if self.has_commit(commit) {
            self.keep(commit)?;
            return Ok(false);
        }
        let url = self.url.as_str();
        let shallow = |what: &str| {
            self.git(&[
                OsStr::new("fetch"),
                OsStr::new("--quiet"),
                OsStr::new("--no-tags"),
                OsStr::new("--depth=1"),
                OsStr::new("--"),
                OsStr::new(url),
                OsStr::new(what),
            ])
        };
        let mut result = shallow(refname.unwrap_or(commit));
        if result.is_ok() && !self.has_commit(commit) {
            // The branch moved between resolving and fetching: ask for the commit itself.
            result = shallow(commit);
        }
        if result.is_err() || !self.has_commit(commit) {
            result = self.git(&[
                OsStr::new("fetch"),
                OsStr::new("--quiet"),
                OsStr::new("--"),
                OsStr::new(url),
                OsStr::new("+refs/heads/*:refs/image-manager/heads/*"),
                OsStr::new("+refs/tags/*:refs/image-manager/tags/*"),
            ]);
        }
        match result {
            Ok(_) if self.has_commit(commit) => {
                self.keep(commit)?;
                Ok(true)
            }
            Ok(_) => Err(CheckoutError::Fetch {
                commit: commit.to_owned(),
                source: RunError::Failed {
                    program: "git".into(),
                    argv: format!("git fetch {url}"),
                    status: "exit status: 0".into(),
                    stderr_tail: vec![format!(
                        "no branch or tag of the repository reaches {commit}"
                    )],
                    log: None,
                },
            }),
            Err(source) => Err(CheckoutError::Fetch {
                commit: commit.to_owned(),
                source,
            }),
        }
    }

    /// A ref of its own for `commit`, so `git gc` keeps it.
    fn keep(&self, commit: &str) -> Result<(), CheckoutError> {
        let name = format!("refs/image-manager/commits/{commit}");
        self.git(&[
            OsStr::new("update-ref"),
            OsStr::new(&name),
            OsStr::new(commit),
        ])
        .map(drop)
        .map_err(|source| CheckoutError::Git {
            commit: commit.to_owned(),
            source,
        })
    }

    /// The folder holding `commit` with `patches` applied, under `checkouts`: made once
    /// (the folder's name is the commit and the patches' hash), reused after.
    pub fn checkout(
        &self,
        commit: &str,
        patches: &[Patch],
        checkouts: &Path,
    ) -> Result<Checkout, CheckoutError> {
        let checkouts = &absolute(checkouts)?;
        let hashes: Vec<(String, String)> = patches
            .iter()
            .map(|p| {
                (
                    p.display.clone(),
                    format!("sha256:{}", hex::encode(Sha256::digest(p.text.as_bytes()))),
                )
            })
            .collect();
        let mut id = Sha256::new();
        id.update(commit.as_bytes());
        for (_, hash) in &hashes {
            id.update(hash.as_bytes());
        }
        let short = &commit[..commit.len().min(12)];
        let name = if patches.is_empty() {
            short.to_owned()
        } else {
            format!("{short}-{}", &hex::encode(id.finalize())[..12])
        };
        let dir = checkouts.join(&name);
        let done = Checkout {
            dir: dir.clone(),
            patches: hashes,
        };
        if dir.is_dir() {
            return Ok(done);
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CheckoutError::Io { path, source }
        };
        fs_err::create_dir_all(checkouts).map_err(io(checkouts))?;
        let scratch = checkouts.join(format!(".{name}.tmp-{}", unique()));
        let _ = fs_err::remove_dir_all(&scratch);
        fs_err::create_dir_all(&scratch).map_err(io(&scratch))?;
        let written = self.write_tree(commit, &scratch).and_then(|()| {
            for patch in patches {
                patch::apply(&self.dir, &scratch.join("tree"), patch)?;
            }
            Ok(())
        });
        if let Err(error) = written {
            let _ = fs_err::remove_dir_all(&scratch);
            return Err(error);
        }
        let tree = scratch.join("tree");
        let renamed = fs_err::rename(&tree, &dir);
        let _ = fs_err::remove_dir_all(&scratch);
        match renamed {
            Ok(()) => Ok(done),
            // Another run made the same checkout meanwhile.
            Err(_) if dir.is_dir() => Ok(done),
            Err(source) => Err(CheckoutError::Io { path: dir, source }),
        }
    }

    /// The files of `commit` into `scratch/tree`, through a private index.
    fn write_tree(&self, commit: &str, scratch: &Path) -> Result<(), CheckoutError> {
        let tree = scratch.join("tree");
        // checkout-index wants a work tree even with `--prefix`.
        let repository = [
            OsStr::new("--git-dir"),
            self.dir.as_os_str(),
            OsStr::new("--work-tree"),
            scratch.as_os_str(),
        ];
        export_tree(
            &repository,
            &format!("{commit}^{{tree}}"),
            &scratch.join("index"),
            &tree,
        )
        .map_err(|source| CheckoutError::Git {
            commit: commit.to_owned(),
            source,
        })?;
        // An empty tree writes nothing.
        fs_err::create_dir_all(&tree).map_err(|source| CheckoutError::Io { path: tree, source })
    }
}

/// Writes the files of `treeish` into `out` through the index file `index`; `repository`
/// are the arguments that name the repository (`-C <worktree>` or `--git-dir <bare>`).
pub fn export_tree(
    repository: &[&OsStr],
    treeish: &str,
    index: &Path,
    out: &Path,
) -> Result<(), RunError> {
    let env = [("GIT_INDEX_FILE", index.as_os_str())];
    let dir = repository;
    let mut read: Vec<&OsStr> = dir.to_vec();
    read.extend([OsStr::new("read-tree"), OsStr::new(treeish)]);
    git::run(None, &read, &env)?;
    let mut prefix = std::ffi::OsString::from("--prefix=");
    prefix.push(out.as_os_str());
    prefix.push("/");
    let mut write: Vec<&OsStr> = dir.to_vec();
    write.extend([
        OsStr::new("checkout-index"),
        OsStr::new("--all"),
        prefix.as_os_str(),
    ]);
    git::run(None, &write, &env)?;
    Ok(())
}
