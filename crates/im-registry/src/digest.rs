//! Content digests: hashing bytes and streams with the algorithm a digest names, and
//! checking what was read against what was expected.

pub use oci_spec::image::Digest;
use oci_spec::image::DigestAlgorithm;
use sha2::Digest as _;

use crate::Error;

/// Parses `algorithm:hex`, for example `sha256:e3b0…`.
pub fn parse_digest(input: &str) -> Result<Digest, Error> {
    let digest: Digest = input.parse().map_err(|_| Error::InvalidDigest {
        input: input.chars().take(200).collect(),
    })?;
    Hasher::for_algorithm(digest.algorithm())?;
    Ok(digest)
}

/// The sha256 digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let mut hasher = Hasher::Sha256(sha2::Sha256::new());
    hasher.update(bytes);
    hasher.finish()
}

/// An incremental hasher for one of the algorithms registries use.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn for_algorithm(algorithm: &DigestAlgorithm) -> Result<Self, Error> {
        Ok(match algorithm {
            DigestAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha384 => Self::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
            other => {
                return Err(Error::UnsupportedDigestAlgorithm {
                    algorithm: other.to_string(),
                });
            }
        })
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha384(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Self::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            Self::Sha384(h) => ("sha384", hex::encode(h.finalize())),
            Self::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        format!("{algorithm}:{hex}")
            .parse()
            .expect("a hex digest we computed is a valid digest")
    }
}

/// The digest of `bytes` computed with the algorithm of `like`.
pub(crate) fn digest_like(like: &Digest, bytes: &[u8]) -> Result<Digest, Error> {
    let mut hasher = Hasher::for_algorithm(like.algorithm())?;
    hasher.update(bytes);
    Ok(hasher.finish())
}

/// Checks `bytes` against an expected digest and, when given, an expected size.
pub(crate) fn verify_bytes(
    what: &dyn Fn() -> String,
    expected: &Digest,
    expected_size: Option<u64>,
    bytes: &[u8],
) -> Result<(), Error> {
    if let Some(size) = expected_size {
        let actual = bytes.len() as u64;
        if actual != size {
            return Err(Error::SizeMismatch {
                what: what(),
                expected: size,
                actual,
            });
        }
    }
    let actual = digest_like(expected, bytes)?;
    if &actual != expected {
        return Err(Error::DigestMismatch {
            what: what(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_well_known_value() {
        assert_eq!(
            sha256_digest(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_bad_and_unknown_digests() {
        assert!(parse_digest("sha256:abc").is_err());
        assert!(parse_digest("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
        assert!(
            parse_digest("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .is_ok()
        );
    }

    #[test]
    fn verify_bytes_reports_size_then_digest() {
        let good = sha256_digest(b"hello");
        let what = || "blob".to_owned();
        assert!(verify_bytes(&what, &good, Some(5), b"hello").is_ok());
        assert!(matches!(
            verify_bytes(&what, &good, Some(5), b"hellp"),
            Err(Error::DigestMismatch { .. })
        ));
        assert!(matches!(
            verify_bytes(&what, &good, Some(6), b"hello"),
            Err(Error::SizeMismatch { .. })
        ));
    }

    #[test]
    fn sha512_digests_verify_too() {
        let expected = {
            let mut h = Hasher::for_algorithm(&DigestAlgorithm::Sha512).unwrap();
            h.update(b"abc");
            h.finish()
        };
        assert!(verify_bytes(&|| "x".into(), &expected, None, b"abc").is_ok());
    }
}
