//! `entitle-verify`: check an AWS Marketplace `RegisterUsage` token inside your own product.
//!
//! Pure (bytes in, verdict out): no I/O, no AWS SDK, no async runtime. It is the verification
//! core of `entitle` and does exactly what `entitle` does before it lets a
//! workload start: the token must be a compact JWS signed with PS256 (RSASSA-PSS, SHA-256, salt
//! 32, RFC 7518 §3.5) by your product's RSA key, and its `productCode`, `publicKeyVersion` and
//! `nonce` claims must equal what was sent to `RegisterUsage`.
//!
//! A buyer can override an image's `ENTRYPOINT`, so AWS recommends checking entitlement inside
//! the product too. `entitle run` hands the workload the verified token in `ENTITLE_TOKEN` and
//! the nonce in `ENTITLE_NONCE`; `entitle check --output` writes the same into a record file
//! ([`Record`]). Check either at start with the key compiled into your service:
//!
//! ```
//! use entitle_verify::{verify, Expected, PublicKey};
//!
//! // Your product's key, compiled in (never taken from the environment, which the buyer controls).
//! const PRODUCT_KEY: &str = include_str!("../tests/data/vector-public.pem");
//! let key = PublicKey::from_pem(PRODUCT_KEY).expect("the product key parses");
//!
//! // In the workload: std::env::var("ENTITLE_TOKEN") and std::env::var("ENTITLE_NONCE").
//! let token = include_str!("../tests/data/vector.jwt").trim();
//! let nonce = "vector-nonce-0001";
//!
//! let expected = Expected { product_code: "prod-example", public_key_version: 1, nonce };
//! let entitlement = verify(token, &key, &expected).expect("entitled");
//! assert_eq!(entitlement.issued_at, Some(1764472500));
//!
//! // A token for another product (say, your free listing) or another start is refused.
//! let free = Expected { product_code: "prod-free", ..expected };
//! assert!(verify(token, &key, &free).is_err());
//! let replay = Expected { nonce: "an-earlier-nonce", ..expected };
//! assert!(verify(token, &key, &replay).is_err());
//! ```
//!
//! For the record file, [`Record::from_json`] gives the `signature` and `nonce` to pass to
//! [`verify`] the same way.

pub mod key;
pub mod record;
pub mod token;

pub use key::PublicKey;
pub use record::Record;
pub use token::{verify, Entitlement, Expected, Rejection, MAX_TOKEN_BYTES};
