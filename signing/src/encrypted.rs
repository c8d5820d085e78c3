//! go-securesystemslib's `encrypted` envelope, which cosign wraps its
//! private keys in: scrypt derives a 32-byte key from the passphrase, NaCl
//! secretbox (XSalsa20-Poly1305) seals the PKCS#8 DER, and a JSON object
//! carries the parameters:
//!
//! `{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":B64},`
//! `"cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}`
//!
//! (Go's `json.Marshal`: this field order, no spaces, standard padded
//! base64 for `[]byte`). The secretbox output is NaCl's: the 16-byte
//! Poly1305 tag, then the ciphertext.

use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::KeyError;

/// The name go-securesystemslib gives its KDF.
pub const KDF_SCRYPT: &str = "scrypt";
/// The name go-securesystemslib gives its cipher.
pub const CIPHER_SECRETBOX: &str = "nacl/secretbox";
/// Salt length go-securesystemslib writes.
pub const SALT_LEN: usize = 32;
/// XSalsa20's nonce length.
pub const NONCE_LEN: usize = 24;

/// The scrypt parameter sets go-securesystemslib accepts (and so cosign):
/// anything else is refused before deriving, as a tampered envelope could
/// otherwise ask for gigabytes of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScryptStrength {
    /// N=2^15, r=8, p=1 (cosign's keys before go-securesystemslib 0.6).
    Legacy,
    /// N=2^16, r=8, p=1: what `cosign generate-key-pair` writes today.
    Standard,
    /// N=2^17, r=8, p=1.
    Owasp,
}

impl ScryptStrength {
    fn log_n(self) -> u8 {
        match self {
            ScryptStrength::Legacy => 15,
            ScryptStrength::Standard => 16,
            ScryptStrength::Owasp => 17,
        }
    }

    fn from_params(p: &ScryptParams) -> Option<Self> {
        if p.r != 8 || p.p != 1 {
            return None;
        }
        match p.n {
            32768 => Some(ScryptStrength::Legacy),
            65536 => Some(ScryptStrength::Standard),
            131072 => Some(ScryptStrength::Owasp),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("a field is not standard base64"))
    }
}

fn derive_key(
    passphrase: &[u8],
    salt: &[u8],
    strength: ScryptStrength,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut key = Zeroizing::new([0u8; 32]);
    // The three parameter sets are all valid for scrypt: these calls cannot
    // fail, but the errors are mapped rather than unwrapped.
    let params = scrypt::Params::new(strength.log_n(), 8, 1, 32)
        .map_err(|e| KeyError::Random(format!("scrypt parameters: {e}")))?;
    scrypt::scrypt(passphrase, salt, &params, key.as_mut())
        .map_err(|e| KeyError::Random(format!("scrypt output length: {e}")))?;
    Ok(key)
}

/// Seals `plaintext` under `passphrase` with the given salt and nonce (fresh
/// random ones in normal use; fixed ones only make tests repeatable).
pub fn encrypt_with(
    plaintext: &[u8],
    passphrase: &[u8],
    strength: ScryptStrength,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, KeyError> {
    let key = derive_key(passphrase, &salt, strength)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt((&nonce).into(), plaintext)
        .map_err(|_| KeyError::Random("secretbox refused to seal".into()))?;
    let envelope = Envelope {
        kdf: Kdf {
            name: KDF_SCRYPT.into(),
            params: ScryptParams {
                n: 1 << strength.log_n(),
                r: 8,
                p: 1,
            },
            salt: salt.to_vec(),
        },
        cipher: Cipher {
            name: CIPHER_SECRETBOX.into(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    serde_json::to_vec(&envelope).map_err(|e| KeyError::Random(format!("envelope JSON: {e}")))
}

/// Seals `plaintext` with a fresh random salt and nonce at cosign's
/// default strength.
pub fn encrypt(plaintext: &[u8], passphrase: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    getrandom_fill(&mut salt)?;
    getrandom_fill(&mut nonce)?;
    encrypt_with(plaintext, passphrase, ScryptStrength::Standard, salt, nonce)
}

pub(crate) fn getrandom_fill(buf: &mut [u8]) -> Result<(), KeyError> {
    use rand_core::RngCore as _;
    rand_core::OsRng
        .try_fill_bytes(buf)
        .map_err(|e| KeyError::Random(e.to_string()))
}

/// Opens an envelope written by [`encrypt`] or by cosign. `what` names the
/// key in errors.
pub fn decrypt(
    envelope: &[u8],
    passphrase: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let bad = |reason: String| KeyError::Envelope {
        what: what.to_string(),
        reason,
    };
    // serde_json's messages name the field and position, never its value.
    let envelope: Envelope =
        serde_json::from_slice(envelope).map_err(|e| bad(format!("JSON: {e}")))?;
    if envelope.kdf.name != KDF_SCRYPT {
        return Err(bad(format!(
            "kdf name {:?}, expected {KDF_SCRYPT:?}",
            envelope.kdf.name
        )));
    }
    if envelope.cipher.name != CIPHER_SECRETBOX {
        return Err(bad(format!(
            "cipher name {:?}, expected {CIPHER_SECRETBOX:?}",
            envelope.cipher.name
        )));
    }
    let strength = ScryptStrength::from_params(&envelope.kdf.params).ok_or_else(|| {
        KeyError::ScryptParams {
            what: what.to_string(),
            n: envelope.kdf.params.n,
            r: envelope.kdf.params.r,
            p: envelope.kdf.params.p,
        }
    })?;
    let nonce: [u8; NONCE_LEN] = envelope.cipher.nonce.as_slice().try_into().map_err(|_| {
        bad(format!(
            "cipher nonce of {} bytes, expected {NONCE_LEN}",
            envelope.cipher.nonce.len()
        ))
    })?;
    let key = derive_key(passphrase, &envelope.kdf.salt, strength)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt((&nonce).into(), envelope.ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::WrongPassphrase {
            what: what.to_string(),
        })
}
