//! Shared helpers of the integration tests.

#![allow(dead_code)]

pub mod fake;
pub mod images;
pub mod token;
pub mod tools;

use std::time::Duration;

use im_registry::{Client, ClientConfig, RetryPolicy};

/// Retries fast enough for tests, with the same rules as production.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(3),
    }
}

/// A client with fast retries, adjusted by `tweak`.
pub fn client_with(tweak: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut config = ClientConfig {
        retry: fast_retry(),
        ..ClientConfig::default()
    };
    tweak(&mut config);
    Client::new(config).expect("client builds")
}

pub fn client() -> Client {
    client_with(|_| {})
}
