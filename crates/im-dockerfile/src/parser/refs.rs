//! Image references inside a stage: `COPY --from` and `RUN --mount=from=`, kept pending
//! until every stage name is known and then resolved to a stage or an external image.

use crate::ImageRef;
use crate::instruction::{Form, Keyword};
use crate::stage::{ExternalRef, RefKind};
use crate::words::{fields, mount_from};

use super::{Anchor, Parser, Parts, PendingRef, ScopeKind, is_rootfs, json_array};

impl Parser<'_> {
    pub(super) fn copy(&mut self, parts: &Parts<'_>) {
        let Parts {
            keyword,
            line,
            args_start,
            rest,
            rest_start,
            form,
            keyword_offset,
            keyword_len,
            ..
        } = *parts;
        let flags = &parts.flags;
        let stage = self.stages.len() - 1;
        let from = flags.iter().rev().find(|f| f.name() == "from");
        if let (Keyword::Copy, Some(flag)) = (keyword, from) {
            let anchor = Anchor {
                line,
                logical: args_start + flag.value_offset(),
            };
            match flag.value() {
                Some(value) if !value.is_empty() => {
                    self.pending_from(RefKind::CopyFrom, value, anchor, stage);
                }
                _ => {
                    let flag_offset = line.source_offset(args_start + flag.offset);
                    self.error(
                        flag_offset,
                        flag.word.chars().count(),
                        "`--from` needs a stage name, stage index or image",
                    )
                    .help = Some(
                        "write `COPY --from=<stage|index|image> <source> <destination>`".to_owned(),
                    );
                }
            }
        }
        let mut sources: Vec<String> = Vec::new();
        match form {
            Some(Form::Exec) => {
                match json_array(rest) {
                    Some(Ok(items)) => sources = items,
                    // Already reported by `form`.
                    _ => return,
                }
            }
            Some(Form::Shell) => {
                for field in fields(rest) {
                    let raw = &rest[field.clone()];
                    if raw.contains('$') {
                        let anchor = Anchor {
                            line,
                            logical: rest_start + field.start,
                        };
                        if let Some(value) = self.expand_lenient(raw, anchor, ScopeKind::Stage) {
                            sources.push(value);
                        }
                    } else {
                        sources.push(raw.to_owned());
                    }
                }
            }
            None => {}
        }
        if sources.len() < 2 {
            self.error(
                keyword_offset,
                keyword_len,
                format!("`{keyword}` needs at least a source and a destination"),
            )
            .help = Some(format!("write `{keyword} <source>... <destination>`"));
            return;
        }
        sources.pop();
        if from.is_none() && sources.iter().any(|s| is_rootfs(s)) {
            self.stages[stage].copies_rootfs = true;
        }
    }

    pub(super) fn run(&mut self, parts: &Parts<'_>) {
        let Parts {
            line, args_start, ..
        } = *parts;
        let flags = &parts.flags;
        let stage = self.stages.len() - 1;
        for flag in flags.iter().filter(|f| f.name() == "mount") {
            let Some(value) = flag.value() else { continue };
            let Some((from, from_offset)) = mount_from(value) else {
                continue;
            };
            if from.is_empty() {
                continue;
            }
            let logical = args_start + flag.value_offset() + from_offset;
            self.pending_from(RefKind::MountFrom, &from, Anchor { line, logical }, stage);
        }
    }

    pub(super) fn pending_from(
        &mut self,
        kind: RefKind,
        written: &str,
        anchor: Anchor<'_>,
        stage: usize,
    ) {
        let context = match kind {
            RefKind::CopyFrom => "COPY --from",
            _ => "RUN --mount from=",
        };
        let Some(resolved) = self.expand_strict(written, anchor, ScopeKind::Stage, context) else {
            return;
        };
        self.refs.push(PendingRef {
            kind,
            written: written.to_owned(),
            resolved,
            stage,
            offset: anchor.at(0),
            image: None,
        });
    }

    /// Turns the references into external ones once all stage names are known; `--from`
    /// values that name a stage (by name or index) are not images.
    pub(super) fn resolve_refs(&mut self) -> Vec<ExternalRef> {
        let refs = std::mem::take(&mut self.refs);
        let mut external = Vec::with_capacity(refs.len());
        for pending in refs {
            let position = self.position(pending.offset);
            let len = pending.written.chars().count();
            let image = match pending.image {
                Some(image) => image,
                None => {
                    let value = pending.resolved.as_str();
                    let target = self
                        .stages
                        .iter()
                        .position(|s| {
                            s.name
                                .as_deref()
                                .is_some_and(|n| n.eq_ignore_ascii_case(value))
                        })
                        .map(Ok)
                        .or_else(|| {
                            (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                                .then(|| value.parse::<usize>().map_err(|_| ()))
                        });
                    match target {
                        Some(Ok(index)) if index < self.stages.len() => {
                            if index == pending.stage {
                                self.error(
                                    pending.offset,
                                    len,
                                    format!("`{}` refers to its own stage", pending.kind),
                                )
                                .help = Some(
                                    "a stage can only copy from other stages or images".to_owned(),
                                );
                            }
                            continue;
                        }
                        Some(_) => {
                            let note = match self.stages.len() {
                                1 => "the Dockerfile has 1 stage, numbered 0".to_owned(),
                                count => format!(
                                    "the Dockerfile has {count} stages, numbered 0 to {}",
                                    count - 1
                                ),
                            };
                            self.error(
                                pending.offset,
                                len,
                                format!("stage index `{value}` does not exist"),
                            )
                            .notes
                            .push(note);
                            continue;
                        }
                        None if value == "scratch" => continue,
                        None => match ImageRef::parse(value) {
                            Ok(image) => image,
                            Err(error) => {
                                self.invalid_reference(
                                    pending.offset,
                                    &pending.written,
                                    pending.kind,
                                    &error,
                                );
                                continue;
                            }
                        },
                    }
                }
            };
            external.push(ExternalRef {
                kind: pending.kind,
                image,
                written: pending.written,
                stage: pending.stage,
                position,
            });
        }
        external
    }
}
