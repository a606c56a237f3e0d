//! The server's signatures: HMAC-SHA256 under the server's secret (`bootstrap::token_secret`), for access tokens
//! and upload URLs, and the hash that API keys and the master key are stored as. Checks take constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], payload: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(payload);
    mac
}

/// The signature of `payload`.
pub fn sign(secret: &[u8], payload: &[u8]) -> Vec<u8> {
    mac(secret, payload).finalize().into_bytes().to_vec()
}

/// Whether `given` is the signature of `payload`, compared in constant time.
pub fn verify(secret: &[u8], payload: &[u8], given: &[u8]) -> bool {
    mac(secret, payload).verify_slice(given).is_ok()
}

/// How a secret (an API key's value, the master key) is stored: its SHA-256, in hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether two stored hashes are equal, compared in constant time.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_its_payload_under_its_secret() {
        let signature = sign(b"secret", b"payload");
        assert!(verify(b"secret", b"payload", &signature));
        assert!(!verify(b"secret", b"payloaD", &signature));
        assert!(!verify(b"other", b"payload", &signature));
        assert!(!verify(b"secret", b"payload", &signature[..31]));
        assert_eq!(secret_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(same_hash(&secret_hash("k"), &secret_hash("k")) && !same_hash(&secret_hash("k"), &secret_hash("j")));
    }
}
