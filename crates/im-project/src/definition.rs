//! One `image.yml` as the user wrote it, checked field by field.
//!
//! This layer only reads and validates; merging and naming happen in [`crate::model`].

use std::path::PathBuf;
use std::sync::Arc;

use im_diag::Diagnostics;
use im_yaml::reader::{Map, Spanned};
use im_yaml::{Limits, Node, Reader, Source, Span, Value};
use indexmap::IndexMap;

use crate::settings::read_platforms;
use im_oci::Platform;

const IMAGE_KEYS: &[&str] = &[
    "name",
    "description",
    "licenses",
    "is_base_image",
    "template",
    "versions",
    "variables",
    "tags",
    "variants",
    "rootfs_user",
    "rootfs_copy",
    "extends",
    "platforms",
    "latest",
    "version_scheme",
    "aliases",
    "source",
    "revision",
];
const TAG_KEYS: &[&str] = &[
    "name",
    "versions",
    "variables",
    "rootfs_user",
    "rootfs_copy",
];
const VARIANT_KEYS: &[&str] = &[
    "name",
    "tag_suffix",
    "template",
    "versions",
    "variables",
    "rootfs_user",
    "rootfs_copy",
];

/// Template variables by name. Values are shared: every tag of an image gets the image's
/// variables merged with its own, and copying the values themselves for each of thousands of
/// tags would cost more than all the rest of the model.
pub type Variables = IndexMap<String, std::sync::Arc<serde_json::Value>>;

/// Values that cascade image → tag → variant.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub versions: IndexMap<String, String>,
    pub variables: Variables,
    pub rootfs_user: Option<String>,
    pub rootfs_copy: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct TagDef {
    pub name: Spanned<String>,
    pub layer: Layer,
}

#[derive(Debug, Clone)]
pub struct VariantDef {
    pub name: Spanned<String>,
    pub tag_suffix: Spanned<String>,
    pub template: Option<Spanned<String>>,
    pub layer: Layer,
}

/// An explicit entry of `aliases:`: a tag to point at, or `false` to drop a generated alias.
#[derive(Debug, Clone)]
pub struct AliasDef {
    pub name: Spanned<String>,
    pub target: Option<Spanned<String>>,
}

/// A parsed `image.yml`.
#[derive(Debug, Clone)]
pub struct ImageFile {
    /// The path as shown to the user (relative to the project root).
    pub file: PathBuf,
    /// The folder holding the file (absolute).
    pub dir: PathBuf,
    pub source: Arc<Source>,
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub licenses: Option<String>,
    pub is_base_image: bool,
    pub template: Option<Spanned<String>>,
    pub layer: Layer,
    pub tags: Vec<TagDef>,
    pub variants: Vec<VariantDef>,
    pub extends: Option<Spanned<String>>,
    pub platforms: Option<Vec<Platform>>,
    pub latest: Option<Spanned<bool>>,
    pub version_scheme: Option<Spanned<String>>,
    pub aliases: Vec<AliasDef>,
    /// `source:`: the base tags build from an external git repository's Dockerfile.
    pub upstream: Option<crate::upstream::SourceDef>,
    /// `revision: true`: each new build of a tag is also published as `<tag>-r<N>`.
    pub revision: Option<Spanned<bool>>,
}

impl ImageFile {
    /// Parses `text` as the `image.yml` at `file` (display path) in `dir`.
    pub fn parse(file: PathBuf, dir: PathBuf, text: String) -> Result<Self, Diagnostics> {
        let document = im_yaml::parse(&file, text, &Limits::default())?;
        let mut reader = Reader::new(&document.source);
        let parsed = read_image(
            &mut reader,
            &document.root,
            file,
            dir,
            document.source.clone(),
        );
        let diagnostics = reader.diagnostics;
        match parsed {
            Some(parsed) if !diagnostics.has_errors() => Ok(parsed),
            _ => Err(diagnostics),
        }
    }

