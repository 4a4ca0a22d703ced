//! The resolved project: every image with its tags, variant tags and aliases.
//!
//! [`Project::load`] discovers `images/**/image.yml`, names each definition, merges the
//! definitions that share a name, applies the cascade image → tag → variant, forms the
//! variant tags (`<tag><tag_suffix>`) and the aliases. Every problem in every file is
//! collected before failing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use im_diag::{Diagnostic, Diagnostics, Location, display_path};
use im_yaml::Span;
use indexmap::IndexMap;
use rayon::prelude::*;
use serde::Serialize;

use crate::definition::{ImageFile, Layer};
use crate::settings::Settings;
use crate::version::{VersionScheme, generate_aliases, highest};
use im_oci::Platform;

/// The folder, under the project root, that holds the image definitions.
pub const IMAGES_DIR: &str = "images";
/// The definition file's name.
pub const IMAGE_FILE: &str = "image.yml";

/// A tag of an image, with everything merged.
#[derive(Debug, Clone, Serialize)]
pub struct Tag {
    pub name: String,
    /// Index of the definition (in [`Project::files`]) this tag comes from.
    #[serde(skip)]
    pub file: usize,
    pub variant: Option<TagVariant>,
    pub versions: IndexMap<String, String>,
    pub variables: crate::definition::Variables,
    pub rootfs_user: String,
    pub rootfs_copy: bool,
    pub platforms: Vec<Platform>,
    /// Where the tag (or the variant, for variant tags) is declared.
    #[serde(skip)]
    pub span: Span,
}

/// What makes a variant tag one.
#[derive(Debug, Clone, Serialize)]
pub struct TagVariant {
    pub name: String,
    pub suffix: String,
    /// The base tag of the same image this variant tag derives from.
    pub base_tag: String,
    /// Index into the definition's `variants`.
    #[serde(skip)]
    pub index: usize,
}

/// One image name with all its tags, from one or more definitions.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub name: String,
    /// Indices into [`Project::files`].
    #[serde(skip)]
    pub files: Vec<usize>,
    /// Base tags first (in file order), then variant tags.
    pub tags: Vec<Tag>,
    /// Alias tag → real tag.
    pub aliases: BTreeMap<String, String>,
    /// `revision: true`: each new build of a tag is also published as `<tag>-r<N>`.
    pub revision: bool,
}

impl Image {
    pub fn tag(&self, name: &str) -> Option<&Tag> {
        self.tags.iter().find(|tag| tag.name == name)
    }

    /// A tag by its name or by one of its aliases.
    pub fn resolve(&self, tag_or_alias: &str) -> Option<&Tag> {
        self.tag(tag_or_alias).or_else(|| {
            self.aliases
                .get(tag_or_alias)
                .and_then(|target| self.tag(target))
        })
    }

    /// The aliases pointing at `tag`.
    pub fn aliases_of<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.aliases
            .iter()
            .filter(move |(_, target)| *target == tag)
            .map(|(alias, _)| alias.as_str())
    }

    pub fn base_tags(&self) -> impl Iterator<Item = &Tag> {
        self.tags.iter().filter(|tag| tag.variant.is_none())
    }
}

/// The whole resolved project.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub settings: Settings,
    pub files: Vec<ImageFile>,
    /// Sorted by name.
    pub images: Vec<Image>,
}

/// A loaded project and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<Diagnostic>,
}

impl Project {
    pub fn image(&self, name: &str) -> Option<&Image> {
        self.images
            .binary_search_by(|image| image.name.as_str().cmp(name))
            .ok()
            .map(|index| &self.images[index])
    }

    /// The tag `tag` of the image `image`.
    pub fn tag_of(&self, image: &str, tag: &str) -> Option<&Tag> {
        self.image(image).and_then(|image| image.tag(tag))
    }

    /// The version scheme of `image`: the first `version_scheme` of its definitions, else
    /// semver; one that does not parse (an error `load` reported) reads no versions.
    pub fn version_scheme(&self, image: &Image) -> VersionScheme {
        image
            .files
            .iter()
            .find_map(|&file| self.files[file].version_scheme.as_ref())
            .map_or(Ok(VersionScheme::Semver), |s| {
                VersionScheme::parse(&s.value)
            })
            .unwrap_or(VersionScheme::None)
    }

