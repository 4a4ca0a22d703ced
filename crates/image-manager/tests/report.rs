//! End-to-end tests of `report`: a small project really built with buildah and tested, its
//! report opened in headless Chromium (Debian's, driven by puppeteer-core; `scripts/setup`
//! installs both) — no console errors, every link resolves, one shape per graph node, a click
//! on a node opens its page, axe-core finds no serious or critical violation, a screenshot
//! kept under `target/tmp/report-browser/` — and snapshots of the pages of `examples/`.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, builder_settings, json, write};
use im_testkit::{Platform, Registry};

fn run(root: &Path, args: &[&str]) -> Run {
    let run = common::run_cli(root, args, &std::collections::BTreeMap::new());
    common::succeeded(run, args)
}

/// base (busybox) → app:1.0 with a test config and a hostile label value, pushing to
/// `registry` when given.
fn built_project(registry: Option<&Registry>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let registries = registry.map_or_else(String::new, |r| {
        format!(
            "registries:\n  - {{name: ci, url: \"{}/acme\", default: true}}\n",
            r.host_port()
        )
    });
    write(
        &root.join(".image-manager.yml"),
        &format!(
            "{}platforms: [linux/amd64]\nlabels:\n  vendor: \"<script>alert(1)</script>\"\n{registries}",
            builder_settings("buildah", &root.join(".storage")),
        ),
    );
    im_testkit::write_busybox_base_definition(root, &[Platform::LinuxAmd64]);
    write(
        &root.join("images/app/image.yml"),
        "tags:\n  - name: \"1.0\"\n    variables: {greeting: \"<b>hi</b>\"}\n",
    );
    write(
        &root.join("images/app/Dockerfile.jinja2"),
        "FROM {{ \"base\" | resolve_base_image }}\nRUN echo {{ variables.greeting | tojson }} > /greeting\n",
    );
    write(
        &root.join("images/app/test.yml.jinja2"),
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: greeting\n    path: /greeting\n    shouldExist: true\n",
    );
    dir
}

#[test]
fn the_report_of_a_built_project_works_in_a_browser() {
    let registry = Registry::start();
    let project = built_project(Some(&registry));
    let root = project.path();
    let junit = root.join("reports/build.xml");
    let dotenv = root.join("reports/build.env");
    run(
        root,
        &[
            "build",
            "--output",
            &format!("junit:{}", junit.display()),
            "--output",
            &format!("dotenv:{}", dotenv.display()),
        ],
    );
    // The CI reports of the build: JUnit XML a real XML parser reads, dotenv variables.
    let parsed = std::process::Command::new("python3")
        .args(["-c", "import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); print(len(d.getElementsByTagName('testcase')))"])
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout).trim(),
        "2",
        "{parsed:?}"
    );
    let variables = fs_err::read_to_string(&dotenv).unwrap();
    assert!(
        variables.starts_with("IM_BUILT=2\nIM_UP_TO_DATE=0\nIM_FAILED=0\n"),
        "{variables}"
    );
    assert!(
        variables.contains("IM_DIGEST_APP_1_0_LINUX_AMD64=sha256:"),
        "{variables}"
    );
    run(root, &["test"]);
    let pushed = json(&run(root, &["push", "app", "--format", "json"]).stdout);
    let written = json(&run(root, &["report", "--registry", "ci", "--format", "json"]).stdout);
    let site = PathBuf::from(written["dir"].as_str().unwrap());
    assert_eq!(written["pages"], 6, "{written}");

    // What the tag page says came from the ledger, the archive and the test record.
    let page = fs_err::read_to_string(site.join("images/app/1.0.html")).unwrap();
    let ledger = json(&fs_err::read_to_string(root.join("dist/ledger.json")).unwrap());
    let entry = &ledger["nodes"]["app:1.0 linux/amd64"];
    assert!(page.contains(entry["key"].as_str().unwrap()));
    assert!(page.contains(&entry["digest"].as_str().unwrap()[..19]));
    assert!(page.contains("File Existence Test: greeting"), "{page}");
    assert!(
        page.contains("<td>new</td>"),
        "the reason of the build: {page}"
    );
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the label, escaped"
    );
    assert!(!page.contains("<script>alert"));
    assert!(!page.contains("<b>hi</b>"));
    // What the registry holds, asked with --registry.
    let digest = pushed["tags"][0]["digest"].as_str().unwrap();
    let in_registry = page.split("id=\"registry\"").nth(1).unwrap_or_default();
    let in_registry = in_registry.split("</section>").next().unwrap();
    assert!(
        in_registry.contains("<code>app:1.0</code>"),
        "{in_registry}"
    );
    assert!(
        in_registry.contains(&format!("title=\"{digest}\"")),
        "{in_registry}"
    );

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    fs_err::create_dir_all(&shots).unwrap();
    let screenshot = shots.join("graph.png");
    let _ = fs_err::remove_file(&screenshot);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/report-browser.js");
    let output = std::process::Command::new(im_testkit::node_bin())
        .arg(&script)
        .arg(&site)
        .arg(im_testkit::chromium_bin())
        .arg(&screenshot)
        .env("NODE_PATH", im_testkit::browser_node_modules())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser check failed:\n{summary}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = json(&summary);
    assert_eq!(summary["pages"], 6, "every page is reachable: {summary}");
    assert_eq!(summary["graph"]["nodes"], 2);
    assert_eq!(summary["graph"]["shapes"], 2);
    assert!(
        summary["landed"]
            .as_str()
            .unwrap()
            .ends_with("/images/base.html")
            || summary["landed"]
                .as_str()
                .unwrap()
                .ends_with("/images/app.html")
    );
    assert!(fs_err::metadata(&screenshot).unwrap().len() > 1000);
}

#[test]
fn a_project_never_generated_is_told_to_generate() {
    let project = built_project(None);
    let run = common::run_cli(
        project.path(),
        &["report"],
        &std::collections::BTreeMap::new(),
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("image-manager generate"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_pages_of_the_examples() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", examples.display()))
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
    let _ = fs_err::remove_dir_all(root.join("dist"));
    run(root, &["generate"]);
    run(root, &["report", "--output", "site"]);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "[time]");
    settings.add_filter(
        r"<title>([^<]*) · [^<]*</title>",
        "<title>$1 · [project]</title>",
    );
    settings.add_filter(
        r#"class="brand" href="([^"]*)">[^<]*<"#,
        r#"class="brand" href="$1">[project]<"#,
    );
    settings.add_filter(
        r"<h1>[^<]* — image report</h1>",
        "<h1>[project] — image report</h1>",
    );
    settings.bind(|| {
        for page in [
            "index.html",
            "graph.html",
            "images/python.html",
            "images/python/3.13.7-dev.html",
        ] {
            let html = fs_err::read_to_string(root.join("site").join(page)).unwrap();
            insta::assert_snapshot!(page.replace(['/', '.'], "_"), html);
        }
    });
}
