//! Content digests: hashing bytes and streams with the algorithm a digest names, and
//! checking what was read against what was expected.

pub use im_oci::Digest;
pub(crate) use im_oci::digest::Hasher;
use im_oci::{Algorithm, OciError};

use crate::Error;

/// Parses `algorithm:hex`, for example `sha256:e3b0…`: sha256, sha384 or sha512 with the
/// right number of lowercase hex digits.
pub fn parse_digest(input: &str) -> Result<Digest, Error> {
    input.parse().map_err(|_| Error::InvalidDigest {
        input: input.chars().take(200).collect(),
    })
}

/// The sha256 digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, bytes)
}

/// The digest of `bytes` computed with the algorithm of `like`.
pub(crate) fn digest_like(like: &Digest, bytes: &[u8]) -> Digest {
    Digest::of_bytes(like.algorithm(), bytes)
}

/// The digest a descriptor names, checked as strictly as a parsed one.
pub(crate) fn descriptor_digest(digest: &oci_spec::image::Digest) -> Result<Digest, Error> {
    Digest::try_from(digest).map_err(|error| match error {
        OciError::MalformedDigest { digest, .. } => Error::InvalidDigest {
            input: digest.chars().take(200).collect(),
        },
        other => other.into(),
    })
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
    let actual = digest_like(expected, bytes);
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
        let expected = Digest::of_bytes(Algorithm::Sha512, b"abc");
        assert!(verify_bytes(&|| "x".into(), &expected, None, b"abc").is_ok());
    }
}
