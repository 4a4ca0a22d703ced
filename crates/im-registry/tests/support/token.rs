//! A real distribution registry behind token authentication, with a small token service
//! written here: it checks basic credentials and issues ES256 JWTs (signed with a key whose
//! self-signed certificate is the registry's `rootcertbundle`) granting exactly the scopes
//! asked for.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const ISSUER: &str = "im-test-issuer";
const SERVICE: &str = "im-test-registry";

pub struct TokenRegistry {
    child: Child,
    pub addr: SocketAddr,
    pub token_requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TokenRegistry {
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Starts the token service (in this runtime) and the registry process.
    pub async fn start(user: &str, password: &str) -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: scripts/setup should have installed docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["im-test-issuer".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let bundle = dir.path().join("root.pem");
        fs_err::write(&bundle, cert.pem()).unwrap();
        let signer = Arc::new(
            ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.serialize_der(),
                &ring::rand::SystemRandom::new(),
            )
            .unwrap(),
        );
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token_addr = listener.local_addr().unwrap();
        let token_requests = Arc::new(Mutex::new(Vec::new()));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let log = Arc::clone(&token_requests);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (signer, x5c, expected, log) = (
                    Arc::clone(&signer),
                    x5c.clone(),
                    expected.clone(),
                    Arc::clone(&log),
                );
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let response = issue(&req, &signer, &x5c, &expected, &log);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let json = |p: &Path| serde_json::to_string(&p.to_string_lossy()).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: im-test-not-a-secret\nauth:\n  token:\n    realm: http://{token_addr}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n",
            storage = json(&dir.path().join("storage")),
            bundle = json(&bundle),
        );
        let config_path = dir.path().join("config.yml");
        fs_err::write(&config_path, config).unwrap();
        let log_file = fs_err::File::create(dir.path().join("registry.log")).unwrap();
        let (log_file, _) = log_file.into_parts();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while im_testkit::http_status(addr, "/v2/", None).ok() != Some(401) {
            assert!(
                Instant::now() < deadline,
                "the token-auth registry did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            addr,
            token_requests,
            _dir: dir,
        }
    }
}

fn issue(
    req: &Request<hyper::body::Incoming>,
    signer: &ring::signature::EcdsaKeyPair,
    x5c: &str,
    expected: &str,
    log: &Mutex<Vec<String>>,
) -> Response<Full<Bytes>> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    log.lock().unwrap().push(query.clone());
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected);
    if !authorized {
        let mut response = Response::new(Full::new(Bytes::from_static(
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
        )));
        *response.status_mut() = hyper::StatusCode::UNAUTHORIZED;
        return response;
    }
    let access: Vec<serde_json::Value> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "scope")
        .filter_map(|(_, scope)| {
            let rest = scope.strip_prefix("repository:")?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({"type": "repository", "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "ci", "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", fastrand::u64(..)), "access": access,
    });
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let signature = signer
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    let token = format!(
        "{signing_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.as_ref())
    );
    let body = serde_json::json!({"token": token, "expires_in": 300});
    Response::new(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
}
