//! Canary secrets: plant recognisable passwords and tokens in every credential source, run
//! successful and failing operations against a real registry (htpasswd) and a bearer-token
//! fake, and grep everything the library produced — errors (Display and Debug), results,
//! configuration Debug, every tracing event down to TRACE, and the credential helper's
//! argv — for any of them.

mod support;

use std::io::Write as _;

use base64::Engine as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use im_registry::ops::copy::{CopyOptions, copy_image};
use im_registry::ops::inspect::inspect;
use im_registry::ops::push::{PushOptions, push_image};
use im_registry::{ClientConfig, DockerConfig, LocalImage, Reference, RegistrySettings, Secret};
use im_testkit::Registry;
use support::fake::{Auth, FakeRegistry};
use support::images::{ImageSpec, write_image};
use support::{client_with, fast_retry};

const CANARY_PASSWORD: &str = "CANARY-pw-4f1d2a";
const CANARY_HELPER_SECRET: &str = "CANARY-helper-9b7e11";
const CANARY_TOKEN: &str = "CANARY-token-c0ffee";
const CANARY_TOKEN_PASSWORD: &str = "CANARY-tokpw-51a2";
const CANARIES: [&str; 4] = [
    CANARY_PASSWORD,
    CANARY_HELPER_SECRET,
    CANARY_TOKEN,
    CANARY_TOKEN_PASSWORD,
];

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} leaks {canary}:\n{text}");
    }
    // Basic auth headers carry base64 of user:password.
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("ci:{CANARY_PASSWORD}"));
    assert!(
        !text.contains(&encoded),
        "{what} leaks the encoded password"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_reaches_errors_results_logs_or_argv() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);

    let registry = Registry::start_with_htpasswd("ci", CANARY_PASSWORD);
    let fake = FakeRegistry::start().await;
    fake.set_auth(Auth::Bearer {
        realm: format!("http://{}/token", fake.host()),
        token: CANARY_TOKEN.into(),
        user: "tok".into(),
        password: CANARY_TOKEN_PASSWORD.into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let written = write_image(
        dir.path(),
        &ImageSpec::new("linux/amd64", 2, 4_000, 70).label("k", "v"),
    );
    let image = LocalImage::open(&written.archive).unwrap();
    let helpers = dir.path().join("helpers");
    fs_err::create_dir_all(&helpers).unwrap();
    let argv_log = dir.path().join("argv");
    write_helper(
        &helpers,
        "canary",
        &format!(
            "#!/bin/sh\necho \"$0 $@\" >> {log}\nread server\nprintf '{{\"Username\":\"ci\",\"Secret\":\"{CANARY_HELPER_SECRET}\"}}'\n",
            log = argv_log.display()
        ),
    );
    // A broken helper that prints a secret on stdout before failing.
    write_helper(
        &helpers,
        "leaky",
        &format!(
            "#!/bin/sh\necho \"$0 $@\" >> {log}\nprintf '{{\"Secret\":\"{CANARY_HELPER_SECRET}\"}}'\necho 'helper broke' >&2\nexit 2\n",
            log = argv_log.display()
        ),
    );
    let mut shown = Vec::new();

    // Settings credentials: a successful push, inspect and copy.
    let settings = vec![
        RegistrySettings {
            url: registry.url(),
            username: Some("ci".into()),
            password: Some(Secret::new(CANARY_PASSWORD)),
            insecure: false,
        },
        RegistrySettings {
            url: fake.host(),
            username: Some("tok".into()),
            password: Some(Secret::new(CANARY_TOKEN_PASSWORD)),
            insecure: false,
        },
    ];
    let config = ClientConfig {
        registries: settings.clone(),
        retry: fast_retry(),
        ..ClientConfig::default()
    };
    shown.push(format!("{config:?}"));
    let client = im_registry::Client::new(config).unwrap();
    let target: Reference = format!("{}/app:1", registry.host_port()).parse().unwrap();
    let options = PushOptions {
        extra_tags: vec!["latest".into()],
        ..PushOptions::default()
    };
    shown.push(format!(
        "{:?}",
        push_image(&client, &image, &target, &options)
            .await
            .unwrap()
    ));
    shown.push(format!("{:?}", inspect(&client, &target).await.unwrap()));
    let fake_target: Reference = format!("{}/app:1", fake.host()).parse().unwrap();
    shown.push(format!(
        "{:?}",
        copy_image(&client, &target, &fake_target, &CopyOptions::default())
            .await
            .unwrap()
    ));
    shown.push(format!("{client:?}"));

    // Wrong password, helper credentials, a broken helper, a refused token.
    let wrong = client_with(|c| {
        c.registries = vec![RegistrySettings {
            url: registry.url(),
            username: Some("ci".into()),
            password: Some(Secret::new(format!("{CANARY_PASSWORD}-wrong"))),
            insecure: false,
        }];
    });
    let err = wrong.get_manifest(&target).await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    let host = registry.host_port();
    for helper in ["canary", "leaky"] {
        let docker = DockerConfig::from_json(
            Path::new("config.json"),
            format!(r#"{{"credHelpers":{{"{host}":"{helper}"}}}}"#).as_bytes(),
        )
        .unwrap();
        shown.push(format!("{docker:?}"));
        let with_helper = client_with(|c| {
            c.docker_config = Some(docker);
            c.credential_helper_dir = Some(helpers.clone());
        });
        match with_helper.get_manifest(&target).await {
            Ok(doc) => shown.push(format!("{doc:?}")),
            Err(err) => shown.push(format!("{err} {err:?}")),
        }
    }
    let docker = DockerConfig::from_json(
        Path::new("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{CANARY_TOKEN}"}}}}}}"#,
            fake.host()
        )
        .as_bytes(),
    )
    .unwrap();
    shown.push(format!("{docker:?}"));
    let refused = client_with(|c| c.docker_config = Some(docker));
    let err = refused.get_manifest(&fake_target).await.unwrap_err();
    shown.push(format!("{err} {err:?}"));

    drop(guard);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("DEBUG") || logs.contains("TRACE"),
        "nothing was logged; the test would prove nothing"
    );
    assert_clean("tracing output", &logs);
    for (i, text) in shown.iter().enumerate() {
        assert_clean(&format!("output #{i}"), text);
    }
    let argv = fs_err::read_to_string(&argv_log).unwrap();
    assert!(argv.lines().all(|l| l.ends_with(" get")), "{argv}");
    assert_clean("helper argv", &argv);
    std::io::stderr().flush().unwrap();
}

fn write_helper(dir: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(format!("docker-credential-{name}"));
    fs_err::write(&path, script).unwrap();
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
