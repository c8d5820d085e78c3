//! Signing: the names cosign and the tools that read its signatures fix,
//! and build-image's own flags around them.

/// cosign's environment variable for a key's passphrase (read by
/// `build-image keygen` and `build-image --sign-key` as by cosign).
pub const ENV_COSIGN_PASSWORD: &str = "COSIGN_PASSWORD";

/// Flag naming the private key a build signs with.
pub const FLAG_SIGN_KEY: &str = "--sign-key";

/// Flag naming a file whose first line is the key's passphrase.
pub const FLAG_SIGN_KEY_PASSPHRASE_FILE: &str = "--sign-key-passphrase-file";

/// Suffix of the private key `keygen PREFIX` writes (as cosign's
/// `generate-key-pair`: `cosign.key`).
pub const PRIVATE_KEY_SUFFIX: &str = ".key";

/// Suffix of the public key `keygen PREFIX` writes (`cosign.pub`).
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";