    /// The location of `span` in this file.
    pub fn location(&self, span: Span) -> im_diag::Location {
        self.source.location(span)
    }
}

/// Docker's rule for tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Docker's rule for repository names: lowercase components separated by `.`, `_`, `__`, `-`
/// runs, joined with `/`.
pub fn is_valid_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

fn read_image(
    reader: &mut Reader<'_>,
    root: &Node,
    file: PathBuf,
    dir: PathBuf,
    source: Arc<Source>,
) -> Option<ImageFile> {
    let what = "an image definition";
    let map = reader.map(root, what, IMAGE_KEYS)?;
    let name = map
        .get("name")
        .and_then(|n| reader.spanned_string(n, "`name`"));
    if let Some(name) = &name
        && !is_valid_image_name(&name.value)
    {
        reader.error(
                name.span,
                format!("`{}` is not a valid image name", name.value),
                Some("use lowercase letters, digits and `.`, `_`, `-` between them (e.g. `python` or `team/python`)".into()),
            );
    }
    let tags = match map.get("tags") {
        Some(node) => read_tags(reader, node),
        None => {
            reader.error(
                map.span,
                "this image definition has no `tags`",
                Some("add `tags:` with at least one `- name: <tag>` entry".into()),
            );
            Vec::new()
        }
    };
    let variants = map
        .get("variants")
        .map(|node| read_variants(reader, node))
        .unwrap_or_default();
    let aliases = map
        .get("aliases")
        .map(|node| read_aliases(reader, node))
        .unwrap_or_default();
    let version_scheme = map
        .get("version_scheme")
        .and_then(|n| reader.spanned_string(n, "`version_scheme`"));
    if let Some(scheme) = &version_scheme
        && let Err(message) = crate::version::VersionScheme::parse(&scheme.value)
    {
        reader.error(
                scheme.span,
                message,
                Some("use semver, calver, dotted, none, or a regex whose named groups are the version's numbers".into()),
            );
    }
    let upstream = map
        .get("source")
        .and_then(|node| crate::upstream::read_source(reader, node));
    if let (Some(upstream), Some(template)) = (&upstream, map.get("template")) {
        reader.error(
            template.span,
            "an image with `source:` builds the repository's Dockerfile and has no `template`",
            Some(format!(
                "remove `template:`, or `source:` (line {})",
                upstream.span.line
            )),
        );
    }
    Some(ImageFile {
        file,
        dir,
        source,
        upstream,
        description: map
            .get("description")
            .and_then(|n| reader.string(n, "`description`")),
        licenses: map
            .get("licenses")
            .and_then(|n| reader.string(n, "`licenses`")),
        is_base_image: map
            .get("is_base_image")
            .and_then(|n| reader.bool(n, "`is_base_image`"))
            .unwrap_or(false),
        template: map
            .get("template")
            .and_then(|n| reader.spanned_string(n, "`template`")),
        layer: read_layer(reader, &map, "the image"),
        tags,
        variants,
        extends: map
            .get("extends")
            .and_then(|n| reader.spanned_string(n, "`extends`")),
        platforms: map
            .get("platforms")
            .and_then(|n| read_platforms(reader, n, "`platforms`")),
        latest: map.get("latest").and_then(|n| {
            reader.bool(n, "`latest`").map(|value| Spanned {
                value,
                span: n.span,
            })
        }),
        version_scheme,
        aliases,
        name,
        revision: map.get("revision").and_then(|n| {
            reader.bool(n, "`revision`").map(|value| Spanned {
                value,
                span: n.span,
            })
        }),
    })
}

