//! A streaming tar reader with limits, for layers and outer image archives.
//!
//! It reads ustar, GNU (long names, base-256 numbers) and PAX (`path`, `linkpath`, `size`,
//! `uid`, `gid`, `mtime`) headers the way Go's `archive/tar` does, since that is what Docker
//! and containerd extract with: a PAX `size` wins over the ustar size, header-only types
//! (directories, links, devices, FIFOs) carry no data whatever their size field says, and an
//! old-style regular entry whose name ends in `/` is a directory.
//!
//! Unlike most readers it is strict where laxness hides damage: every header checksum is
//! checked, extension records are bounded ([`TarLimits`]) before they are read into memory, a
//! stream that ends without the end-of-archive marker is truncated, and anything but zeros
//! after the marker is trailing garbage. Entry data is never buffered unless asked for.

use std::io::{self, Read};

use crate::error::LayerError;

/// Where a tar stream comes from: any reader, plus a cheap way to skip bytes when it has one.
pub trait Source: Read {
    /// Skips `n` bytes; fails with `UnexpectedEof` if fewer are left.
    fn skip_bytes(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut Read::take(&mut *self, n), &mut io::sink())?;
        if copied < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// A forward-only source (a decompressor, a network stream).
pub struct Stream<R>(pub R);

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for Stream<R> {}

/// A seekable source: skipping is a seek. `len` is the total length, to detect truncation.
pub struct Seekable<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read + io::Seek> Seekable<R> {
    pub fn new(inner: R, len: u64) -> Self {
        Self { inner, pos: 0, len }
    }
}

impl<R: Read> Read for Seekable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + io::Seek> Source for Seekable<R> {
    fn skip_bytes(&mut self, n: u64) -> io::Result<()> {
        if self.len.saturating_sub(self.pos) < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let delta = i64::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.inner.seek_relative(delta)?;
        self.pos += n;
        Ok(())
    }
}

/// The type of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Regular,
    Directory,
    Symlink,
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// One entry's header, with every extension applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// The name as stored (not cleaned).
    pub path: Vec<u8>,
    /// The link target of a symlink or hardlink (empty otherwise).
    pub link: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits plus setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Bytes of data (0 for header-only types).
    pub size: u64,
    /// Major and minor numbers of a device node.
    pub device: (u32, u32),
    /// Offset of this entry's data in the (uncompressed) stream.
    pub data_offset: u64,
}

impl TarEntry {
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Bounds for one tar stream.
#[derive(Debug, Clone, Copy)]
pub struct TarLimits {
    pub max_extension_bytes: u64,
    pub max_path_bytes: usize,
}

const BLOCK: u64 = 512;

#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
}

/// Reads entries one by one; entry data is skipped unless read with [`TarReader::read_data`]
/// or [`TarReader::data`] before the next call to [`TarReader::next_entry`].
pub struct TarReader<S> {
    src: S,
    pos: u64,
    remaining: u64,
    padding: u64,
    limits: TarLimits,
    ended: bool,
}

impl<S: Source> TarReader<S> {
    pub fn new(src: S, limits: TarLimits) -> Self {
        Self {
            src,
            pos: 0,
            remaining: 0,
            padding: 0,
            limits,
            ended: false,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn read_block(
        &mut self,
        block: &mut [u8; 512],
        context: &'static str,
    ) -> Result<bool, LayerError> {
        let mut filled = 0;
        while filled < block.len() {
            match self.src.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(LayerError::Read {
                        offset: self.pos + filled as u64,
                        source,
                    });
                }
            }
        }
        self.pos += filled as u64;
        match filled {
            0 => Ok(false),
            512 => Ok(true),
            _ => Err(LayerError::Truncated {
                offset: self.pos,
                context,
            }),
        }
    }

