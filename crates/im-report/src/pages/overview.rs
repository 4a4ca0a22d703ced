//! `index.html`: counts, then one row per image (tags, platforms, last build, tests, lint),
//! then the external bases.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::table_filter;
use crate::html::{badge, esc, image_path, link, table};
use crate::model::{Image, TestStatus};
use crate::{LIST_LIMIT, Report};

pub fn render(report: &Report<'_>, path: &str) -> (String, String) {
    let site = report.site;
    let tags: usize = site.images.iter().map(|i| i.tags.len()).sum();
    let builds = site
        .images
        .iter()
        .flat_map(|i| &i.tags)
        .flat_map(|t| &t.builds);
    let (mut built, mut platforms) = (0, 0);
    for build in builds {
        platforms += 1;
        built += usize::from(build.key.is_some());
    }
    let statuses: Vec<TestStatus> = site
        .images
        .iter()
        .flat_map(|i| &i.tags)
        .map(crate::model::Tag::test_status)
        .collect();
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    let findings: usize = site
        .images
        .iter()
        .flat_map(|i| &i.tags)
        .map(|t| t.lint.len())
        .sum();
    let mut main = format!("<h1>{} — image report</h1>\n", esc(&site.project));
    main.push_str("<section aria-labelledby=\"counts\"><h2 id=\"counts\">At a glance</h2><ul class=\"counts\">");
    let facts = [
        ("images", site.images.len().to_string()),
        ("image tags", tags.to_string()),
        ("platform images built", format!("{built} of {platforms}")),
        (
            "tags tested and passing",
            count(TestStatus::Passed).to_string(),
        ),
        ("tags failing tests", count(TestStatus::Failed).to_string()),
        ("tags not tested", count(TestStatus::NotRun).to_string()),
        (
            "lint findings",
            if site.lint_recorded {
                findings.to_string()
            } else {
                "not run".into()
            },
        ),
        ("external bases", site.external_bases.len().to_string()),
    ];
    for (what, value) in facts {
        let _ = write!(
            main,
            "<li><strong>{}</strong> {}</li>",
            esc(&value),
            esc(what)
        );
    }
    main.push_str("</ul></section>\n");
    main.push_str("<section aria-labelledby=\"images\"><h2 id=\"images\">Images</h2>\n");
    main.push_str(&table_filter("images-filter", "images-table", "images"));
    let rows: Vec<Vec<String>> = site
        .images
        .iter()
        .map(|image| image_row(path, image))
        .collect();
    main.push_str(&table(
        "Every image, its tags and their state",
        "images-table",
        &[
            "image",
            "tags",
            "platforms",
            "built",
            "last build",
            "tests",
            "lint findings",
        ],
        &rows,
    ));
    main.push_str("</section>\n");
    if !site.external_bases.is_empty() {
        main.push_str("<section aria-labelledby=\"bases\"><h2 id=\"bases\">External bases</h2>\n");
        let rows: Vec<Vec<String>> = site
            .external_bases
            .iter()
            .map(|(reference, users)| {
                let images: BTreeSet<&str> = users
                    .iter()
                    .map(|node| node.split_once(':').map_or(node.as_str(), |(i, _)| i))
                    .collect();
                let mut links: Vec<String> = images
                    .iter()
                    .take(LIST_LIMIT)
                    .map(|image| link(path, &image_path(image), image))
                    .collect();
                if images.len() > LIST_LIMIT {
                    links.push(format!("and {} more", images.len() - LIST_LIMIT));
                }
                vec![
                    format!("<code>{}</code>", esc(reference)),
                    users.len().to_string(),
                    links.join(", "),
                ]
            })
            .collect();
        main.push_str(&table(
            "Images the project does not manage, and who builds on them",
            "bases-table",
            &["reference", "tags using it", "images"],
            &rows,
        ));
        main.push_str("</section>\n");
    }
    ("Overview".into(), main)
}

fn image_row(path: &str, image: &Image) -> Vec<String> {
    let platforms: BTreeSet<&str> = image
        .tags
        .iter()
        .flat_map(|t| &t.platforms)
        .map(String::as_str)
        .collect();
    let (built, total) = image
        .tags
        .iter()
        .flat_map(|t| &t.builds)
        .fold((0, 0), |(built, total), b| {
            (built + usize::from(b.key.is_some()), total + 1)
        });
    let last = image
        .tags
        .iter()
        .flat_map(|t| &t.builds)
        .filter(|b| b.built_at.is_some())
        .max_by_key(|b| b.built_at)
        .and_then(|b| b.built_at_text.clone())
        .unwrap_or_else(|| "never".into());
    let statuses: Vec<TestStatus> = image
        .tags
        .iter()
        .map(crate::model::Tag::test_status)
        .collect();
    let tests = if statuses.contains(&TestStatus::Failed) {
        badge("failed")
    } else if statuses.iter().all(|s| *s == TestStatus::Passed) {
        badge("passed")
    } else if statuses.contains(&TestStatus::Passed) {
        format!(
            "{} ({} of {} tags)",
            badge("passed"),
            statuses
                .iter()
                .filter(|s| **s == TestStatus::Passed)
                .count(),
            statuses.len()
        )
    } else {
        badge("not run")
    };
    vec![
        link(path, &image_path(&image.name), &image.name),
        image.tags.len().to_string(),
        esc(&platforms.into_iter().collect::<Vec<_>>().join(", ")),
        format!("{built} of {total}"),
        esc(&last),
        tests,
        image
            .tags
            .iter()
            .map(|t| t.lint.len())
            .sum::<usize>()
            .to_string(),
    ]
}
