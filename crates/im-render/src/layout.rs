//! The fixed names and contents of `dist/`: the index, the generate stamp and the
//! `.dockerignore` of every tag folder. A leaf: [`crate::dist`] (which writes `dist/`) and
//! [`crate::stamp`] (which fingerprints it) both read these, and neither imports the other's
//! constants.

/// The name of the index file in `dist/`.
pub const INDEX_FILE: &str = "index.json";

/// The generate stamp's file in `dist/`.
pub const STAMP_FILE: &str = ".generate-stamp";

/// The `.dockerignore` written into every tag folder: only the Dockerfile and the rootfs are
/// build inputs (the test config and build outputs live next to them).
pub const DOCKERIGNORE: &str = "# Written by image-manager: only the Dockerfile and rootfs/ are build inputs.\n*\n!Dockerfile\n!rootfs\n";
