//! The MeterUsage request body (awsJson 1.1) with its model constraints, and the errors
//! MeterUsage answers with.

use serde_json::{Map, Number, Value};

use crate::aws::{constraint, not_null, serialization, AwsError};
use crate::duration;
use crate::register::check_product_code;

pub const TARGET: &str = "AWSMPMeteringService.MeterUsage";
const MAX_QUANTITY: i64 = 2_147_483_647;
const MAX_ALLOCATIONS: usize = 2500;
const MAX_TAGS: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct MeterRequest {
    pub product_code: String,
    /// Epoch seconds, possibly fractional.
    pub timestamp: f64,
    /// The Timestamp member exactly as sent, for the record listing.
    pub timestamp_sent: Value,
    pub dimension: String,
    pub quantity: i64,
    /// `None` when the request had no UsageAllocations.
    pub allocations: Option<Vec<Allocation>>,
    pub dry_run: bool,
    /// `ClientToken`: the same token again must come with the same parameters.
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allocation {
    pub quantity: i64,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Parses the body and checks what the service model constrains (types, presence, lengths,
/// ranges). What the service itself decides (tags, allocation sums, windows) is [`check_usage`]'s
/// and the record store's.
pub fn parse_body(body: &[u8]) -> Result<MeterRequest, AwsError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| serialization(format!("Request body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(serialization("Request body must be a JSON object"));
    };
    let product_code = required_string(&map, "ProductCode", "productCode")?;
    check_product_code(&product_code)?;
    let (timestamp, timestamp_sent) = timestamp(&map)?;
    let dimension = required_string(&map, "UsageDimension", "usageDimension")?;
    if !(1..=255).contains(&dimension.chars().count()) {
        return Err(constraint(
            &dimension,
            "usageDimension",
            "Member must have length between 1 and 255",
        ));
    }
    let quantity = match present(&map, "UsageQuantity") {
        None => 0,
        Some(v) => quantity(v, "UsageQuantity", "usageQuantity")?,
    };
    Ok(MeterRequest {
        product_code,
        timestamp,
        timestamp_sent,
        dimension,
        quantity,
        allocations: allocations(&map)?,
        dry_run: dry_run(&map)?,
        client_token: client_token(&map)?,
    })
}

/// `ClientToken`: 1..64 characters (the service model's constraint).
fn client_token(map: &Map<String, Value>) -> Result<Option<String>, AwsError> {
    match present(map, "ClientToken") {
        None => Ok(None),
        Some(Value::String(token)) if (1..=64).contains(&token.chars().count()) => {
            Ok(Some(token.clone()))
        }
        Some(Value::String(token)) => Err(constraint(
            token,
            "clientToken",
            "Member must have length between 1 and 64",
        )),
        Some(_) => Err(serialization("ClientToken must be a string")),
    }
}

/// The member's value unless it is absent or null.
fn present<'m>(map: &'m Map<String, Value>, member: &str) -> Option<&'m Value> {
    map.get(member).filter(|v| !v.is_null())
}

fn required_string(map: &Map<String, Value>, member: &str, path: &str) -> Result<String, AwsError> {
    match present(map, member) {
        None => Err(not_null(path)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(serialization(format!("{member} must be a string"))),
    }
}

fn timestamp(map: &Map<String, Value>) -> Result<(f64, Value), AwsError> {
    let sent = present(map, "Timestamp").ok_or_else(|| not_null("timestamp"))?;
    let seconds = sent.as_f64().filter(|t| t.is_finite()).ok_or_else(|| {
        serialization("Timestamp must be a number of seconds since the epoch (awsJson)")
    })?;
    Ok((seconds, sent.clone()))
}

/// An integer from 0 to 2147483647. Non-integers are a SerializationException; integers out of
/// range, however large, a ValidationException.
fn quantity(value: &Value, member: &str, path: &str) -> Result<i64, AwsError> {
    let not_integer = || serialization(format!("{member} must be an integer"));
    let Value::Number(n) = value else {
        return Err(not_integer());
    };
    let q = integer(n).ok_or_else(not_integer)?;
    if q < 0 {
        let rule = "Member must have value greater than or equal to 0";
        return Err(constraint(&n.to_string(), path, rule));
    }
    if q > MAX_QUANTITY {
        let rule = "Member must have value less than or equal to 2147483647";
        return Err(constraint(&n.to_string(), path, rule));
    }
    Ok(q)
}

/// The number as an integer, saturating beyond i64; `None` when it has a fraction.
fn integer(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    (f.is_finite() && f.fract() == 0.0).then_some(f as i64)
}

fn allocations(map: &Map<String, Value>) -> Result<Option<Vec<Allocation>>, AwsError> {
    let list = match present(map, "UsageAllocations") {
        None => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(serialization("UsageAllocations must be a list")),
    };
    if list.is_empty() || list.len() > MAX_ALLOCATIONS {
        let rule = format!("Member must have length between 1 and {MAX_ALLOCATIONS}");
        return Err(constraint(
            &format!("({} items)", list.len()),
            "usageAllocations",
            &rule,
        ));
    }
    list.iter()
        .map(allocation)
        .collect::<Result<_, _>>()
        .map(Some)
}

fn allocation(value: &Value) -> Result<Allocation, AwsError> {
    let Value::Object(map) = value else {
        return Err(serialization("UsageAllocations members must be objects"));
    };
    let path = "usageAllocations.member.allocatedUsageQuantity";
    let quantity = match present(map, "AllocatedUsageQuantity") {
        None => return Err(not_null(path)),
        Some(v) => quantity(v, "AllocatedUsageQuantity", path)?,
    };
    let tags = match present(map, "Tags") {
        None => Vec::new(),
        Some(Value::Array(list)) => list.iter().map(tag).collect::<Result<_, _>>()?,
        Some(_) => return Err(serialization("Tags must be a list")),
    };
    Ok(Allocation { quantity, tags })
}

fn tag(value: &Value) -> Result<Tag, AwsError> {
    let Value::Object(map) = value else {
        return Err(serialization("Tags members must be objects"));
    };
    Ok(Tag {
        key: required_string(map, "Key", "usageAllocations.member.tags.member.key")?,
        value: required_string(map, "Value", "usageAllocations.member.tags.member.value")?,
    })
}

fn dry_run(map: &Map<String, Value>) -> Result<bool, AwsError> {
    match present(map, "DryRun") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(serialization("DryRun must be a boolean")),
    }
}

/// The service's own checks on the allocations: valid tags (at most 5 per allocation, unique
/// keys, AWS's lengths and characters) and quantities that add up to UsageQuantity.
pub fn check_allocations(req: &MeterRequest) -> Result<(), AwsError> {
    let Some(allocations) = &req.allocations else {
        return Ok(());
    };
    for allocation in allocations {
        check_tags(&allocation.tags)?;
    }
    let sum: i64 = allocations.iter().map(|a| a.quantity).sum();
    if sum != req.quantity {
        return Err(invalid_usage_allocations(&format!(
            "The sum of AllocatedUsageQuantity ({sum}) does not equal UsageQuantity ({}).",
            req.quantity
        )));
    }
    Ok(())
}

fn check_tags(tags: &[Tag]) -> Result<(), AwsError> {
    if tags.len() > MAX_TAGS {
        return Err(invalid_tag());
    }
    for (i, tag) in tags.iter().enumerate() {
        let fits = |text: &str, max: usize| {
            (1..=max).contains(&text.chars().count()) && text.chars().all(tag_char)
        };
        let repeated = tags[..i].iter().any(|t| t.key == tag.key);
        if repeated || !fits(&tag.key, 100) || !fits(&tag.value, 256) {
            return Err(invalid_tag());
        }
    }
    Ok(())
}

/// AWS's tag pattern `^[a-zA-Z0-9+ -=._:\/@]+$` (where ` -=` is the range from space to `=`).
fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || (' '..='=').contains(&c) || "+._:/@".contains(c)
}

