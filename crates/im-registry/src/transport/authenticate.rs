//! Authentication of registry requests: the `/v2/` probe that finds out what a registry
//! wants, basic credentials, and bearer tokens fetched from the registry's token service
//! (cached per scope in the endpoint's [`AuthState`]).

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::Error;
use crate::auth::{AuthMode, Scope, TokenResponse, merge_scopes};
use crate::challenge::{Challenge, parse_challenges};
use crate::credentials::{Credential, parse_registry_url};
use crate::error::TargetKind;
use crate::retry::retryable_status;

use super::{Endpoint, Request, Transport, parse_error_body, retry_after_of};

impl Transport {
    pub(super) async fn credential(&self, endpoint: &Endpoint) -> Result<Credential, Error> {
        let (_, host) = parse_registry_url(&endpoint.registry)?;
        self.credentials.credential(&host).await
    }

    /// The `Authorization` header for a request needing `scopes`, if any.
    pub(super) async fn authorization(
        &self,
        endpoint: &Endpoint,
        scopes: &[Scope],
    ) -> Result<Option<HeaderValue>, Error> {
        let credential = self.credential(endpoint).await?;
        let mut state = endpoint.auth.lock().await;
        if state.mode == AuthMode::Unknown {
            state.mode = self.probe(endpoint).await?;
        }
        match state.mode.clone() {
            AuthMode::Unknown | AuthMode::Anonymous => Ok(None),
            AuthMode::Basic => Ok(basic_header(&credential)),
            AuthMode::Bearer { realm, service } => {
                if let Credential::BearerToken(token) = &credential {
                    return Ok(Some(bearer_header(token.expose())));
                }
                let scopes = merge_scopes(scopes);
                let now = Instant::now();
                if let Some(token) = state.token_for(&scopes, now) {
                    return Ok(Some(bearer_header(token.expose())));
                }
                let (token, lifetime) = self
                    .fetch_token(endpoint, &realm, service.as_deref(), &scopes, &credential)
                    .await?;
                state.store(scopes, token.clone(), lifetime, now);
                Ok(Some(bearer_header(token.expose())))
            }
        }
    }

    /// `GET /v2/` without credentials: what does the registry want?
    pub(super) async fn probe(&self, endpoint: &Endpoint) -> Result<AuthMode, Error> {
        let request = Request::new(Method::GET, endpoint.url("v2/"), Vec::new());
        let fetched = self
            .fetch_unauthenticated(endpoint, &request, self.limits.max_error_body_bytes)
            .await?;
        if fetched.status.is_success() {
            return Ok(AuthMode::Anonymous);
        }
        if fetched.status == StatusCode::UNAUTHORIZED {
            let challenges = challenges_of(&fetched.headers);
            return self
                .mode_from_challenges(endpoint, &challenges)
                .map(|(mode, _)| mode);
        }
        Err(fetched.into_error(endpoint, &request))
    }

