//! Image signatures compatible with cosign's key-based simple signing.
//!
//! A signature signs a small JSON payload naming the image's repository
//! (`critical.identity.docker-reference`) and manifest digest
//! (`critical.image.docker-manifest-digest`) with an ECDSA P-256 key (SHA-256, ASN.1 DER,
//! base64). Signatures are stored as cosign stores them: in the image's repository under the
//! tag `sha256-<hex>.sig`, an image manifest whose layers are payloads
//! (`application/vnd.dev.cosign.simplesigning.v1+json`), each annotated with its signature
//! (`dev.cosignproject.cosign/signature`). So `cosign verify --key` checks what `sign` made,
//! and `verify` checks what `cosign sign --key` made.
//!
//! Keys are PEM: PKCS#8 (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with a password), SEC1
//! (`EC PRIVATE KEY`), public keys as SPKI (`PUBLIC KEY`). Nothing here prints a key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use im_diag::Secret;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The media type of a payload layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const PAYLOAD_TYPE: &str = "cosign container image signature";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key is password-protected: set {variable} to its password")]
    NeedsPassword { variable: String },
    #[error("the password in {variable} does not open the key")]
    WrongPassword { variable: String },
    #[error(
        "this is a cosign-format key (ENCRYPTED SIGSTORE PRIVATE KEY); give a PKCS#8 key instead, e.g. `openssl ec -in ... | openssl pkcs8 -topk8 -v2 aes-256-cbc`"
    )]
    SigstoreFormat,
    #[error("not an ECDSA P-256 {what} in PEM ({found}); expected {expected}")]
    Unsupported {
        what: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("the {what} is not a valid ECDSA P-256 key: {reason}")]
    Invalid { what: &'static str, reason: String },
}

/// A private key to sign with.
pub struct SigningKey(p256::ecdsa::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// The label of the first PEM block in `text`.
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")?;
    Some(&text[start..start + end])
}

impl SigningKey {
    /// Reads a PEM private key; `password` (from the environment variable `variable`) opens an
    /// encrypted one.
    pub fn from_pem(
        text: &str,
        password: Option<&Secret>,
        variable: &str,
    ) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            what: "private key",
            reason,
        };
        let key = match pem_label(text) {
            Some("PRIVATE KEY") => {
                p256::ecdsa::SigningKey::from_pkcs8_pem(text).map_err(|e| invalid(e.to_string()))?
            }
            Some("EC PRIVATE KEY") => p256::SecretKey::from_sec1_pem(text)
                .map(p256::ecdsa::SigningKey::from)
                .map_err(|e| invalid(e.to_string()))?,
            Some("ENCRYPTED PRIVATE KEY") => {
                let Some(password) = password else {
                    return Err(KeyError::NeedsPassword {
                        variable: variable.to_owned(),
                    });
                };
                p256::ecdsa::SigningKey::from_pkcs8_encrypted_pem(text, password.expose()).map_err(
                    |_| KeyError::WrongPassword {
                        variable: variable.to_owned(),
                    },
                )?
            }
            Some("ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY") => {
                return Err(KeyError::SigstoreFormat);
            }
            other => {
                return Err(KeyError::Unsupported {
                    what: "private key",
                    found: other.map_or_else(|| "no PEM block".to_owned(), |l| format!("`{l}`")),
                    expected: "PRIVATE KEY, ENCRYPTED PRIVATE KEY or EC PRIVATE KEY",
                });
            }
        };
        Ok(Self(key))
    }

    /// The base64 DER signature of `payload` (deterministic: RFC 6979).
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.0.sign(payload);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(*self.0.verifying_key())
    }
}

/// A public key to verify with.
#[derive(Clone, Debug)]
pub struct VerifyingKey(p256::ecdsa::VerifyingKey);

impl VerifyingKey {
    /// Reads a PEM public key (`PUBLIC KEY`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        match pem_label(text) {
            Some("PUBLIC KEY") => p256::ecdsa::VerifyingKey::from_public_key_pem(text)
                .map(Self)
                .map_err(|e| KeyError::Invalid {
                    what: "public key",
                    reason: e.to_string(),
                }),
            other => Err(KeyError::Unsupported {
                what: "public key",
                found: other.map_or_else(|| "no PEM block".to_owned(), |l| format!("`{l}`")),
                expected: "PUBLIC KEY",
            }),
        }
    }

    /// Whether `signature` (base64 DER, or base64 raw r||s) signs `payload`.
    pub fn verifies(&self, payload: &[u8], signature: &str) -> bool {
        let Ok(bytes) = STANDARD.decode(signature.trim()) else {
            return false;
        };
        let parsed = DerSignature::try_from(bytes.as_slice())
            .ok()
            .and_then(|der| Signature::from_der(der.as_bytes()).ok())
            .or_else(|| Signature::from_slice(&bytes).ok());
        parsed.is_some_and(|sig| self.0.verify(payload, &sig).is_ok())
    }
}

/// What a payload says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub critical: Critical,
    pub optional: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    pub identity: Identity,
    pub image: ImageId,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageId {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl Payload {
    /// The payload for the manifest `digest` in `repository` (`registry/namespace/name`).
    pub fn new(repository: &str, digest: &str) -> Self {
        Self {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_owned(),
                },
                image: ImageId {
                    docker_manifest_digest: digest.to_owned(),
                },
                kind: PAYLOAD_TYPE.to_owned(),
            },
            optional: None,
        }
    }

    /// Its bytes, as cosign writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("payloads serialize")
    }

    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The tag that holds the signatures of the manifest `digest` (`sha256:<hex>`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// One signature of a signature manifest: its payload blob and the signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLayer {
    pub digest: String,
    pub size: u64,
    pub signature: String,
}

