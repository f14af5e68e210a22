//! MeterUsage records as AWS keeps them: one per (usage dimension, period), idempotent for an
//! identical request, accepted only for recent periods. The clock is passed in (`now`, epoch
//! seconds) so that all of it can be tested without waiting.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::aws::AwsError;
use crate::clock;
use crate::meter::{self, Allocation, MeterRequest};
use crate::util::request_id;

/// AWS accepts usage up to six hours after its hour: six periods here.
const LATE_PERIODS: i128 = 6;
/// How far a timestamp may be ahead of the mock's clock.
const FUTURE_SLACK_SECS: f64 = 5.0;

/// What the vendor's product allows, from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub period_ms: i64,
    /// `None` accepts any dimension.
    pub dimensions: Option<Vec<String>>,
    /// `None` accepts any product code.
    pub product_code: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            period_ms: 3_600_000,
            dimensions: None,
            product_code: None,
        }
    }
}

impl Policy {
    fn check(&self, req: &MeterRequest) -> Result<(), AwsError> {
        if self
            .product_code
            .as_ref()
            .is_some_and(|code| *code != req.product_code)
        {
            return Err(meter::invalid_product_code());
        }
        if self
            .dimensions
            .as_ref()
            .is_some_and(|known| !known.contains(&req.dimension))
        {
            return Err(meter::invalid_usage_dimension());
        }
        meter::check_allocations(req)
    }

    /// The period the timestamp falls in, if it is neither in the future nor too late.
    pub fn period_of(&self, timestamp: f64, now: f64) -> Result<i64, AwsError> {
        if timestamp.is_nan() || timestamp > now + FUTURE_SLACK_SECS {
            return Err(meter::timestamp_out_of_bounds());
        }
        // Float-to-int casts saturate, so absurd timestamps stay absurd rather than wrapping.
        let index = ((timestamp * 1000.0).floor() as i64).div_euclid(self.period_ms);
        let period = i128::from(self.period_ms);
        let late_limit = (i128::from(index) + 1 + LATE_PERIODS) * period;
        if i128::from((now * 1000.0).floor() as i64) >= late_limit {
            return Err(meter::timestamp_out_of_bounds());
        }
        Ok(index)
    }

    /// Start of period `index`, in milliseconds since the epoch.
    pub fn start_ms(&self, index: i64) -> i64 {
        index.saturating_mul(self.period_ms)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub dimension: String,
    pub period: i64,
    pub product_code: String,
    pub timestamp: f64,
    pub timestamp_sent: Value,
    pub quantity: i64,
    /// Sorted, so that the same allocations in another order count as the same request.
    pub allocations: Option<Vec<Allocation>>,
    pub client_token: Option<String>,
    pub id: String,
}

impl Stored {
    fn new(req: &MeterRequest, period: i64) -> Stored {
        Stored {
            dimension: req.dimension.clone(),
            period,
            product_code: req.product_code.clone(),
            timestamp: req.timestamp,
            timestamp_sent: req.timestamp_sent.clone(),
            quantity: req.quantity,
            allocations: sorted(&req.allocations),
            client_token: req.client_token.clone(),
            id: request_id(),
        }
    }