    fn skip(&mut self, n: u64, context: &'static str) -> Result<(), LayerError> {
        if n == 0 {
            return Ok(());
        }
        match self.src.skip_bytes(n) {
            Ok(()) => {
                self.pos += n;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(LayerError::Truncated {
                offset: self.pos,
                context,
            }),
            Err(source) => Err(LayerError::Read {
                offset: self.pos,
                source,
            }),
        }
    }

    fn skip_rest_of_entry(&mut self) -> Result<(), LayerError> {
        let n = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip(n, "inside an entry's data")
    }

    fn read_exact_data(&mut self, size: u64) -> Result<Vec<u8>, LayerError> {
        let len = usize::try_from(size).map_err(|_| LayerError::TooManyBytes { limit: size })?;
        let mut data = vec![0; len];
        let mut filled = 0;
        while filled < len {
            match self.src.read(&mut data[filled..]) {
                Ok(0) => {
                    return Err(LayerError::Truncated {
                        offset: self.pos + filled as u64,
                        context: "inside an entry's data",
                    });
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(LayerError::Read {
                        offset: self.pos + filled as u64,
                        source,
                    });
                }
            }
        }
        self.pos += size;
        Ok(data)
    }

    /// The next entry, or `None` at the end-of-archive marker.
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>, LayerError> {
        if self.ended {
            return Ok(None);
        }
        self.skip_rest_of_entry()?;
        let mut pending = Pending::default();
        loop {
            let header_offset = self.pos;
            let mut block = [0u8; 512];
            if !self.read_block(&mut block, "inside a header")? {
                return Err(LayerError::Truncated {
                    offset: self.pos,
                    context: "without the end-of-archive marker",
                });
            }
            if block.iter().all(|&b| b == 0) {
                self.ended = true;
                return Ok(None);
            }
            let header = tar::Header::from_byte_slice(&block);
            let raw_name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
            let bad = |field| LayerError::BadHeader {
                path: raw_name.clone(),
                field,
            };
            let stored: u32 = checksum(&block);
            let recorded = header.cksum().map_err(|_| LayerError::BadChecksum {
                offset: header_offset,
            })?;
            if stored != recorded {
                return Err(LayerError::BadChecksum {
                    offset: header_offset,
                });
            }
            let typeflag = header.entry_type().as_byte();
            let header_size =
                numeric(header.entry_size(), &block[124..136]).ok_or_else(|| bad("size"))?;
            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    if header_size > self.limits.max_extension_bytes {
                        return Err(LayerError::ExtensionTooLarge {
                            offset: header_offset,
                            size: header_size,
                            limit: self.limits.max_extension_bytes,
                        });
                    }
                    let data = self.read_exact_data(header_size)?;
                    self.skip(padding(header_size), "inside an extension's padding")?;
                    match typeflag {
                        b'x' => apply_pax(&data, &mut pending, header_offset)?,
                        b'L' => pending.path = Some(trim_nuls(data)),
                        b'K' => pending.link = Some(trim_nuls(data)),
                        _ => {} // global PAX headers are ignored, as containerd does
                    }
                    continue;
                }
                _ => {}
            }
            let mut path = pending
                .path
                .take()
                .unwrap_or_else(|| header.path_bytes().into_owned());
            let link = pending
                .link
                .take()
                .or_else(|| header.link_name_bytes().map(std::borrow::Cow::into_owned))
                .unwrap_or_default();
            for name in [&path, &link] {
                if name.contains(&0) {
                    return Err(bad("name (contains NUL)"));
                }
                if name.len() > self.limits.max_path_bytes {
                    return Err(LayerError::PathTooLong {
                        path: String::from_utf8_lossy(&name[..64.min(name.len())]).into_owned()
                            + "…",
                        len: name.len(),
                        limit: self.limits.max_path_bytes,
                    });
                }
            }
            let kind = match typeflag {
                0 if path.ends_with(b"/") => EntryKind::Directory,
                b'0' | b'7' | 0 => EntryKind::Regular,
                b'1' => EntryKind::Hardlink,
                b'2' => EntryKind::Symlink,
                b'3' => EntryKind::CharDevice,
                b'4' => EntryKind::BlockDevice,
                b'5' => EntryKind::Directory,
                b'6' => EntryKind::Fifo,
                other => {
                    return Err(LayerError::UnsupportedType {
                        path: String::from_utf8_lossy(&path).into_owned(),
                        typeflag: char::from(other),
                    });
                }
            };
            if kind == EntryKind::Directory {
                while path.len() > 1 && path.ends_with(b"/") {
                    path.pop();
                }
            }
            let size = if kind == EntryKind::Regular {
                pending.size.unwrap_or(header_size)
            } else {
                0
            };
            let device = if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
                (
                    header
                        .device_major()
                        .map_err(|_| bad("devmajor"))?
                        .unwrap_or(0),
                    header
                        .device_minor()
                        .map_err(|_| bad("devminor"))?
                        .unwrap_or(0),
                )
            } else {
                (0, 0)
            };
            let entry = TarEntry {
                path,
                link,
                kind,
                mode: numeric(header.mode().map(u64::from), &block[100..108])
                    .ok_or_else(|| bad("mode"))?
                    .try_into()
                    .map_or(0, |mode: u32| mode & 0o7777),
                uid: match pending.uid {
                    Some(uid) => uid,
                    None => numeric(header.uid(), &block[108..116]).ok_or_else(|| bad("uid"))?,
                },
                gid: match pending.gid {
                    Some(gid) => gid,
                    None => numeric(header.gid(), &block[116..124]).ok_or_else(|| bad("gid"))?,
                },
                mtime: match pending.mtime {
                    Some(mtime) => mtime,
                    None => i64::try_from(
                        numeric(header.mtime(), &block[136..148]).ok_or_else(|| bad("mtime"))?,
                    )
                    .unwrap_or(i64::MAX),
                },
                size,
                device,
                data_offset: self.pos,
            };
            // Header-only types never have data in Go's reader, whatever the size field says.
            let data_len = if kind == EntryKind::Regular { size } else { 0 };
            self.remaining = data_len;
            self.padding = padding(data_len);
            return Ok(Some(entry));
        }
    }

    /// Reads the current entry's data into memory, if it is at most `max` bytes.
    pub fn read_data(&mut self, max: u64) -> Result<Option<Vec<u8>>, LayerError> {
        if self.remaining > max {
            return Ok(None);
        }
        let data = self.read_exact_data(self.remaining)?;
        self.remaining = 0;
        Ok(Some(data))
    }

    /// After `next_entry` returned `None`: checks that only zeros follow, up to the end of
    /// the stream, and gives the source back (so its digest can be checked).
    pub fn finish(mut self) -> Result<S, LayerError> {
        if !self.ended {
            while self.next_entry()?.is_some() {}
        }
        let mut buf = [0u8; 8192];
        loop {
            match self.src.read(&mut buf) {
                Ok(0) => return Ok(self.src),
                Ok(n) => {
                    if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                        return Err(LayerError::TrailingGarbage {
                            offset: self.pos + i as u64,
                        });
                    }
                    self.pos += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(LayerError::Read {
                        offset: self.pos,
                        source,
                    });
                }
            }
        }
    }
}

