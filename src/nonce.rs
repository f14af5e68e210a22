//! A fresh nonce per start, so a token recorded earlier cannot be replayed (RegisterUsage API
//! reference: the nonce is there "to guard against replay attacks").

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::SysRng;
use rand::TryRng;

/// 32 bytes from the operating system's CSPRNG: 256 bits, 43 URL-safe characters (limit 255).
pub const NONCE_BYTES: usize = 32;

pub fn fresh() -> Result<String, String> {
    let mut bytes = [0u8; NONCE_BYTES];
    SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("the operating system's random generator failed: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_url_safe_long_enough_and_distinct() {
        let a = fresh().unwrap();
        let b = fresh().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a.len() <= 255);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
