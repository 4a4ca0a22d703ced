//! `packages.lock`: the proof of concept's lock of distribution package versions and base
//! image digests, kept next to an image's `image.yml`.
//!
//! - [`file`]: reading (every problem at `file:line`) and writing the lock.
//! - [`install`]: the package arguments of `apt-get install`/`apk add`/`dnf install` in a
//!   Dockerfile, stage by stage.
//! - [`pin`]: a Dockerfile with those arguments pinned to the lock's versions and its external
//!   `FROM`s pinned to the lock's digests.
//! - [`probe`]: the script that reads candidate versions inside a base image, and its output.

pub mod file;
pub mod install;
pub mod pin;
pub mod probe;
mod shell;

pub use file::{BaseLock, LOCK_FILE, LockFile};
pub use install::{Manager, PackageArg, Unpinnable, package_args};
pub use pin::{Pinned, StageLock, pin};
