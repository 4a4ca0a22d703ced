//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`) and a reader that verifies them.
//!
//! A digest from an untrusted manifest is parsed strictly before it is used for anything (a
//! blob path in an OCI layout is built from it, so `sha256:../../x` must never get that far).
//! [`HashingReader`] counts and hashes what passes through it so a blob's size and digest are
//! checked after it was streamed, without holding it in memory.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::error::OciError;

/// A digest algorithm this crate can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
        }
    }
}

/// A validated content digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part, safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of `bytes` with `algorithm`.
    pub fn of_bytes(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }
}

impl FromStr for Digest {
    type Err = OciError;

    fn from_str(text: &str) -> Result<Self, OciError> {
        let malformed = |reason| OciError::MalformedDigest {
            digest: text.to_owned(),
            reason,
        };
        let (algorithm, hex) = text.split_once(':').ok_or_else(|| malformed("no `:`"))?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(malformed(
                    "unsupported algorithm (sha256, sha384 and sha512 are)",
                ));
            }
        };
        if hex.len() != algorithm.hex_len() {
            return Err(malformed("wrong length for its algorithm"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(malformed("not lowercase hex"));
        }
        Ok(Self {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = OciError;

    /// A descriptor's digest, checked as strictly as a parsed one.
    fn try_from(digest: &oci_spec::image::Digest) -> Result<Self, OciError> {
        digest.as_ref().parse()
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    /// The digest as a descriptor carries it.
    fn from(digest: &Digest) -> Self {
        digest
            .to_string()
            .parse()
            .expect("a validated digest is a valid oci-spec digest")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// An incremental hash for one algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(Sha256::new()),
            Algorithm::Sha384 => Self::Sha384(Sha384::new()),
            Algorithm::Sha512 => Self::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha384(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, bytes) = match self {
            Self::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Self::Sha384(h) => (Algorithm::Sha384, h.finalize().to_vec()),
            Self::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest {
            algorithm,
            hex: to_hex(&bytes),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A reader that hashes and counts the bytes read through it, and refuses to read more than
/// `limit` bytes (an `io::Error` of kind `FileTooLarge` is returned instead).
pub struct HashingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    count: u64,
    limit: u64,
}

impl<R: Read> HashingReader<R> {
    /// `algorithm` is `None` when only counting is wanted.
    pub fn new(inner: R, algorithm: Option<Algorithm>, limit: u64) -> Self {
        Self {
            inner,
            hasher: algorithm.map(Hasher::new),
            count: 0,
            limit,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads the rest of the stream (bounded by the limit) and returns the count and digest.
    pub fn finish(mut self) -> io::Result<(u64, Option<Digest>)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.count, self.hasher.map(Hasher::finish)))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                LimitExceeded(self.limit),
            ));
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// The payload of the `io::Error` a [`HashingReader`] returns past its limit.
#[derive(Debug, thiserror::Error)]
#[error("more than {0} bytes")]
pub struct LimitExceeded(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_digest_converts_both_ways_when_this_crate_can_verify_it() {
        let text = format!("sha256:{}", "ab".repeat(32));
        let spec: oci_spec::image::Digest = text.parse().unwrap();
        assert_eq!(Digest::try_from(&spec).unwrap().to_string(), text);
        assert_eq!(
            oci_spec::image::Digest::from(&Digest::try_from(&spec).unwrap()),
            spec
        );
        let md5: oci_spec::image::Digest = format!("md5:{}", "ab".repeat(16)).parse().unwrap();
        assert!(Digest::try_from(&md5).is_err());
    }

    #[test]
    fn parses_and_displays_a_sha256_digest() {
        let text = format!("sha256:{}", "ab".repeat(32));
        let digest: Digest = text.parse().unwrap();
        assert_eq!(digest.to_string(), text);
        assert_eq!(digest.hex().len(), 64);
    }

    #[test]
    fn rejects_digests_that_could_become_paths() {
        for bad in [
            "sha256:../../../../etc/passwd",
            "sha256:",
            "sha256",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            &format!("sha256:{}", "AB".repeat(32)),
            &format!("sha256:{}/", "a".repeat(63)),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn hashes_the_empty_string_like_sha256sum() {
        assert_eq!(
            Digest::of_bytes(Algorithm::Sha256, b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hashing_reader_stops_at_its_limit() {
        let mut reader = HashingReader::new(&[0u8; 100][..], None, 10);
        let err = io::copy(&mut reader, &mut io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }
}
