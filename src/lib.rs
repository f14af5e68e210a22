//! `entitle`: AWS Marketplace `RegisterUsage` entitlement check and PID 1 supervisor.
//!
//! The flow, one module per stage, data flowing one way:
//! [`config`] → [`nonce`] → [`register`] → [`verify`] → [`record`] / [`supervise`].
//! [`exit`] maps every failure to its documented exit code; [`key`] and [`verify`] are pure.

pub mod config;
pub mod exit;
pub mod key;
pub mod logging;
pub mod nonce;
pub mod record;
pub mod register;
pub mod seal;
pub mod supervise;
pub mod verify;