pub fn invalid_product_code() -> AwsError {
    AwsError::new(
        400,
        "InvalidProductCodeException",
        "The product code passed does not match the product code used for publishing the product.",
    )
}

pub fn invalid_usage_dimension() -> AwsError {
    AwsError::new(
        400,
        "InvalidUsageDimensionException",
        "The usage dimension does not match one of the UsageDimensions associated with products.",
    )
}

pub fn timestamp_out_of_bounds() -> AwsError {
    AwsError::new(
        400,
        "TimestampOutOfBoundsException",
        "The timestamp value passed in the UsageRecord is out of allowed range.",
    )
}

/// AWS's wording names the hour; other `--period`s are named by their length.
/// A `ClientToken` reused with different parameters.
pub fn idempotency_conflict() -> AwsError {
    AwsError::new(
        400,
        "IdempotencyConflictException",
        "The ClientToken is being used for multiple requests.",
    )
}

pub fn duplicate(period_ms: i64) -> AwsError {
    let when = match period_ms {
        3_600_000 => "this hour".to_string(),
        ms => format!("this period ({})", duration::format(ms)),
    };
    AwsError::new(
        400,
        "DuplicateRequestException",
        format!(
            "A metering record has already been created with the same product code, customer \
             and usage dimension for {when}."
        ),
    )
}

