//! The `--meter-answer` script's modes and the replies of the scripted ones. `ok` and
//! `dry-run-200` go on to the record store; every other mode answers without recording usage.

use crate::answer::{self, Reply};
use crate::aws::AwsError;
use crate::meter;
use crate::script::{Mode, Named, Playlist};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterMode {
    Ok,
    DryRun200,
    NotEntitled,
    InvalidProductCode,
    InvalidUsageDimension,
    InvalidEndpointRegion,
    InvalidTag,
    InvalidUsageAllocations,
    Duplicate,
    TimestampOutOfBounds,
    AccessDenied,
    UnrecognizedClient,
    Throttle,
    InternalError,
    Http502Html,
    Http503Empty,
    NotJson,
    Stall,
    StallBody,
    Reset,
    CloseMidBody,
    ChunkedGarbage,
    NoRead,
    HugeBody,
}

/// The MeterUsage script (`--meter-answer`, `POST /_mock/meter-answer`).
pub type MeterScript = Playlist<MeterMode>;

impl Named for MeterMode {
    const NAMES: &'static [(&'static str, MeterMode)] = &[
        ("ok", MeterMode::Ok),
        ("dry-run-200", MeterMode::DryRun200),
        ("not-entitled", MeterMode::NotEntitled),
        ("invalid-product-code", MeterMode::InvalidProductCode),
        ("invalid-usage-dimension", MeterMode::InvalidUsageDimension),
        ("invalid-endpoint-region", MeterMode::InvalidEndpointRegion),
        ("invalid-tag", MeterMode::InvalidTag),
        (
            "invalid-usage-allocations",
            MeterMode::InvalidUsageAllocations,
        ),
        ("duplicate", MeterMode::Duplicate),
        ("timestamp-out-of-bounds", MeterMode::TimestampOutOfBounds),
        ("access-denied", MeterMode::AccessDenied),
        ("unrecognized-client", MeterMode::UnrecognizedClient),
        ("throttle", MeterMode::Throttle),
        ("internal-error", MeterMode::InternalError),
        ("http-502-html", MeterMode::Http502Html),
        ("http-503-empty", MeterMode::Http503Empty),
        ("not-json", MeterMode::NotJson),
        ("stall", MeterMode::Stall),
        ("stall-body", MeterMode::StallBody),
        ("reset", MeterMode::Reset),
        ("close-mid-body", MeterMode::CloseMidBody),
        ("chunked-garbage", MeterMode::ChunkedGarbage),
        ("no-read", MeterMode::NoRead),
        ("huge-body", MeterMode::HugeBody),
    ];
    const DEFAULT: MeterMode = MeterMode::Ok;
}

impl MeterMode {
    /// The reply of a scripted mode; `None` for `ok` and `dry-run-200`, which meter for real.
    pub fn scripted_reply(self, period_ms: i64) -> Option<Reply> {
        if let Some(mode) = self.same_as_register() {
            return aws_error_reply(answer::aws_error(mode)).or_else(|| answer::http_fault(mode));
        }
        let error = match self {
            MeterMode::Ok | MeterMode::DryRun200 => return None,
            MeterMode::InvalidProductCode => meter::invalid_product_code(),
            MeterMode::InvalidUsageDimension => meter::invalid_usage_dimension(),
            MeterMode::InvalidEndpointRegion => meter::invalid_endpoint_region(),
            MeterMode::InvalidTag => meter::invalid_tag(),
            MeterMode::InvalidUsageAllocations => meter::invalid_usage_allocations(
                "The usage allocation objects are invalid, or the number of allocations is \
                 greater than 500 for a single usage record.",
            ),
            MeterMode::Duplicate => meter::duplicate(period_ms),
            MeterMode::TimestampOutOfBounds => meter::timestamp_out_of_bounds(),
            MeterMode::AccessDenied => AwsError::new(
                400,
                "AccessDeniedException",
                "User is not authorized to perform: aws-marketplace:MeterUsage",
            ),
            _ => return None,
        };
        Some(Reply::Normal(error.response()))
    }

