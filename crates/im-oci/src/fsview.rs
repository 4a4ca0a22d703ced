//! The flattened, read-only filesystem of an image, built in memory from its layers.
//!
//! [`FsView`] holds only metadata: a tree of nodes (directories, regular files, symlinks,
//! device nodes, FIFOs) and, for each regular file, where its bytes are in which layer
//! ([`ContentLocation`]). Nothing is written to the host and no file content is kept, so memory
//! grows with the number of entries, not with the size of the image.
//!
//! Layers are applied the way containerd applies them to a directory, with the kernel's path
//! rules inside a chroot:
//! - an entry name's parent directories are resolved through symlinks inside the image (a
//!   symlink to `/etc` followed by `link/file` writes `/etc/file`; a relative link that climbs
//!   out stays at the root), and missing ones are created;
//! - an existing entry is replaced unless both are directories (then the metadata is updated
//!   and the children kept);
//! - a hardlink target is cleaned with `..` clamped at the root, its parent resolved through
//!   symlinks and its last component not followed (a hardlink to a symlink is that symlink);
//! - `.wh.NAME` removes NAME (not what it points to) from lower layers only; `.wh..wh..opq`
//!   hides a directory's lower-layer contents once the whole layer has been applied; other
//!   `.wh..wh.` names are ignored; `.wh.`, `.wh..` and `.wh...` are invalid. Whiteouts never
//!   appear in the view.
//!
//! Lookups ([`FsView::stat`], [`FsView::lstat`], [`FsView::read_dir`]) follow the same rules:
//! `..` at the root stays at the root, absolute symlinks restart at the image root, and more
//! than `max_symlink_hops` links is a loop.

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::compression::Compression;
use crate::error::LayerError;
use crate::path::{clean_clamped, clean_entry_name, components, display};
use crate::tarstream::{EntryKind, Source, TarEntry, TarReader};

/// Index of a node; equal ids mean the same file (hardlinks share one).
pub type NodeId = usize;

const ROOT: NodeId = 0;

/// What kind of file a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// Where a regular file's bytes are: `size` bytes at `offset` in layer `layer`'s uncompressed
/// tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentLocation {
    pub layer: usize,
    pub offset: u64,
    pub size: u64,
}

/// Metadata of one file, as `stat`/`lstat` inside the container would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub kind: FileKind,
    /// Permission bits plus setuid (0o4000), setgid (0o2000) and sticky (0o1000).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Bytes of a regular file; length of a symlink's target; 0 otherwise.
    pub size: u64,
    /// The target of a symlink.
    pub link_target: Option<Vec<u8>>,
    /// Major and minor numbers of a device node.
    pub device: Option<(u32, u32)>,
    /// Identity of the file: two paths with the same inode are hardlinks of each other.
    pub inode: NodeId,
}

/// Why a path could not be looked up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: a component of the path is not a directory")]
    NotADirectory { path: String },
    #[error("{path}: too many levels of symbolic links")]
    Loop { path: String },
    #[error("{path}: is a {kind:?}, not a regular file")]
    NotAFile { path: String, kind: FileKind },
}

/// The index in `rest` of the `..` that cancels a component just taken off its front.
fn cancelled_by(rest: &VecDeque<Box<[u8]>>) -> Option<usize> {
    let mut depth = 1usize;
    for (i, component) in rest.iter().enumerate() {
        if &**component == b".." {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        } else {
            depth += 1;
        }
    }
    None
}

#[derive(Debug, Clone)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
}

