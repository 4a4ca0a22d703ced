//! `.image-manager.yml`: the project-wide settings.
//!
//! Every value may use `${VAR}` / `${VAR:-default}` from the environment the caller passes in;
//! an undefined variable is an error naming it and `file:line`. Passwords and keys are kept in
//! [`Secret`] (`im_diag`'s), whose `Debug`, `Display` and serialisation never show the value.

use std::path::{Path, PathBuf};

use im_diag::Diagnostics;
pub use im_diag::Secret;
use im_yaml::{Limits, Node, Reader};
use serde::Serialize;

use crate::expand::{ExpandError, expand};
pub use cache::{CACHE_KINDS, CacheSettings};
use im_oci::Platform;

/// The settings file's name at the project root.
pub const SETTINGS_FILE: &str = ".image-manager.yml";

/// The builders image-manager can drive.
pub const BUILDERS: [&str; 4] = ["buildah", "docker", "buildkit", "podman"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrySettings {
    pub name: Option<String>,
    /// Host[:port][/namespace], without a scheme.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub default: bool,
    pub insecure: bool,
    /// The registry this one mirrors (`docker.io`): external bases of that registry are
    /// read from here first.
    pub mirror_of: Option<String>,
}

/// OCI labels added to every image; `%image%` and `%tag%` are replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelSettings {
    pub vendor: Option<String>,
    pub authors: Option<String>,
    pub url: Option<String>,
    pub documentation: Option<String>,
    pub licenses: Option<String>,
}

impl LabelSettings {
    /// The labels for one image tag, keyed by their `org.opencontainers.image.*` name.
    pub fn resolve(&self, image: &str, tag: &str) -> Vec<(&'static str, String)> {
        let fill = |value: &Option<String>| {
            value
                .as_ref()
                .map(|text| text.replace("%image%", image).replace("%tag%", tag))
        };
        [
            ("org.opencontainers.image.vendor", fill(&self.vendor)),
            ("org.opencontainers.image.authors", fill(&self.authors)),
            ("org.opencontainers.image.url", fill(&self.url)),
            (
                "org.opencontainers.image.documentation",
                fill(&self.documentation),
            ),
            ("org.opencontainers.image.licenses", fill(&self.licenses)),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
        .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CiSettings {
    /// `github` or `gitlab`.
    pub provider: Option<String>,
    /// One CI job per platform, joined by a manifest job (the default); `false`: one job
    /// builds every platform of an image tag.
    pub platform_split: Option<bool>,
    /// Where the generated pipeline is written.
    pub output: Option<String>,
    /// Runner tags per platform (`linux/arm64: [arm64]`): GitLab `tags:`, GitHub `runs-on:`.
    pub runners: std::collections::BTreeMap<String, Vec<String>>,
    /// A container image that has image-manager and a builder, for container-based runners.
    pub image: Option<String>,
    /// Commands each job runs first to get image-manager and a builder.
    pub install: Vec<String>,
    /// `nodes` (one job per node in the committed file), `dynamic` (a small committed file
    /// whose first job generates the jobs at pipeline time), or `auto` / unset: `nodes` while
    /// the pipeline fits `max_jobs`.
    pub shape: Option<String>,
    /// The most jobs one pipeline (or workflow run) may have; more makes a dynamic pipeline,
    /// and past it a child pipeline groups nodes per graph level.
    pub max_jobs: Option<usize>,
    /// Matrix jobs per graph level, platform and kind in a dynamic GitHub workflow (each up
    /// to 256 legs): how many builds of one level a pipeline may run.
    pub matrix_jobs: Option<usize>,
    /// A folder of pipeline templates (`pipeline.yml.j2` and what it includes), relative to
    /// the project, rendered instead of a built-in provider's file.
    pub template: Option<String>,
    /// Keep each build job's image archive as a job artifact (the proof of concept's key;
    /// custom templates see it as `artifacts`).
    pub artifacts: bool,
}

/// Everything `.image-manager.yml` says, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The file the settings came from, if there was one.
    pub file: Option<PathBuf>,
    pub registries: Vec<RegistrySettings>,
    pub cache: Option<CacheSettings>,
    pub labels: LabelSettings,
    pub ci: CiSettings,
    pub platforms: Vec<Platform>,
    /// `buildah`, `docker`, `buildkit` or `podman`; `None` detects one.
    pub builder: Option<String>,
    /// Image store settings for buildah and podman (`builder:` as a mapping).
    pub storage: StorageSettings,
    /// For the docker builder: `buildkit: false` builds with the classic builder,
    /// `buildkit: true` with BuildKit; unset lets the Docker client decide (the binary's
    /// `DOCKER_BUILDKIT` overrides it).
    pub buildkit: Option<bool>,
}

/// Where buildah and podman keep images; unset values leave the tool's own configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StorageSettings {
    pub driver: Option<String>,
    pub root: Option<PathBuf>,
    pub runroot: Option<PathBuf>,
    /// `--isolation` for `RUN` steps (`chroot`, `oci`, `rootless`).
    pub isolation: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            file: None,
            registries: Vec::new(),
            cache: None,
            labels: LabelSettings::default(),
            ci: CiSettings::default(),
            platforms: vec![Platform::linux("amd64"), Platform::linux("arm64")],
            builder: None,
            storage: StorageSettings::default(),
            buildkit: None,
        }
    }
}

