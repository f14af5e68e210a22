//! Per-request records: one line to stderr and, with --request-log, one JSON line to a file.
//! Secrets (secret keys, session token values) never appear in either.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::clock;

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `register`, `meter`, `ecs`, `sts`, `control` or `other`.
    pub kind: &'static str,
    pub method: String,
    /// X-Amz-Target, or the path when there is none.
    pub target: String,
    pub product_code: Value,
    pub public_key_version: Value,
    pub nonce: Value,
    /// The answer mode, or the name of the error answered.
    pub answer: String,
    pub sigv4: Option<String>,
    pub access_key: Option<String>,
    pub security_token: bool,
    /// Extra fields for this kind (region, roleArn, webIdentityToken; for `meter`: dimension,
    /// quantity, timestamp, dryRun, recordId, newRecord; ...).
    pub extra: Map<String, Value>,
}

impl Record {
    pub fn new(kind: &'static str, method: &str, target: &str) -> Record {
        Record {
            kind,
            method: method.into(),
            target: target.into(),
            product_code: Value::Null,
            public_key_version: Value::Null,
            nonce: Value::Null,
            answer: String::new(),
            sigv4: None,
            access_key: None,
            security_token: false,
            extra: Map::new(),
        }
    }

    pub fn to_json(&self, time: f64) -> Value {
        let mut v = json!({
            "kind": self.kind,
            "productCode": self.product_code,
            "publicKeyVersion": self.public_key_version,
            "nonce": self.nonce,
            "answer": self.answer,
            "sigv4": self.sigv4,
            "accessKeyId": self.access_key,
            "securityToken": self.security_token,
            "time": time,
        });
        if let Value::Object(map) = &mut v {
            map.extend(self.extra.clone());
        }
        v
    }

    pub fn stderr_line(&self) -> String {
        let mut line = format!(
            "entitle-mock: {} {} -> {}",
            self.method, self.target, self.answer
        );
        if let Some(sigv4) = &self.sigv4 {
            line.push_str(&format!(" (sigv4 {sigv4})"));
        }
        for (k, v) in &self.extra {
            line.push_str(&format!(" {k}={v}"));
        }
        line
    }
}

pub struct RequestLog {
    file: Option<Mutex<File>>,
}

impl RequestLog {
    pub fn open(path: Option<&Path>) -> Result<RequestLog, String> {
        let file = match path {
            None => None,
            Some(p) => Some(Mutex::new(
                File::options()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("cannot open request log {}: {e}", p.display()))?,
            )),
        };
        Ok(RequestLog { file })
    }

    pub fn write(&self, record: &Record) {
        eprintln!("{}", record.stderr_line());
        if let Some(file) = &self.file {
            let line = format!("{}\n", record.to_json(clock::now_f64()));
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                eprintln!("entitle-mock: cannot write the request log: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_field() {
        let mut r = Record::new("register", "POST", "AWSMPMeteringService.RegisterUsage");
        r.answer = "ok".into();
        r.extra.insert("region".into(), json!("us-east-1"));
        let v = r.to_json(1.5);
        for key in [
            "kind",
            "productCode",
            "publicKeyVersion",
            "nonce",
            "answer",
            "sigv4",
            "accessKeyId",
            "securityToken",
            "time",
            "region",
        ] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert_eq!(
            r.stderr_line(),
            "entitle-mock: POST AWSMPMeteringService.RegisterUsage -> ok region=\"us-east-1\""
        );
    }
}
