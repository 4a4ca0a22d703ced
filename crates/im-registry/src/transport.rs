//! `Transport`: one HTTP/1.1 keep-alive client (reqwest over rustls) plus everything every
//! registry request needs: choosing `https` or (loopback / insecure only) `http`, the
//! `/v2/` probe, basic and bearer authentication with one re-authentication on 401, manual
//! redirects that drop `Authorization` when they leave the registry's origin and refuse
//! unsafe targets, bounded retries of transient failures, capped body reads and cancellation.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use im_process::CancelToken;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::{Host, Url};

use crate::auth::{AuthMode, AuthState};
use crate::credentials::{Credential, CredentialStore, Scheme, parse_registry_url};
use crate::error::TargetKind;
use crate::guard::{GuardedResolver, NetworkGuard};
use crate::reference::DOCKER_HUB;
use crate::retry::{RetryPolicy, parse_retry_after, retryable_status};
use crate::{Error, Limits};

mod authenticate;
mod request;

use authenticate::challenges_of;

pub use request::BlobSource;
pub(crate) use request::{
    Endpoint, Fetched, Reply, Request, names_error_code, parse_error_body, status_error,
};

/// The HTTP machinery shared by every operation of a client.
pub(crate) struct Transport {
    http: reqwest::Client,
    guard: Arc<NetworkGuard>,
    pub(crate) retry: RetryPolicy,
    pub(crate) limits: Limits,
    pub(crate) cancel: CancelToken,
    credentials: CredentialStore,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
}

/// Settings the transport is built from.
pub(crate) struct TransportSettings {
    pub(crate) credentials: CredentialStore,
    pub(crate) retry: RetryPolicy,
    pub(crate) limits: Limits,
    pub(crate) cancel: CancelToken,
    pub(crate) user_agent: String,
    pub(crate) proxy: Option<String>,
    pub(crate) extra_root_certificates: Vec<Vec<u8>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
}

fn tls_config(extra_roots: &[Vec<u8>]) -> Result<rustls::ClientConfig, Error> {
    let setup = |e: rustls::Error| Error::Setup {
        reason: format!("TLS: {e}"),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots: Vec<rustls::pki_types::CertificateDer<'static>> = extra_roots
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
        .collect();
    let verifier = if roots.is_empty() {
        rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, Arc::clone(&provider))
    }
    .map_err(setup)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(setup)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(v4) => v4.is_loopback(),
        Host::Ipv6(v6) => v6.is_loopback(),
    }
}

