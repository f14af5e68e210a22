//! The stderr line that tells a user how to point entitle at the mock.

use std::path::Path;

use crate::cli::Options;

/// Shown when the mock accepts any credentials (no --credentials).
const ANY_ACCESS_KEY: &str = "AKIDMOCK";
const ANY_SECRET: &str = "mock-secret";

/// `entitle-mock: point entitle here with: AWS_ENDPOINT_URL_MARKETPLACE_METERING=... ...`
pub fn recipe(url: &str, opts: &Options) -> String {
    let (access_key, secret) = match &opts.credentials {
        Some((akid, secret)) => (akid.as_str(), secret.as_str()),
        None => (ANY_ACCESS_KEY, ANY_SECRET),
    };
    let mut env = vec![
        ("AWS_ENDPOINT_URL_MARKETPLACE_METERING", url.to_string()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", access_key.into()),
        ("AWS_SECRET_ACCESS_KEY", secret.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ];
    if let Some(code) = &opts.metering.product_code {
        env.push(("ENTITLE_PRODUCT_CODE", code.clone()));
    }
    if let Some(path) = &opts.write_public_key {
        env.push(("ENTITLE_PUBLIC_KEY_FILE", absolute(path)));
    }
    let assignments: Vec<String> = env
        .iter()
        .map(|(name, value)| format!("{name}={}", shell_quote(value)))
        .collect();
    format!(
        "entitle-mock: point entitle here with: {}",
        assignments.join(" ")
    )
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Quotes for a POSIX shell, only when needed, so that the line can be pasted.
fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_dummy_credentials() {
        let line = recipe("http://127.0.0.1:5000", &Options::default());
        assert_eq!(
            line,
            "entitle-mock: point entitle here with: \
             AWS_ENDPOINT_URL_MARKETPLACE_METERING=http://127.0.0.1:5000 AWS_REGION=us-east-1 \
             AWS_ACCESS_KEY_ID=AKIDMOCK AWS_SECRET_ACCESS_KEY=mock-secret \
             AWS_EC2_METADATA_DISABLED=true"
        );
    }

    #[test]
    fn shows_given_credentials_code_and_key_file() {
        let mut opts = Options {
            credentials: Some(("AKID".into(), "se cr'et".into())),
            write_public_key: Some("/tmp/k.pem".into()),
            ..Options::default()
        };
        opts.metering.product_code = Some("prod-1".into());
        let line = recipe("http://127.0.0.1:1", &opts);
        assert!(line.contains(" AWS_ACCESS_KEY_ID=AKID "), "{line}");
        assert!(
            line.contains(r" AWS_SECRET_ACCESS_KEY='se cr'\''et' "),
            "{line}"
        );
        assert!(line.ends_with(" ENTITLE_PRODUCT_CODE=prod-1 ENTITLE_PUBLIC_KEY_FILE=/tmp/k.pem"));
        assert!(!line.contains('\n'));
    }
}
