//! Runs plans. A command loads and prepares the project ([`Prepared`]), plans
//! ([`planning::plan`]), and hands the plan to an executor here — [`build::build`] with a
//! builder, [`publish`] with a registry session, [`test`] with a container runtime, [`sbom`] with syft — which
//! tells people what happens through a [`Reporter`]. [`ci`] turns the graph into what
//! `im_ci` makes pipelines of; [`ci_template`] renders a project's own pipeline template. Nothing here prints, exits or reads the environment: the binary passes in
//! what it read ([`Environment`]) and the command's cancellation.

pub mod affected;
pub mod bases;
pub mod build;
pub mod builder;
pub mod bump;
pub mod cache;
pub mod ci;
pub mod ci_reports;
pub mod ci_template;
mod context;
pub mod history;
pub mod k8s;
pub mod lint;
pub mod load;
pub mod lock;
pub mod outdated;
pub mod planning;
mod prepare;
pub mod publish;
pub mod registry;
pub mod report;
pub mod sbom;
pub mod source;
pub mod steps;
pub mod test;

pub use context::{Environment, ExecContext, Reporter, error_lines};
pub use im_diag::error_chain;
pub use prepare::{Freeing, Prepared};

/// "1 tag" / "3 tags".
pub fn plural(count: usize, word: &str) -> String {
    if count == 1 {
        format!("{count} {word}")
    } else {
        format!("{count} {word}s")
    }
}

/// `1.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    im_report::html::human_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
