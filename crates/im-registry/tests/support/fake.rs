//! An in-process fake registry for fault injection only: it speaks enough of the
//! distribution API (blobs, uploads, manifests, tags, bearer/basic auth) to let the client
//! run whole operations, and it misbehaves on demand in the ways a real registry will not
//! (429 with Retry-After, 500s, dropped connections mid-body, corrupted bodies, wrong
//! Content-Type, redirects to dangerous addresses, oversized manifests).

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};

type Body = BoxBody<Bytes, std::io::Error>;

/// A fault: what to do to the next `times` requests matching `method` and `path_contains`.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: &'static str,
    pub path_contains: String,
    pub times: usize,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub enum Action {
    /// Answer with this status (and optional Retry-After) instead of handling.
    Status(u16, Option<String>),
    /// Answer with this status and an error body listing these codes, in order.
    Errors(u16, Vec<&'static str>),
    /// Handle normally, but cut the response body after this many bytes.
    CutResponse(usize),
    /// Read this many bytes of the request body (kept in the upload), then drop the connection.
    CutRequest(usize),
    /// Handle normally, but flip a byte of the response body.
    Corrupt,
    /// Handle normally, but send this Content-Type.
    ContentType(String),
    /// Redirect (307) to this URL.
    Redirect(String),
    /// Answer 200 with a body of this many bytes (no digest header).
    Huge(usize),
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// Bearer with the token service at `realm` (served by this fake at `/token` when it
    /// points here); the service hands out `token` for `user`/`password` (or anonymously
    /// when `user` is empty).
    Bearer {
        realm: String,
        token: String,
        user: String,
        password: String,
    },
}

/// One request as seen by the fake.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub transfer_encoding: Option<String>,
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    blobs: HashMap<String, Bytes>,
    links: std::collections::HashSet<(String, String)>,
    manifests: HashMap<(String, String), (Bytes, String)>,
    uploads: HashMap<String, Vec<u8>>,
    next_upload: usize,
    faults: Vec<Fault>,
    seen: Vec<Seen>,
    auth: Option<Auth>,
}

#[derive(Clone)]
pub struct FakeRegistry {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    /// Starts on 127.0.0.1 with a free port, inside the current tokio runtime.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(bind: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let fake = Self { addr, state };
        let server = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let server = server.clone();
                        async move { server.handle(req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        fake
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_auth(&self, auth: Auth) {
        self.state.lock().unwrap().auth = Some(auth);
    }

    pub fn fault(&self, method: &'static str, path_contains: &str, times: usize, action: Action) {
        self.state.lock().unwrap().faults.push(Fault {
            method,
            path_contains: path_contains.to_owned(),
            times,
            action,
        });
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path.contains(path_contains))
            .count()
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.state.lock().unwrap().blobs.contains_key(digest)
    }

    /// Stores a blob in repository `app`.
    pub fn put_blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let mut state = self.state.lock().unwrap();
        state
            .blobs
            .insert(digest.clone(), Bytes::copy_from_slice(bytes));
        state.links.insert(("app".to_owned(), digest.clone()));
        digest
    }

    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> String {
        let digest = sha256(bytes);
        let mut state = self.state.lock().unwrap();
        let value = (Bytes::copy_from_slice(bytes), content_type.to_owned());
        state
            .manifests
            .insert((repo.to_owned(), digest.clone()), value.clone());
        state
            .manifests
            .insert((repo.to_owned(), reference.to_owned()), value);
        digest
    }

    pub fn manifest(&self, repo: &str, reference: &str) -> Option<Bytes> {
        self.state
            .lock()
            .unwrap()
            .manifests
            .get(&(repo.to_owned(), reference.to_owned()))
            .map(|(b, _)| b.clone())
    }

    pub fn tags(&self, repo: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let mut tags: Vec<String> = state
            .manifests
            .keys()
            .filter(|(r, reference)| r == repo && !reference.starts_with("sha256:"))
            .map(|(_, t)| t.clone())
            .collect();
        tags.sort();
        tags
    }