    fn same_request(&self, req: &MeterRequest) -> bool {
        self.product_code == req.product_code
            && self.timestamp == req.timestamp
            && self.quantity == req.quantity
            && self.allocations == sorted(&req.allocations)
    }
}

fn sorted(allocations: &Option<Vec<Allocation>>) -> Option<Vec<Allocation>> {
    allocations.clone().map(|mut list| {
        for allocation in &mut list {
            allocation.tags.sort();
        }
        list.sort();
        list
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A new record.
    Created(Stored),
    /// The identical request again: the existing record's id, nothing counted.
    Repeated(String),
    /// DryRun was set and the request would have succeeded.
    DryRun,
}

#[derive(Debug, Default)]
pub struct Store {
    /// Keyed by (period, dimension), so that listings come out in time order.
    records: BTreeMap<(i64, String), Stored>,
}

impl Store {
    /// Applies AWS's checks in order, then records the usage unless it is a dry run.
    pub fn meter(
        &mut self,
        req: &MeterRequest,
        policy: &Policy,
        now: f64,
    ) -> Result<Outcome, AwsError> {
        policy.check(req)?;
        let period = policy.period_of(req.timestamp, now)?;
        if let Some(token) = &req.client_token {
            // A token names one request: reused with other parameters it is a conflict; with
            // the same ones it is a retry and gets the first answer.
            let earlier = self
                .records
                .values()
                .find(|r| r.client_token.as_deref() == Some(token.as_str()));
            if let Some(earlier) = earlier {
                let same = earlier.period == period
                    && earlier.dimension == req.dimension
                    && earlier.same_request(req);
                return match (same, req.dry_run) {
                    (false, _) => Err(meter::idempotency_conflict()),
                    (true, true) => Ok(Outcome::DryRun),
                    (true, false) => Ok(Outcome::Repeated(earlier.id.clone())),
                };
            }
        }
        let key = (period, req.dimension.clone());
        if let Some(existing) = self.records.get(&key) {
            if !existing.same_request(req) {
                return Err(meter::duplicate(policy.period_ms));
            }
            if req.dry_run {
                return Ok(Outcome::DryRun);
            }
            return Ok(Outcome::Repeated(existing.id.clone()));
        }
        if req.dry_run {
            return Ok(Outcome::DryRun);
        }
        let stored = Stored::new(req, period);
        self.records.insert(key, stored.clone());
        Ok(Outcome::Created(stored))
    }

    /// The `GET /_mock/meter` document.
    pub fn to_json(&self, policy: &Policy) -> Value {
        let records: Vec<Value> = self
            .records
            .values()
            .map(|r| {
                json!({
                    "dimension": r.dimension,
                    "period": r.period,
                    "periodStart": seconds(policy.start_ms(r.period)),
                    "timestamp": r.timestamp_sent,
                    "quantity": r.quantity,
                    "recordId": r.id,
                    "productCode": r.product_code,
                    "usageAllocations": r.allocations.as_ref().map(|a| allocations_json(a)),
                })
            })
            .collect();
        let mut totals = Map::new();
        for (start, dimension, quantity) in self.totals(policy) {
            let per_period = totals.entry(start).or_insert_with(|| json!({}));
            per_period[dimension.as_str()] = json!(quantity);
        }
        json!({
            "period": seconds(policy.period_ms),
            "records": records,
            "totals": totals,
        })
    }

    /// (period start RFC 3339, dimension, quantity), in time order.
    pub fn totals(&self, policy: &Policy) -> Vec<(String, String, i64)> {
        let mut totals: BTreeMap<(i64, &str), i64> = BTreeMap::new();
        for ((period, dimension), r) in &self.records {
            *totals.entry((*period, dimension)).or_default() += r.quantity;
        }
        totals
            .into_iter()
            .map(|((period, dimension), quantity)| {
                let start = clock::rfc3339_ms(policy.start_ms(period));
                (start, dimension.to_string(), quantity)
            })
            .collect()
    }
}

/// Whole seconds as an integer, otherwise fractional.
fn seconds(ms: i64) -> Value {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

fn allocations_json(allocations: &[Allocation]) -> Value {
    allocations
        .iter()
        .map(|a| {
            let tags: Vec<Value> = a
                .tags
                .iter()
                .map(|t| json!({"Key": t.key, "Value": t.value}))
                .collect();
            json!({"AllocatedUsageQuantity": a.quantity, "Tags": tags})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::parse_body;

    const HOUR: f64 = 3600.0;
    /// 2026-12-03T10:00:00Z
    const T10: f64 = 1_796_292_000.0;

    fn request(dimension: &str, timestamp: f64, quantity: i64) -> MeterRequest {
        let body = json!({"ProductCode": "prod-1", "Timestamp": timestamp,
            "UsageDimension": dimension, "UsageQuantity": quantity});
        parse_body(body.to_string().as_bytes()).unwrap()
    }

    fn dry(mut req: MeterRequest) -> MeterRequest {
        req.dry_run = true;
        req
    }

    fn created(outcome: Result<Outcome, AwsError>) -> Stored {
        match outcome {
            Ok(Outcome::Created(stored)) => stored,
            other => panic!("not created: {other:?}"),
        }
    }

    fn error(outcome: Result<Outcome, AwsError>) -> &'static str {
        outcome.unwrap_err().name
    }

    #[test]
    fn a_client_token_names_one_request() {
        let (mut store, policy) = (Store::default(), Policy::default());
        let now = T10 + 1800.0;
        let with_token = |dimension: &str, quantity: i64, token: &str| {
            let mut req = request(dimension, T10 + 60.0, quantity);
            req.client_token = Some(token.into());
            req
        };
        let first = created(store.meter(&with_token("cpu", 5, "t1"), &policy, now));
        assert_eq!(
            store.meter(&with_token("cpu", 5, "t1"), &policy, now),
            Ok(Outcome::Repeated(first.id))
        );
        assert_eq!(
            error(store.meter(&with_token("mem", 5, "t1"), &policy, now)),
            "IdempotencyConflictException"
        );
        assert_eq!(
            error(store.meter(&with_token("cpu", 6, "t2"), &policy, now)),
            "DuplicateRequestException"
        );
    }

    #[test]
    fn one_record_per_dimension_and_period() {
        let (mut store, policy) = (Store::default(), Policy::default());
        let now = T10 + 1800.0;
        let first = created(store.meter(&request("cpu", T10 + 60.0, 5), &policy, now));
        assert_eq!(first.period, (T10 / HOUR) as i64);
        assert_eq!(
            store.meter(&request("cpu", T10 + 60.0, 5), &policy, now),
            Ok(Outcome::Repeated(first.id.clone()))
        );
        assert_eq!(
            error(store.meter(&request("cpu", T10 + 60.0, 6), &policy, now)),
            "DuplicateRequestException"
        );
        assert_eq!(
            error(store.meter(&request("cpu", T10 + 120.0, 5), &policy, now)),
            "DuplicateRequestException"
        );
        created(store.meter(&request("mem", T10 + 60.0, 5), &policy, now));
        created(store.meter(&request("cpu", T10 - 60.0, 5), &policy, now));
        assert_eq!(store.records.len(), 3);
    }

    #[test]
    fn identical_means_allocations_too_in_any_order() {
        let (mut store, policy) = (Store::default(), Policy::default());
        let body = |order: &str| {
            let allocations = match order {
                "ab" => {
                    r#"[{"AllocatedUsageQuantity":1,"Tags":[{"Key":"t","Value":"a"}]},{"AllocatedUsageQuantity":2,"Tags":[{"Key":"t","Value":"b"}]}]"#
                }
                "ba" => {
                    r#"[{"AllocatedUsageQuantity":2,"Tags":[{"Key":"t","Value":"b"}]},{"AllocatedUsageQuantity":1,"Tags":[{"Key":"t","Value":"a"}]}]"#
                }
                _ => r#"[{"AllocatedUsageQuantity":3}]"#,
            };
            let text = format!(
                r#"{{"ProductCode":"p","Timestamp":{T10},"UsageDimension":"d","UsageQuantity":3,"UsageAllocations":{allocations}}}"#
            );
            parse_body(text.as_bytes()).unwrap()
        };
        let first = created(store.meter(&body("ab"), &policy, T10));
        assert_eq!(
            store.meter(&body("ba"), &policy, T10),
            Ok(Outcome::Repeated(first.id))
        );
        assert_eq!(
            error(store.meter(&body("untagged"), &policy, T10)),
            "DuplicateRequestException"
        );
    }

    #[test]
    fn window_is_six_periods_after_the_period_ends() {
        let policy = Policy::default();
        let index = (T10 / HOUR) as i64;
        // The 10:00 period ends at 11:00; usage for it is taken until 17:00 (exclusive).
        let last_moment = T10 + 7.0 * HOUR - 0.001;
        assert_eq!(policy.period_of(T10, last_moment), Ok(index));
        assert_eq!(policy.period_of(T10 + HOUR - 1.0, last_moment), Ok(index));
        assert_eq!(
            policy.period_of(T10, T10 + 7.0 * HOUR).unwrap_err().name,
            "TimestampOutOfBoundsException"
        );
        assert!(policy.period_of(T10 + HOUR, T10 + 7.0 * HOUR).is_ok());
    }

    #[test]
    fn future_timestamps_are_out_of_bounds() {
        let policy = Policy::default();
        assert!(policy.period_of(T10 + 5.0, T10).is_ok());
        assert!(policy.period_of(T10 + 5.5, T10).is_err());
        for absurd in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1e300,
            1e300,
            -1.0,
        ] {
            assert!(policy.period_of(absurd, T10).is_err(), "{absurd}");
        }
    }

    #[test]
    fn short_periods() {
        let policy = Policy {
            period_ms: 2000,
            ..Policy::default()
        };
        let mut store = Store::default();
        created(store.meter(&request("d", T10, 1), &policy, T10));
        assert_eq!(
            error(store.meter(&request("d", T10 + 1.5, 2), &policy, T10 + 2.0)),
            "DuplicateRequestException"
        );
        created(store.meter(&request("d", T10 + 2.0, 2), &policy, T10 + 2.0));
        // The T10 period ends at T10+2 s; six more periods make T10+14 s the limit.
        assert!(policy.period_of(T10, T10 + 13.9).is_ok());
        assert!(policy.period_of(T10, T10 + 14.0).is_err());
        let half = Policy {
            period_ms: 500,
            ..Policy::default()
        };
        assert_eq!(
            half.period_of(T10 + 0.75, T10 + 1.0),
            Ok((T10 as i64) * 2 + 1)
        );
    }

    #[test]
    fn dry_run_checks_everything_but_records_nothing() {
        let policy = Policy {
            dimensions: Some(vec!["cpu".into()]),
            product_code: Some("prod-1".into()),
            ..Policy::default()
        };
        let mut store = Store::default();
        let now = T10 + 60.0;
        assert_eq!(
            store.meter(&dry(request("cpu", T10, 1)), &policy, now),
            Ok(Outcome::DryRun)
        );
        assert!(store.records.is_empty());
        assert_eq!(
            error(store.meter(&dry(request("gpu", T10, 1)), &policy, now)),
            "InvalidUsageDimensionException"
        );
        assert_eq!(
            error(store.meter(&dry(request("cpu", T10 - 8.0 * HOUR, 1)), &policy, now)),
            "TimestampOutOfBoundsException"
        );
        created(store.meter(&request("cpu", T10, 1), &policy, now));
        assert_eq!(
            store.meter(&dry(request("cpu", T10, 1)), &policy, now),
            Ok(Outcome::DryRun)
        );
        assert_eq!(
            error(store.meter(&dry(request("cpu", T10, 2)), &policy, now)),
            "DuplicateRequestException"
        );
        assert_eq!(store.records.len(), 1);
    }

    #[test]
    fn product_code_and_dimensions() {
        let policy = Policy {
            dimensions: Some(vec!["cpu".into(), "mem".into()]),
            product_code: Some("other".into()),
            ..Policy::default()
        };
        let mut store = Store::default();
        assert_eq!(
            error(store.meter(&request("cpu", T10, 1), &policy, T10)),
            "InvalidProductCodeException"
        );
        let policy = Policy {
            product_code: None,
            ..policy
        };
        created(store.meter(&request("mem", T10, 1), &policy, T10));
        assert_eq!(
            error(store.meter(&request("disk", T10, 1), &policy, T10)),
            "InvalidUsageDimensionException"
        );
    }

    #[test]
    fn listing_and_totals() {
        let (mut store, policy) = (Store::default(), Policy::default());
        let now = T10 + 2.0 * HOUR;
        let a = created(store.meter(&request("cpu", T10 + 0.5, 5), &policy, now));
        created(store.meter(&request("mem", T10 + 10.0, 2), &policy, now));
        created(store.meter(&request("cpu", T10 + HOUR, 7), &policy, now));
        let v = store.to_json(&policy);
        assert_eq!(v["period"], 3600);
        assert_eq!(v["records"][0]["recordId"], a.id.as_str());
        assert_eq!(v["records"][0]["timestamp"], json!(T10 + 0.5));
        assert_eq!(v["records"][0]["periodStart"], json!(T10 as i64));
        assert_eq!(v["records"][0]["period"], json!((T10 / HOUR) as i64));
        assert_eq!(
            v["totals"],
            json!({
                "2026-12-03T10:00:00Z": {"cpu": 5, "mem": 2},
                "2026-12-03T11:00:00Z": {"cpu": 7},
            })
        );
        let short = Policy {
            period_ms: 500,
            ..Policy::default()
        };
        assert_eq!(Store::default().to_json(&short)["period"], json!(0.5));
        assert_eq!(store.totals(&policy).len(), 3);
    }
}
