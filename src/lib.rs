//! `entitle`: AWS Marketplace `RegisterUsage` entitlement check and PID 1 supervisor.
//!
//! The flow, one module per stage, data flowing one way:
//! [`config`] → [`nonce`] → [`register`] → [`verify`] → [`record`] / [`supervise`].
//! [`exit`] maps every failure to its documented exit code.

pub mod exit;
pub mod verify;
pub mod supervise;