    /// The RegisterUsage mode that answers exactly the same way, if there is one.
    fn same_as_register(self) -> Option<Mode> {
        Some(match self {
            MeterMode::NotEntitled => Mode::NotEntitled,
            MeterMode::UnrecognizedClient => Mode::UnrecognizedClient,
            MeterMode::Throttle => Mode::Throttle,
            MeterMode::InternalError => Mode::InternalError,
            MeterMode::Http502Html => Mode::Http502Html,
            MeterMode::Http503Empty => Mode::Http503Empty,
            MeterMode::NotJson => Mode::NotJson,
            MeterMode::Stall => Mode::Stall,
            MeterMode::StallBody => Mode::StallBody,
            MeterMode::Reset => Mode::Reset,
            MeterMode::CloseMidBody => Mode::CloseMidBody,
            MeterMode::ChunkedGarbage => Mode::ChunkedGarbage,
            MeterMode::NoRead => Mode::NoRead,
            MeterMode::HugeBody => Mode::HugeBody,
            _ => return None,
        })
    }
}

fn aws_error_reply(error: Option<AwsError>) -> Option<Reply> {
    error.map(|e| Reply::Normal(e.response()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Response;

    fn status_and_type(mode: MeterMode) -> Option<(u16, String)> {
        match mode.scripted_reply(3_600_000)? {
            Reply::Normal(Response { status, body, .. }) => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                Some((status, v["__type"].as_str().unwrap_or("").to_string()))
            }
            Reply::Raw(..) => Some((0, "raw".into())),
        }
    }

    #[test]
    fn every_mode_has_a_reply_except_the_metering_ones() {
        for (name, mode) in MeterMode::NAMES {
            let scripted = status_and_type(*mode);
            let metering = matches!(mode, MeterMode::Ok | MeterMode::DryRun200);
            assert_eq!(scripted.is_none(), metering, "{name}");
            assert_eq!(MeterMode::from_name(name), Some(*mode));
        }
    }

    #[test]
    fn errors_are_aws_shaped() {
        use MeterMode::*;
        for (mode, status, name) in [
            (Throttle, 400, "ThrottlingException"),
            (InternalError, 500, "InternalServiceErrorException"),
            (NotEntitled, 400, "CustomerNotEntitledException"),
            (InvalidProductCode, 400, "InvalidProductCodeException"),
            (InvalidUsageDimension, 400, "InvalidUsageDimensionException"),
            (InvalidEndpointRegion, 400, "InvalidEndpointRegionException"),
            (InvalidTag, 400, "InvalidTagException"),
            (
                InvalidUsageAllocations,
                400,
                "InvalidUsageAllocationsException",
            ),
            (AccessDenied, 400, "AccessDeniedException"),
            (Duplicate, 400, "DuplicateRequestException"),
            (TimestampOutOfBounds, 400, "TimestampOutOfBoundsException"),
            (Http503Empty, 503, ""),
            (Reset, 0, "raw"),
            (Stall, 0, "raw"),
        ] {
            assert_eq!(
                status_and_type(mode),
                Some((status, name.into())),
                "{mode:?}"
            );
        }
    }

    #[test]
    fn scripts_parse_with_the_register_syntax() {
        let mut s = MeterScript::parse("throttle*2,dry-run-200,ok").unwrap();
        let played: Vec<_> = (0..5).map(|_| s.take()).collect();
        use MeterMode::*;
        assert_eq!(played, [Throttle, Throttle, DryRun200, Ok, Ok]);
        assert!(MeterScript::parse("wrong-key").is_err());
        assert!(MeterScript::parse("ok*0").is_err());
        assert_eq!(MeterScript::default(), MeterScript::parse("ok").unwrap());
    }
}