    /// The definition a tag comes from.
    pub fn file_of(&self, tag: &Tag) -> &ImageFile {
        &self.files[tag.file]
    }

    /// Loads the project at `root`. `env` answers `${VAR}` look-ups in the settings.
    pub fn load(root: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, Diagnostics> {
        let mut diagnostics = Diagnostics::new();
        let settings = match Settings::load(root, env) {
            Ok(settings) => settings,
            Err(errors) => {
                diagnostics.extend(errors);
                Settings::default()
            }
        };
        let paths = discover(root, &mut diagnostics).map_err(Diagnostics::from)?;
        if paths.is_empty() {
            diagnostics.push(
                Diagnostic::error(format!("no `{IMAGE_FILE}` found under `{IMAGES_DIR}/`"))
                    .at(Location::file(root.join(IMAGES_DIR)))
                    .with_help(format!(
                        "create `{IMAGES_DIR}/<name>/{IMAGE_FILE}`, or pass `-C <project dir>` to point at the project"
                    )),
            );
            return Err(diagnostics);
        }
        let confined = im_input::Confined::new(root);
        // Read and parse in parallel; the results keep the discovery order.
        let parsed: Vec<Result<ImageFile, Diagnostics>> = paths
            .into_par_iter()
            .map(|path| {
                let display = display_path(root, &path);
                let dir = path.parent().unwrap_or(root).to_path_buf();
                let text = confined
                    .read_text(&path)
                    .map_err(|error| Diagnostics::from(error.diagnostic(&display)))?;
                ImageFile::parse(display, dir, text)
            })
            .collect();
        let mut files = Vec::with_capacity(parsed.len());
        for result in parsed {
            match result {
                Ok(file) => files.push(file),
                Err(errors) => diagnostics.extend(errors),
            }
        }
        let images = resolve(root, &settings, &files, &mut diagnostics);
        let (errors, warnings): (Vec<_>, Vec<_>) =
            diagnostics.into_iter().partition(Diagnostic::is_error);
        if !errors.is_empty() {
            let mut all = Diagnostics::new();
            for diagnostic in errors.into_iter().chain(warnings) {
                all.push(diagnostic);
            }
            return Err(all);
        }
        Ok(Loaded {
            project: Project {
                root: root.to_path_buf(),
                settings,
                files,
                images,
            },
            warnings,
        })
    }
}

/// Every `images/**/image.yml`, sorted, without looking inside `rootfs/` or `templates/`
/// folders (their content is data, not definitions) and without following symlinked folders.
/// An `image.yml` that is not a regular file (a symlink, a FIFO) is listed too: reading it
/// follows links inside the project and reports the rest, so no definition is dropped
/// silently. Folders that cannot be read and symlinked folders are reported in `diagnostics`.
fn discover(root: &Path, diagnostics: &mut Diagnostics) -> Result<Vec<PathBuf>, Diagnostic> {
    let images = root.join(IMAGES_DIR);
    if !images.is_dir() {
        return Err(Diagnostic::error(format!(
            "there is no `{IMAGES_DIR}/` folder in {}",
            root.display()
        ))
        .with_help("run image-manager from the project root, or pass `-C <project dir>`"));
    }
    let mut found = Vec::new();
    let walker = walkdir::WalkDir::new(&images)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    for entry in walker.filter_entry(|entry| {
        let name = entry.file_name().to_string_lossy();
        !(entry.file_type().is_dir()
            && entry.depth() > 0
            && (name == "rootfs" || name == "templates" || name.starts_with('.')))
    }) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                let path = error.path().unwrap_or(&images);
                let reason = error
                    .io_error()
                    .map_or_else(|| error.to_string(), ToString::to_string);
                diagnostics.push(
                    Diagnostic::error(format!("cannot read this folder: {reason}"))
                        .at(Location::file(display_path(root, path)))
                        .with_help(
                            "make it readable (and searchable) by this user; definitions in it are not read",
                        ),
                );
                continue;
            }
        };
        let file_type = entry.file_type();
        if entry.file_name() == IMAGE_FILE && !file_type.is_dir() {
            found.push(entry.into_path());
        } else if file_type.is_symlink() && entry.path().is_dir() {
            diagnostics.push(
                Diagnostic::warning(
                    "this is a symlink to a folder; image-manager does not follow folder links, so no definition in it is read",
                )
                .at(Location::file(display_path(root, entry.path())))
                .with_help("move the folder here, or link the files in it instead"),
            );
        }
    }
    Ok(found)
}

