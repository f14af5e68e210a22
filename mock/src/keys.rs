//! The signing key: loaded from PEM or generated, and written out as PEM.

use std::path::Path;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::PrivateKey;

pub fn generate(bits: usize) -> Result<PrivateKey, String> {
    PrivateKey::new(&mut rand::rngs::SysRng, bits)
        .map_err(|e| format!("cannot generate a {bits}-bit RSA key: {e}"))
}

/// Reads a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM file.
pub fn load(path: &Path) -> Result<PrivateKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read private key {}: {e}", path.display()))?;
    let parsed = if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        PrivateKey::from_pkcs1_pem(&text).map_err(|e| e.to_string())
    } else if text.contains("-----BEGIN PRIVATE KEY-----") {
        PrivateKey::from_pkcs8_pem(&text).map_err(|e| e.to_string())
    } else {
        Err("no 'BEGIN PRIVATE KEY' or 'BEGIN RSA PRIVATE KEY' block".into())
    };
    parsed.map_err(|e| format!("cannot load private key {}: {e}", path.display()))
}

/// SPKI PEM (`BEGIN PUBLIC KEY`), LF line endings.
pub fn public_pem(key: &PrivateKey) -> Result<String, String> {
    key.to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the public key: {e}"))
}

/// PKCS#8 PEM (`BEGIN PRIVATE KEY`), LF line endings.
pub fn private_pem(key: &PrivateKey) -> Result<String, String> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| format!("cannot encode the private key: {e}"))
}

pub fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;

    #[test]
    fn pem_round_trips_in_both_private_formats() {
        let key = generate(1024).unwrap();
        let dir = std::env::temp_dir().join(format!("entitle-mock-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pkcs8 = dir.join("k8.pem");
        let pkcs1 = dir.join("k1.pem");
        write(&pkcs8, &private_pem(&key).unwrap()).unwrap();
        let pkcs1_text = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        write(&pkcs1, &pkcs1_text).unwrap();
        assert_eq!(load(&pkcs8).unwrap().n(), key.n());
        assert_eq!(load(&pkcs1).unwrap().n(), key.n());
        assert!(public_pem(&key)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\n"));
        write(&pkcs1, "junk").unwrap();
        assert!(load(&pkcs1).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
