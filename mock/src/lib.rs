//! `entitle-mock`: a local stand-in for the AWS Marketplace Metering `RegisterUsage` endpoint,
//! with ECS and STS credential stand-ins, scripted answers and fault injection.

pub mod answer;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod creds;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod log;
pub mod register;
pub mod script;
pub mod server;
pub mod sigv4;
pub mod util;