/// The image name a definition gets: its `name`, else the folder's own name for base images,
/// images under a `base/` folder and definitions directly in `images/`, else the parent
/// folder's name (`images/dotnet/9.0` → `dotnet`).
pub fn derive_name(root: &Path, file: &ImageFile) -> String {
    if let Some(name) = &file.name {
        return name.value.clone();
    }
    let own = file
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = file.dir.parent();
    let parent_name = parent
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned());
    let directly_in_images = parent == Some(root.join(IMAGES_DIR).as_path());
    if file.is_base_image || directly_in_images || parent_name.as_deref() == Some("base") {
        own
    } else {
        parent_name.unwrap_or(own)
    }
}

fn merged(base: &Layer, over: &Layer) -> Layer {
    let mut versions = base.versions.clone();
    versions.extend(over.versions.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut variables = base.variables.clone();
    variables.extend(over.variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    Layer {
        versions,
        variables,
        rootfs_user: over
            .rootfs_user
            .clone()
            .or_else(|| base.rootfs_user.clone()),
        rootfs_copy: over.rootfs_copy.or(base.rootfs_copy),
    }
}

fn make_tag(
    name: String,
    file: usize,
    layer: Layer,
    platforms: &[Platform],
    span: Span,
    variant: Option<TagVariant>,
) -> Tag {
    Tag {
        name,
        file,
        variant,
        versions: layer.versions,
        variables: layer.variables,
        rootfs_user: layer.rootfs_user.unwrap_or_else(|| "0:0".to_owned()),
        rootfs_copy: layer.rootfs_copy.unwrap_or(true),
        platforms: platforms.to_vec(),
        span,
    }
}

fn resolve(
    root: &Path,
    settings: &Settings,
    files: &[ImageFile],
    diagnostics: &mut Diagnostics,
) -> Vec<Image> {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, file) in files.iter().enumerate() {
        let name = derive_name(root, file);
        if file.name.is_none() && !crate::definition::is_valid_image_name(&name) {
            diagnostics.push(
                Diagnostic::error(format!(
                    "the folder name gives the image name `{name}`, which is not a valid image name"
                ))
                .at(Location::file(&file.file))
                .with_help("add `name: <lowercase-name>` to the file, or rename the folder"),
            );
            continue;
        }
        by_name.entry(name).or_default().push(index);
    }
    let resolved: Vec<(Image, Diagnostics)> = by_name
        .into_iter()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(name, indices)| {
            let mut found = Diagnostics::new();
            let image = resolve_image(name, indices, settings, files, &mut found);
            (image, found)
        })
        .collect();
    let mut images = Vec::with_capacity(resolved.len());
    for (image, found) in resolved {
        diagnostics.extend(found);
        images.push(image);
    }
    for image in &images {
        for &index in &image.files {
            let file = &files[index];
            if let Some(extends) = &file.extends {
                let (target, tag) = extends
                    .value
                    .split_once(':')
                    .unwrap_or((&extends.value, ""));
                let found = images.iter().find(|i| i.name == target);
                let problem = match found {
                    None => Some(format!(
                        "`extends: {}` names an image that is not defined here",
                        extends.value
                    )),
                    Some(found) if !tag.is_empty() && found.resolve(tag).is_none() => {
                        Some(format!(
                            "`extends: {}`: image `{target}` has no tag or alias `{tag}`",
                            extends.value
                        ))
                    }
                    _ => None,
                };
                if let Some(message) = problem {
                    let mut names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
                    names.sort_unstable();
                    let help = im_diag::did_you_mean(target, names.iter().copied()).map_or_else(
                        || format!("defined images: {}", names.join(", ")),
                        |hint| format!("did you mean `{hint}`?"),
                    );
                    diagnostics.push(
                        Diagnostic::error(message)
                            .at(file.location(extends.span))
                            .with_help(help),
                    );
                }
            }
        }
    }
    images
}

