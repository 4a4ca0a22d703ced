//! `cache:` in `.image-manager.yml`: the shared layer cache builds read and write. The
//! proof of concept's keys (`endpoint`, `bucket`, `access_key`, `secret_key`, `region`,
//! `use_path_style`, and `cache: false` to turn it off) plus `type: s3 | registry | gha |
//! local | none`, `ref` for a registry cache and `path` for a local one. Every value may use
//! `${VAR}`; the keys are [`Secret`]s.

use im_yaml::Node;
use serde::Serialize;

use super::{Secret, SettingsReader};

/// The cache types `type:` accepts.
pub const CACHE_KINDS: [&str; 5] = ["s3", "registry", "gha", "local", "none"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheSettings {
    /// `s3`, `registry`, `gha`, `local` or `none` (`cache: false`).
    pub kind: String,
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<Secret>,
    pub secret_key: Option<Secret>,
    /// Path-style S3 URLs (`endpoint/bucket/key`), as Garage and MinIO want.
    pub use_path_style: Option<bool>,
    /// For `registry` caches: the repository to store cache manifests under.
    pub reference: Option<String>,
    /// For `local` caches: a folder.
    pub path: Option<String>,
}

impl CacheSettings {
    /// The cache turned off (`cache: false`, `type: none`).
    pub fn is_off(&self) -> bool {
        self.kind == "none"
    }
}

impl SettingsReader<'_> {
    /// `cache: false`, or a mapping.
    pub(super) fn cache(&mut self, node: &Node) -> Option<CacheSettings> {
        let what = "`cache`";
        if node.as_scalar().is_some() {
            return match self.reader.bool(node, what) {
                Some(false) => Some(CacheSettings::off()),
                Some(true) => {
                    self.reader.error(
                        node.span,
                        "`cache: true` does not say which cache",
                        Some("leave `cache` out to pick one automatically (S3, GitHub Actions, the registry), or write `cache: {type: registry}`".into()),
                    );
                    None
                }
                None => None,
            };
        }
        let known = [
            "type",
            "endpoint",
            "bucket",
            "region",
            "access_key",
            "secret_key",
            "use_path_style",
            "ref",
            "path",
        ];
        let map = self.reader.map(node, what, &known)?;
        let reference = self.opt_text(&map, "ref", what);
        let path = self.opt_text(&map, "path", what);
        let kind = self.opt_text(&map, "type", what).unwrap_or_else(|| {
            if reference.is_some() {
                "registry"
            } else if path.is_some() {
                "local"
            } else {
                "s3"
            }
            .to_owned()
        });
        let type_span = map.get("type").map_or(node.span, |n| n.span);
        if !CACHE_KINDS.contains(&kind.as_str()) {
            let help = match im_diag::did_you_mean(&kind, CACHE_KINDS) {
                Some(hint) => format!("did you mean `{hint}`?"),
                None => format!("use one of: {}", CACHE_KINDS.join(", ")),
            };
            self.reader.error(
                type_span,
                format!("unknown cache type `{kind}`"),
                Some(help),
            );
        }
        let settings = CacheSettings {
            endpoint: self.opt_text(&map, "endpoint", what),
            bucket: self.opt_text(&map, "bucket", what),
            region: self.opt_text(&map, "region", what),
            access_key: self.opt_secret(&map, "access_key", what),
            secret_key: self.opt_secret(&map, "secret_key", what),
            use_path_style: map
                .get("use_path_style")
                .and_then(|n| self.reader.bool(n, "`use_path_style` in `cache`")),
            reference,
            path,
            kind,
        };
        if settings.kind == "s3" && settings.bucket.is_none() {
            self.reader.error(
                type_span,
                "an s3 cache needs a `bucket`",
                Some(
                    "add `bucket: NAME` (and `endpoint:` for an S3 service other than AWS)".into(),
                ),
            );
        }
        if settings.kind == "local" && settings.path.is_none() {
            self.reader.error(
                type_span,
                "a local cache needs a `path`",
                Some("add `path: FOLDER` (relative to the project)".into()),
            );
        }
        if settings.access_key.is_some() != settings.secret_key.is_some() {
            self.reader.error(
                node.span,
                "`access_key` and `secret_key` go together",
                Some("set both, e.g. `access_key: ${AWS_ACCESS_KEY_ID}` and `secret_key: ${AWS_SECRET_ACCESS_KEY}`, or neither".into()),
            );
        }
        Some(settings)
    }
}

impl CacheSettings {
    fn off() -> Self {
        CacheSettings {
            kind: "none".to_owned(),
            endpoint: None,
            bucket: None,
            region: None,
            access_key: None,
            secret_key: None,
            use_path_style: None,
            reference: None,
            path: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::Settings;

    fn parse(text: &str) -> Result<Settings, im_diag::Diagnostics> {
        let env = |name: &str| match name {
            "CACHE_SECRET" => Some("canary-55aa".to_owned()),
            "CACHE_KEY" => Some("GK1".to_owned()),
            _ => None,
        };
        Settings::parse(
            std::path::Path::new(".image-manager.yml"),
            text.into(),
            &env,
        )
    }

    #[test]
    fn the_proof_of_concepts_keys_read_as_an_s3_cache() {
        let settings = parse(
            "cache:\n  endpoint: http://127.0.0.1:3900\n  bucket: buildkit-cache\n  region: garage\n  \
             access_key: ${CACHE_KEY}\n  secret_key: ${CACHE_SECRET}\n  use_path_style: true\n",
        )
        .unwrap();
        let cache = settings.cache.unwrap();
        assert_eq!(cache.kind, "s3");
        assert_eq!(cache.use_path_style, Some(true));
        assert_eq!(cache.secret_key.as_ref().unwrap().expose(), "canary-55aa");
        assert!(!format!("{cache:?}").contains("canary-55aa"));
        assert!(
            !serde_json::to_string(&cache)
                .unwrap()
                .contains("canary-55aa")
        );
    }

    #[test]
    fn cache_false_turns_it_off_and_ref_means_a_registry() {
        assert!(parse("cache: false\n").unwrap().cache.unwrap().is_off());
        let cache = parse("cache:\n  ref: reg.example/cache\n")
            .unwrap()
            .cache
            .unwrap();
        assert_eq!(cache.kind, "registry");
        assert_eq!(
            parse("cache: {type: gha}\n").unwrap().cache.unwrap().kind,
            "gha"
        );
    }

    #[test]
    fn bad_caches_say_what_to_write() {
        let error = parse("cache:\n  type: regstry\n").unwrap_err().to_string();
        assert!(error.contains("unknown cache type `regstry`"), "{error}");
        assert!(error.contains("did you mean `registry`?"), "{error}");
        let error = parse("cache:\n  type: s3\n").unwrap_err().to_string();
        assert!(error.contains("an s3 cache needs a `bucket`"), "{error}");
        let error = parse("cache:\n  bucket: b\n  secret_key: x\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("go together"), "{error}");
        let error = parse("cache: true\n").unwrap_err().to_string();
        assert!(error.contains("does not say which cache"), "{error}");
    }
}