    /// The auth mode a set of challenges asks for, plus the scopes a bearer challenge named.
    pub(super) fn mode_from_challenges(
        &self,
        endpoint: &Endpoint,
        challenges: &[Challenge],
    ) -> Result<(AuthMode, Vec<Scope>), Error> {
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = bearer
                .params
                .get("realm")
                .ok_or_else(|| Error::Authentication {
                    registry: endpoint.registry.clone(),
                    reason: "the bearer challenge has no realm".to_owned(),
                })?;
            let realm = Url::parse(realm).map_err(|_| Error::Authentication {
                registry: endpoint.registry.clone(),
                reason: "the bearer challenge's realm is not a URL".to_owned(),
            })?;
            self.check_target(endpoint, &realm, TargetKind::TokenRealm)?;
            let scopes = bearer
                .params
                .get("scope")
                .map(|s| s.split(' ').filter_map(Scope::parse).collect())
                .unwrap_or_default();
            return Ok((
                AuthMode::Bearer {
                    realm,
                    service: bearer.params.get("service").cloned(),
                },
                scopes,
            ));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return Ok((AuthMode::Basic, Vec::new()));
        }
        Err(Error::Authentication {
            registry: endpoint.registry.clone(),
            reason: "the registry asked for authentication with no scheme this client supports (basic or bearer)".to_owned(),
        })
    }

    /// Asks the token service for a token covering `scopes`.
    pub(super) async fn fetch_token(
        &self,
        endpoint: &Endpoint,
        realm: &Url,
        service: Option<&str>,
        scopes: &[Scope],
        credential: &Credential,
    ) -> Result<(crate::Secret, Duration), Error> {
        let realm_host = realm.host_str().unwrap_or_default().to_owned();
        let failed = |reason: String| Error::Authentication {
            registry: endpoint.registry.clone(),
            reason: format!("token service at `{realm_host}` {reason}"),
        };
        let mut url = realm.clone();
        let mut request = if let Credential::IdentityToken(refresh) = credential {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("refresh_token", refresh.expose());
            form.append_pair("client_id", "image-manager");
            if let Some(service) = service {
                form.append_pair("service", service);
            }
            for scope in scopes {
                form.append_pair("scope", &scope.to_string());
            }
            self.http
                .post(url)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.finish())
        } else {
            {
                let mut query = url.query_pairs_mut();
                if let Some(service) = service {
                    query.append_pair("service", service);
                }
                for scope in scopes {
                    query.append_pair("scope", &scope.to_string());
                }
            }
            let mut builder = self.http.get(url);
            if let Some(value) = basic_header(credential) {
                builder = builder.header(header::AUTHORIZATION, value);
            }
            builder
        };
        request = request.header(header::ACCEPT, "application/json");
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let sent = request
                .try_clone()
                .expect("token requests have in-memory bodies")
                .send();
            match self.cancellable(sent).await? {
                Ok(response)
                    if retryable_status(response.status().as_u16())
                        && attempt < self.retry.max_attempts =>
                {
                    let wait = retry_after_of(response.headers());
                    self.sleep(self.retry.delay(attempt, wait)).await?;
                }
                Ok(response) => break response,
                Err(e) if attempt < self.retry.max_attempts && !e.is_builder() => {
                    tracing::debug!(registry = %endpoint.registry, error = %e.without_url(), "token request failed; retrying");
                    self.sleep(self.retry.delay(attempt, None)).await?;
                }
                Err(e) => return Err(failed(format!("could not be reached: {}", e.without_url()))),
            }
        };
        let status = response.status();
        if status.is_redirection() {
            return Err(failed(format!(
                "answered HTTP {} (redirects are not followed for tokens)",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let body = self
                .read_capped(
                    response,
                    self.limits.max_error_body_bytes,
                    "token error body",
                )
                .await
                .unwrap_or_default();
            let (code, message) = parse_error_body(&body);
            let detail = match (code, message) {
                (Some(c), Some(m)) => format!(" {c}: {m}"),
                (Some(c), None) => format!(" {c}"),
                (None, Some(m)) => format!(": {m}"),
                (None, None) => String::new(),
            };
            let hint = if status == StatusCode::UNAUTHORIZED && *credential == Credential::Anonymous
            {
                "; no credentials are configured for this registry"
            } else {
                ""
            };
            return Err(failed(format!(
                "refused the credentials: HTTP {}{detail}{hint}",
                status.as_u16()
            )));
        }
        let body = self
            .read_capped(response, self.limits.max_token_bytes, "token response")
            .await?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            failed("answered with something that is not a token response".to_owned())
        })?;
        parsed
            .into_token()
            .ok_or_else(|| failed("answered without a token".to_owned()))
    }
}

pub(super) fn challenges_of(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

pub(super) fn basic_header(credential: &Credential) -> Option<HeaderValue> {
    let Credential::Basic { username, password } = credential else {
        return None;
    };
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

pub(super) fn bearer_header(token: &str) -> HeaderValue {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_marked_sensitive() {
        let basic = basic_header(&Credential::Basic {
            username: "u".into(),
            password: crate::Secret::new("p"),
        })
        .unwrap();
        assert!(basic.is_sensitive());
        assert!(!format!("{basic:?}").contains("dTpw"));
        assert!(bearer_header("t").is_sensitive());
        assert!(basic_header(&Credential::Anonymous).is_none());
    }
}