/// The alias settings shared by every definition of an image; conflicting values are errors.
fn shared_setting<T: Clone + PartialEq + std::fmt::Debug>(
    name: &str,
    key: &str,
    indices: &[usize],
    files: &[ImageFile],
    get: impl Fn(&ImageFile) -> Option<(T, Span)>,
    diagnostics: &mut Diagnostics,
) -> Option<T> {
    let mut chosen: Option<(T, usize)> = None;
    for &index in indices {
        if let Some((value, span)) = get(&files[index]) {
            match &chosen {
                Some((first, first_file)) if *first != value => diagnostics.push(
                    Diagnostic::error(format!("`{key}` of image `{name}` differs between its definitions"))
                        .at(files[index].location(span))
                        .with_note(format!("{} sets it to {first:?}", files[*first_file].file.display()))
                        .with_help(format!("`{key}` applies to the whole image: set the same value in every file, or in one only")),
                ),
                Some(_) => {}
                None => chosen = Some((value, index)),
            }
        }
    }
    chosen.map(|(value, _)| value)
}

fn resolve_image(
    name: String,
    indices: Vec<usize>,
    settings: &Settings,
    files: &[ImageFile],
    diagnostics: &mut Diagnostics,
) -> Image {
    let mut tags: Vec<Tag> = Vec::new();
    let mut owner: BTreeMap<String, (usize, Span)> = BTreeMap::new();
    let mut claim = |tag: &str, index: usize, span: Span, diagnostics: &mut Diagnostics| -> bool {
        if let Some((first, first_span)) = owner.get(tag) {
            diagnostics.push(
                Diagnostic::error(format!("the tag `{name}:{tag}` is defined twice"))
                    .at(files[index].location(span))
                    .with_note(format!(
                        "it is also defined at {}",
                        files[*first].location(*first_span)
                    ))
                    .with_help(
                        "every tag of an image must come from one definition: remove or rename one",
                    ),
            );
            return false;
        }
        owner.insert(tag.to_owned(), (index, span));
        true
    };
    // Base tags first, in file order, then variant tags.
    for &index in &indices {
        let file = &files[index];
        let platforms = file
            .platforms
            .clone()
            .unwrap_or_else(|| settings.platforms.clone());
        for tag in &file.tags {
            if claim(&tag.name.value, index, tag.name.span, diagnostics) {
                let layer = merged(&file.layer, &tag.layer);
                tags.push(make_tag(
                    tag.name.value.clone(),
                    index,
                    layer,
                    &platforms,
                    tag.name.span,
                    None,
                ));
            }
        }
    }
    for &index in &indices {
        let file = &files[index];
        let platforms = file
            .platforms
            .clone()
            .unwrap_or_else(|| settings.platforms.clone());
        for (variant_index, variant) in file.variants.iter().enumerate() {
            for tag in &file.tags {
                let tag_name = format!("{}{}", tag.name.value, variant.tag_suffix.value);
                if !claim(&tag_name, index, variant.tag_suffix.span, diagnostics) {
                    continue;
                }
                let layer = merged(&merged(&file.layer, &tag.layer), &variant.layer);
                let info = TagVariant {
                    name: variant.name.value.clone(),
                    suffix: variant.tag_suffix.value.clone(),
                    base_tag: tag.name.value.clone(),
                    index: variant_index,
                };
                tags.push(make_tag(
                    tag_name,
                    index,
                    layer,
                    &platforms,
                    variant.name.span,
                    Some(info),
                ));
            }
        }
    }
    let mut aliases = resolve_aliases(&name, &indices, files, &tags, diagnostics);
    let revision = shared_setting(
        &name,
        "revision",
        &indices,
        files,
        |f| f.revision.as_ref().map(|s| (s.value, s.span)),
        diagnostics,
    )
    .unwrap_or(false);
    if revision {
        crate::revision::check_names(&name, &indices, files, &tags, &mut aliases, diagnostics);
    }
    Image {
        name,
        files: indices,
        tags,
        aliases,
        revision,
    }
}

