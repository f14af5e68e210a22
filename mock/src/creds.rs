//! Credential stand-ins: the ECS/Fargate container credentials endpoint and STS
//! AssumeRoleWithWebIdentity, both serving the one set of credentials the mock verifies.

use serde_json::json;

use crate::clock;
use crate::http::Response;
use crate::util::{hex, random_bytes, request_id, xml_escape};

pub const DEFAULT_ACCESS_KEY: &str = "ASIAENTITLEMOCK00001";
pub const DEFAULT_SECRET: &str = "entitle-mock/not-a-real-secret-access-key0";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const DEFAULT_ROLE: &str = "arn:aws:iam::123456789012:role/entitle-mock";
const LIFETIME_SECS: i64 = 3600;

pub struct Credentials {
    pub access_key: String,
    pub secret: String,
    /// Fresh per process; sent by clients as X-Amz-Security-Token.
    pub session_token: String,
}

impl Credentials {
    pub fn new(static_pair: Option<(String, String)>) -> Credentials {
        let (access_key, secret) =
            static_pair.unwrap_or_else(|| (DEFAULT_ACCESS_KEY.into(), DEFAULT_SECRET.into()));
        Credentials {
            access_key,
            secret,
            session_token: format!("entitle-mock-session-{}", hex(&random_bytes::<24>())),
        }
    }

    /// The JSON the ECS container credentials endpoint returns.
    pub fn ecs_response(&self, now: i64) -> Response {
        let body = json!({
            "AccessKeyId": self.access_key,
            "SecretAccessKey": self.secret,
            "Token": self.session_token,
            "Expiration": clock::rfc3339(now + LIFETIME_SECS),
            "RoleArn": DEFAULT_ROLE,
        });
        Response::new(200, "application/json", body.to_string())
    }

    /// STS's XML answer to AssumeRoleWithWebIdentity.
    pub fn sts_response(&self, role_arn: &str, session: &str, now: i64) -> Response {
        let (account, role) = split_role_arn(role_arn);
        let id = request_id();
        let body = format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"{STS_NS}\">\n\
             <AssumeRoleWithWebIdentityResult>\n\
             <SubjectFromWebIdentityToken>system:serviceaccount:default:entitle-mock</SubjectFromWebIdentityToken>\n\
             <Audience>sts.amazonaws.com</Audience>\n\
             <AssumedRoleUser>\n\
             <Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn>\n\
             <AssumedRoleId>AROAENTITLEMOCK00001:{session}</AssumedRoleId>\n\
             </AssumedRoleUser>\n\
             <Credentials>\n\
             <SessionToken>{token}</SessionToken>\n\
             <SecretAccessKey>{secret}</SecretAccessKey>\n\
             <Expiration>{expiration}</Expiration>\n\
             <AccessKeyId>{akid}</AccessKeyId>\n\
             </Credentials>\n\
             <Provider>arn:aws:iam::{account}:oidc-provider/oidc.eks.amazonaws.com/id/ENTITLEMOCK</Provider>\n\
             </AssumeRoleWithWebIdentityResult>\n\
             <ResponseMetadata>\n<RequestId>{id}</RequestId>\n</ResponseMetadata>\n\
             </AssumeRoleWithWebIdentityResponse>\n",
            account = xml_escape(&account),
            role = xml_escape(&role),
            session = xml_escape(session),
            token = xml_escape(&self.session_token),
            secret = xml_escape(&self.secret),
            expiration = clock::rfc3339(now + LIFETIME_SECS),
            akid = xml_escape(&self.access_key),
        );
        Response::new(200, "text/xml", body).with_header("x-amzn-RequestId", &id)
    }
}

/// STS's XML error envelope (awsQuery protocol).
pub fn sts_error(status: u16, code: &str, message: &str) -> Response {
    let id = request_id();
    let body = format!(
        "<ErrorResponse xmlns=\"{STS_NS}\">\n<Error>\n<Type>Sender</Type>\n<Code>{}</Code>\n\
         <Message>{}</Message>\n</Error>\n<RequestId>{id}</RequestId>\n</ErrorResponse>\n",
        xml_escape(code),
        xml_escape(message)
    );
    Response::new(status, "text/xml", body).with_header("x-amzn-RequestId", &id)
}

/// `arn:aws:iam::123456789012:role/path/name` gives ("123456789012", "name").
fn split_role_arn(arn: &str) -> (String, String) {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    match fields[..] {
        [_, _, _, _, account, resource] if resource.starts_with("role/") => {
            let name = resource.rsplit('/').next().unwrap_or("role");
            (account.to_string(), name.to_string())
        }
        _ => ("123456789012".into(), "entitle-mock".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_json_has_the_fields_aws_config_reads() {
        let c = Credentials::new(Some(("AKID".into(), "SECRET".into())));
        let r = c.ecs_response(0);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["AccessKeyId"], "AKID");
        assert_eq!(v["SecretAccessKey"], "SECRET");
        assert_eq!(v["Token"], c.session_token.as_str());
        assert_eq!(v["Expiration"], "1970-01-01T01:00:00Z");
    }

    #[test]
    fn sts_xml_carries_credentials_and_role() {
        let c = Credentials::new(None);
        let r = c.sts_response("arn:aws:iam::111122223333:role/team/app", "s<1>", 0);
        let xml = String::from_utf8(r.body).unwrap();
        assert!(xml.contains(&format!("<AccessKeyId>{DEFAULT_ACCESS_KEY}</AccessKeyId>")));
        assert!(xml.contains("<Arn>arn:aws:sts::111122223333:assumed-role/app/s&lt;1&gt;</Arn>"));
        assert!(xml.contains("<Expiration>1970-01-01T01:00:00Z</Expiration>"));
        assert_eq!(split_role_arn("junk").0, "123456789012");
    }
}
