//! One process runner for every external tool image-manager drives (builders, container
//! runtimes, container-structure-test).
//!
//! A command is data ([`CommandSpec`]: program, argv built element by element, added
//! environment); a tool is described by the spec its commands start from. [`Run`] spawns it
//! in its own process group and either streams its output line by line to a [`Log`] and a
//! callback ([`Run::stream`], [`run`]) or captures it whole ([`Run::capture`],
//! [`Run::checked`]). A [`CancelToken`] stops it (SIGTERM to the group, SIGKILL after half a
//! second) and a deadline kills it; either way no process of its group is left behind.
//! Failures are [`RunError`]s that name the command, its argv, its exit status, the last
//! lines of its stderr and the log.
//!
//! [`CancelToken`] is the one cancellation token of the program: made once, cloned into
//! every part that runs work, polled, waited on by threads or awaited by async code.

pub mod cancel;
pub mod command;
pub mod error;
pub mod log;
pub mod run;

pub use cancel::{CancelToken, Cancelled};
pub use command::{CommandSpec, argv, quote, which};
pub use error::{RunError, STDERR_TAIL_LINES, tail};
pub use log::Log;
pub use run::{Run, run};

#[cfg(test)]
mod tests;