impl Transport {
    pub(crate) fn new(settings: TransportSettings) -> Result<Self, Error> {
        let guard = Arc::new(NetworkGuard::default());
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(&settings.extra_root_certificates)?)
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(GuardedResolver(Arc::clone(&guard)))
            .user_agent(settings.user_agent)
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .pool_max_idle_per_host(32)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .no_proxy();
        if let Some(proxy) = &settings.proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|_| Error::Setup {
                reason: "the proxy URL is not valid".to_owned(),
            })?;
            builder = builder.proxy(proxy);
        }
        let http = builder.build().map_err(|e| Error::Setup {
            reason: e.without_url().to_string(),
        })?;
        Ok(Self {
            http,
            guard,
            retry: settings.retry,
            limits: settings.limits,
            cancel: settings.cancel,
            credentials: settings.credentials,
            endpoints: Mutex::new(HashMap::new()),
        })
    }

    /// The endpoint for a registry, created on first use.
    pub(crate) fn endpoint(&self, registry: &str) -> Result<Arc<Endpoint>, Error> {
        if let Some(found) = self.endpoints.lock().expect("endpoint lock").get(registry) {
            return Ok(Arc::clone(found));
        }
        let (_, host) = parse_registry_url(registry)?;
        let settings = self.credentials.settings(&host);
        let explicit = settings
            .map(|s| parse_registry_url(&s.url))
            .transpose()?
            .and_then(|(scheme, _)| scheme);
        let insecure = settings.is_some_and(|s| s.insecure);
        let api_host = if host == DOCKER_HUB {
            "registry-1.docker.io".to_owned()
        } else {
            host.clone()
        };
        let probe =
            Url::parse(&format!("http://{api_host}/")).map_err(|_| Error::InvalidRegistryUrl {
                url: registry.to_owned(),
                reason: "expected host[:port]".to_owned(),
            })?;
        let loopback = probe.host().is_some_and(|h| is_loopback_host(&h));
        let plain_http = match explicit {
            Some(Scheme::Https) => false,
            Some(Scheme::Http) if !(loopback || insecure) => {
                return Err(Error::InsecureNotAllowed {
                    registry: registry.to_owned(),
                });
            }
            Some(Scheme::Http) => true,
            None => loopback || insecure,
        };
        let scheme = if plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{api_host}/")).expect("validated host");
        if let Some(host) = base.host() {
            self.guard.trust_registry(&host);
        }
        let endpoint = Arc::new(Endpoint {
            registry: registry.to_owned(),
            base,
            auth: tokio::sync::Mutex::new(AuthState::new()),
        });
        self.endpoints
            .lock()
            .expect("endpoint lock")
            .insert(registry.to_owned(), Arc::clone(&endpoint));
        Ok(endpoint)
    }

    /// Runs `future` unless the client is cancelled first.
    pub(crate) async fn cancellable<F: Future>(&self, future: F) -> Result<F::Output, Error> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Error::Cancelled),
            output = future => Ok(output),
        }
    }

    pub(crate) async fn sleep(&self, duration: Duration) -> Result<(), Error> {
        self.cancellable(tokio::time::sleep(duration)).await
    }

    /// Whether plain HTTP to `url` is acceptable: loopback hosts, the registry itself when it
    /// is plain HTTP, or a registry marked insecure.
    fn scheme_allowed(&self, endpoint: &Endpoint, url: &Url) -> bool {
        match url.scheme() {
            "https" => true,
            "http" => {
                let Some(host) = url.host() else { return false };
                if is_loopback_host(&host) {
                    return true;
                }
                if endpoint.base.scheme() == "http" && endpoint.base.host() == url.host() {
                    return true;
                }
                let host_port = match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                };
                self.credentials
                    .settings(&host_port)
                    .is_some_and(|s| s.insecure)
            }
            _ => false,
        }
    }

    /// Refuses a URL the registry handed us that leads somewhere unsafe.
    pub(crate) fn check_target(
        &self,
        endpoint: &Endpoint,
        url: &Url,
        kind: TargetKind,
    ) -> Result<(), Error> {
        let refuse = |reason: &str| Error::UnsafeTarget {
            registry: endpoint.registry.clone(),
            kind,
            target: url.host_str().unwrap_or("").chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        if !self.scheme_allowed(endpoint, url) {
            return Err(refuse(
                "plain HTTP (or another scheme) to a host that is neither loopback nor marked insecure",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("it carries credentials in the URL"));
        }
        self.guard.check_url(url).map_err(refuse)
    }

    /// One logical try: authorise, follow redirects, re-authenticate once on 401.
    async fn send_once(
        &self,
        endpoint: &Endpoint,
        request: &Request,
    ) -> Result<(reqwest::Response, bool), Error> {
        let mut scopes = request.scopes.clone();
        let mut reauthenticated = false;
        loop {
            let authorization = self.authorization(endpoint, &scopes).await?;
            let had_credentials = authorization.is_some();
            let response = self
                .follow(endpoint, request, authorization.as_ref())
                .await?;
            let same_origin = response.url().origin() == endpoint.base.origin();
            if response.status() != StatusCode::UNAUTHORIZED || reauthenticated || !same_origin {
                return Ok((response, had_credentials));
            }
            reauthenticated = true;
            let challenges = challenges_of(response.headers());
            let Ok((mode, extra)) = self.mode_from_challenges(endpoint, &challenges) else {
                return Ok((response, had_credentials));
            };
            let credential = self.credential(endpoint).await?;
            {
                let mut state = endpoint.auth.lock().await;
                if let Some(used) = &authorization
                    && let Some(token) = used.to_str().ok().and_then(|v| v.strip_prefix("Bearer "))
                {
                    state.forget(&crate::Secret::new(token));
                }
                state.mode = mode.clone();
            }
            if mode == AuthMode::Basic && credential == Credential::Anonymous {
                // Nothing new to offer: the 401 stands.
                return Ok((response, had_credentials));
            }
            scopes.extend(extra);
            tracing::debug!(registry = %endpoint.registry, "401: re-authenticating once");
        }
    }

    /// Sends a request and follows redirects by hand.
    async fn follow(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        authorization: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, Error> {
        let mut url = request.url.clone();
        let mut method = request.method.clone();
        let mut body = request.body.clone();
        for _ in 0..=self.limits.max_redirects {
            let mut builder = self.http.request(method.clone(), url.clone());
            let mut headers = request.headers.clone();
            if let Some(authorization) = authorization
                && url.origin() == endpoint.base.origin()
            {
                headers.insert(header::AUTHORIZATION, authorization.clone());
            }
            match &body {
                Some(source) => {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(source.len()));
                    builder = builder.body(source.clone().into_body().await?);
                }
                None if method == Method::PUT
                    || method == Method::POST
                    || method == Method::PATCH =>
                {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
                }
                None => {}
            }
            builder = builder.headers(headers);
            let response = match self.cancellable(builder.send()).await? {
                Ok(response) => response,
                Err(e) => return Err(network_error(endpoint, request, e)),
            };
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok());
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(response);
            }
            let Some(location) = location else {
                return Ok(response);
            };
            let next = url.join(location).map_err(|_| Error::UnsafeTarget {
                registry: endpoint.registry.clone(),
                kind: TargetKind::Redirect,
                target: location.chars().take(100).collect(),
                reason: "it is not a valid URL".to_owned(),
            })?;
            self.check_target(endpoint, &next, TargetKind::Redirect)?;
            if status == StatusCode::SEE_OTHER
                || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                    && method == Method::POST)
            {
                method = Method::GET;
                body = None;
            }
            tracing::debug!(registry = %endpoint.registry, to = %next.host_str().unwrap_or_default(), "following redirect");
            url = next;
        }
        Err(Error::TooManyRedirects {
            registry: endpoint.registry.clone(),
            method: request.method.to_string(),
            path: request.url.path().to_owned(),
            limit: self.limits.max_redirects,
        })
    }

    /// Sends with retries of transient failures; the final response may be any status.
    pub(crate) async fn send(
        &self,
        endpoint: &Endpoint,
        request: &Request,
    ) -> Result<Reply, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let wait = match self.send_once(endpoint, request).await {
                Ok((response, had_credentials)) => {
                    let status = response.status().as_u16();
                    if !retryable_status(status) || attempt >= self.retry.max_attempts {
                        return Ok(Reply {
                            response,
                            attempts: attempt,
                            had_credentials,
                        });
                    }
                    tracing::debug!(registry = %endpoint.registry, method = %request.method, path = request.url.path(), status, attempt, "transient status; retrying");
                    retry_after_of(response.headers())
                }
                Err(e) if e.is_transient() && attempt < self.retry.max_attempts => {
                    tracing::debug!(registry = %endpoint.registry, method = %request.method, path = request.url.path(), error = %e, attempt, "transient failure; retrying");
                    None
                }
                Err(e) => return Err(with_attempts(e, attempt)),
            };
            self.sleep(self.retry.delay(attempt, wait)).await?;
        }
    }

    /// Sends once (with re-authentication), without retrying transient failures.
    pub(crate) async fn send_without_retry(
        &self,
        endpoint: &Endpoint,
        request: &Request,
    ) -> Result<Reply, Error> {
        let (response, had_credentials) = self.send_once(endpoint, request).await?;
        Ok(Reply {
            response,
            attempts: 1,
            had_credentials,
        })
    }

    /// Sends with retries and reads the body: up to `cap` bytes on success, an error body
    /// otherwise. A body cut short is retried like a failed connection.
    pub(crate) async fn fetch(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        cap: u64,
        what: &str,
    ) -> Result<Fetched, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let reply = self.send(endpoint, request).await?;
            let status = reply.response.status();
            let headers = reply.response.headers().clone();
            let cap = if status.is_success() {
                cap
            } else {
                self.limits.max_error_body_bytes
            };
            let read = if request.method == Method::HEAD {
                Ok(Bytes::new())
            } else {
                self.read_capped(reply.response, cap, what).await
            };
            match read {
                Ok(body) => {
                    return Ok(Fetched {
                        status,
                        headers,
                        body,
                        attempts: reply.attempts,
                        had_credentials: reply.had_credentials,
                    });
                }
                Err(Error::Network { source, .. }) if attempt < self.retry.max_attempts => {
                    tracing::debug!(registry = %endpoint.registry, path = request.url.path(), error = %source, "body cut short; retrying");
                    self.sleep(self.retry.delay(attempt, None)).await?;
                }
                Err(Error::Network { source, .. }) => {
                    return Err(Error::Network {
                        registry: endpoint.registry.clone(),
                        method: request.method.to_string(),
                        path: request.url.path().to_owned(),
                        attempts: attempt,
                        source,
                    });
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Like `fetch`, without authentication (for the `/v2/` probe).
    async fn fetch_unauthenticated(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        cap: u64,
    ) -> Result<Fetched, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let wait = match self.follow(endpoint, request, None).await {
                Ok(response) => {
                    let status = response.status();
                    if !retryable_status(status.as_u16()) || attempt >= self.retry.max_attempts {
                        let headers = response.headers().clone();
                        let body = self
                            .read_capped(response, cap, "registry probe")
                            .await
                            .unwrap_or_default();
                        return Ok(Fetched {
                            status,
                            headers,
                            body,
                            attempts: attempt,
                            had_credentials: false,
                        });
                    }
                    retry_after_of(response.headers())
                }
                Err(e) if e.is_transient() && attempt < self.retry.max_attempts => None,
                Err(e) => return Err(with_attempts(e, attempt)),
            };
            self.sleep(self.retry.delay(attempt, wait)).await?;
        }
    }

    /// Reads a body, refusing more than `cap` bytes.
    pub(crate) async fn read_capped(
        &self,
        mut response: reqwest::Response,
        cap: u64,
        what: &str,
    ) -> Result<Bytes, Error> {
        let too_large = || Error::TooLarge {
            what: what.to_owned(),
            limit: cap,
        };
        if response.content_length().is_some_and(|len| len > cap) {
            return Err(too_large());
        }
        let mut buffer = BytesMut::new();
        loop {
            match self.cancellable(response.chunk()).await? {
                Ok(Some(chunk)) => {
                    if (buffer.len() + chunk.len()) as u64 > cap {
                        return Err(too_large());
                    }
                    buffer.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(buffer.freeze()),
                Err(e) => {
                    return Err(Error::Network {
                        registry: String::new(),
                        method: String::new(),
                        path: String::new(),
                        attempts: 1,
                        source: Box::new(e.without_url()),
                    });
                }
            }
        }
    }
}

fn with_attempts(error: Error, attempts: u32) -> Error {
    match error {
        Error::Network {
            registry,
            method,
            path,
            source,
            ..
        } => Error::Network {
            registry,
            method,
            path,
            attempts,
            source,
        },
        other => other,
    }
}

pub(crate) fn network_error(
    endpoint: &Endpoint,
    request: &Request,
    error: reqwest::Error,
) -> Error {
    Error::Network {
        registry: endpoint.registry.clone(),
        method: request.method.to_string(),
        path: request.url.path().to_owned(),
        attempts: 1,
        source: Box::new(error.without_url()),
    }
}

pub(crate) fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}