/// A numeric header field: a field of only NULs and spaces is 0, as Go reads it.
#[allow(clippy::needless_pass_by_value)] // takes the parse result as the header gives it
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> Option<u64> {
    match parsed {
        Ok(value) => Some(value),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Some(0),
        Err(_) => None,
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn checksum(block: &[u8; 512]) -> u32 {
    block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum()
}

fn trim_nuls(mut data: Vec<u8>) -> Vec<u8> {
    while data.last() == Some(&0) {
        data.pop();
    }
    data
}

fn apply_pax(data: &[u8], pending: &mut Pending, offset: u64) -> Result<(), LayerError> {
    let bad = || LayerError::BadPax { offset };
    for record in tar::PaxExtensions::new(data) {
        let record = record.map_err(|_| bad())?;
        let key = record.key().map_err(|_| bad())?;
        let value = record.value_bytes();
        let text = || std::str::from_utf8(value).map_err(|_| bad());
        match key {
            "path" => pending.path = Some(value.to_vec()),
            "linkpath" => pending.link = Some(value.to_vec()),
            "size" => pending.size = Some(text()?.parse().map_err(|_| bad())?),
            "uid" => pending.uid = Some(text()?.parse().map_err(|_| bad())?),
            "gid" => pending.gid = Some(text()?.parse().map_err(|_| bad())?),
            "mtime" => {
                let whole = text()?.split('.').next().unwrap_or_default();
                pending.mtime = Some(whole.parse().map_err(|_| bad())?);
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TarLimits = TarLimits {
        max_extension_bytes: 1 << 20,
        max_path_bytes: 4096,
    };

    fn entries(bytes: &[u8]) -> Result<Vec<(TarEntry, Vec<u8>)>, LayerError> {
        let mut reader = TarReader::new(Stream(bytes), LIMITS);
        let mut out = Vec::new();
        while let Some(entry) = reader.next_entry()? {
            let data = reader.read_data(u64::MAX)?.unwrap();
            out.push((entry, data));
        }
        reader.finish()?;
        Ok(out)
    }

    fn simple_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o4755);
        header.set_uid(1000);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "bin/tool", &b"hello"[..])
            .unwrap();
        let long = format!("{}/file", "d".repeat(300));
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        builder.append_data(&mut header, &long, &b""[..]).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn reads_entries_with_gnu_long_names_and_setuid_bits() {
        let list = entries(&simple_tar()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].0.path, b"bin/tool");
        assert_eq!(list[0].0.mode, 0o4755);
        assert_eq!(list[0].0.uid, 1000);
        assert_eq!(list[0].1, b"hello");
        assert_eq!(list[1].0.path.len(), 305);
    }

    #[test]
    fn a_stream_without_end_marker_is_truncated() {
        let mut bytes = simple_tar();
        bytes.truncate(bytes.len() - 1024);
        assert!(matches!(entries(&bytes), Err(LayerError::Truncated { .. })));
        bytes.truncate(700);
        assert!(matches!(entries(&bytes), Err(LayerError::Truncated { .. })));
    }

    #[test]
    fn bytes_after_the_end_marker_are_garbage() {
        let mut bytes = simple_tar();
        bytes.extend_from_slice(b"garbage");
        assert!(matches!(
            entries(&bytes),
            Err(LayerError::TrailingGarbage { .. })
        ));
    }

    #[test]
    fn a_corrupted_header_fails_its_checksum() {
        let mut bytes = simple_tar();
        bytes[0] = b'X';
        assert!(matches!(
            entries(&bytes),
            Err(LayerError::BadChecksum { offset: 0 })
        ));
    }
}
