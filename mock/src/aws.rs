//! AWS JSON 1.1 responses: success bodies and the error envelope.

use crate::http::Response;
use crate::util::request_id;

pub const JSON_1_1: &str = "application/x-amz-json-1.1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub name: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: u16, name: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            name,
            message: message.into(),
        }
    }

    pub fn response(&self) -> Response {
        let body = serde_json::json!({ "__type": self.name, "message": self.message });
        json_response(self.status, &body).with_header("x-amzn-ErrorType", self.name)
    }
}

pub fn json_response(status: u16, body: &serde_json::Value) -> Response {
    Response::new(status, JSON_1_1, body.to_string()).with_header("x-amzn-RequestId", &request_id())
}

pub fn unknown_operation() -> AwsError {
    AwsError::new(400, "UnknownOperationException", "")
}

pub fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "SerializationException", message)
}

pub fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationException", message)
}

/// `Value null at 'member' failed to satisfy constraint: Member must not be null`.
pub fn not_null(member: &str) -> AwsError {
    validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

/// A model constraint the value breaks, worded like AWS's ValidationException.
pub fn constraint(value: &str, member: &str, rule: &str) -> AwsError {
    validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}"
    ))
}
