//! Pages of a small site: snapshots of what they say, and that nothing a project writes can
//! become markup.

use crate::model::{
    Image, Layer, LintFinding, OutdatedBase, Package, PlatformBuild, Sbom, Site, Tag, TestResult,
    TestRun,
};
use crate::{ASSETS, Report};

fn tag(name: &str, depends_on: &[&str], used_by: &[&str]) -> Tag {
    Tag {
        name: name.into(),
        aliases: vec![],
        platforms: vec!["linux/amd64".into()],
        depends_on: depends_on.iter().map(|s| (*s).to_owned()).collect(),
        used_by: used_by.iter().map(|s| (*s).to_owned()).collect(),
        template: "images/x/Dockerfile.jinja2".into(),
        dockerfile_kind: "template".into(),
        dockerfile: Some("FROM scratch\n".into()),
        builds: vec![PlatformBuild {
            platform: "linux/amd64".into(),
            ..PlatformBuild::default()
        }],
        ..Tag::default()
    }
}

fn site(evil: &str) -> Site {
    let mut base = tag("1.0", &[], &["app:2.0"]);
    base.builds[0] = PlatformBuild {
        platform: "linux/amd64".into(),
        key: Some("k1".into()),
        digest: Some("sha256:0123456789abcdef0123456789abcdef".into()),
        built_at: Some(1),
        built_at_text: Some("2026-12-06 10:00 UTC".into()),
        duration_ms: Some(1500),
        builder: Some("buildah".into()),
        reasons: vec!["new".into()],
        bases: vec![],
        layers: vec![Layer {
            digest: "sha256:aa".into(),
            size: 2048,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        }],
        sbom: Some(Sbom {
            format: "cyclonedx-json".into(),
            file: "base/1.0/linux-amd64/sbom.cdx.json".into(),
            packages: vec![Package {
                name: evil.into(),
                version: "1.0".into(),
                kind: "binary".into(),
            }],
        }),
    };
    base.tests = vec![TestRun {
        platform: "linux/amd64".into(),
        driver: "native".into(),
        seconds: 0.5,
        ran_at: None,
        error: None,
        results: vec![TestResult {
            name: format!("File Existence Test: {evil}"),
            pass: false,
            message: Some(evil.into()),
        }],
    }];
    base.labels = vec![("org.opencontainers.image.title".into(), evil.into())];
    base.variables = vec![(evil.into(), evil.into())];
    base.lint = vec![LintFinding {
        rule: "DL3008".into(),
        level: "warning".into(),
        message: evil.into(),
        location: "images/base/Dockerfile.jinja2:3".into(),
        help_uri: Some("javascript:alert(1)".into()),
    }];
    let mut app = tag("2.0", &["base:1.0"], &[]);
    app.aliases = vec![evil.into()];
    app.dockerfile = Some(format!("FROM base:1.0\nLABEL x=\"{evil}\"\n"));
    Site {
        project: "examples".into(),
        generated_at: "(time)".into(),
        images: vec![
            Image {
                name: "app".into(),
                definitions: vec!["images/app/image.yml".into()],
                aliases: [(evil.to_owned(), "2.0".to_owned())].into(),
                tags: vec![app],
            },
            Image {
                name: "base".into(),
                definitions: vec!["images/base/image.yml".into()],
                aliases: std::collections::BTreeMap::default(),
                tags: vec![base],
            },
        ],
        registry: None,
        outdated: Some(vec![OutdatedBase {
            reference: "debian:bookworm-slim".into(),
            current: "12.7".into(),
            latest: "12.8".into(),
            affected: vec!["base:1.0".into()],
        }]),
        external_bases: [(
            "debian:bookworm-slim".to_owned(),
            vec!["base:1.0".to_owned()],
        )]
        .into(),
        tests_recorded: true,
        lint_recorded: true,
    }
}

#[test]
fn every_page_is_listed_once_with_its_path() {
    let site = site("x");
    let report = Report::new(&site);
    let paths: Vec<String> = report.pages().into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        [
            "index.html",
            "graph.html",
            "outdated.html",
            "images/app.html",
            "images/app/2.0.html",
            "images/base.html",
            "images/base/1.0.html"
        ]
    );
}

#[test]
fn nothing_a_project_writes_becomes_markup() {
    let evil = "\"><script>alert(1)</script><img src=x onerror=alert(2)>'";
    let site = site(evil);
    let report = Report::new(&site);
    for page in report.pages() {
        let html = report.render(&page);
        assert!(!html.contains("<script>alert"), "{}", page.path);
        assert!(!html.contains("<img"), "{}", page.path);
        assert!(!html.contains("onerror=alert(2)>"), "{}", page.path);
        assert!(!html.contains("href=\"javascript"), "{}", page.path);
        // The only script is the site's own.
        assert_eq!(html.matches("<script").count(), 1, "{}", page.path);
    }
}

#[test]
fn pages_link_with_relative_paths_to_pages_that_exist() {
    let site = site("x");
    let report = Report::new(&site);
    let pages = report.pages();
    let mut known: std::collections::BTreeSet<String> =
        pages.iter().map(|p| p.path.clone()).collect();
    known.extend(ASSETS.iter().map(|(path, _)| (*path).to_owned()));
    for page in &pages {
        let html = report.render(page);
        let dir = page.path.rsplit_once('/').map_or("", |(dir, _)| dir);
        for href in html
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
        {
            if href.starts_with('#') || href.starts_with("http") {
                continue;
            }
            let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
            for part in href.split('/') {
                match part {
                    ".." => {
                        parts.pop();
                    }
                    part => parts.push(part),
                }
            }
            let target = parts.join("/");
            assert!(
                known.contains(&target),
                "{} links to {href} ({target})",
                page.path
            );
        }
    }
}

#[test]
fn overview_snapshot() {
    let site = site("x");
    let report = Report::new(&site);
    insta::assert_snapshot!(report.render(&report.pages()[0]));
}

#[test]
fn tag_page_snapshot() {
    let site = site("x");
    let report = Report::new(&site);
    let page = report
        .pages()
        .into_iter()
        .find(|p| p.path == "images/base/1.0.html")
        .unwrap();
    insta::assert_snapshot!(report.render(&page));
}
