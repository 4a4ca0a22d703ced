//! Access to the members of an image container: a plain tar file or a directory.
//!
//! A tar (docker-archive, OCI archive) is indexed once: each member's offset and size is
//! recorded and members are then read in place with a seek, never extracted. Symlinks and
//! hardlinks between members (older `docker save` links duplicate layers) are resolved inside
//! the archive with a hop limit, so a cycle is an error instead of a hang. A directory (an OCI
//! layout) is read through relative paths built only from fixed names and validated digests.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::OciError;
use crate::limits::Limits;
use crate::path::clean_clamped;
use crate::tarstream::{EntryKind, Seekable, TarLimits, TarReader};

#[derive(Debug, Clone)]
pub(crate) enum Member {
    File { offset: u64, size: u64 },
    Link(String),
    Other,
}

/// An image container on disk.
#[derive(Debug)]
pub enum Store {
    Tar {
        path: PathBuf,
        members: HashMap<String, Member>,
    },
    Dir {
        path: PathBuf,
    },
}

const MAX_MEMBER_HOPS: usize = 16;
/// The read buffer of a [`Window`].
const WINDOW_BUFFER: usize = 8 << 10;

fn normalize(name: &[u8]) -> String {
    let parts: Vec<String> = clean_clamped(name)
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    parts.join("/")
}

