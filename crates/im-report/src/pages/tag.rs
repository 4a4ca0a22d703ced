//! `images/<name>/<tag>.html`: everything known about one image tag — what it is and what
//! it is built from, versions and variables, each platform's build (key, digest, why it was
//! built, layers and sizes), labels, test results, lint findings, SBOM packages, registry
//! digests, and the rendered Dockerfile with the template it came from.

use std::fmt::Write as _;

use super::table_filter;
use crate::Report;
use crate::html::{badge, esc, human_bytes, image_path, link, safe_url, short_digest, table};
use crate::model::{Image, PlatformBuild, Tag};

pub fn render(report: &Report<'_>, path: &str, i: usize, t: usize) -> (String, String) {
    let image = &report.site.images[i];
    let tag = &image.tags[t];
    let node = format!("{}:{}", image.name, tag.name);
    let mut main = format!("<h1>{}</h1>\n", esc(&node));
    facts(report, path, image, tag, &mut main);
    pairs(&mut main, "versions", "Versions", &tag.versions);
    pairs(&mut main, "variables", "Variables", &tag.variables);
    builds(&mut main, tag);
    pairs(&mut main, "labels", "Labels", &tag.labels);
    tests(report, &mut main, tag);
    lint(report, &mut main, tag);
    sboms(&mut main, tag);
    if let Some(registry) = &report.site.registry {
        registry_digests(&mut main, registry, tag);
    }
    dockerfile(&mut main, tag);
    (node, main)
}