pub fn invalid_tag() -> AwsError {
    AwsError::new(
        400,
        "InvalidTagException",
        "The tag is invalid, or the number of tags is greater than 5.",
    )
}

pub fn invalid_usage_allocations(message: &str) -> AwsError {
    AwsError::new(400, "InvalidUsageAllocationsException", message)
}

pub fn invalid_endpoint_region() -> AwsError {
    AwsError::new(
        400,
        "InvalidEndpointRegionException",
        "The endpoint being called is in a AWS Region different from your EC2 instance, ECS task, \
         or EKS pod. The Region of the Metering Service endpoint and the AWS Region of the \
         resource must match.",
    )
}

pub fn dry_run_operation() -> AwsError {
    AwsError::new(
        400,
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<MeterRequest, AwsError> {
        parse_body(body.to_string().as_bytes())
    }

    fn err(body: Value) -> &'static str {
        parse(body).unwrap_err().name
    }

    fn base() -> Value {
        json!({"ProductCode": "prod-1", "Timestamp": 1_800_000_000, "UsageDimension": "cpu"})
    }

    fn with(member: &str, value: Value) -> Value {
        let mut body = base();
        body[member] = value;
        body
    }

    fn without(member: &str) -> Value {
        let mut body = base();
        body.as_object_mut().unwrap().remove(member);
        body
    }

    #[test]
    fn accepts_what_the_sdk_sends() {
        let r = parse(base()).unwrap();
        assert_eq!(r.product_code, "prod-1");
        assert_eq!(r.timestamp, 1_800_000_000.0);
        assert_eq!(r.timestamp_sent, json!(1_800_000_000));
        assert_eq!(r.dimension, "cpu");
        assert_eq!((r.quantity, r.allocations, r.dry_run), (0, None, false));
        let r = parse(json!({
            "ProductCode": "p", "Timestamp": 1_800_000_000.25, "UsageDimension": "d",
            "UsageQuantity": 7, "DryRun": true,
            "UsageAllocations": [
                {"AllocatedUsageQuantity": 3, "Tags": [{"Key": "team", "Value": "a"}]},
                {"AllocatedUsageQuantity": 4}
            ]
        }))
        .unwrap();
        assert_eq!(r.timestamp, 1_800_000_000.25);
        assert_eq!(r.quantity, 7);
        assert!(r.dry_run);
        let allocations = r.allocations.unwrap();
        assert_eq!(allocations[0].tags[0].key, "team");
        assert_eq!(allocations[1].tags, []);
        let nulls = json!({"ProductCode": "p", "Timestamp": 1, "UsageDimension": "d",
            "UsageQuantity": null, "UsageAllocations": null, "DryRun": null});
        assert_eq!(parse(nulls).unwrap().quantity, 0);
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        assert_eq!(
            parse_body(b"not json").unwrap_err().name,
            "SerializationException"
        );
        assert_eq!(
            parse_body(b"[]").unwrap_err().name,
            "SerializationException"
        );
        assert_eq!(
            parse_body(b"{\"Timestamp\": NaN}").unwrap_err().name,
            "SerializationException"
        );
        assert_eq!(
            parse_body(b"{\"ProductCode\":\"p\",\"UsageDimension\":\"d\",\"Timestamp\":1e999}")
                .unwrap_err()
                .name,
            "SerializationException"
        );
        for (member, value) in [
            ("ProductCode", json!(1)),
            ("Timestamp", json!("2026-12-03T10:00:00Z")),
            ("Timestamp", json!(true)),
            ("UsageDimension", json!(["d"])),
            ("UsageQuantity", json!(1.5)),
            ("UsageQuantity", json!("1")),
            ("UsageAllocations", json!({})),
            ("UsageAllocations", json!([1])),
            ("UsageAllocations", json!([{"AllocatedUsageQuantity": "1"}])),
            (
                "UsageAllocations",
                json!([{"AllocatedUsageQuantity": 0, "Tags": "x"}]),
            ),
            (
                "UsageAllocations",
                json!([{"AllocatedUsageQuantity": 0, "Tags": [{"Key": 1, "Value": "v"}]}]),
            ),
            ("DryRun", json!("true")),
        ] {
            assert_eq!(
                err(with(member, value.clone())),
                "SerializationException",
                "{member} = {value}"
            );
        }
    }

    #[test]
    fn model_constraints_are_validation_errors() {
        for member in ["ProductCode", "Timestamp", "UsageDimension"] {
            assert_eq!(err(without(member)), "ValidationException", "{member}");
            assert_eq!(err(with(member, Value::Null)), "ValidationException");
        }
        for (member, value) in [
            ("ProductCode", json!("")),
            ("ProductCode", json!("p q")),
            ("UsageDimension", json!("")),
            ("UsageDimension", json!("d".repeat(256))),
            ("UsageQuantity", json!(-1)),
            ("UsageQuantity", json!(2_147_483_648_i64)),
            ("UsageQuantity", json!(u64::MAX)),
            ("UsageQuantity", json!(1e30)),
            ("UsageAllocations", json!([])),
            ("UsageAllocations", json!([{"Tags": []}])),
            ("UsageAllocations", json!([{"AllocatedUsageQuantity": -5}])),
            (
                "UsageAllocations",
                json!([{"AllocatedUsageQuantity": 0, "Tags": [{"Key": "k"}]}]),
            ),
        ] {
            assert_eq!(
                err(with(member, value.clone())),
                "ValidationException",
                "{member} = {value}"
            );
        }
        let big = parse_body(
            br#"{"ProductCode":"p","Timestamp":1,"UsageDimension":"d","UsageQuantity":100000000000000000000000}"#,
        );
        assert_eq!(big.unwrap_err().name, "ValidationException");
        assert_eq!(
            parse(with("UsageQuantity", json!(2_147_483_647)))
                .unwrap()
                .quantity,
            2_147_483_647
        );
    }

    fn allocated(quantity: i64, allocations: Value) -> MeterRequest {
        let mut body = with("UsageAllocations", allocations);
        body["UsageQuantity"] = json!(quantity);
        parse(body).unwrap()
    }

    #[test]
    fn allocations_must_add_up() {
        let split = json!([{"AllocatedUsageQuantity": 3}, {"AllocatedUsageQuantity": 4}]);
        assert!(check_allocations(&allocated(7, split.clone())).is_ok());
        let e = check_allocations(&allocated(8, split)).unwrap_err();
        assert_eq!(e.name, "InvalidUsageAllocationsException");
        assert!(
            e.message.contains("(7)") && e.message.contains("(8)"),
            "{e:?}"
        );
        assert!(check_allocations(&parse(base()).unwrap()).is_ok());
    }

    #[test]
    fn tags_are_checked() {
        let tags = |tags: Value| json!([{"AllocatedUsageQuantity": 1, "Tags": tags}]);
        let tag = |k: &str, v: &str| json!({"Key": k, "Value": v});
        let ok = tags(json!([
            tag(&"k".repeat(100), &"v".repeat(256)),
            tag("team", "a b/c:d=e@f+g.h_i-j;")
        ]));
        assert!(check_allocations(&allocated(1, ok)).is_ok());
        for bad in [
            json!((0..6)
                .map(|i| tag(&format!("k{i}"), "v"))
                .collect::<Vec<_>>()),
            json!([tag("k", "v"), tag("k", "w")]),
            json!([tag("", "v")]),
            json!([tag("k", "")]),
            json!([tag("k", "why?")]),
            json!([tag("k", "é")]),
            json!([tag(&"k".repeat(101), "v")]),
            json!([tag("k", &"v".repeat(257))]),
        ] {
            let e = check_allocations(&allocated(1, tags(bad.clone()))).unwrap_err();
            assert_eq!(e.name, "InvalidTagException", "{bad}");
        }
    }

    #[test]
    fn duplicate_message_names_the_period() {
        assert!(duplicate(3_600_000).message.ends_with("for this hour."));
        assert!(duplicate(600_000)
            .message
            .ends_with("for this period (10m)."));
    }
}
