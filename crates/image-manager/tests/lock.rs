//! End-to-end tests of `packages.lock`: a real Debian bookworm base (debootstrap's rootfs,
//! served by a local distribution registry standing in for a public one), a project that
//! installs packages from it with `apt-get install` in a template (a loop and an include), a
//! managed child image that installs more, `lock` reading the versions inside the base with
//! one container per base and platform, `generate` pinning them, buildah building with them,
//! and the built image's own dpkg database and syft's SBOM agreeing with the lock.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Project, Sandbox, builder_settings, json, path_with, write};
use im_testkit::Registry;

struct Fixture {
    sandbox: Sandbox,
    base: String,
}

impl std::ops::Deref for Fixture {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl Fixture {
    fn new(registry: &Registry) -> Self {
        let mut sandbox = Sandbox::new();
        let root = sandbox.root();
        let base = format!("{}/debian:bookworm", registry.host_port());
        im_testkit::push_debian_image(&base);
        let storage = root.join(".storage");
        write(
            &root.join(".image-manager.yml"),
            &format!(
                "{}platforms: [linux/amd64]\n",
                builder_settings("buildah", &storage)
            ),
        );
        write(&root.join("images/base/image.yml"), "tags: ['1']\n");
        write(
            &root.join("images/base/Dockerfile.jinja2"),
            &format!(
                "FROM {base}\n\
                 {{% include \"apt.jinja2\" %}}\n\
                 RUN apt-get update \\\n\
                 {{%- for package in ['jq', 'tini'] %}}\n    && apt-get install -y --no-install-recommends {{{{ package }}}} \\\n{{%- endfor %}}\n\
                 \x20   && rm -rf /var/lib/apt/lists/*\n"
            ),
        );
        write(
            &root.join("templates/apt.jinja2"),
            "ENV DEBIAN_FRONTEND=noninteractive",
        );
        write(&root.join("images/app/image.yml"), "tags: ['2']\n");
        write(
            &root.join("images/app/Dockerfile"),
            "FROM base:1\nRUN apt-get update && apt-get install -y --no-install-recommends less && rm -rf /var/lib/apt/lists/*\n",
        );
        sandbox.set("PATH", path_with(&im_testkit::syft_bin()));
        sandbox.set("DOCKER_HOST", im_testkit::docker().host());
        Self { sandbox, base }
    }

    fn lock(&self, image: &str) -> im_lock::LockFile {
        let path = format!("images/{image}/packages.lock");
        im_lock::LockFile::parse(Path::new(&path), self.read(&path)).unwrap()
    }
}

/// `dpkg-query`'s view of a built image: its `/var/lib/dpkg/status`, package → version.
fn installed(archive: &Path) -> BTreeMap<String, String> {
    let image = im_oci::open_image(archive, &im_oci::OpenOptions::default()).unwrap();
    let view = image.filesystem().unwrap();
    let status =
        String::from_utf8(image.read_file(&view, "/var/lib/dpkg/status").unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for paragraph in status.split("\n\n") {
        let field = |name: &str| {
            paragraph
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
        };
        if let (Some(package), Some(version)) = (field("Package"), field("Version")) {
            out.insert(package, version);
        }
    }
    out
}

#[test]
fn lock_pins_what_the_build_installs_and_a_changed_pin_rebuilds_only_its_images() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry);

    // No lock yet: generate warns, and pins nothing.
    let generated = fixture.ok(&["generate"]);
    assert!(
        generated
            .stderr
            .contains("2 images install packages without a packages.lock: app, base"),
        "{}",
        generated.stderr
    );
    let check = fixture.run(&["lock", "--check", "--format", "json"]);
    assert_eq!(check.status, 1, "{}\n{}", check.stdout, check.stderr);
    assert_eq!(json(&check.stdout)["files"][0]["status"], "missing");