impl Settings {
    /// The registry images are pushed to: the one marked `default`, else the only one that
    /// is not a mirror.
    pub fn default_registry(&self) -> Option<&RegistrySettings> {
        let mut own = self.registries.iter().filter(|r| r.mirror_of.is_none());
        self.registries
            .iter()
            .find(|r| r.default)
            .or(match (own.next(), own.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            })
    }

    /// The `registries:` entries that mirror another registry (`mirror_of:`), in order.
    pub fn mirrors(&self) -> impl Iterator<Item = (&RegistrySettings, &str)> {
        self.registries
            .iter()
            .filter_map(|r| r.mirror_of.as_deref().map(|of| (r, of)))
    }

    /// Reads `<root>/.image-manager.yml` if it exists; defaults otherwise. A FIFO, a folder
    /// or a link out of the project in its place is an error (see [`im_input`]).
    pub fn load(root: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Diagnostics> {
        let path = root.join(SETTINGS_FILE);
        let confined = im_input::Confined::new(root);
        let text = match confined.read_text(&path) {
            Ok(text) => text,
            Err(error) if error.is_missing() => {
                return Ok(Self::default());
            }
            Err(error) => return Err(error.diagnostic(Path::new(SETTINGS_FILE)).into()),
        };
        Self::parse(Path::new(SETTINGS_FILE), text, env)
    }

    /// Parses settings text; `display` is the path shown in errors.
    pub fn parse(
        display: &Path,
        text: String,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Diagnostics> {
        let document = im_yaml::parse(display, text, &Limits::default())?;
        let mut reader = SettingsReader {
            reader: Reader::new(&document.source),
            env,
        };
        let settings = reader.settings(&document.root, display);
        let diagnostics = reader.reader.diagnostics;
        if diagnostics.has_errors() {
            Err(diagnostics)
        } else {
            Ok(settings)
        }
    }
}

/// Checks a registry `url` (its scheme already removed): `host[:port][/namespace]`, where
/// host is a DNS name or IP address (`[v6]` in brackets), port is 1 to 65535 and each
/// namespace component is what the OCI distribution spec allows in a repository name.
fn check_registry_url(url: &str) -> Result<(), String> {
    if let Some(bad) = url
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, '@' | '?' | '#' | '\\'))
    {
        return Err(format!("it contains `{}`", bad.escape_debug()));
    }
    if url.contains("://") {
        return Err("only `http://` and `https://` may prefix it".into());
    }
    let (authority, namespace) = url.split_once('/').unwrap_or((url, ""));
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address has no closing `]`")?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{v6}` is not an IPv6 address"))?;
        match after {
            "" => (None, None),
            _ => (
                None,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("expected `:port` after `]`")?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(authority), None),
        }
    };
    if let Some(host) = host {
        let valid_label = |label: &str| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        if !host.split('.').all(valid_label) {
            return Err("the host is not a DNS name or an IP address".into());
        }
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err("the port is not a number from 1 to 65535".into());
    }
    if !namespace.is_empty() {
        let component = |part: &str| {
            let bytes = part.as_bytes();
            !part.is_empty()
                && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
                && bytes[bytes.len() - 1].is_ascii_lowercase()
                    | bytes[bytes.len() - 1].is_ascii_digit()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        };
        if !namespace.split('/').all(component) {
            return Err(
                "the namespace must be lowercase letters, digits and `.`, `_`, `-` between `/`"
                    .into(),
            );
        }
    }
    Ok(())
}

