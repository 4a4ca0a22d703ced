//! Where credentials come from: the registry settings the caller passes in (from
//! `.image-manager.yml`, already `${VAR}`-expanded), then Docker's `config.json` (`credHelpers`,
//! `auths`, `credsStore`). Credential helpers are run by validated name with the server on
//! stdin, never in argv; a helper that fails is an error, never a silent fallback.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::reference::{DOCKER_HUB, is_registry};
use crate::{Error, Secret};

/// How long a credential helper may take before it counts as broken.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a credential helper may print.
const HELPER_OUTPUT_LIMIT: u64 = 1024 * 1024;
/// The key Docker stores Docker Hub's credentials under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// One registry from the project settings.
#[derive(Clone, Debug, Default)]
pub struct RegistrySettings {
    /// `host[:port]`, optionally with `https://` or `http://` in front.
    pub url: String,
    /// The user name for basic auth or the token service.
    pub username: Option<String>,
    /// The password or access token that goes with `username`.
    pub password: Option<Secret>,
    /// Allow plain HTTP to this registry even though it is not on a loopback address.
    pub insecure: bool,
}

/// The scheme a registry URL asked for, if it named one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// Splits `https://host:port/v2/` into its scheme and its `host:port`, lowercased.
pub(crate) fn parse_registry_url(url: &str) -> Result<(Option<Scheme>, String), Error> {
    let invalid = |reason: &str| Error::InvalidRegistryUrl {
        url: url.chars().take(200).collect(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Some(Scheme::Https), rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Some(Scheme::Http), rest)
    } else if url.contains("://") {
        return Err(invalid("only http:// and https:// registries exist"));
    } else {
        (None, url)
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.contains('@') {
        return Err(invalid(
            "credentials do not belong in the URL; use username and password",
        ));
    }
    let host = host.to_ascii_lowercase();
    let host = match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        _ => host,
    };
    if !is_registry(&host) {
        return Err(invalid("expected host[:port]"));
    }
    Ok((scheme, host))
}

/// What to authenticate with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: anonymous access (or an anonymous token).
    #[default]
    Anonymous,
    /// A user name and password (or personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 refresh token (Docker's `identitytoken`), traded for access tokens.
    IdentityToken(Secret),
    /// A bearer token sent as is (Docker's `registrytoken`).
    BearerToken(Secret),
}

/// The parts of Docker's `config.json` that say how to log in to registries.
#[derive(Clone, Debug, Default)]
pub struct DockerConfig {
    path: PathBuf,
    auths: BTreeMap<String, Credential>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct RawAuth {
    auth: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
    identitytoken: Option<Secret>,
    registrytoken: Option<Secret>,
}

impl DockerConfig {
    /// Reads `dir/config.json` (the caller resolves `DOCKER_CONFIG` or `~/.docker`).
    /// A missing file is no configuration, not an error.
    pub fn load(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join("config.json");
        match fs_err::read(&path) {
            Ok(bytes) => Self::from_json(&path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// Parses the JSON of a `config.json`; `path` is only used in error messages.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<Self, Error> {
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|source| Error::DockerConfig {
                path: path.to_owned(),
                source,
            })?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let registry = config_key_registry(&key);
            let bad = || Error::DockerConfigAuth {
                path: path.to_owned(),
                registry: registry.clone(),
            };
            let credential = if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
                Credential::BearerToken(token)
            } else if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Credential::IdentityToken(token)
            } else if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.expose().trim())
                    .map_err(|_| bad())?;
                let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
                let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
                Credential::Basic {
                    username: username.to_owned(),
                    password: Secret::new(password),
                }
            } else if let (Some(username), Some(password)) = (entry.username, entry.password) {
                Credential::Basic { username, password }
            } else {
                continue;
            };
            auths.insert(registry, credential);
        }
        let cred_helpers = raw
            .cred_helpers
            .into_iter()
            .map(|(key, helper)| (config_key_registry(&key), helper))
            .collect();
        Ok(Self {
            path: path.to_owned(),
            auths,
            cred_helpers,
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
        })
    }
}