fn resolve_aliases(
    name: &str,
    indices: &[usize],
    files: &[ImageFile],
    tags: &[Tag],
    diagnostics: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let scheme_text = shared_setting(
        name,
        "version_scheme",
        indices,
        files,
        |f| f.version_scheme.as_ref().map(|s| (s.value.clone(), s.span)),
        diagnostics,
    );
    let scheme = scheme_text
        .as_deref()
        .map_or(Ok(VersionScheme::Semver), VersionScheme::parse)
        .unwrap_or(VersionScheme::None);
    let latest = shared_setting(
        name,
        "latest",
        indices,
        files,
        |f| f.latest.as_ref().map(|s| (s.value, s.span)),
        diagnostics,
    )
    .unwrap_or(false);

    // Generated aliases: over base tags, then per variant suffix over the base tags that have it.
    let mut generated: BTreeMap<String, String> = BTreeMap::new();
    let base: Vec<&str> = tags
        .iter()
        .filter(|t| t.variant.is_none())
        .map(|t| t.name.as_str())
        .collect();
    generated.extend(generate_aliases(&scheme, base.iter().copied()));
    if latest {
        match highest(&scheme, base.iter().copied()) {
            Some(top) => {
                generated.insert("latest".into(), top);
            }
            None => {
                let (index, span) = indices
                    .iter()
                    .find_map(|&i| files[i].latest.as_ref().map(|l| (i, l.span)))
                    .unwrap_or((indices[0], Span::default()));
                diagnostics.push(
                    Diagnostic::error(format!("`latest: true`, but no tag of `{name}` is a release version under its version scheme"))
                        .at(files[index].location(span))
                        .with_help("add a version tag, change `version_scheme`, or remove `latest`"),
                );
            }
        }
    }
    let mut suffixes: BTreeSet<&str> = BTreeSet::new();
    for tag in tags {
        if let Some(variant) = &tag.variant {
            suffixes.insert(&variant.suffix);
        }
    }
    for suffix in suffixes {
        let bases: Vec<&str> = tags
            .iter()
            .filter_map(|t| {
                t.variant
                    .as_ref()
                    .filter(|v| v.suffix == suffix)
                    .map(|v| v.base_tag.as_str())
            })
            .collect();
        for (alias, target) in generate_aliases(&scheme, bases.iter().copied()) {
            generated.insert(format!("{alias}{suffix}"), format!("{target}{suffix}"));
        }
        if latest && let Some(top) = highest(&scheme, bases.iter().copied()) {
            let joiner = if suffix.starts_with(['-', '_', '.']) {
                ""
            } else {
                "-"
            };
            generated.insert(format!("latest{joiner}{suffix}"), format!("{top}{suffix}"));
        }
    }

    // Explicit aliases: `name: tag` adds or overrides, `name: false` drops.
    let mut explicit: BTreeMap<String, Option<String>> = BTreeMap::new();
    for &index in indices {
        let file = &files[index];
        for alias in &file.aliases {
            if let Some(target) = &alias.target {
                if !tags.iter().any(|t| t.name == target.value) {
                    diagnostics.push(
                        Diagnostic::error(format!(
                            "alias `{}` points at `{}`, which is not a tag of `{name}`",
                            alias.name.value, target.value
                        ))
                        .at(file.location(target.span))
                        .with_help("point it at one of the image's real tags"),
                    );
                    continue;
                }
                if tags.iter().any(|t| t.name == alias.name.value) {
                    diagnostics.push(
                        Diagnostic::error(format!(
                            "alias `{}` has the name of a real tag of `{name}`",
                            alias.name.value
                        ))
                        .at(file.location(alias.name.span))
                        .with_help("choose another alias name"),
                    );
                    continue;
                }
            }
            explicit.insert(
                alias.name.value.clone(),
                alias.target.as_ref().map(|t| t.value.clone()),
            );
        }
    }
    for (alias, target) in &explicit {
        match target {
            Some(target) => {
                generated.insert(alias.clone(), target.clone());
            }
            None => {
                generated.remove(alias);
            }
        }
    }
    // A generated alias must not shadow a real tag.
    for tag in tags {
        if let Some(target) = generated.get(&tag.name) {
            if explicit.get(&tag.name) == Some(&None) {
                continue;
            }
            let file = &files[tag.file];
            diagnostics.push(
                Diagnostic::error(format!("the tag `{name}:{}` is also the alias generated for `{name}:{target}`", tag.name))
                    .at(file.location(tag.span))
                    .with_help(format!(
                        "rename the tag, or keep it and drop the alias with `aliases: {{\"{}\": false}}` in {}",
                        tag.name,
                        file.file.display()
                    )),
            );
        }
    }
    generated.retain(|alias, _| !tags.iter().any(|t| &t.name == alias));
    generated
}
