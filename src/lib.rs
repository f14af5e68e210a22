//! `entitle`: AWS Marketplace `RegisterUsage` entitlement check and PID 1 supervisor.
//!
//! The flow, one module per stage, data flowing one way:
//! [`config`] → [`nonce`] → [`register`] → [`verify`] → [`record`] / [`supervise`] (with
//! [`handoff`]).
//! [`exit`] maps every failure to its documented exit code; [`key`], [`verify`] and [`seal`]'s
//! decoding are pure (bytes in, verdict out).
//!
//! # Verifying inside your own service
//!
//! A buyer can override an image's `ENTRYPOINT`, so AWS recommends checking entitlement inside
//! the product too. `entitle run` hands the workload the verified token in `ENTITLE_TOKEN` and
//! the nonce in `ENTITLE_NONCE`; `entitle check --output` writes the same into a record file.
//! Check either at start with the key compiled into your service, exactly as `entitle` does:
//!
//! ```
//! use entitle::{verify, Expected, PublicKey};
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
//! For the record file, [`record::Record::from_json`] gives the `signature` and `nonce` to pass
//! to [`verify`] the same way.

pub mod config;
pub mod exit;
pub mod handoff;
pub mod key;
pub mod logging;
pub mod nonce;
pub mod record;
pub mod register;
pub mod seal;
pub mod supervise;
pub mod verify;

pub use key::PublicKey;
pub use verify::{verify, Entitlement, Expected, Rejection};