fn read_layer(reader: &mut Reader<'_>, map: &Map<'_>, owner: &str) -> Layer {
    let versions = map
        .get("versions")
        .and_then(|n| reader.string_dict(n, &format!("`versions` of {owner}")))
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.value))
        .collect();
    let variables = map
        .get("variables")
        .and_then(|n| reader.dict(n, &format!("`variables` of {owner}")))
        .map(|vars| {
            vars.iter()
                .map(|(k, v)| {
                    (
                        k.as_scalar().unwrap_or("~").to_owned(),
                        std::sync::Arc::new(crate::template_value::from_yaml(v)),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Layer {
        versions,
        variables,
        rootfs_user: map
            .get("rootfs_user")
            .and_then(|n| reader.string(n, "`rootfs_user`")),
        rootfs_copy: map
            .get("rootfs_copy")
            .and_then(|n| reader.bool(n, "`rootfs_copy`")),
    }
}

fn required_name(reader: &mut Reader<'_>, map: &Map<'_>, what: &str) -> Option<Spanned<String>> {
    match map.get("name") {
        Some(node) => reader.spanned_string(node, &format!("the `name` of {what}")),
        None => {
            reader.error(
                map.span,
                format!("{what} has no `name`"),
                Some("add `name: <value>`".into()),
            );
            None
        }
    }
}

fn read_tags(reader: &mut Reader<'_>, node: &Node) -> Vec<TagDef> {
    let mut tags: Vec<TagDef> = Vec::new();
    for item in reader.list(node, "`tags`").unwrap_or_default() {
        // `- 3.13.7` is shorthand for `- name: 3.13.7`.
        if let Some(text) = item.as_scalar() {
            tags.push(TagDef {
                name: Spanned {
                    value: text.to_owned(),
                    span: item.span,
                },
                layer: Layer::default(),
            });
            continue;
        }
        let Some(map) = reader.map(item, "a tag", TAG_KEYS) else {
            continue;
        };
        let Some(name) = required_name(reader, &map, "a tag") else {
            continue;
        };
        let layer = read_layer(reader, &map, &format!("tag `{}`", name.value));
        tags.push(TagDef { name, layer });
    }
    for (index, tag) in tags.iter().enumerate() {
        if !is_valid_tag(&tag.name.value) {
            reader.error(
                tag.name.span,
                format!("`{}` is not a valid tag", tag.name.value),
                Some("tags are up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`".into()),
            );
        }
        if let Some(first) = tags[..index]
            .iter()
            .find(|t| t.name.value == tag.name.value)
        {
            reader.error(
                tag.name.span,
                format!("the tag `{}` is listed twice", tag.name.value),
                Some(format!(
                    "remove one of them (the first is on line {})",
                    first.name.span.line
                )),
            );
        }
    }
    tags
}

fn read_variants(reader: &mut Reader<'_>, node: &Node) -> Vec<VariantDef> {
    let mut variants: Vec<VariantDef> = Vec::new();
    for item in reader.list(node, "`variants`").unwrap_or_default() {
        let Some(map) = reader.map(item, "a variant", VARIANT_KEYS) else {
            continue;
        };
        let Some(name) = required_name(reader, &map, "a variant") else {
            continue;
        };
        let what = format!("variant `{}`", name.value);
        let Some(tag_suffix) = (match map.get("tag_suffix") {
            Some(node) => reader.spanned_string(node, &format!("`tag_suffix` of {what}")),
            None => {
                reader.error(
                    map.span,
                    format!("{what} has no `tag_suffix`"),
                    Some(format!(
                        "add `tag_suffix: -{}` (its tags are every base tag plus the suffix)",
                        name.value
                    )),
                );
                None
            }
        }) else {
            continue;
        };
        if tag_suffix.value.is_empty()
            || !tag_suffix
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            reader.error(
                tag_suffix.span,
                format!("`{}` cannot end a tag", tag_suffix.value),
                Some("use letters, digits, `_`, `.` and `-`, e.g. `-browser`".into()),
            );
        }
        if let Some(first) = variants
            .iter()
            .find(|v| v.name.value == name.value || v.tag_suffix.value == tag_suffix.value)
        {
            reader.error(
                name.span,
                format!(
                    "{what} repeats the name or suffix of the variant on line {}",
                    first.name.span.line
                ),
                Some("give every variant its own name and tag_suffix".into()),
            );
        }
        let layer = read_layer(reader, &map, &what);
        let template = map
            .get("template")
            .and_then(|n| reader.spanned_string(n, &format!("`template` of {what}")));
        variants.push(VariantDef {
            name,
            tag_suffix,
            template,
            layer,
        });
    }
    variants
}

fn read_aliases(reader: &mut Reader<'_>, node: &Node) -> Vec<AliasDef> {
    let Some(map) = reader.dict(node, "`aliases`") else {
        return Vec::new();
    };
    let mut aliases = Vec::new();
    for (key, value) in map.iter() {
        let name = Spanned {
            value: key.as_scalar().unwrap_or("~").to_owned(),
            span: key.span,
        };
        if !is_valid_tag(&name.value) {
            reader.error(
                name.span,
                format!("`{}` is not a valid alias tag", name.value),
                None,
            );
            continue;
        }
        let target = match &value.value {
            Value::Scalar {
                text,
                style: im_yaml::Style::Plain,
            } if text == "false" => None,
            Value::Scalar { text, .. } => Some(Spanned {
                value: text.clone(),
                span: value.span,
            }),
            _ => {
                reader.error(
                    value.span,
                    format!(
                        "alias `{}` must name a tag, or be `false` to drop a generated alias",
                        name.value
                    ),
                    None,
                );
                continue;
            }
        };
        aliases.push(AliasDef { name, target });
    }
    aliases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ImageFile, Diagnostics> {
        ImageFile::parse(
            "images/python/image.yml".into(),
            "/p/images/python".into(),
            text.to_owned(),
        )
    }

    #[test]
    fn reads_a_full_definition() {
        let file = parse(
            "name: python\nversions:\n  python: 3.10\nvariables:\n  debug: true\n  list: [a, 1]\n\
             tags:\n  - name: 3.13.7\n    versions: {python: 3.13.7}\n  - 3.12.1\n\
             variants:\n  - name: browser\n    tag_suffix: -browser\n    rootfs_user: 1000:1000\n\
             latest: true\nversion_scheme: semver\nplatforms: [linux/amd64]\naliases:\n  lts: 3.12.1\n  '3': false\n",
        )
        .unwrap();
        assert_eq!(file.name.unwrap().value, "python");
        assert_eq!(file.layer.versions["python"], "3.10");
        assert_eq!(*file.layer.variables["debug"], serde_json::json!(true));
        assert_eq!(*file.layer.variables["list"], serde_json::json!(["a", 1]));
        assert_eq!(file.tags.len(), 2);
        assert_eq!(file.tags[1].name.value, "3.12.1");
        assert_eq!(
            file.variants[0].layer.rootfs_user.as_deref(),
            Some("1000:1000")
        );
        assert!(file.latest.unwrap().value);
        assert_eq!(file.aliases.len(), 2);
        assert!(file.aliases[1].target.is_none());
    }

    #[test]
    fn reports_every_problem_with_location() {
        let errors = parse(
            "name: Python\ntags:\n  - name: 3.13\n  - name: 3.13\n  - name: -bad\nvariants:\n  - name: slim\n  - name: x\n    tag_suffix: -x\n    tempalte: y\n",
        )
        .unwrap_err();
        insta::assert_snapshot!(errors.to_string());
    }

    #[test]
    fn tag_and_name_rules() {
        assert!(is_valid_tag("3.13.7-browser"));
        assert!(is_valid_tag("_x"));
        assert!(!is_valid_tag("-x"));
        assert!(!is_valid_tag(".x"));
        assert!(!is_valid_tag("a/b"));
        assert!(is_valid_image_name("team/python"));
        assert!(is_valid_image_name("node-js"));
        assert!(!is_valid_image_name("Python"));
        assert!(!is_valid_image_name("py-"));
    }
}
