//! Pure PS256 token verification (bytes in, verdict out; no I/O).

/// A verified entitlement: the token AWS returned and what it was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub product_code: String,
    pub public_key_version: u64,
    pub nonce: String,
    /// The JWT exactly as received.
    pub token: String,
    /// The token's `iat` claim (seconds since the epoch), if present.
    pub issued_at: Option<i64>,
}
