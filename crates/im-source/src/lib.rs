//! External git repositories as image sources (`source:` in `image.yml`).
//!
//! - [`git`]: running git (through `im-process`, with a deadline, never prompting).
//! - [`remote`]: what a remote's refs point at (`git ls-remote`), without fetching.
//! - [`cache`]: one bare repository per URL, fetched shallowly by ref, and checkouts of a
//!   commit written atomically.
//! - [`patch`]: applying patch files to a checkout; a failure names the patch file's line of
//!   the hunk that did not apply.
//!
//! git does the work: it speaks every transport (https, ssh, file) and uses the credential
//! helpers and `insteadOf` rules the user already has.

pub mod cache;
pub mod git;
pub mod patch;
pub mod remote;

pub use cache::{Checkout, Repository};
pub use remote::{RefKind, Resolved};
