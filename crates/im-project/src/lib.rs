//! The project model of image-manager.
//!
//! - [`settings`]: `.image-manager.yml`, with `${VAR}` expansion ([`expand`]).
//! - [`definition`]: one `image.yml` as written, validated field by field.
//! - [`model`]: the resolved project: image names, merged tags, variant tags, aliases.
//! - [`version`]: version schemes and alias generation.
//! - [`upstream`]: `source:`, an image built from an external git repository.
//! - [`revision`]: immutable build revision tags (`<tag>-r<N>`) and the names they reserve.
//! - [`template_value`]: how YAML `variables` become typed template values.

pub mod definition;
pub mod expand;
pub mod model;
pub mod revision;
pub mod settings;
pub mod template_value;
pub mod upstream;
pub mod version;

pub use definition::{ImageFile, Variables};
pub use im_oci::Platform;
pub use model::{Image, Loaded, Project, Tag, TagVariant};
pub use settings::{Secret, Settings};
pub use version::VersionScheme;
