//! `entitle-mock`: a local stand-in for the AWS Marketplace Metering `RegisterUsage` and
//! `MeterUsage` endpoint, with ECS and STS credential stand-ins, scripted answers and fault
//! injection.

pub mod answer;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod control;
pub mod creds;
pub mod duration;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod lane;
pub mod log;
pub mod meter;
pub mod meter_answer;
pub mod meter_store;
pub mod recipe;
pub mod register;
pub mod script;
pub mod server;
pub mod signals;
pub mod sigv4;
pub mod util;
