//! `entitle`: AWS Marketplace `RegisterUsage` entitlement check and PID 1 supervisor.
//!
//! The flow, one module per stage, data flowing one way:
//! [`cli`] → [`config`] → [`check`] ([`nonce`] → [`register`] → [`verify`] → [`record`]) →
//! [`supervise`] (with [`handoff`]). Metering runs beside the supervisor, started and stopped by
//! [`meter`]: [`journal`] (over the pure [`ledger`]) → [`relay`] → [`sender`]; [`usage`] is the
//! workload's client. [`aws`] and [`transport`] carry every call to AWS. [`exit`] maps every
//! failure to its documented exit code in one place; [`seal`] and [`install`] are the vendor's
//! build-time commands.
//!
//! The pure verification core (key parsing, PS256, claims, the record format) is its own crate,
//! `entitle-verify`, for products that check entitlement in-process without the AWS SDK.

pub mod aws;
pub mod check;
pub mod cli;
pub mod config;
pub mod exit;
pub mod handoff;
pub mod install;
pub mod journal;
pub mod ledger;
pub mod logging;
pub mod meter;
pub mod nonce;
pub mod record;
pub mod register;
pub mod relay;
pub mod seal;
pub mod sender;
pub mod supervise;
pub mod transport;
pub mod usage;
pub mod verify;

/// Seconds since 1970 by this node's clock (0 for a clock set before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
