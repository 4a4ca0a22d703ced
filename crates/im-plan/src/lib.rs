//! Build plans.
//!
//! - [`key`]: content-addressed build keys and what they are made of.
//! - [`ledger`]: what was built with which key (`dist/ledger.json`).
//! - [`targets`]: which nodes the user's targets name.
//! - [`plan`]: every node × platform with its key, action and reasons.

pub mod key;
pub mod ledger;
pub mod plan;
pub mod targets;

pub use key::KeyInputs;
pub use ledger::{Failure, Ledger, LedgerEntry};
pub use plan::{
    Action, Plan, PlanNode, PlanOptions, Reason, changes, external_bases, plan, release_name,
    selection,
};