#[derive(Debug, Clone)]
enum NodeKind {
    Dir(BTreeMap<Box<[u8]>, NodeId>),
    File(ContentLocation),
    Symlink(Box<[u8]>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
struct Node {
    meta: Meta,
    kind: NodeKind,
}

enum Walk {
    Found(Vec<NodeId>),
    /// `rest[0]` does not exist in the directory `stack.last()`.
    Missing {
        stack: Vec<NodeId>,
        rest: VecDeque<Box<[u8]>>,
    },
}

enum WalkError {
    NotADirectory(Box<[u8]>),
    Loop,
}

/// The flattened filesystem of an image.
#[derive(Debug, Clone)]
pub struct FsView {
    nodes: Vec<Node>,
    entries: u64,
    max_symlink_hops: usize,
    max_path_depth: usize,
    compression: Vec<Compression>,
}

/// What one layer's application needs to remember until the layer ends.
#[derive(Default)]
struct LayerState {
    /// `(directory, name)` pairs this layer wrote.
    touched: HashSet<(NodeId, Box<[u8]>)>,
    /// Directories marked opaque by this layer.
    opaque: Vec<NodeId>,
}

impl FsView {
    /// An empty filesystem (just `/`, mode 0755, owned by root).
    pub fn new(max_symlink_hops: usize, max_path_depth: usize) -> Self {
        let root = Node {
            meta: Meta {
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
            },
            kind: NodeKind::Dir(BTreeMap::new()),
        };
        Self {
            nodes: vec![root],
            entries: 0,
            max_symlink_hops,
            max_path_depth,
            compression: Vec::new(),
        }
    }

    /// Records how layer `layer` was compressed (to know how to read its files later).
    pub fn set_layer_compression(&mut self, layer: usize, compression: Compression) {
        if self.compression.len() <= layer {
            self.compression.resize(layer + 1, Compression::None);
        }
        self.compression[layer] = compression;
    }

    /// How layer `layer` is compressed, when recorded.
    pub fn layer_compression(&self, layer: usize) -> Option<Compression> {
        self.compression.get(layer).copied()
    }

    /// Tar entries applied so far (over all layers).
    pub fn entries_applied(&self) -> u64 {
        self.entries
    }

    /// Applies one layer's tar stream; `max_entries` bounds the total over all layers.
    pub fn apply_layer<S: Source>(
        &mut self,
        reader: &mut TarReader<S>,
        layer: usize,
        max_entries: u64,
    ) -> Result<(), LayerError> {
        let mut state = LayerState::default();
        while let Some(entry) = reader.next_entry()? {
            self.entries += 1;
            if self.entries > max_entries {
                return Err(LayerError::TooManyEntries { limit: max_entries });
            }
            self.apply_entry(&entry, layer, &mut state)?;
        }
        for dir in std::mem::take(&mut state.opaque) {
            self.hide_lower(dir, &state.touched);
        }
        Ok(())
    }

    fn apply_entry(
        &mut self,
        entry: &TarEntry,
        layer: usize,
        state: &mut LayerState,
    ) -> Result<(), LayerError> {
        let name = entry.path_lossy();
        let comps = clean_entry_name(&entry.path)
            .ok_or_else(|| LayerError::PathEscapes { path: name.clone() })?;
        if comps.len() > self.max_path_depth {
            return Err(LayerError::PathTooDeep {
                path: name,
                depth: comps.len(),
                limit: self.max_path_depth,
            });
        }
        let Some((&base, parent)) = comps.split_last() else {
            return Ok(()); // the root itself: ignored, as containerd does
        };
        if let Some(target) = base.strip_prefix(b".wh.") {
            return self.apply_whiteout(target, parent, &name, state);
        }
        let dir = self.make_dirs(parent, &name)?;
        let meta = Meta {
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime,
        };
        let kind = match entry.kind {
            EntryKind::Regular => Some(NodeKind::File(ContentLocation {
                layer,
                offset: entry.data_offset,
                size: entry.size,
            })),
            EntryKind::Directory => Some(NodeKind::Dir(BTreeMap::new())),
            EntryKind::Symlink => Some(NodeKind::Symlink(entry.link.clone().into_boxed_slice())),
            EntryKind::CharDevice => Some(NodeKind::Char(entry.device.0, entry.device.1)),
            EntryKind::BlockDevice => Some(NodeKind::Block(entry.device.0, entry.device.1)),
            EntryKind::Fifo => Some(NodeKind::Fifo),
            EntryKind::Hardlink => None,
        };
        let new_id = match kind {
            Some(kind) => Node { meta, kind },
            None => {
                let target = self.hardlink_target(&entry.link, &name)?;
                self.link(dir, base, target, state);
                return Ok(());
            }
        };
        if let Some(existing) = self.child(dir, base)
            && let (NodeKind::Dir(_), NodeKind::Dir(_)) = (&self.nodes[existing].kind, &new_id.kind)
        {
            self.nodes[existing].meta = new_id.meta;
            state.touched.insert((dir, base.into()));
            return Ok(());
        }
        let id = self.nodes.len();
        self.nodes.push(new_id);
        self.link(dir, base, id, state);
        Ok(())
    }

    fn link(&mut self, dir: NodeId, name: &[u8], id: NodeId, state: &mut LayerState) {
        if let NodeKind::Dir(children) = &mut self.nodes[dir].kind {
            children.insert(name.into(), id);
        }
        state.touched.insert((dir, name.into()));
    }

    fn apply_whiteout(
        &mut self,
        target: &[u8],
        parent: &[&[u8]],
        name: &str,
        state: &mut LayerState,
    ) -> Result<(), LayerError> {
        let is_opaque = target == b".wh..opq";
        if !is_opaque && target.starts_with(b".wh.") {
            return Ok(()); // aufs metadata (.wh..wh.plnk and the like): not part of the view
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(LayerError::InvalidWhiteout {
                path: name.to_owned(),
            });
        }
        let rest = parent.iter().map(|c| Box::<[u8]>::from(*c)).collect();
        let dir = match self.walk(vec![ROOT], rest, true, &mut 0) {
            Ok(Walk::Found(stack)) => stack[stack.len() - 1],
            // A missing parent (or one that is not a directory) has nothing to hide.
            Ok(Walk::Missing { .. }) | Err(WalkError::NotADirectory(_)) => return Ok(()),
            Err(WalkError::Loop) => {
                return Err(LayerError::SymlinkLoop {
                    path: name.to_owned(),
                });
            }
        };
        let NodeKind::Dir(children) = &mut self.nodes[dir].kind else {
            return Ok(());
        };
        if is_opaque {
            state.opaque.push(dir);
        } else if !state.touched.contains(&(dir, Box::from(target))) {
            children.remove(target);
        }
        Ok(())
    }

    /// Removes from `dir` (recursively) everything that this layer did not write.
    fn hide_lower(&mut self, dir: NodeId, touched: &HashSet<(NodeId, Box<[u8]>)>) -> bool {
        let children: Vec<(Box<[u8]>, NodeId)> = match &self.nodes[dir].kind {
            NodeKind::Dir(children) => children.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            _ => return false,
        };
        let mut any_kept = false;
        for (name, child) in children {
            let mut keep = touched.contains(&(dir, name.clone()));
            if matches!(self.nodes[child].kind, NodeKind::Dir(_)) && self.hide_lower(child, touched)
            {
                keep = true;
            }
            if keep {
                any_kept = true;
            } else if let NodeKind::Dir(children) = &mut self.nodes[dir].kind {
                children.remove(&name);
            }
        }
        any_kept
    }

    fn hardlink_target(&self, link: &[u8], name: &str) -> Result<NodeId, LayerError> {
        let comps = clean_clamped(link);
        let shown = display(&comps);
        let rest = comps.iter().map(|c| Box::<[u8]>::from(*c)).collect();
        match self.walk(vec![ROOT], rest, false, &mut 0) {
            Ok(Walk::Found(stack)) => {
                let id = stack[stack.len() - 1];
                if matches!(self.nodes[id].kind, NodeKind::Dir(_)) {
                    return Err(LayerError::HardlinkToDirectory {
                        path: name.to_owned(),
                        target: shown,
                    });
                }
                Ok(id)
            }
            Ok(Walk::Missing { .. }) | Err(WalkError::NotADirectory(_)) => {
                Err(LayerError::HardlinkTargetMissing {
                    path: name.to_owned(),
                    target: shown,
                })
            }
            Err(WalkError::Loop) => Err(LayerError::SymlinkLoop {
                path: name.to_owned(),
            }),
        }
    }

    /// Resolves (and creates, like `mkdir -p` inside a chroot) the directories `parent`.
    fn make_dirs(&mut self, parent: &[&[u8]], name: &str) -> Result<NodeId, LayerError> {
        let mut hops = 0;
        let mut stack = vec![ROOT];
        let mut rest: VecDeque<Box<[u8]>> = parent.iter().map(|c| Box::<[u8]>::from(*c)).collect();
        loop {
            match self.walk(stack, rest, true, &mut hops) {
                Ok(Walk::Found(found)) => {
                    let id = found[found.len() - 1];
                    return match self.nodes[id].kind {
                        NodeKind::Dir(_) => Ok(id),
                        _ => Err(LayerError::NotADirectory {
                            path: name.to_owned(),
                            component: parent
                                .last()
                                .map(|c| String::from_utf8_lossy(c).into_owned())
                                .unwrap_or_default(),
                        }),
                    };
                }
                Ok(Walk::Missing {
                    stack: mut found,
                    rest: mut missing,
                }) => {
                    let dir = found[found.len() - 1];
                    let component = missing.pop_front().unwrap_or_default();
                    let id = self.nodes.len();
                    self.nodes.push(Node {
                        meta: Meta {
                            mode: 0o755,
                            uid: 0,
                            gid: 0,
                            mtime: 0,
                        },
                        kind: NodeKind::Dir(BTreeMap::new()),
                    });
                    if let NodeKind::Dir(children) = &mut self.nodes[dir].kind {
                        children.insert(component, id);
                    }
                    found.push(id);
                    stack = found;
                    rest = missing;
                }
                Err(WalkError::NotADirectory(component)) => {
                    return Err(LayerError::NotADirectory {
                        path: name.to_owned(),
                        component: String::from_utf8_lossy(&component).into_owned(),
                    });
                }
                Err(WalkError::Loop) => {
                    return Err(LayerError::SymlinkLoop {
                        path: name.to_owned(),
                    });
                }
            }
        }
    }

    fn child(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        match &self.nodes[dir].kind {
            NodeKind::Dir(children) => children.get(name).copied(),
            _ => None,
        }
    }

    /// Walks `rest` from the directory stack `stack` with the kernel's rules.
    fn walk(
        &self,
        mut stack: Vec<NodeId>,
        mut rest: VecDeque<Box<[u8]>>,
        follow_last: bool,
        hops: &mut usize,
    ) -> Result<Walk, WalkError> {
        while let Some(name) = rest.pop_front() {
            if &*name == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let dir = stack[stack.len() - 1];
            let NodeKind::Dir(children) = &self.nodes[dir].kind else {
                return Err(WalkError::NotADirectory(name));
            };
            let Some(&child) = children.get(&name) else {
                // containerd resolves through a missing component lexically: `missing/..`
                // is the directory itself. Only a component that stays missing is missing.
                if let Some(cancel) = cancelled_by(&rest) {
                    rest.drain(..=cancel);
                    continue;
                }
                rest.push_front(name);
                return Ok(Walk::Missing { stack, rest });
            };
            let is_last = rest.is_empty();
            match &self.nodes[child].kind {
                NodeKind::Symlink(target) if !is_last || follow_last => {
                    *hops += 1;
                    if *hops > self.max_symlink_hops {
                        return Err(WalkError::Loop);
                    }
                    if target.is_empty() {
                        rest.push_front(name);
                        return Ok(Walk::Missing { stack, rest });
                    }
                    if target.starts_with(b"/") {
                        stack.truncate(1);
                    }
                    for component in components(target).collect::<Vec<_>>().into_iter().rev() {
                        rest.push_front(component.into());
                    }
                }
                NodeKind::Dir(_) => stack.push(child),
                _ if is_last => stack.push(child),
                _ => return Err(WalkError::NotADirectory(name)),
            }
        }
        Ok(Walk::Found(stack))
    }

    fn lookup(&self, path: &str, follow_last: bool) -> Result<NodeId, LookupError> {
        let rest = components(path.as_bytes()).map(Box::from).collect();
        match self.walk(vec![ROOT], rest, follow_last, &mut 0) {
            Ok(Walk::Found(stack)) => Ok(stack[stack.len() - 1]),
            Ok(Walk::Missing { .. }) => Err(LookupError::NotFound {
                path: path.to_owned(),
            }),
            Err(WalkError::NotADirectory(_)) => Err(LookupError::NotADirectory {
                path: path.to_owned(),
            }),
            Err(WalkError::Loop) => Err(LookupError::Loop {
                path: path.to_owned(),
            }),
        }
    }

    fn info(&self, id: NodeId) -> FileInfo {
        let node = &self.nodes[id];
        let (kind, size, link_target, device) = match &node.kind {
            NodeKind::Dir(_) => (FileKind::Directory, 0, None, None),
            NodeKind::File(location) => (FileKind::Regular, location.size, None, None),
            NodeKind::Symlink(target) => (
                FileKind::Symlink,
                target.len() as u64,
                Some(target.to_vec()),
                None,
            ),
            NodeKind::Char(major, minor) => (FileKind::CharDevice, 0, None, Some((*major, *minor))),
            NodeKind::Block(major, minor) => {
                (FileKind::BlockDevice, 0, None, Some((*major, *minor)))
            }
            NodeKind::Fifo => (FileKind::Fifo, 0, None, None),
        };
        FileInfo {
            kind,
            mode: node.meta.mode,
            uid: node.meta.uid,
            gid: node.meta.gid,
            mtime: node.meta.mtime,
            size,
            link_target,
            device,
            inode: id,
        }
    }

    /// Metadata of `path`, following symlinks (like `stat`).
    pub fn stat(&self, path: &str) -> Result<FileInfo, LookupError> {
        self.lookup(path, true).map(|id| self.info(id))
    }

    /// Metadata of `path` itself, not following a final symlink (like `lstat`).
    pub fn lstat(&self, path: &str) -> Result<FileInfo, LookupError> {
        self.lookup(path, false).map(|id| self.info(id))
    }

    /// Entries of the directory `path` (following symlinks), sorted by name, with `lstat`
    /// metadata.
    pub fn read_dir(&self, path: &str) -> Result<Vec<(String, FileInfo)>, LookupError> {
        let id = self.lookup(path, true)?;
        match &self.nodes[id].kind {
            NodeKind::Dir(children) => Ok(children
                .iter()
                .map(|(name, child)| {
                    (
                        String::from_utf8_lossy(name).into_owned(),
                        self.info(*child),
                    )
                })
                .collect()),
            _ => Err(LookupError::NotADirectory {
                path: path.to_owned(),
            }),
        }
    }

    /// Where the content of the regular file at `path` (following symlinks) is.
    pub fn content_location(&self, path: &str) -> Result<ContentLocation, LookupError> {
        let id = self.lookup(path, true)?;
        match &self.nodes[id].kind {
            NodeKind::File(location) => Ok(*location),
            _ => Err(LookupError::NotAFile {
                path: path.to_owned(),
                kind: self.info(id).kind,
            }),
        }
    }

    /// Every path in the view with its `lstat` metadata, depth first, sorted by name.
    pub fn walk_all(&self) -> Vec<(String, FileInfo)> {
        let mut out = Vec::new();
        let mut pending = vec![(String::new(), ROOT)];
        while let Some((prefix, dir)) = pending.pop() {
            if let NodeKind::Dir(children) = &self.nodes[dir].kind {
                for (name, child) in children.iter().rev() {
                    let path = format!("{prefix}/{}", String::from_utf8_lossy(name));
                    if matches!(self.nodes[*child].kind, NodeKind::Dir(_)) {
                        pending.push((path.clone(), *child));
                    }
                    out.push((path, self.info(*child)));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
