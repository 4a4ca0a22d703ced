//! Linting rendered Dockerfiles: [`hadolint`] runs the hadolint binary on a batch of files and
//! reads its JSON; [`rules`] holds image-manager's own rules (an external base without a
//! digest where a lock exists, a secret in a rootfs, a tag without a test config);
//! [`finding`] is what both produce, already placed at the template line that wrote it;
//! [`format`] writes a [`Report`] as text, JSON, SARIF 2.1.0, Checkstyle or JUnit XML.
//!
//! Choosing what to lint, rendering with source maps, deduplicating identical Dockerfiles and
//! running batches in parallel is `im_exec::lint`'s work.

pub mod canonical;
pub mod finding;
pub mod format;
pub mod hadolint;
pub mod rules;

pub use finding::{Counts, Finding, Level, Place, Report, Seen, Tool};
pub use format::Format;
pub use hadolint::{Hadolint, HadolintError, HadolintFinding};