/// The signatures a `sha256-<hex>.sig` manifest holds (layers of other kinds are skipped).
pub fn signature_layers(manifest: &[u8]) -> Vec<SignatureLayer> {
    #[derive(Deserialize)]
    struct Manifest {
        #[serde(default)]
        layers: Vec<Layer>,
    }
    #[derive(Deserialize)]
    struct Layer {
        #[serde(rename = "mediaType")]
        media_type: String,
        digest: String,
        size: u64,
        #[serde(default)]
        annotations: std::collections::BTreeMap<String, String>,
    }
    let Ok(manifest) = serde_json::from_slice::<Manifest>(manifest) else {
        return Vec::new();
    };
    manifest
        .layers
        .into_iter()
        .filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE)
        .filter_map(|l| {
            Some(SignatureLayer {
                signature: l.annotations.get(SIGNATURE_ANNOTATION)?.clone(),
                digest: l.digest,
                size: l.size,
            })
        })
        .collect()
}

/// A signature manifest and its config blob, for `layers` (in order, each once).
pub struct SignatureManifest {
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
    pub config: Vec<u8>,
}

/// The signature manifest holding `layers`, shaped as cosign writes it.
pub fn signature_manifest(layers: &[SignatureLayer]) -> SignatureManifest {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config serializes");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "size": config.len(),
            "digest": sha256(&config),
        },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": PAYLOAD_MEDIA_TYPE,
            "size": l.size,
            "digest": l.digest,
            "annotations": {SIGNATURE_ANNOTATION: l.signature},
        })).collect::<Vec<_>>(),
    });
    SignatureManifest {
        manifest: serde_json::to_vec(&manifest).expect("manifest serializes"),
        media_type: OCI_MANIFEST,
        config,
    }
}

/// Why a signature does not hold for an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the payload {digest} is not the blob its layer names (tampered)")]
    TamperedPayload { digest: String },
    #[error("the signature over {digest} was not made by this key (or the payload was changed)")]
    WrongKey { digest: String },
    #[error("the payload is not a cosign simple-signing payload")]
    NotAPayload,
    #[error("the payload signs {signed}, not this image's {digest}")]
    OtherDigest { signed: String, digest: String },
}

/// Checks one signature: its payload's bytes match the layer digest, the key made the
/// signature, and the payload names `digest`.
pub fn check(
    key: &VerifyingKey,
    layer: &SignatureLayer,
    payload: &[u8],
    digest: &str,
) -> Result<Payload, Rejected> {
    if sha256(payload) != layer.digest {
        return Err(Rejected::TamperedPayload {
            digest: layer.digest.clone(),
        });
    }
    if !key.verifies(payload, &layer.signature) {
        return Err(Rejected::WrongKey {
            digest: layer.digest.clone(),
        });
    }
    let parsed = Payload::parse(payload).ok_or(Rejected::NotAPayload)?;
    if parsed.critical.image.docker_manifest_digest != digest {
        return Err(Rejected::OtherDigest {
            signed: parsed.critical.image.docker_manifest_digest,
            digest: digest.to_owned(),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed P-256 key (PKCS#8), made for these tests.
    fn key() -> SigningKey {
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        SigningKey(p256::ecdsa::SigningKey::from(secret))
    }

    #[test]
    fn a_signature_verifies_only_with_its_key_payload_and_digest() {
        let key = key();
        let payload = Payload::new("reg.example/acme/app", "sha256:aa").to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&payload),
            r#"{"critical":{"identity":{"docker-reference":"reg.example/acme/app"},"image":{"docker-manifest-digest":"sha256:aa"},"type":"cosign container image signature"},"optional":null}"#
        );
        let signature = key.sign(&payload);
        assert_eq!(signature, key.sign(&payload), "RFC 6979: same bytes again");
        let layer = SignatureLayer {
            digest: sha256(&payload),
            size: payload.len() as u64,
            signature,
        };
        let public = key.verifying_key();
        assert!(check(&public, &layer, &payload, "sha256:aa").is_ok());
        assert!(matches!(
            check(&public, &layer, &payload, "sha256:bb"),
            Err(Rejected::OtherDigest { .. })
        ));
        let mut tampered = payload.clone();
        tampered[20] ^= 1;
        assert!(matches!(
            check(&public, &layer, &tampered, "sha256:aa"),
            Err(Rejected::TamperedPayload { .. })
        ));
        let other = SigningKey(p256::ecdsa::SigningKey::from(
            p256::SecretKey::from_slice(&[9u8; 32]).unwrap(),
        ));
        assert!(matches!(
            check(&other.verifying_key(), &layer, &payload, "sha256:aa"),
            Err(Rejected::WrongKey { .. })
        ));
    }

    #[test]
    fn the_signature_manifest_reads_back_its_layers() {
        let layer = SignatureLayer {
            digest: "sha256:ab".into(),
            size: 3,
            signature: "c2ln".into(),
        };
        let built = signature_manifest(std::slice::from_ref(&layer));
        assert_eq!(signature_layers(&built.manifest), [layer]);
        assert_eq!(signature_tag("sha256:ff00"), "sha256-ff00.sig");
    }

    #[test]
    fn keys_of_other_kinds_are_named() {
        let error = SigningKey::from_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----\n",
            None,
            "COSIGN_PASSWORD",
        )
        .unwrap_err();
        assert!(error.to_string().contains("`RSA PRIVATE KEY`"), "{error}");
        let error = SigningKey::from_pem(
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAA==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            None,
            "COSIGN_PASSWORD",
        )
        .unwrap_err();
        assert!(matches!(error, KeyError::SigstoreFormat));
        let error = SigningKey::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n",
            None,
            "COSIGN_PASSWORD",
        )
        .unwrap_err();
        assert!(error.to_string().contains("set COSIGN_PASSWORD"), "{error}");
    }
}