    // One base, one platform: one container reads every version both locks need.
    let locked = json(&fixture.ok(&["lock", "--format", "json"]).stdout);
    assert_eq!(locked["containers"], 1, "{locked:#}");
    let statuses: Vec<&str> = locked["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["created", "created"], "{locked:#}");
    let base_lock = fixture.lock("base");
    let entry = &base_lock.bases[&fixture.base];
    assert_eq!(entry.codename.as_deref(), Some("bookworm"));
    assert!(entry.digest.as_deref().unwrap().starts_with("sha256:"));
    assert_eq!(
        entry.packages.keys().collect::<Vec<_>>(),
        ["jq", "tini"],
        "{entry:?}"
    );
    // The child installs from the base at the root of its chain.
    let app_lock = fixture.lock("app");
    assert_eq!(
        app_lock.bases[&fixture.base]
            .packages
            .keys()
            .collect::<Vec<_>>(),
        ["less"]
    );
    fixture.ok(&["lock", "--check"]);
    // A second run changes nothing and starts no container.
    let again = json(&fixture.ok(&["lock", "--format", "json"]).stdout);
    assert_eq!(again["containers"], 0, "{again:#}");
    // --update reads every version again (one container), and nothing moved upstream.
    let updated = json(&fixture.ok(&["lock", "--update", "--format", "json"]).stdout);
    assert_eq!(updated["containers"], 1, "{updated:#}");
    assert_eq!(updated["files"][0]["status"], "unchanged", "{updated:#}");

    // generate pins the package arguments and the FROM, nothing else.
    fixture.ok(&["generate"]);
    let dockerfile = fixture.read("dist/base/1/Dockerfile");
    let digest = entry.digest.as_deref().unwrap();
    assert!(
        dockerfile.starts_with(&format!("FROM {}@{digest}\n", fixture.base)),
        "{dockerfile}"
    );
    for (package, version) in &entry.packages {
        assert!(
            dockerfile.contains(&format!(
                "install -y --no-install-recommends {package}={version} "
            )),
            "{dockerfile}"
        );
    }

    // The build installs exactly the locked versions.
    fixture.ok(&["build"]);
    let built = installed(&fixture.root().join("dist/app/2/linux-amd64/image.tar"));
    for (package, version) in entry
        .packages
        .iter()
        .chain(&app_lock.bases[&fixture.base].packages)
    {
        assert_eq!(built.get(package), Some(version), "{package}");
    }
    // syft reads the same versions.
    fixture.ok(&["sbom", "app"]);
    let sbom = json(&fixture.read("dist/app/2/linux-amd64/sbom.cdx.json"));
    for (package, version) in &app_lock.bases[&fixture.base].packages {
        assert!(
            sbom["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == *package && c["version"] == *version),
            "{package} {version} not in the SBOM"
        );
    }

    // The base moves upstream: outdated says the lock pins an old digest, and what an
    // update rebuilds (base, pinned to it, and app, built on base).
    let moved = im_testkit::push_debian_image(&fixture.base);
    assert_ne!(&moved, digest);
    let outdated = fixture.run(&["outdated", "--format", "json"]);
    assert_eq!(outdated.status, 1, "{}", outdated.stderr);
    let report = json(&outdated.stdout);
    assert_eq!(
        report["locked"][0]["reference"],
        fixture.base.as_str(),
        "{report:#}"
    );
    assert_eq!(report["locked"][0]["locked"], digest, "{report:#}");
    assert_eq!(report["locked"][0]["now"], moved.as_str(), "{report:#}");
    assert_eq!(
        report["locked"][0]["nodes"],
        serde_json::json!(["base:1", "app:2"]),
        "{report:#}"
    );
    assert!(
        outdated.stderr.contains("lock --update"),
        "{}",
        outdated.stderr
    );
    // One registry round for the bases the Dockerfiles name and the base the lock pins.
    assert_eq!(
        outdated.stderr.matches("Resolved ").count(),
        1,
        "{}",
        outdated.stderr
    );

    // A changed pin: base and its child rebuild, and the plan says which pin.
    let path = fixture.root().join("images/base/packages.lock");
    let text = fixture.read("images/base/packages.lock");
    let tini = &entry.packages["tini"];
    write(
        &path,
        &text.replace(&format!("tini: {tini}"), "tini: 0.19.0-1+b9"),
    );
    let plan = json(&fixture.ok(&["plan", "--format", "json"]).stdout);
    let reasons: BTreeMap<String, Vec<String>> = common::rebuilds(&plan)
        .into_iter()
        .map(|(node, reasons)| (node, reasons.iter().map(ToString::to_string).collect()))
        .collect();
    assert_eq!(
        reasons.keys().collect::<Vec<_>>(),
        ["app:2", "base:1"],
        "{plan:#}"
    );
    assert!(
        reasons["base:1"]
            .iter()
            .any(|r| r.contains("pin-changed") && r.contains("tini")),
        "{reasons:?}"
    );
    let text_plan = fixture.ok(&["plan"]);
    assert!(
        text_plan.stdout.contains("package pin changed: tini")
            || text_plan.stderr.contains("package pin changed: tini"),
        "{}\n{}",
        text_plan.stdout,
        text_plan.stderr
    );
    write(&path, &text);

    // A package the lock lacks: generate fails at the template line, lock --check says so.
    let template = fixture.read("images/base/Dockerfile.jinja2");
    write(
        &fixture.root().join("images/base/Dockerfile.jinja2"),
        &template.replace("['jq', 'tini']", "['jq', 'tini', 'curl']"),
    );
    let failed = fixture.run(&["generate"]);
    assert_eq!(failed.status, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("package `curl` is not locked"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("images/base/Dockerfile.jinja2:"),
        "{}",
        failed.stderr
    );
    let stale = fixture.run(&["lock", "--check"]);
    assert_eq!(stale.status, 1, "{}", stale.stderr);

    // A package the base's sources do not have: an error at the template line, no lock touched.
    write(
        &fixture.root().join("images/base/Dockerfile.jinja2"),
        &template.replace("['jq', 'tini']", "['jq', 'tini', 'no-such-package-im']"),
    );
    let missing = fixture.run(&["lock"]);
    assert_eq!(missing.status, 2, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("package `no-such-package-im` is not in the package sources"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("images/base/Dockerfile.jinja2:"),
        "{}",
        missing.stderr
    );
    assert_eq!(fixture.read("images/base/packages.lock"), text);
}

#[test]
fn a_lock_in_the_proof_of_concepts_format_is_applied() {
    // The proof of concept's own tree ships images/base/ubuntu/packages.lock; a lock written
    // by it (its _meta, a quoted numeric version, the base spelled in full, a key image-manager
    // does not read) pins the same way, with no registry.
    let digest = format!("sha256:{}", "2".repeat(64));
    let project = Project::new()
        .file(".image-manager.yml", "platforms: [linux/amd64]\n")
        .file("images/base/ubuntu/image.yml", "name: base\ntags: ['24.04']\n")
        .file(
            "images/base/ubuntu/Dockerfile.jinja2",
            "FROM ubuntu:{{ tag.name }}\nRUN apt-get update && apt-get install -y ca-certificates curl\n",
        )
        .file(
            "images/base/ubuntu/packages.lock",
            &format!(
                "_meta:\n  generated_at: '2025-06-01T12:00:00'\n  tool: image-manager lock\nbases:\n  docker.io/library/ubuntu:24.04:\n    digest: {digest}\n    codename: noble\n    platform: linux/amd64\n    packages:\n      ca-certificates: '20240203'\n      curl: 8.5.0-2ubuntu10.6\n"
            ),
        );
    let generated = project.ok(&["-v", "generate"]);
    assert!(
        generated.stderr.contains("unknown key `platform`"),
        "{}",
        generated.stderr
    );
    // The pinned `FROM` changes the node's external base in the graph built before: the
    // graph is built once.
    assert_eq!(
        generated.stderr.matches("dependency graph built").count(),
        1,
        "{}",
        generated.stderr
    );
    assert_eq!(
        project.read("dist/base/24.04/Dockerfile"),
        format!(
            "FROM ubuntu:24.04@{digest}\n\
             RUN apt-get update && apt-get install -y ca-certificates=20240203 curl=8.5.0-2ubuntu10.6\n"
        )
    );
    // A syntax error in the lock is reported at its line.
    let project = project.file(
        "images/base/ubuntu/packages.lock",
        "bases:\n  ubuntu:24.04:\n    packages: [curl\n",
    );
    let run = project.fails(&["generate"], 2);
    assert!(
        run.stderr.contains("images/base/ubuntu/packages.lock:"),
        "{}",
        run.stderr
    );
}