impl Store {
    /// Opens `path`: a directory, or a tar file which is indexed.
    pub fn open(path: &Path, limits: &Limits) -> Result<Self, OciError> {
        let io_err = |source| OciError::Io {
            path: path.to_owned(),
            source,
        };
        let metadata = fs_err::metadata(path).map_err(io_err)?;
        if metadata.is_dir() {
            return Ok(Self::Dir {
                path: path.to_owned(),
            });
        }
        let mut file = fs_err::File::open(path).map_err(io_err)?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(io_err)?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(OciError::CompressedArchive {
                path: path.to_owned(),
            });
        }
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        let source = Seekable::new(BufReader::with_capacity(64 << 10, file), metadata.len());
        let tar_limits = TarLimits {
            max_extension_bytes: limits.max_extension_bytes,
            max_path_bytes: limits.max_path_bytes,
        };
        let mut reader = TarReader::new(source, tar_limits);
        let mut members = HashMap::new();
        let outer = |source| OciError::OuterTar {
            archive: path.to_owned(),
            source: Box::new(source),
        };
        while let Some(entry) = reader.next_entry().map_err(outer)? {
            if members.len() as u64 >= limits.max_archive_members {
                return Err(OciError::TooManyMembers {
                    archive: path.to_owned(),
                    limit: limits.max_archive_members,
                });
            }
            let name = normalize(&entry.path);
            let member = match entry.kind {
                EntryKind::Regular => Member::File {
                    offset: entry.data_offset,
                    size: entry.size,
                },
                EntryKind::Symlink => {
                    let base = name.rsplit_once('/').map_or("", |(dir, _)| dir);
                    let target = if entry.link.starts_with(b"/") {
                        normalize(&entry.link)
                    } else {
                        normalize(
                            format!("{base}/{}", String::from_utf8_lossy(&entry.link)).as_bytes(),
                        )
                    };
                    Member::Link(target)
                }
                EntryKind::Hardlink => Member::Link(normalize(&entry.link)),
                _ => Member::Other,
            };
            members.insert(name, member);
        }
        reader.finish().map_err(outer)?;
        Ok(Self::Tar {
            path: path.to_owned(),
            members,
        })
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Tar { path, .. } | Self::Dir { path } => path,
        }
    }

    fn locate(&self, member: &str) -> Result<Option<(u64, u64)>, OciError> {
        let Self::Tar { path, members } = self else {
            return Ok(None);
        };
        let mut name = normalize(member.as_bytes());
        for _ in 0..=MAX_MEMBER_HOPS {
            match members.get(&name) {
                Some(Member::File { offset, size }) => return Ok(Some((*offset, *size))),
                Some(Member::Link(target)) => name.clone_from(target),
                Some(Member::Other) | None => {
                    return Err(OciError::MissingMember {
                        archive: path.clone(),
                        member: member.to_owned(),
                    });
                }
            }
        }
        Err(OciError::ArchiveSymlinkLoop {
            archive: path.clone(),
            member: member.to_owned(),
            limit: MAX_MEMBER_HOPS,
        })
    }

    /// Whether a regular member (or file, for a directory) named `member` exists.
    pub fn contains(&self, member: &str) -> bool {
        match self {
            Self::Tar { .. } => self.locate(member).is_ok(),
            Self::Dir { path } => path.join(member).is_file(),
        }
    }

    /// The size of `member` in bytes.
    pub fn size(&self, member: &str) -> Result<u64, OciError> {
        match self {
            Self::Tar { .. } => Ok(self.locate(member)?.map_or(0, |(_, size)| size)),
            Self::Dir { path } => {
                let file = path.join(member);
                match fs_err::metadata(&file) {
                    Ok(m) => Ok(m.len()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Err(OciError::MissingMember {
                        archive: path.clone(),
                        member: member.to_owned(),
                    }),
                    Err(source) => Err(OciError::Io { path: file, source }),
                }
            }
        }
    }

    /// Where `member`'s bytes are: the file, and the offset and length inside it.
    pub fn location(&self, member: &str) -> Result<(PathBuf, u64, u64), OciError> {
        match self {
            Self::Tar { path, .. } => {
                let (offset, size) = self.locate(member)?.unwrap_or_default();
                Ok((path.clone(), offset, size))
            }
            Self::Dir { path } => Ok((path.join(member), 0, self.size(member)?)),
        }
    }

    /// Opens `len` bytes of `member` starting at `offset` (the whole member with `0, None`).
    pub fn open_range(
        &self,
        member: &str,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Box<dyn Read + Send>, OciError> {
        let (file_path, start, available) = match self {
            Self::Tar { path, .. } => {
                let (member_offset, size) = self.locate(member)?.unwrap_or_default();
                (
                    path.clone(),
                    member_offset + offset,
                    size.saturating_sub(offset),
                )
            }
            Self::Dir { path } => {
                let size = self.size(member)?;
                (path.join(member), offset, size.saturating_sub(offset))
            }
        };
        let io_err = |source| OciError::Io {
            path: file_path.clone(),
            source,
        };
        let mut file = fs_err::File::open(&file_path).map_err(io_err)?;
        file.seek(SeekFrom::Start(start)).map_err(io_err)?;
        let take = len.map_or(available, |len| len.min(available));
        Ok(Box::new(
            BufReader::with_capacity(256 << 10, file).take(take),
        ))
    }

    /// Opens `member` for reading and seeking within it (a layer indexed by seeking over
    /// file bodies).
    pub fn open_window(&self, member: &str) -> Result<Window, OciError> {
        let (file_path, start, len) = match self {
            Self::Tar { path, .. } => {
                let (offset, size) = self.locate(member)?.unwrap_or_default();
                (path.clone(), offset, size)
            }
            Self::Dir { path } => (path.join(member), 0, self.size(member)?),
        };
        let io_err = |source| OciError::Io {
            path: file_path.clone(),
            source,
        };
        let mut file = fs_err::File::open(&file_path).map_err(io_err)?;
        file.seek(SeekFrom::Start(start)).map_err(io_err)?;
        Ok(Window {
            // Small: a window is read header by header with seeks over file bodies, and
            // every buffer fill after a seek copies this much.
            inner: BufReader::with_capacity(WINDOW_BUFFER, file),
            len,
            pos: 0,
        })
    }

    /// Reads a whole member that must be at most `limit` bytes (a JSON document).
    pub fn read_small(&self, member: &str, limit: u64) -> Result<Vec<u8>, OciError> {
        let size = self.size(member)?;
        if size > limit {
            return Err(OciError::MemberTooLarge {
                archive: self.path().to_owned(),
                member: member.to_owned(),
                size,
                limit,
            });
        }
        let mut out = Vec::new();
        self.open_range(member, 0, None)?
            .read_to_end(&mut out)
            .map_err(|source| OciError::MemberIo {
                archive: self.path().to_owned(),
                member: member.to_owned(),
                source,
            })?;
        Ok(out)
    }
}

/// `len` bytes of a file from where it was opened: reads stop at the end, seeks stay inside.
#[derive(Debug)]
pub struct Window {
    inner: BufReader<fs_err::File>,
    len: u64,
    pos: u64,
}

impl Window {
    /// The window's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.len - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => i128::from(n),
            SeekFrom::Current(n) => i128::from(self.pos) + i128::from(n),
            SeekFrom::End(n) => i128::from(self.len) + i128::from(n),
        };
        let target = u64::try_from(target)
            .ok()
            .filter(|t| *t <= self.len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let delta = i64::try_from(i128::from(target) - i128::from(self.pos))
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // Relative, so BufReader keeps what it buffered when the target is inside it.
        self.inner.seek_relative(delta)?;
        self.pos = target;
        Ok(target)
    }
}
