//! Registry authentication state: what a registry asked for (nothing, basic, or bearer
//! tokens from a realm), the scopes a request needs, and a cache of bearer tokens keyed by
//! the scopes they grant, so one token serves every request it covers until it expires.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use url::Url;

use crate::Secret;

/// What a repository scope allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pull" => Some(Self::Pull),
            "push" => Some(Self::Push),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// `repository:NAME:ACTIONS`, what a bearer token is asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    pub(crate) repository: String,
    pub(crate) actions: BTreeSet<Action>,
}

impl Scope {
    pub(crate) fn pull(repository: &str) -> Self {
        Self::new(repository, &[Action::Pull])
    }

    pub(crate) fn push(repository: &str) -> Self {
        Self::new(repository, &[Action::Pull, Action::Push])
    }

    pub(crate) fn delete(repository: &str) -> Self {
        Self::new(repository, &[Action::Delete])
    }

    fn new(repository: &str, actions: &[Action]) -> Self {
        Self {
            repository: repository.to_owned(),
            actions: actions.iter().copied().collect(),
        }
    }

    /// Parses `repository:name:pull,push`; other resource types are ignored.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("repository:")?;
        let (name, actions) = rest.rsplit_once(':')?;
        let actions: BTreeSet<Action> = actions.split(',').filter_map(Action::parse).collect();
        (!name.is_empty() && !actions.is_empty()).then(|| Self {
            repository: name.to_owned(),
            actions,
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actions: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        write!(f, "repository:{}:{}", self.repository, actions.join(","))
    }
}

/// Merges scopes so each repository appears once with the union of its actions.
pub(crate) fn merge_scopes(scopes: &[Scope]) -> Vec<Scope> {
    let mut merged: BTreeMap<&str, BTreeSet<Action>> = BTreeMap::new();
    for scope in scopes {
        merged
            .entry(&scope.repository)
            .or_default()
            .extend(scope.actions.iter().copied());
    }
    merged
        .into_iter()
        .map(|(repository, actions)| Scope {
            repository: repository.to_owned(),
            actions,
        })
        .collect()
}

/// How a registry wants to be authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthMode {
    /// Not asked yet.
    Unknown,
    /// `/v2/` answered without a challenge.
    Anonymous,
    /// `Basic`: credentials go with every request to the registry.
    Basic,
    /// `Bearer`: tokens from `realm`.
    Bearer { realm: Url, service: Option<String> },
}

/// A cached bearer token and what it grants.
struct CachedToken {
    grants: Vec<Scope>,
    token: Secret,
    expires: Instant,
}

/// The authentication state of one registry endpoint.
pub(crate) struct AuthState {
    pub(crate) mode: AuthMode,
    tokens: Vec<CachedToken>,
}

/// Tokens are dropped this long before the registry says they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// At most this many tokens are kept per registry.
const MAX_TOKENS: usize = 256;

impl AuthState {
    pub(crate) fn new() -> Self {
        Self {
            mode: AuthMode::Unknown,
            tokens: Vec::new(),
        }
    }

    /// A cached, unexpired token whose grants cover every requested scope.
    pub(crate) fn token_for(&mut self, wanted: &[Scope], now: Instant) -> Option<Secret> {
        self.tokens.retain(|t| t.expires > now);
        self.tokens
            .iter()
            .find(|cached| {
                wanted.iter().all(|w| {
                    cached
                        .grants
                        .iter()
                        .any(|g| g.repository == w.repository && g.actions.is_superset(&w.actions))
                })
            })
            .map(|cached| cached.token.clone())
    }

    pub(crate) fn store(
        &mut self,
        grants: Vec<Scope>,
        token: Secret,
        lifetime: Duration,
        now: Instant,
    ) {
        if self.tokens.len() >= MAX_TOKENS {
            self.tokens.remove(0);
        }
        let lifetime = lifetime
            .saturating_sub(EXPIRY_MARGIN)
            .max(Duration::from_secs(1));
        self.tokens.push(CachedToken {
            grants,
            token,
            expires: now + lifetime,
        });
    }

    /// Forgets a token the registry refused.
    pub(crate) fn forget(&mut self, token: &Secret) {
        self.tokens.retain(|t| &t.token != token);
    }
}

/// A token service's answer.
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<Secret>,
    #[serde(default)]
    access_token: Option<Secret>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long it lives (60 s when the service does not say, per the spec).
    pub(crate) fn into_token(self) -> Option<(Secret, Duration)> {
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        let lifetime = Duration::from_secs(self.expires_in.unwrap_or(60).clamp(1, 24 * 3600));
        Some((token, lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_print_and_parse() {
        let s = Scope::push("team/app");
        assert_eq!(s.to_string(), "repository:team/app:pull,push");
        assert_eq!(Scope::parse("repository:team/app:pull,push"), Some(s));
        assert_eq!(Scope::parse("registry:catalog:*"), None);
        assert_eq!(
            Scope::parse("repository:localhost:5000/x:pull")
                .unwrap()
                .repository,
            "localhost:5000/x"
        );
    }

    #[test]
    fn merge_unions_actions_per_repository() {
        let merged = merge_scopes(&[Scope::pull("a"), Scope::push("a"), Scope::pull("b")]);
        assert_eq!(
            merged.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["repository:a:pull,push", "repository:b:pull"]
        );
    }

    #[test]
    fn a_push_token_serves_pulls_until_it_expires() {
        let now = Instant::now();
        let mut state = AuthState::new();
        state.store(
            vec![Scope::push("a")],
            Secret::new("t1"),
            Duration::from_secs(60),
            now,
        );
        assert_eq!(
            state.token_for(&[Scope::pull("a")], now),
            Some(Secret::new("t1"))
        );
        assert_eq!(state.token_for(&[Scope::pull("b")], now), None);
        assert_eq!(
            state.token_for(&[Scope::pull("a"), Scope::pull("b")], now),
            None
        );
        assert_eq!(
            state.token_for(&[Scope::pull("a")], now + Duration::from_secs(55)),
            None
        );
    }

    #[test]
    fn a_pull_token_does_not_serve_pushes() {
        let now = Instant::now();
        let mut state = AuthState::new();
        state.store(
            vec![Scope::pull("a")],
            Secret::new("t"),
            Duration::from_secs(300),
            now,
        );
        assert_eq!(state.token_for(&[Scope::push("a")], now), None);
        state.forget(&Secret::new("t"));
        assert_eq!(state.token_for(&[Scope::pull("a")], now), None);
    }

    #[test]
    fn token_response_prefers_token_and_defaults_lifetime() {
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(
            r.into_token(),
            Some((Secret::new("b"), Duration::from_secs(60)))
        );
        let r: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":300}"#).unwrap();
        assert_eq!(
            r.into_token(),
            Some((Secret::new("a"), Duration::from_secs(300)))
        );
        let r: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(r.into_token().is_none());
    }
}