fn facts(report: &Report<'_>, path: &str, image: &Image, tag: &Tag, main: &mut String) {
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items
                .iter()
                .map(|i| format!("<code>{}</code>", esc(i)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = write!(
        main,
        "<dl class=\"facts\"><dt>Image</dt><dd>{}</dd>",
        link(path, &image_path(&image.name), &image.name)
    );
    if let Some(variant) = &tag.variant {
        let base = tag.base_tag.as_deref().map_or_else(String::new, |base| {
            format!(
                " of {}",
                report.node_link(path, &format!("{}:{base}", image.name))
            )
        });
        let _ = write!(main, "<dt>Variant</dt><dd>{}{base}</dd>", esc(variant));
    }
    let _ = writeln!(
        main,
        "<dt>Aliases</dt><dd>{}</dd><dt>Platforms</dt><dd>{}</dd>\
         <dt>Built from</dt><dd>{}</dd><dt>External bases</dt><dd>{}</dd>\
         <dt>Built on it</dt><dd>{}</dd><dt>Test config</dt><dd>{}</dd></dl>",
        list(&tag.aliases),
        esc(&tag.platforms.join(", ")),
        report.node_links(path, &tag.depends_on),
        list(&tag.external),
        report.node_links(path, &tag.used_by),
        tag.test_source
            .as_deref()
            .map_or_else(|| "none".to_owned(), |s| format!("<code>{}</code>", esc(s))),
    );
}

/// A section with a two-column table of `name → value`, left out when empty.
fn pairs(main: &mut String, id: &str, title: &str, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|(name, value)| vec![format!("<code>{}</code>", esc(name)), esc(value)])
        .collect();
    let _ = writeln!(
        main,
        "<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{title}</h2>\n{}</section>",
        table(title, &format!("{id}-table"), &["name", "value"], &rows)
    );
}

fn builds(main: &mut String, tag: &Tag) {
    main.push_str("<section aria-labelledby=\"builds\"><h2 id=\"builds\">Builds</h2>\n");
    let rows: Vec<Vec<String>> = tag
        .builds
        .iter()
        .map(|b| {
            vec![
                esc(&b.platform),
                badge(if b.key.is_some() {
                    "built"
                } else {
                    "not built"
                }),
                b.key
                    .as_deref()
                    .map_or_else(String::new, |k| format!("<code>{}</code>", esc(k))),
                b.digest.as_deref().map_or_else(String::new, short_digest),
                esc(b.built_at_text.as_deref().unwrap_or("")),
                b.duration_ms.map_or_else(String::new, |ms| {
                    format!("{}.{} s", ms / 1000, ms % 1000 / 100)
                }),
                esc(b.builder.as_deref().unwrap_or("")),
                esc(&b.reasons.join(", ")),
                if b.layers.is_empty() {
                    String::new()
                } else {
                    esc(&human_bytes(b.size()))
                },
            ]
        })
        .collect();
    main.push_str(&table(
        "The last build of each platform, and why it was built",
        "builds-table",
        &[
            "platform",
            "state",
            "build key",
            "digest",
            "built",
            "took",
            "builder",
            "why",
            "size",
        ],
        &rows,
    ));
    for (n, build) in tag.builds.iter().enumerate() {
        layers(main, n, build);
    }
    main.push_str("</section>\n");
}

fn layers(main: &mut String, n: usize, build: &PlatformBuild) {
    if build.layers.is_empty() && build.bases.is_empty() {
        return;
    }
    let _ = writeln!(main, "<h3>{}</h3>", esc(&build.platform));
    if !build.bases.is_empty() {
        let rows: Vec<Vec<String>> = build
            .bases
            .iter()
            .map(|(reference, digest)| {
                vec![
                    format!("<code>{}</code>", esc(reference)),
                    short_digest(digest),
                ]
            })
            .collect();
        main.push_str(&table(
            &format!("External bases of the {} build", build.platform),
            &format!("bases-{n}"),
            &["reference", "digest"],
            &rows,
        ));
    }
    if !build.layers.is_empty() {
        let rows: Vec<Vec<String>> = build
            .layers
            .iter()
            .map(|l| {
                vec![
                    short_digest(&l.digest),
                    esc(&human_bytes(l.size)),
                    esc(&l.media_type),
                ]
            })
            .collect();
        main.push_str(&table(
            &format!(
                "{} layers, {} in all ({})",
                build.layers.len(),
                human_bytes(build.size()),
                build.platform
            ),
            &format!("layers-{n}"),
            &["digest", "size", "media type"],
            &rows,
        ));
    }
}

fn tests(report: &Report<'_>, main: &mut String, tag: &Tag) {
    main.push_str("<section aria-labelledby=\"tests\"><h2 id=\"tests\">Tests</h2>\n");
    if tag.tests.is_empty() {
        main.push_str(if tag.test_source.is_none() {
            "<p>This tag has no test config.</p>\n"
        } else if report.site.tests_recorded {
            "<p>Not tested yet: run <code>image-manager test</code>.</p>\n"
        } else {
            "<p>No test results are recorded: run <code>image-manager test</code>.</p>\n"
        });
    }
    for (n, run) in tag.tests.iter().enumerate() {
        let verdict = if run.ok() { "passed" } else { "failed" };
        let _ = writeln!(
            main,
            "<h3>{} {}</h3><p>{} tests with the {} driver in {:.1} s{}.</p>",
            esc(&run.platform),
            badge(verdict),
            run.results.len(),
            esc(&run.driver),
            run.seconds,
            run.ran_at
                .as_deref()
                .map_or_else(String::new, |at| format!(", {}", esc(at))),
        );
        if let Some(error) = &run.error {
            let _ = writeln!(main, "<p>Could not test: <code>{}</code></p>", esc(error));
        }
        let rows: Vec<Vec<String>> = run
            .results
            .iter()
            .map(|r| {
                vec![
                    esc(&r.name),
                    badge(if r.pass { "passed" } else { "failed" }),
                    esc(r.message.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        main.push_str(&table(
            &format!("Test results on {}", run.platform),
            &format!("tests-{n}"),
            &["test", "result", "message"],
            &rows,
        ));
    }
    main.push_str("</section>\n");
}

fn lint(report: &Report<'_>, main: &mut String, tag: &Tag) {
    main.push_str("<section aria-labelledby=\"lint\"><h2 id=\"lint\">Lint findings</h2>\n");
    if tag.lint.is_empty() {
        main.push_str(if report.site.lint_recorded {
            "<p>No findings.</p>\n"
        } else {
            "<p>Not linted yet: run <code>image-manager lint</code>.</p>\n"
        });
    } else {
        let rows: Vec<Vec<String>> = tag
            .lint
            .iter()
            .map(|f| {
                let rule = match f.help_uri.as_deref().and_then(safe_url) {
                    Some(url) => format!("<a href=\"{url}\">{}</a>", esc(&f.rule)),
                    None => esc(&f.rule),
                };
                vec![
                    rule,
                    badge(&f.level),
                    esc(&f.message),
                    format!("<code>{}</code>", esc(&f.location)),
                ]
            })
            .collect();
        main.push_str(&table(
            "Findings of hadolint and image-manager's rules, at the template line that wrote them",
            "lint-table",
            &["rule", "level", "message", "where"],
            &rows,
        ));
    }
    main.push_str("</section>\n");
}

fn sboms(main: &mut String, tag: &Tag) {
    let with_sbom: Vec<&PlatformBuild> = tag.builds.iter().filter(|b| b.sbom.is_some()).collect();
    main.push_str("<section aria-labelledby=\"sbom\"><h2 id=\"sbom\">Packages (SBOM)</h2>\n");
    if with_sbom.is_empty() {
        main.push_str("<p>No SBOM: run <code>image-manager sbom</code> after a build.</p>\n");
    }
    for (n, build) in with_sbom.into_iter().enumerate() {
        let sbom = build.sbom.as_ref().expect("filtered");
        let _ = writeln!(
            main,
            "<h3>{}</h3><p>{} packages, from <code>{}</code> ({}).</p>",
            esc(&build.platform),
            sbom.packages.len(),
            esc(&sbom.file),
            esc(&sbom.format)
        );
        let id = format!("sbom-{n}");
        main.push_str(&table_filter(
            &format!("{id}-filter"),
            &id,
            &format!("packages of {}", build.platform),
        ));
        let rows: Vec<Vec<String>> = sbom
            .packages
            .iter()
            .map(|p| vec![esc(&p.name), esc(&p.version), esc(&p.kind)])
            .collect();
        main.push_str(&table(
            &format!("Packages in the {} image", build.platform),
            &id,
            &["package", "version", "type"],
            &rows,
        ));
    }
    main.push_str("</section>\n");
}

fn registry_digests(main: &mut String, registry: &str, tag: &Tag) {
    let _ = writeln!(
        main,
        "<section aria-labelledby=\"registry\"><h2 id=\"registry\">In the registry</h2><p>Registry <code>{}</code>.</p>",
        esc(registry)
    );
    let rows: Vec<Vec<String>> = tag
        .registry
        .iter()
        .map(|r| {
            let state = match (&r.digest, &r.error) {
                (Some(digest), _) => short_digest(digest),
                (None, Some(error)) => format!("could not ask: {}", esc(error)),
                (None, None) => "not in the registry".into(),
            };
            vec![format!("<code>{}</code>", esc(&r.reference)), state]
        })
        .collect();
    main.push_str(&table(
        "What the tag and its aliases point at",
        "registry-table",
        &["reference", "digest"],
        &rows,
    ));
    main.push_str("</section>\n");
}

fn dockerfile(main: &mut String, tag: &Tag) {
    let _ = writeln!(
        main,
        "<section aria-labelledby=\"dockerfile\"><h2 id=\"dockerfile\">Dockerfile</h2>\
         <p>Rendered from <code>{}</code> ({}).</p>",
        esc(&tag.template),
        if tag.dockerfile_kind == "verbatim" {
            "used as written"
        } else {
            "a template"
        }
    );
    if let Some((git, reference, commit)) = &tag.upstream {
        let _ = writeln!(
            main,
            "<p>From the repository <code>{}</code> at <code>{}</code>, commit <code>{}</code>.</p>",
            esc(git),
            esc(reference),
            esc(commit)
        );
    }
    match &tag.dockerfile {
        Some(text) => {
            let _ = writeln!(
                main,
                "<pre tabindex=\"0\" aria-label=\"The rendered Dockerfile\"><code>{}</code></pre>",
                esc(text)
            );
        }
        None => main.push_str(
            "<p>Not rendered in <code>dist/</code>: run <code>image-manager generate</code>.</p>\n",
        ),
    }
    main.push_str("</section>\n");
}
