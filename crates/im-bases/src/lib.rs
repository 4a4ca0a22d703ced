//! External base images: the `FROM`, `COPY --from` and `RUN --mount=from` references a
//! project does not build itself (`debian:bookworm-slim`).
//!
//! At plan time every such reference is **resolved** through the registry client to the
//! digest of its manifest for each platform that needs it ([`resolve`]): mirrors first
//! (`registries:` entries with `mirror_of:`), then the reference's own registry, with the
//! same credentials and `insecure:` rules as `push`. The digests go into the build keys, so a
//! base that moves upstream rebuilds exactly its dependents. What was resolved is kept in
//! `dist/bases.json` ([`Record`]), which offline plans (`plan`, `build --offline`) read
//! instead of the registry.
//!
//! Before building, each (digest, platform) is **pulled** once into a content-addressed
//! cache of OCI archives ([`BaseCache`]), shared by every node that uses it and by parallel
//! builds (archives appear whole, under a name that is their digest). Builders are handed
//! that archive, never the tag, so a base that moves between plan and build cannot slip in.
//!
//! This crate never prints and never reads the environment.

mod cache;
mod error;
mod mirror;
mod record;
mod resolve;

pub use cache::BaseCache;
pub use error::{BaseError, Credentials};
pub use mirror::Mirror;
pub use record::{RECORD_FILE, Record, Resolved};
pub use resolve::{Resolution, resolve, resolve_all};