impl DockerConfig {
    /// The file this configuration was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The registry a `config.json` key names: `https://host:port/v1/` becomes `host:port`.
fn config_key_registry(key: &str) -> String {
    parse_registry_url(key).map_or_else(|_| key.to_ascii_lowercase(), |(_, host)| host)
}

/// A helper name is a plain word: letters, digits, `.`, `_`, `-`, starting with a letter or
/// digit. Anything else (a path, a space, an option) is refused.
pub(crate) fn valid_helper_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Resolves the credential for a registry, once per registry per client.
#[derive(Debug)]
pub(crate) struct CredentialStore {
    settings: HashMap<String, RegistrySettings>,
    docker: Option<DockerConfig>,
    helper_dir: Option<PathBuf>,
    cache: Mutex<HashMap<String, Credential>>,
}

impl CredentialStore {
    pub(crate) fn new(
        settings: &[RegistrySettings],
        docker: Option<DockerConfig>,
        helper_dir: Option<PathBuf>,
    ) -> Result<Self, Error> {
        let mut by_host = HashMap::new();
        for entry in settings {
            let (_, host) = parse_registry_url(&entry.url)?;
            by_host.insert(host, entry.clone());
        }
        Ok(Self {
            settings: by_host,
            docker,
            helper_dir,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn settings(&self, registry: &str) -> Option<&RegistrySettings> {
        self.settings.get(registry)
    }

    /// The credential for `registry` (`host[:port]`).
    pub(crate) async fn credential(&self, registry: &str) -> Result<Credential, Error> {
        if let Some(found) = self.cache.lock().expect("cache lock").get(registry) {
            return Ok(found.clone());
        }
        let credential = self.resolve(registry).await?;
        self.cache
            .lock()
            .expect("cache lock")
            .insert(registry.to_owned(), credential.clone());
        Ok(credential)
    }

    async fn resolve(&self, registry: &str) -> Result<Credential, Error> {
        if let Some(settings) = self.settings.get(registry)
            && let Some(username) = settings.username.as_ref().filter(|u| !u.is_empty())
        {
            return Ok(Credential::Basic {
                username: username.clone(),
                password: settings.password.clone().unwrap_or_else(|| Secret::new("")),
            });
        }
        let Some(docker) = &self.docker else {
            return Ok(Credential::Anonymous);
        };
        if let Some(helper) = docker.cred_helpers.get(registry) {
            return self.run_helper(helper, registry).await;
        }
        if let Some(credential) = docker.auths.get(registry) {
            return Ok(credential.clone());
        }
        if let Some(store) = &docker.creds_store {
            return self.run_helper(store, registry).await;
        }
        Ok(Credential::Anonymous)
    }

    async fn run_helper(&self, helper: &str, registry: &str) -> Result<Credential, Error> {
        if !valid_helper_name(helper) {
            return Err(Error::InvalidHelperName {
                name: helper.chars().take(100).collect(),
                registry: registry.to_owned(),
            });
        }
        let program = match &self.helper_dir {
            Some(dir) => dir
                .join(format!("docker-credential-{helper}"))
                .into_os_string(),
            None => format!("docker-credential-{helper}").into(),
        };
        let server_url = if registry == DOCKER_HUB {
            DOCKER_HUB_KEY
        } else {
            registry
        };
        let failed = |status: String, stderr: &[u8]| Error::CredentialHelper {
            helper: helper.to_owned(),
            registry: registry.to_owned(),
            status,
            stderr_tail: tail(stderr),
        };
        let mut child = tokio::process::Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("could not start: {e}"), b""))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let run = async {
            // A helper that exits without reading its input is judged by its exit status.
            let _ = stdin.write_all(server_url.as_bytes()).await;
            drop(stdin);
            let mut out = Vec::new();
            let mut err = Vec::new();
            let mut limited_out = (&mut stdout).take(HELPER_OUTPUT_LIMIT);
            let mut limited_err = (&mut stderr).take(HELPER_OUTPUT_LIMIT);
            let (read_out, read_err, status) = tokio::join!(
                limited_out.read_to_end(&mut out),
                limited_err.read_to_end(&mut err),
                child.wait()
            );
            (read_out.and(read_err).and(status), out, err)
        };
        let Ok((status, out, err)) = tokio::time::timeout(HELPER_TIMEOUT, run).await else {
            return Err(failed(
                format!("no answer in {}s", HELPER_TIMEOUT.as_secs()),
                b"",
            ));
        };
        let status = status.map_err(|e| failed(format!("I/O error: {e}"), b""))?;
        if !status.success() {
            let not_found = |text: &[u8]| {
                String::from_utf8_lossy(text)
                    .to_ascii_lowercase()
                    .contains("credentials not found")
            };
            if not_found(&out) || not_found(&err) {
                return Ok(Credential::Anonymous);
            }
            return Err(failed(status.to_string(), &err));
        }
        let answer: HelperAnswer = serde_json::from_slice(&out)
            .map_err(|_| failed("printed something that is not credential JSON".into(), &err))?;
        let Some(secret) = answer.secret.filter(|s| !s.is_empty()) else {
            return Ok(Credential::Anonymous);
        };
        Ok(if answer.username == "<token>" {
            Credential::IdentityToken(secret)
        } else {
            Credential::Basic {
                username: answer.username,
                password: secret,
            }
        })
    }
}

/// What `docker-credential-* get` prints.
#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: Option<Secret>,
}

/// The last three lines of a helper's stderr, at most 300 characters.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let joined = lines[start..].join(" | ");
    joined.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DockerConfig {
        DockerConfig::from_json(Path::new("/x/config.json"), json.as_bytes()).unwrap()
    }

