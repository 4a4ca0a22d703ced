//! Source maps: for each line of a rendered Dockerfile, the template file and line that
//! wrote it, so a problem found in `dist/<name>/<tag>/Dockerfile:12` can be reported at
//! `images/python/Dockerfile.jinja2:7` (issue 14).
//!
//! [`Mapper`] renders a tag's template again with minijinja's
//! [`render_with_spans`](minijinja::Template::render_with_spans) (its public API: every
//! emitting instruction carries the span of the template source it came from; no patch is
//! needed), so `generate` and everything else render exactly as before and pay nothing.
//! Template text (a raw span) maps line by line to the template it was written in — an
//! `{% include %}`d file or a loop body maps to its own line on every iteration; the output of
//! an expression (`{{ install }}`) maps to the line of the expression. A line of the final
//! Dockerfile that image-manager added (the rootfs `COPY`) has no origin.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use im_diag::{Diagnostic, display_path};
use im_project::Project;
use minijinja::{OutputSpan, OutputSpanKind};

use crate::discovery::SourceKind;
use crate::engine::{Engine, RenderContext};
use crate::{Options, RenderedTag, context, filter_data, image_context};

/// Where a line of a rendered file came from: a template (or plain Dockerfile) and its line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file relative to the project, `/`-separated (`images/python/Dockerfile.jinja2`).
    pub file: Arc<str>,
    /// 1-based.
    pub line: usize,
}

/// The origin of every line of one rendered file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    lines: Vec<Option<Origin>>,
}

impl SourceMap {
    /// Where line `line` (1-based) of the rendered file came from; `None` for a line
    /// image-manager added or a line past the end.
    pub fn origin(&self, line: usize) -> Option<&Origin> {
        self.lines.get(line.checked_sub(1)?)?.as_ref()
    }

    /// How many lines the rendered file has.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Re-aligns a map of `before` onto `after`, which is `before` with whole lines inserted
    /// (the rootfs `COPY`): inserted lines get no origin.
    fn realign(self, before: &str, after: &str) -> SourceMap {
        let old: Vec<&str> = before.lines().collect();
        let mut lines = Vec::with_capacity(after.lines().count());
        let mut next = 0;
        for line in after.lines() {
            if old.get(next) == Some(&line) {
                lines.push(self.lines.get(next).cloned().flatten());
                next += 1;
            } else {
                lines.push(None);
            }
        }
        SourceMap { lines }
    }
}

/// Byte offsets of the starts of each line of `text`.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(at, _)| at + 1))
        .filter(|&start| start < text.len())
        .collect()
}

/// The 1-based line of byte `offset` in a text with `starts` as its line starts.
fn line_at(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|&start| start <= offset).max(1)
}

/// Template sources by name, with their line starts, read once per mapper.
#[derive(Default)]
struct Sources {
    known: Mutex<HashMap<Arc<str>, Arc<Vec<usize>>>>,
}

impl Sources {
    fn line_starts(&self, engine: &Engine, name: &str) -> Option<Arc<Vec<usize>>> {
        let mut known = self.known.lock().expect("template sources lock");
        if let Some(starts) = known.get(name) {
            return Some(starts.clone());
        }
        let template = engine.env.get_template(name).ok()?;
        let starts = Arc::new(line_starts(template.source()));
        known.insert(Arc::from(name), starts.clone());
        Some(starts)
    }
}

/// The origin of each line of `text`, rendered with `spans`.
fn map_lines(
    text: &str,
    spans: &[OutputSpan],
    engine: &Engine,
    sources: &Sources,
) -> Vec<Option<Origin>> {
    let starts = line_starts(text);
    let mut names: HashMap<&str, Arc<str>> = HashMap::new();
    let mut lines = Vec::with_capacity(starts.len());
    let mut first_span = 0;
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(text.len());
        // The first character of the line that is not blank says where the line came from:
        // an instruction's keyword, or its continuation.
        let line = &text[start..end];
        let offset = start + (line.len() - line.trim_start().len());
        let offset = if offset >= end { start } else { offset };
        while first_span < spans.len() && spans[first_span].output_range().end <= start {
            first_span += 1;
        }
        let span = spans[first_span..]
            .iter()
            .take_while(|span| span.output_range().start < end)
            .find(|span| contains(&span.output_range(), offset));
        let origin = span.and_then(|span| {
            let line = match span.kind() {
                OutputSpanKind::Raw => {
                    let within = offset - span.output_range().start;
                    let source_offset = span.source_range().start + within;
                    line_at(&sources.line_starts(engine, span.name())?, source_offset)
                }
                _ => span.line(),
            };
            let file = names
                .entry(span.name())
                .or_insert_with(|| Arc::from(span.name()))
                .clone();
            Some(Origin { file, line })
        });
        lines.push(origin);
    }
    lines
}

fn contains(range: &Range<usize>, offset: usize) -> bool {
    range.start <= offset && offset < range.end
}

/// Builds source maps for rendered tags of one project.
pub struct Mapper<'p> {
    project: &'p Project,
    engine: Engine,
    options: Options,
    sources: Sources,
}

impl<'p> Mapper<'p> {
    /// A mapper for tags rendered from `project` with `options`.
    pub fn new(project: &'p Project, options: &Options) -> Self {
        Self {
            project,
            engine: Engine::new(&project.root, filter_data(project, options)),
            options: options.clone(),
            sources: Sources::default(),
        }
    }

    /// The source map of `rendered`'s final Dockerfile.
    pub fn dockerfile(&self, rendered: &RenderedTag) -> Result<SourceMap, Diagnostic> {
        let source = &rendered.dockerfile_source;
        let before = rendered.parsed.text();
        let map = match source.kind {
            SourceKind::Verbatim => {
                let file: Arc<str> = Arc::from(
                    display_path(&self.project.root, &source.path)
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
                let lines = (1..=before.lines().count())
                    .map(|line| {
                        Some(Origin {
                            file: file.clone(),
                            line,
                        })
                    })
                    .collect();
                SourceMap { lines }
            }
            SourceKind::Template => {
                let (text, spans) = self.render(rendered)?;
                // The template renders as it did (same context); a trailing newline is the
                // only thing `render` adds.
                if text.trim_end_matches('\n') != before.trim_end_matches('\n') {
                    return Err(Diagnostic::error(format!(
                        "{}:{} rendered differently the second time (templates must not depend on anything but their context)",
                        rendered.image, rendered.tag
                    )));
                }
                SourceMap {
                    lines: map_lines(&text, &spans, &self.engine, &self.sources),
                }
            }
        };
        Ok(if rendered.dockerfile == before {
            map
        } else {
            map.realign(before, &rendered.dockerfile)
        })
    }

    fn render(&self, rendered: &RenderedTag) -> Result<(String, Vec<OutputSpan>), Diagnostic> {
        let project = self.project;
        let (Some(image), Some(tag)) = (
            project.image(&rendered.image),
            project.tag_of(&rendered.image, &rendered.tag),
        ) else {
            return Err(Diagnostic::error(format!(
                "{}:{} is not a tag of this project",
                rendered.image, rendered.tag
            )));
        };
        let value = context(
            image,
            tag,
            &self.options,
            image_context(project, image, tag.file),
        );
        let ctx = RenderContext::from_value(value);
        let name = display_path(&project.root, &rendered.dockerfile_source.path)
            .to_string_lossy()
            .replace('\\', "/");
        self.engine
            .env
            .get_template(&name)
            .and_then(|template| template.render_with_spans(ctx.value()))
            .map_err(|error| self.engine.diagnostic(&name, &error, ctx.value()))
    }
}

#[cfg(test)]
mod tests;
