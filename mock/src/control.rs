//! The test-only control endpoints under `/_mock/` (not AWS APIs): read back what MeterUsage
//! recorded, and change the MeterUsage script while the mock runs.

use serde_json::json;

use crate::http::{Request, Response};
use crate::meter_answer::MeterScript;
use crate::meter_store::{Policy, Store};

pub const PREFIX: &str = "/_mock/";
const METER: &str = "/_mock/meter";
const METER_ANSWER: &str = "/_mock/meter-answer";

/// What a control request asks for.
#[derive(Debug)]
pub enum Control {
    /// `GET /_mock/meter`
    ListMeter,
    /// `POST /_mock/meter-answer`: the parsed script and its text.
    SetMeterAnswer(MeterScript, String),
    /// Anything else: the error to answer with.
    Refuse(Response),
}

pub fn route(req: &Request) -> Control {
    match (req.method.as_str(), req.path()) {
        ("GET", METER) => Control::ListMeter,
        ("POST", METER_ANSWER) => parse_script(&req.body),
        (_, METER) => Control::Refuse(error(405, "use GET /_mock/meter")),
        (_, METER_ANSWER) => Control::Refuse(error(
            405,
            "use POST /_mock/meter-answer with the script as the body",
        )),
        _ => Control::Refuse(error(
            404,
            "unknown control endpoint; there are GET /_mock/meter and POST /_mock/meter-answer",
        )),
    }
}

fn parse_script(body: &[u8]) -> Control {
    let Ok(text) = std::str::from_utf8(body) else {
        return Control::Refuse(error(400, "the script is not UTF-8"));
    };
    let text = text.trim();
    match MeterScript::parse(text) {
        Ok(script) => Control::SetMeterAnswer(script, text.to_string()),
        Err(e) => Control::Refuse(error(400, &e)),
    }
}

pub fn listing(store: &Store, policy: &Policy) -> Response {
    Response::new(200, "application/json", store.to_json(policy).to_string())
}

pub fn replaced(text: &str) -> Response {
    Response::new(
        200,
        "application/json",
        json!({ "meterAnswer": text }).to_string(),
    )
}

fn error(status: u16, message: &str) -> Response {
    Response::new(
        status,
        "application/json",
        json!({ "message": message }).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter_answer::MeterMode;

    fn request(method: &str, path: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            target: path.into(),
            version: "HTTP/1.1".into(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn refused(control: Control) -> u16 {
        match control {
            Control::Refuse(response) => response.status,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn routes() {
        assert!(matches!(
            route(&request("GET", "/_mock/meter", "")),
            Control::ListMeter
        ));
        assert!(matches!(
            route(&request("GET", "/_mock/meter?x=1", "")),
            Control::ListMeter
        ));
        match route(&request("POST", "/_mock/meter-answer", "throttle*2,ok\n")) {
            Control::SetMeterAnswer(mut script, text) => {
                assert_eq!(text, "throttle*2,ok");
                assert_eq!(script.take(), MeterMode::Throttle);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            refused(route(&request("POST", "/_mock/meter-answer", "nope"))),
            400
        );
        assert_eq!(
            refused(route(&request("POST", "/_mock/meter-answer", ""))),
            400
        );
        assert_eq!(refused(route(&request("POST", "/_mock/meter", ""))), 405);
        assert_eq!(
            refused(route(&request("GET", "/_mock/meter-answer", ""))),
            405
        );
        assert_eq!(refused(route(&request("GET", "/_mock/other", ""))), 404);
        let mut bad = request("POST", "/_mock/meter-answer", "");
        bad.body = vec![0xff, 0xfe];
        assert_eq!(refused(route(&bad)), 400);
    }
}