struct SettingsReader<'a> {
    reader: Reader<'a>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl SettingsReader<'_> {
    /// Reads a value and expands `${VAR}` in it.
    fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        let raw = self.reader.string(node, what)?;
        match expand(&raw, self.env) {
            Ok(value) => Some(value),
            Err(ExpandError::Undefined { name, .. }) => {
                self.reader.error(
                    node.span,
                    format!("{what} uses the environment variable `{name}`, which is not set"),
                    Some(format!(
                        "set {name}, or write `${{{name}:-default}}` to give it a default"
                    )),
                );
                None
            }
            Err(ExpandError::Malformed { .. }) => {
                self.reader.error(
                    node.span,
                    format!("{what} has a malformed `${{...}}` reference"),
                    Some(
                        "write `${NAME}` or `${NAME:-default}`; write `$$` for a literal `$`"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    fn opt_text(
        &mut self,
        map: &im_yaml::reader::Map<'_>,
        key: &str,
        what: &str,
    ) -> Option<String> {
        map.get(key)
            .and_then(|node| self.text(node, &format!("`{key}` in {what}")))
    }

    fn opt_secret(
        &mut self,
        map: &im_yaml::reader::Map<'_>,
        key: &str,
        what: &str,
    ) -> Option<Secret> {
        self.opt_text(map, key, what).map(Secret::new)
    }

    fn flag(&mut self, map: &im_yaml::reader::Map<'_>, key: &str, what: &str) -> bool {
        map.get(key)
            .and_then(|node| self.reader.bool(node, &format!("`{key}` in {what}")))
            .unwrap_or(false)
    }

    /// A positive whole number under `key` of `ci`, if there.
    fn count(&mut self, ci: &im_yaml::reader::Map<'_>, key: &str, example: usize) -> Option<usize> {
        let node = ci.get(key)?;
        let text = node.as_scalar().unwrap_or_default();
        match text.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.reader.error(
                    node.span,
                    format!("`{key}` in `ci` is `{text}`, not a positive whole number"),
                    Some(format!("write e.g. `{key}: {example}`")),
                );
                None
            }
        }
    }

    fn ci(&mut self, node: &Node, out: &mut CiSettings) {
        let what = "`ci`";
        let known = [
            "provider",
            "platform_split",
            "output",
            "runners",
            "image",
            "install",
            "shape",
            "max_jobs",
            "matrix_jobs",
            "template",
            "artifacts",
        ];
        let Some(ci) = self.reader.map(node, what, &known) else {
            return;
        };
        let provider = self.opt_text(&ci, "provider", what);
        if let (Some(name), Some(node)) = (&provider, ci.get("provider"))
            && !["github", "gitlab"].contains(&name.as_str())
        {
            self.reader.error(
                node.span,
                format!("unknown CI provider `{name}`"),
                Some("use `github` or `gitlab`".into()),
            );
        }
        out.provider = provider;
        out.platform_split = ci
            .get("platform_split")
            .and_then(|node| self.reader.bool(node, "`platform_split` in `ci`"));
        out.output = self.opt_text(&ci, "output", what);
        out.image = self.opt_text(&ci, "image", what);
        out.shape = self.opt_text(&ci, "shape", what);
        if let (Some(shape), Some(node)) = (&out.shape, ci.get("shape"))
            && !["auto", "nodes", "dynamic"].contains(&shape.as_str())
        {
            self.reader.error(
                node.span,
                format!("unknown pipeline shape `{shape}`"),
                Some("use `auto` (the default), `nodes` or `dynamic`".into()),
            );
        }
        out.max_jobs = self.count(&ci, "max_jobs", 500);
        out.matrix_jobs = self.count(&ci, "matrix_jobs", 4);
        out.template = self.opt_text(&ci, "template", what);
        out.artifacts = self.flag(&ci, "artifacts", what);
        if let Some(node) = ci.get("install") {
            // Commands for the job's shell, kept as written: `${VAR}` in them is a CI
            // variable when the job runs, not a variable of whoever runs generate-ci.
            out.install = match node.as_scalar() {
                Some(_) => self
                    .reader
                    .string(node, "`install` in `ci`")
                    .into_iter()
                    .collect(),
                None => self
                    .reader
                    .string_list(node, "`install` in `ci`")
                    .map(|items| items.into_iter().map(|i| i.value).collect())
                    .unwrap_or_default(),
            };
        }
        if let Some(node) = ci.get("runners") {
            let entries = node.as_map().unwrap_or(&[]);
            if node.as_map().is_none() {
                self.reader.error(
                    node.span,
                    format!("`runners` in `ci` is {}, not a mapping", node.kind()),
                    Some(
                        "write `runners: {linux/arm64: [arm64]}`: runner tags per platform".into(),
                    ),
                );
            }
            for (key, value) in entries {
                let Some(platform) = key.as_scalar() else {
                    continue;
                };
                if platform.parse::<Platform>().is_err() {
                    self.reader.error(
                        key.span,
                        format!("`{platform}` in `ci.runners` is not a platform"),
                        Some("write platforms as os/arch, e.g. linux/arm64".into()),
                    );
                    continue;
                }
                let tags = match value.as_scalar() {
                    Some(tag) => vec![tag.to_owned()],
                    None => self
                        .reader
                        .string_list(value, "runner tags")
                        .map(|items| items.into_iter().map(|i| i.value).collect())
                        .unwrap_or_default(),
                };
                out.runners.insert(platform.to_owned(), tags);
            }
        }
    }

    fn settings(&mut self, root: &Node, display: &Path) -> Settings {
        let mut settings = Settings {
            file: Some(display.to_path_buf()),
            ..Settings::default()
        };
        let known = [
            "registry",
            "registries",
            "cache",
            "labels",
            "ci",
            "platforms",
            "builder",
        ];
        let Some(map) = self.reader.map(root, "the settings file", &known) else {
            return settings;
        };
        if let Some(node) = map.get("registry")
            && let Some(registry) = self.registry(node)
        {
            settings.registries.push(RegistrySettings {
                default: true,
                ..registry
            });
        }
        if let Some(node) = map.get("registries") {
            if map.get("registry").is_some() {
                self.reader.error(
                    node.span,
                    "both `registry` and `registries` are set",
                    Some("use `registry` for one registry, or `registries` (with `default: true` on one) for several".into()),
                );
            }
            for item in self.reader.list(node, "`registries`").unwrap_or_default() {
                if let Some(registry) = self.registry(item) {
                    settings.registries.push(registry);
                }
            }
            let defaults = settings.registries.iter().filter(|r| r.default).count();
            if matches!(&node.value, im_yaml::Value::Seq(items) if items.is_empty()) {
                self.reader.error(
                    node.span,
                    "`registries` is an empty list",
                    Some("list at least one registry (`- url: host[:port][/namespace]`), or remove `registries`".into()),
                );
            } else if defaults > 1 {
                self.reader.error(
                    node.span,
                    format!("{defaults} registries are marked `default: true`"),
                    Some("mark exactly one registry as the default".into()),
                );
            }
        }
        if let Some(node) = map.get("cache") {
            settings.cache = self.cache(node);
        }
        if let Some(node) = map.get("labels") {
            let what = "`labels`";
            let known = ["vendor", "authors", "url", "documentation", "licenses"];
            if let Some(labels) = self.reader.map(node, what, &known) {
                settings.labels = LabelSettings {
                    vendor: self.opt_text(&labels, "vendor", what),
                    authors: self.opt_text(&labels, "authors", what),
                    url: self.opt_text(&labels, "url", what),
                    documentation: self.opt_text(&labels, "documentation", what),
                    licenses: self.opt_text(&labels, "licenses", what),
                };
            }
        }
        if let Some(node) = map.get("ci") {
            self.ci(node, &mut settings.ci);
        }
        if let Some(node) = map.get("platforms")
            && let Some(platforms) = self.platforms(node, "`platforms`")
        {
            settings.platforms = platforms;
        }
        if let Some(node) = map.get("builder") {
            self.builder(node, &mut settings);
        }
        settings
    }

    /// `builder: buildah`, or a mapping with `kind`, the image store settings (buildah,
    /// podman) and `buildkit` (docker).
    fn builder(&mut self, node: &Node, settings: &mut Settings) {
        let mut buildkit_node = None;
        let kind_node = if node.as_map().is_some() {
            let known = [
                "kind",
                "storage_driver",
                "root",
                "runroot",
                "isolation",
                "buildkit",
            ];
            let Some(map) = self.reader.map(node, "`builder`", &known) else {
                return;
            };
            let what = "`builder`";
            settings.storage = StorageSettings {
                driver: self.opt_text(&map, "storage_driver", what),
                root: self.opt_text(&map, "root", what).map(PathBuf::from),
                runroot: self.opt_text(&map, "runroot", what).map(PathBuf::from),
                isolation: self.opt_text(&map, "isolation", what),
            };
            if let Some(buildkit) = map.get("buildkit") {
                settings.buildkit = self.reader.bool(buildkit, "`buildkit` in `builder`");
                buildkit_node = Some(buildkit);
            }
            map.get("kind")
        } else {
            Some(node)
        };
        let Some(kind_node) = kind_node else {
            if let Some(buildkit) = buildkit_node {
                self.reader.error(
                    buildkit.span,
                    "`buildkit` is a setting of the docker builder, and `builder` names no `kind`",
                    Some("add `kind: docker`".to_owned()),
                );
            }
            return;
        };
        if let Some(builder) = self.text(kind_node, "`builder`") {
            if let Some(buildkit) = buildkit_node.filter(|_| builder != "docker") {
                self.reader.error(
                    buildkit.span,
                    format!("`buildkit` is a setting of the docker builder, not of `{builder}`"),
                    Some("remove it, or use `kind: docker`".to_owned()),
                );
            }
            if BUILDERS.contains(&builder.as_str()) {
                settings.builder = Some(builder);
            } else {
                let help = match im_diag::did_you_mean(&builder, BUILDERS) {
                    Some(hint) => format!("did you mean `{hint}`?"),
                    None => format!("use one of: {}", BUILDERS.join(", ")),
                };
                self.reader.error(
                    kind_node.span,
                    format!("unknown builder `{builder}`"),
                    Some(help),
                );
            }
        }
    }

    pub(crate) fn platforms(&mut self, node: &Node, what: &str) -> Option<Vec<Platform>> {
        read_platforms(&mut self.reader, node, what)
    }

    fn registry(&mut self, node: &Node) -> Option<RegistrySettings> {
        let what = "a registry";
        let known = [
            "name",
            "url",
            "username",
            "password",
            "default",
            "insecure",
            "mirror_of",
        ];
        let map = self.reader.map(node, what, &known)?;
        let Some(url_node) = map.get("url") else {
            self.reader.error(
                node.span,
                "a registry needs a `url`",
                Some("add `url: registry.example.com[:port][/namespace]`".into()),
            );
            return None;
        };
        let url = self.text(url_node, "`url` of a registry")?;
        let url = url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        if url.is_empty() {
            self.reader
                .error(url_node.span, "the registry `url` is empty", None);
            return None;
        }
        if let Err(problem) = check_registry_url(&url) {
            // The value is not repeated: it may carry credentials.
            self.reader.error(
                url_node.span,
                format!("the registry `url` is malformed: {problem}"),
                Some("write `host[:port][/namespace]`, e.g. `registry.example.com:5000/team`; put credentials in `username` and `password`".into()),
            );
            return None;
        }
        Some(RegistrySettings {
            name: self.opt_text(&map, "name", what),
            url,
            username: self.opt_text(&map, "username", what),
            password: self.opt_secret(&map, "password", what),
            default: self.flag(&map, "default", what),
            insecure: self.flag(&map, "insecure", what),
            mirror_of: self.opt_text(&map, "mirror_of", what),
        })
    }
}

/// Reads a list of `os/arch[/variant]` platforms, reporting malformed ones.
pub(crate) fn read_platforms(
    reader: &mut Reader<'_>,
    node: &Node,
    what: &str,
) -> Option<Vec<Platform>> {
    let items = reader.string_list(node, what)?;
    let items_len = items.len();
    let mut platforms = Vec::new();
    for item in items {
        match item.value.parse::<Platform>() {
            Ok(platform) if !platforms.contains(&platform) => platforms.push(platform),
            Ok(_) => reader.error(
                item.span,
                format!("the platform `{}` is listed twice", item.value),
                None,
            ),
            Err(_) => reader.error(
                item.span,
                format!("`{}` is not a platform", item.value),
                Some("write platforms as os/arch, e.g. linux/amd64 or linux/arm64/v8".into()),
            ),
        }
    }
    if items_len == 0 {
        reader.error(
            node.span,
            format!("{what} is empty"),
            Some("list at least one platform, e.g. linux/amd64".into()),
        );
    }
    (!platforms.is_empty()).then_some(platforms)
}

mod cache;
#[cfg(test)]
mod tests;
