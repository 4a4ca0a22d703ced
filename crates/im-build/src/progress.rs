//! Recognising a builder's "current step" lines in its output, for progress displays:
//! buildah and podman (`STEP 3/7: RUN ...`), Docker's classic builder
//! (`Step 3/7 : RUN ...`) and BuildKit's plain progress (`#5 [2/4] RUN ...`,
//! `#5 [stage-0 2/4] RUN ...`).

/// The step a line announces, normalised to `3/7 RUN ...`, or `None` for other lines.
pub fn step_line(line: &str) -> Option<String> {
    let line = line.trim();
    if let Some(rest) = line
        .strip_prefix("STEP ")
        .or_else(|| line.strip_prefix("Step "))
    {
        let (counter, instruction) = rest.split_once(':')?;
        let counter = counter.trim();
        if is_counter(counter) {
            return Some(format!("{counter} {}", instruction.trim()));
        }
        return None;
    }
    // BuildKit: `#<n> [<stage> <i>/<n>] <instruction>`; its log lines (`#5 0.208 ...`)
    // and status lines (`#5 DONE 0.2s`) have no bracket.
    let rest = line.strip_prefix('#')?;
    let (vertex, rest) = rest.split_once(' ')?;
    if !vertex.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let inner = rest.strip_prefix('[')?;
    let (inside, instruction) = inner.split_once("] ")?;
    let counter = inside.rsplit(' ').next()?;
    is_counter(counter).then(|| format!("{counter} {}", instruction.trim()))
}

fn is_counter(s: &str) -> bool {
    s.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::step_line;

    #[test]
    fn recognises_every_builders_step_lines() {
        let cases = [
            ("STEP 3/7: RUN apk add curl", Some("3/7 RUN apk add curl")),
            ("Step 2/3 : RUN echo app", Some("2/3 RUN echo app")),
            ("#5 [2/4] RUN make", Some("2/4 RUN make")),
            (
                "#6 [stage-0 3/3] COPY --from=x /a /b",
                Some("3/3 COPY --from=x /a /b"),
            ),
            ("#4 [internal] load metadata for base:1", None),
            ("#5 0.208 base", None),
            ("#5 DONE 0.2s", None),
            ("COMMIT localhost/x", None),
            ("Step one: nothing", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(step_line(line).as_deref(), want, "{line}");
        }
    }
}