    fn take_fault(&self, method: &str, path: &str) -> Option<Action> {
        let mut state = self.state.lock().unwrap();
        let fault = state
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method && path.contains(&f.path_contains))?;
        fault.times -= 1;
        Some(fault.action.clone())
    }

    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let authorization = header("authorization");
        self.state.lock().unwrap().seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            authorization: authorization.clone(),
            transfer_encoding: header("transfer-encoding"),
            range: header("range"),
        });
        let fault = self.take_fault(&method, &path);
        match &fault {
            Some(Action::Status(status, retry_after)) => {
                let mut response = respond(*status, error_body("FAULT", "injected"));
                if let Some(value) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", value.parse().unwrap());
                }
                return Ok(response);
            }
            Some(Action::Errors(status, codes)) => {
                let errors: Vec<serde_json::Value> = codes
                    .iter()
                    .map(|code| serde_json::json!({"code": code, "message": "injected"}))
                    .collect();
                let body = serde_json::to_vec(&serde_json::json!({ "errors": errors })).unwrap();
                return Ok(respond(*status, Bytes::from(body)));
            }
            Some(Action::Redirect(location)) => {
                let mut response = respond(307, Bytes::new());
                response
                    .headers_mut()
                    .insert("location", location.parse().unwrap());
                return Ok(response);
            }
            Some(Action::Huge(size)) => {
                let mut response = respond(200, Bytes::from(vec![b' '; *size]));
                response
                    .headers_mut()
                    .insert("content-type", super::images::OCI_MANIFEST.parse().unwrap());
                return Ok(response);
            }
            _ => {}
        }
        if path == "/token" {
            return Ok(self.token(authorization.as_deref(), &query));
        }
        if let Some(denied) = self.check_auth(&path, authorization.as_deref()) {
            return Ok(denied);
        }
        let range = header("range");
        let content_range = header("content-range");
        let body = match &fault {
            Some(Action::CutRequest(limit)) => {
                // Keep what arrives up to the limit, then drop the connection.
                let mut kept = Vec::new();
                let mut incoming = req.into_body();
                while kept.len() < *limit {
                    match incoming.frame().await {
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                kept.extend_from_slice(&data);
                            }
                        }
                        _ => break,
                    }
                }
                kept.truncate(*limit);
                if let Some(id) = upload_id(&path) {
                    self.state
                        .lock()
                        .unwrap()
                        .uploads
                        .entry(id)
                        .or_default()
                        .extend_from_slice(&kept);
                }
                return Err(std::io::Error::other(
                    "injected: connection dropped mid-upload",
                ));
            }
            _ => req
                .into_body()
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes(),
        };
        let mut response = self.route(
            &method,
            &path,
            &query,
            range.as_deref(),
            content_range.as_deref(),
            body,
        );
        match fault {
            Some(Action::CutResponse(after)) => {
                let full = response.body_mut().collect().await.unwrap().to_bytes();
                let part = full.slice(..after.min(full.len()));
                let first: Result<Frame<Bytes>, std::io::Error> = Ok(Frame::data(part));
                let frames =
                    futures_util::stream::iter([first]).chain(futures_util::stream::once(async {
                        // Let the first part reach the client before the connection drops.
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        Err(std::io::Error::other(
                            "injected: connection dropped mid-download",
                        ))
                    }));
                let (parts, _) = response.into_parts();
                let body = StreamBody::new(frames);
                let mut cut = Response::from_parts(parts, http_body_util::BodyExt::boxed(body));
                cut.headers_mut()
                    .insert("content-length", full.len().to_string().parse().unwrap());
                Ok(cut)
            }
            Some(Action::Corrupt) => {
                let full = response.body_mut().collect().await.unwrap().to_bytes();
                let mut bytes = full.to_vec();
                if let Some(first) = bytes.iter_mut().find(|b| b.is_ascii_alphanumeric()) {
                    *first = if *first == b'a' { b'b' } else { b'a' };
                }
                let (parts, _) = response.into_parts();
                Ok(Response::from_parts(parts, full_body(Bytes::from(bytes))))
            }
            Some(Action::ContentType(content_type)) => {
                response
                    .headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
                Ok(response)
            }
            _ => Ok(response),
        }
    }

    fn check_auth(&self, path: &str, authorization: Option<&str>) -> Option<Response<Body>> {
        let auth = self.state.lock().unwrap().auth.clone()?;
        match auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                let expected = format!("Basic {}", b64(&format!("{user}:{password}")));
                if authorization == Some(expected.as_str()) {
                    return None;
                }
                let mut response =
                    respond(401, error_body("UNAUTHORIZED", "authentication required"));
                response
                    .headers_mut()
                    .insert("www-authenticate", "Basic realm=\"fake\"".parse().unwrap());
                Some(response)
            }
            Auth::Bearer { realm, token, .. } => {
                if authorization == Some(format!("Bearer {token}").as_str()) {
                    return None;
                }
                let repo = repo_of(path).unwrap_or_default();
                let challenge = if repo.is_empty() {
                    format!("Bearer realm=\"{realm}\",service=\"fake\"")
                } else {
                    format!(
                        "Bearer realm=\"{realm}\",service=\"fake\",scope=\"repository:{repo}:pull,push\""
                    )
                };
                let mut response =
                    respond(401, error_body("UNAUTHORIZED", "authentication required"));
                response
                    .headers_mut()
                    .insert("www-authenticate", challenge.parse().unwrap());
                Some(response)
            }
        }
    }

    fn token(&self, authorization: Option<&str>, _query: &str) -> Response<Body> {
        let auth = self.state.lock().unwrap().auth.clone();
        let Some(Auth::Bearer {
            token,
            user,
            password,
            ..
        }) = auth
        else {
            return respond(404, Bytes::new());
        };
        if !user.is_empty() {
            let expected = format!("Basic {}", b64(&format!("{user}:{password}")));
            if authorization != Some(expected.as_str()) {
                return respond(401, error_body("UNAUTHORIZED", "bad credentials"));
            }
        }
        let body = serde_json::json!({"token": token, "expires_in": 300});
        respond(200, Bytes::from(serde_json::to_vec(&body).unwrap()))
    }

    fn route(
        &self,
        method: &str,
        path: &str,
        query: &str,
        range: Option<&str>,
        content_range: Option<&str>,
        body: Bytes,
    ) -> Response<Body> {
        let mut state = self.state.lock().unwrap();
        if path == "/v2/" {
            return respond(200, Bytes::from_static(b"{}"));
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return respond(404, Bytes::new());
        };
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if let Some((repo, tail)) = split_api(rest, "/blobs/uploads/") {
            let id = tail.trim_end_matches('/');
            match (method, id) {
                ("POST", "") => {
                    if let (Some(digest), Some(from)) = (params.get("mount"), params.get("from"))
                        && state.links.contains(&(from.clone(), digest.clone()))
                    {
                        state.links.insert((repo.to_owned(), digest.clone()));
                        let mut r = respond(201, Bytes::new());
                        r.headers_mut()
                            .insert("docker-content-digest", digest.parse().unwrap());
                        return r;
                    }
                    state.next_upload += 1;
                    let id = format!("u{}", state.next_upload);
                    state.uploads.insert(id.clone(), Vec::new());
                    let mut r = respond(202, Bytes::new());
                    r.headers_mut().insert(
                        "location",
                        format!("/v2/{repo}/blobs/uploads/{id}?_state=opaque")
                            .parse()
                            .unwrap(),
                    );
                    r.headers_mut().insert("range", "0-0".parse().unwrap());
                    return r;
                }
                ("PATCH", id) => {
                    let Some(upload) = state.uploads.get_mut(id) else {
                        return respond(404, error_body("BLOB_UPLOAD_UNKNOWN", "no such upload"));
                    };
                    if let Some(cr) = content_range {
                        let start: usize = cr.split('-').next().unwrap_or("0").parse().unwrap_or(0);
                        if start != upload.len() {
                            return respond(416, error_body("BLOB_UPLOAD_INVALID", "wrong offset"));
                        }
                    }
                    upload.extend_from_slice(&body);
                    let len = upload.len();
                    let mut r = respond(202, Bytes::new());
                    r.headers_mut().insert(
                        "location",
                        format!("/v2/{repo}/blobs/uploads/{id}?_state=opaque")
                            .parse()
                            .unwrap(),
                    );
                    r.headers_mut().insert(
                        "range",
                        format!("0-{}", len.saturating_sub(1)).parse().unwrap(),
                    );
                    return r;
                }
                ("GET", id) => {
                    let Some(upload) = state.uploads.get(id) else {
                        return respond(404, error_body("BLOB_UPLOAD_UNKNOWN", "no such upload"));
                    };
                    let mut r = respond(204, Bytes::new());
                    r.headers_mut().insert(
                        "location",
                        format!("/v2/{repo}/blobs/uploads/{id}?_state=opaque")
                            .parse()
                            .unwrap(),
                    );
                    r.headers_mut().insert(
                        "range",
                        format!("0-{}", upload.len().saturating_sub(1))
                            .parse()
                            .unwrap(),
                    );
                    return r;
                }
                ("PUT", id) => {
                    let Some(mut upload) = state.uploads.remove(id) else {
                        return respond(404, error_body("BLOB_UPLOAD_UNKNOWN", "no such upload"));
                    };
                    upload.extend_from_slice(&body);
                    let digest = params.get("digest").cloned().unwrap_or_default();
                    if sha256(&upload) != digest {
                        return respond(
                            400,
                            error_body("DIGEST_INVALID", "digest did not match content"),
                        );
                    }
                    state.blobs.insert(digest.clone(), Bytes::from(upload));
                    state.links.insert((repo.to_owned(), digest.clone()));
                    let mut r = respond(201, Bytes::new());
                    r.headers_mut()
                        .insert("docker-content-digest", digest.parse().unwrap());
                    return r;
                }
                _ => return respond(405, Bytes::new()),
            }
        }
        if let Some((repo, digest)) = split_api(rest, "/blobs/") {
            let linked = state.links.contains(&(repo.to_owned(), digest.to_owned()));
            let Some(blob) = state.blobs.get(digest).cloned().filter(|_| linked) else {
                return respond(404, error_body("BLOB_UNKNOWN", "blob unknown"));
            };
            let total = blob.len();
            let (status, body, content_range) = match range
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|s| s.parse::<usize>().ok())
            {
                Some(start) if start < total => (
                    206,
                    blob.slice(start..),
                    Some(format!("bytes {start}-{}/{total}", total - 1)),
                ),
                _ => (200, blob, None),
            };
            let len = body.len();
            let mut r = respond(status, if method == "HEAD" { Bytes::new() } else { body });
            r.headers_mut()
                .insert("content-length", len.to_string().parse().unwrap());
            r.headers_mut()
                .insert("docker-content-digest", digest.parse().unwrap());
            if let Some(cr) = content_range {
                r.headers_mut().insert("content-range", cr.parse().unwrap());
            }
            return r;
        }
        if let Some((repo, reference)) = split_api(rest, "/manifests/") {
            let key = (repo.to_owned(), reference.to_owned());
            match method {
                "GET" | "HEAD" => {
                    let Some((bytes, content_type)) = state.manifests.get(&key).cloned() else {
                        return respond(404, error_body("MANIFEST_UNKNOWN", "manifest unknown"));
                    };
                    let len = bytes.len();
                    let mut r = respond(
                        200,
                        if method == "HEAD" {
                            Bytes::new()
                        } else {
                            bytes.clone()
                        },
                    );
                    r.headers_mut()
                        .insert("content-type", content_type.parse().unwrap());
                    r.headers_mut()
                        .insert("content-length", len.to_string().parse().unwrap());
                    r.headers_mut()
                        .insert("docker-content-digest", sha256(&bytes).parse().unwrap());
                    return r;
                }
                "PUT" => {
                    let digest = sha256(&body);
                    let value: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or_default();
                    // Like a real registry: every referenced blob and child must exist.
                    let mut missing = Vec::new();
                    for d in value["layers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(std::iter::once(&value["config"]))
                    {
                        if let Some(d) = d["digest"].as_str()
                            && !state.links.contains(&(repo.to_owned(), d.to_owned()))
                        {
                            missing.push(d.to_owned());
                        }
                    }
                    for m in value["manifests"].as_array().into_iter().flatten() {
                        if let Some(d) = m["digest"].as_str()
                            && !state
                                .manifests
                                .contains_key(&(repo.to_owned(), d.to_owned()))
                        {
                            missing.push(d.to_owned());
                        }
                    }
                    if !missing.is_empty() {
                        return respond(
                            400,
                            error_body("MANIFEST_BLOB_UNKNOWN", &missing.join(",")),
                        );
                    }
                    let content_type = value["mediaType"]
                        .as_str()
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    state.manifests.insert(
                        (repo.to_owned(), digest.clone()),
                        (body.clone(), content_type.clone()),
                    );
                    state.manifests.insert(key, (body, content_type));
                    let mut r = respond(201, Bytes::new());
                    r.headers_mut()
                        .insert("docker-content-digest", digest.parse().unwrap());
                    return r;
                }
                "DELETE" => {
                    state.manifests.remove(&key);
                    return respond(202, Bytes::new());
                }
                _ => return respond(405, Bytes::new()),
            }
        }
        if let Some((repo, _)) = split_api(rest, "/tags/list") {
            let mut tags: Vec<String> = state
                .manifests
                .keys()
                .filter(|(r, reference)| r == repo && !reference.starts_with("sha256:"))
                .map(|(_, t)| t.clone())
                .collect();
            tags.sort();
            let body = serde_json::json!({"name": repo, "tags": tags});
            return respond(200, Bytes::from(serde_json::to_vec(&body).unwrap()));
        }
        respond(404, Bytes::new())
    }
}

fn split_api<'a>(rest: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let at = rest.find(marker)?;
    Some((&rest[..at], &rest[at + marker.len()..]))
}

fn repo_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    for marker in ["/blobs/", "/manifests/", "/tags/"] {
        if let Some((repo, _)) = split_api(rest, marker) {
            return Some(repo.to_owned());
        }
    }
    None
}

fn upload_id(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let (_, id) = split_api(rest, "/blobs/uploads/")?;
    (!id.is_empty()).then(|| id.to_owned())
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn error_body(code: &str, message: &str) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({"errors": [{"code": code, "message": message}]}))
            .unwrap(),
    )
}

fn full_body(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn respond(status: u16, body: Bytes) -> Response<Body> {
    let mut response = Response::new(full_body(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}