    #[test]
    fn registry_urls_normalise_to_host_and_port() {
        assert_eq!(
            parse_registry_url("https://Reg.Example.com:5000/v2/").unwrap(),
            (Some(Scheme::Https), "reg.example.com:5000".to_owned())
        );
        assert_eq!(
            parse_registry_url("127.0.0.1:5050").unwrap(),
            (None, "127.0.0.1:5050".to_owned())
        );
        assert_eq!(parse_registry_url(DOCKER_HUB_KEY).unwrap().1, DOCKER_HUB);
        assert!(parse_registry_url("ftp://x").is_err());
        assert!(parse_registry_url("https://user:pw@host").is_err());
    }

    #[test]
    fn docker_config_auth_entries_decode() {
        let c = config(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
                "reg.io":{"identitytoken":"tok"},"empty.io":{}},
                "credHelpers":{"gcr.io":"gcloud"},"credsStore":"desktop"}"#,
        );
        assert_eq!(
            c.auths.get(DOCKER_HUB),
            Some(&Credential::Basic {
                username: "user".into(),
                password: Secret::new("pa:ss"),
            })
        );
        assert_eq!(
            c.auths.get("reg.io"),
            Some(&Credential::IdentityToken(Secret::new("tok")))
        );
        assert!(!c.auths.contains_key("empty.io"));
        assert_eq!(
            c.cred_helpers.get("gcr.io").map(String::as_str),
            Some("gcloud")
        );
        assert_eq!(c.creds_store.as_deref(), Some("desktop"));
    }

    #[test]
    fn bad_auth_entry_names_the_registry_not_the_value() {
        let err = DockerConfig::from_json(
            Path::new("/x/config.json"),
            br#"{"auths":{"reg.io":{"auth":"bm9jb2xvbg=="}}}"#,
        )
        .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("reg.io"), "{shown}");
        assert!(!shown.contains("bm9jb2xvbg"), "{shown}");
    }

    #[test]
    fn helper_names_are_plain_words() {
        for good in [
            "desktop",
            "ecr-login",
            "gcloud",
            "pass",
            "osxkeychain",
            "a.b_c",
        ] {
            assert!(valid_helper_name(good), "{good}");
        }
        for bad in ["", "../evil", "a b", "-x", "a/b", "x;rm", &"a".repeat(65)] {
            assert!(!valid_helper_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn settings_come_before_the_docker_config() {
        let store = CredentialStore::new(
            &[RegistrySettings {
                url: "http://127.0.0.1:5050".into(),
                username: Some("ci".into()),
                password: Some(Secret::new("pw")),
                insecure: false,
            }],
            Some(config(r#"{"auths":{"127.0.0.1:5050":{"auth":"dTpw"}}}"#)),
            None,
        )
        .unwrap();
        assert_eq!(
            store.credential("127.0.0.1:5050").await.unwrap(),
            Credential::Basic {
                username: "ci".into(),
                password: Secret::new("pw"),
            }
        );
        assert_eq!(
            store.credential("other:1").await.unwrap(),
            Credential::Anonymous
        );
    }

    #[tokio::test]
    async fn an_invalid_helper_name_fails_closed() {
        let store = CredentialStore::new(
            &[],
            Some(config(
                r#"{"auths":{"reg.io":{"auth":"dTpw"}},"credHelpers":{"reg.io":"../../bin/sh"}}"#,
            )),
            None,
        )
        .unwrap();
        assert!(matches!(
            store.credential("reg.io").await,
            Err(Error::InvalidHelperName { .. })
        ));
    }
}
