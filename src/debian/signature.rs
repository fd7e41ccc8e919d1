//! OpenPGP verification of `InRelease` against the keyrings a Debian source recipe names.
//!
//! rPGP checks only the cryptography, so the rules apt (through gpgv) applies on top are
//! here: the signing key or subkey must be bound to its primary key, signing-capable, not
//! revoked and not expired, and the signature itself must not be expired. One good
//! signature from a trusted key is enough; signatures by unknown keys are ignored.

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{Fingerprint, KeyDetails, KeyId, Tag};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Trusted public keys, loaded from armored or binary keyring files.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Why an `InRelease` file or a keyring was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("keyring {name}: {reason}")]
    Keyring { name: String, reason: String },
    #[error("{name} is not a clear-signed OpenPGP message: {reason}")]
    NotSigned { name: String, reason: String },
    #[error("{name} has no valid signature from the trusted keys:\n{details}")]
    NoValidSignature {
        name: String,
        details: String,
        /// A signature names a key of the keyring but does not match the text: the file
        /// was changed after it was signed (not a keyring problem).
        altered: bool,
    },
}

impl Keyring {
    /// Adds the keys of one keyring file (armored, possibly several keys, or binary).
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), SignatureError> {
        let err = |reason: String| SignatureError::Keyring {
            name: name.to_string(),
            reason,
        };
        let keys: Vec<SignedPublicKey> = if bytes.starts_with(b"-----BEGIN PGP") {
            let (iter, _) =
                SignedPublicKey::from_armor_many(bytes).map_err(|e| err(e.to_string()))?;
            iter.collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?
        } else {
            SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?
        };
        if keys.is_empty() {
            return Err(err("holds no public key".into()));
        }
        for key in keys {
            // Third-party certifications (archive keys are cross-signed) are not checked;
            // a key needs one valid self-certification to be used at all.
            if self_certification(&key).is_none() {
                return Err(err(format!(
                    "key {} has no valid self-signature",
                    key.fingerprint()
                )));
            }
            self.keys.push(key);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies a clear-signed file at time `now` and returns the signed text
    /// (dash-unescaped, original line endings). Never returns unsigned content.
    pub fn verify_clearsigned(
        &self,
        name: &str,
        data: &[u8],
        now: SystemTime,
    ) -> Result<String, SignatureError> {
        let text = std::str::from_utf8(data).map_err(|_| SignatureError::NotSigned {
            name: name.to_string(),
            reason: "not UTF-8 text".into(),
        })?;
        let (message, _) =
            CleartextSignedMessage::from_string(text).map_err(|e| SignatureError::NotSigned {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
        let signed = message.signed_text();
        let mut details = Vec::new();
        let mut altered = false;
        if message.signatures().is_empty() {
            details.push("  the file carries no signature".to_string());
        }
        for signature in message.signatures() {
            match self.check_one(signature, signed.as_bytes(), now) {
                Ok(()) => return Ok(dash_unescape(message.text())),
                Err(Refusal::Altered) => {
                    altered = true;
                    details.push(format!(
                        "  signature by {}: the key is in the keyring, but the signature does not match the text: the file was changed after it was signed",
                        issuer(signature)
                    ))
                }
                Err(Refusal::Other(reason)) => {
                    details.push(format!("  signature by {}: {reason}", issuer(signature)))
                }
            }
        }
        Err(SignatureError::NoValidSignature {
            name: name.to_string(),
            details: details.join("\n"),
            altered,
        })
    }

    /// Whether the signature names (by fingerprint or key id) a key or subkey we hold.
    fn names_a_key_of_ours(&self, signature: &Signature) -> bool {
        let fingerprints = signature.issuer_fingerprint();
        let ids = signature.issuer_key_id();
        let ours = |fp: Fingerprint, id: KeyId| fingerprints.contains(&&fp) || ids.contains(&&id);
        self.keys.iter().any(|key| {
            ours(
                key.primary_key.fingerprint(),
                key.primary_key.legacy_key_id(),
            ) || key
                .public_subkeys
                .iter()
                .any(|s| ours(s.key.fingerprint(), s.key.legacy_key_id()))
        })
    }

    fn check_one(
        &self,
        signature: &Signature,
        signed: &[u8],
        now: SystemTime,
    ) -> Result<(), Refusal> {
        let now_secs = secs(now);
        if let (Some(created), Some(expires)) =
            (signature.created(), signature.signature_expiration_time())
            && expires.as_secs() != 0
            && created.as_secs() as u64 + expires.as_secs() as u64 <= now_secs
        {
            return Err(Refusal::Other("the signature has expired".into()));
        }
        // Why the last key whose signature checked out was still refused; `None` while no
        // key of ours verified the signature at all.
        let mut last_reason: Option<String> = None;
        for key in &self.keys {
            if signature.verify(&key.primary_key, signed).is_ok() {
                return check_primary(key, now_secs).map_err(Refusal::Other);
            }
            for subkey in &key.public_subkeys {
                if signature.verify(&subkey.key, signed).is_ok() {
                    let binding = subkey
                        .signatures
                        .iter()
                        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                        .filter(|s| {
                            s.verify_subkey_binding(&key.primary_key, &subkey.key)
                                .is_ok()
                        })
                        .filter(|s| {
                            // A signing subkey must also sign its binding back (the embedded signature).
                            !s.key_flags().sign()
                                || s.embedded_signature().is_some_and(|b| {
                                    b.verify_primary_key_binding(&subkey.key, &key.primary_key)
                                        .is_ok()
                                })
                        })
                        .max_by_key(|s| s.created().map(|t| t.as_secs()));
                    if subkey.signatures.iter().any(|s| {
                        s.typ() == Some(SignatureType::SubkeyRevocation)
                            && s.verify_subkey_binding(&key.primary_key, &subkey.key)
                                .is_ok()
                    }) {
                        return Err(Refusal::Other(format!(
                            "subkey {} is revoked",
                            subkey.key.fingerprint()
                        )));
                    }
                    let Some(binding) = binding else {
                        last_reason = Some(format!(
                            "subkey {} has no binding signature",
                            subkey.key.fingerprint()
                        ));
                        continue;
                    };
                    if !binding.key_flags().sign() {
                        return Err(Refusal::Other(format!(
                            "subkey {} is not a signing key",
                            subkey.key.fingerprint()
                        )));
                    }
                    check_expiry(
                        &subkey.key.fingerprint().to_string(),
                        subkey.key.created_at().as_secs(),
                        binding.key_expiration_time().map(|d| d.as_secs()),
                        now_secs,
                    )
                    .map_err(Refusal::Other)?;
                    return check_primary(key, now_secs).map_err(Refusal::Other);
                }
            }
        }
        Err(match last_reason {
            Some(reason) => Refusal::Other(reason),
            // No key verified it, yet it names one of ours: the text is not what was signed.
            None if self.names_a_key_of_ours(signature) => Refusal::Altered,
            None => Refusal::Other(NOT_IN_KEYRING.into()),
        })
    }
}

fn check_primary(key: &SignedPublicKey, now_secs: u64) -> Result<(), String> {
    let fingerprint = key.primary_key.fingerprint().to_string();
    if !key.details.revocation_signatures.is_empty() {
        return Err(format!("key {fingerprint} is revoked"));
    }
    let self_signature = self_certification(key);
    let expiration = self_signature
        .and_then(|s| s.key_expiration_time())
        .map(|d| d.as_secs());
    check_expiry(
        &fingerprint,
        key.primary_key.created_at().as_secs(),
        expiration,
        now_secs,
    )
}

/// `expiration` is seconds after key creation, as OpenPGP stores it (0 or absent: never).
/// The newest valid self-certification of a key's user ids: it carries the key's expiry.
fn self_certification(key: &SignedPublicKey) -> Option<&Signature> {
    key.details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter().map(move |s| (u, s)))
        .filter(|(u, s)| {
            s.verify_certification(&key.primary_key, Tag::UserId, &u.id)
                .is_ok()
        })
        .map(|(_, s)| s)
        .max_by_key(|s| s.created().map(|t| t.as_secs()))
}

fn check_expiry(
    fingerprint: &str,
    created: u32,
    expiration: Option<u32>,
    now_secs: u64,
) -> Result<(), String> {
    match expiration {
        Some(d) if d != 0 => {
            let expires = created as u64 + d as u64;
            if expires <= now_secs {
                let when = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(expires));
                Err(format!("key {fingerprint} expired on {when}"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

const NOT_IN_KEYRING: &str = "made by a key that is not in the keyring";

/// Why one signature was not accepted.
enum Refusal {
    /// By a key we hold, over other text.
    Altered,
    Other(String),
}

fn issuer(signature: &Signature) -> String {
    if let Some(fp) = signature.issuer_fingerprint().first() {
        return fp.to_string();
    }
    match signature.issuer_key_id().first() {
        Some(id) => format!("{id:?}"),
        None => "an unnamed key".into(),
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Undoes the cleartext framework's dash-escaping (`- -foo` → `-foo`).
fn dash_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(line.strip_prefix("- ").unwrap_or(line));
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}
