//! `entitle check` and `entitle verify` as a user runs them: the real binary against a real
//! HTTP endpoint (`entitle-mock`) on 127.0.0.1, one behaviour per test.

mod common;

use common::*;
use std::time::Duration;

fn check(mock: &Mock, extra: &[&str]) -> Run {
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    run(&mut entitle(mock, &args))
}

#[test]
fn entitled_exits_0_writes_the_record_and_sends_a_signed_fresh_nonce() {
    let mock = Mock::start(&[
        "--credentials",
        &format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"),
    ]);
    let record_path = mock.path("record.json");
    let result = check(&mock, &["--output", record_path.to_str().unwrap()]);
    result.assert_code(0);
    assert!(result.stderr.contains("entitled"), "{}", result.stderr);

    let requests = mock.registrations();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0]["sigv4"], "ok",
        "mock verified the SigV4 signature"
    );
    assert_eq!(requests[0]["productCode"], PRODUCT_CODE);
    assert_eq!(requests[0]["publicKeyVersion"], 1);

    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    assert_eq!(record["productCode"], PRODUCT_CODE);
    assert_eq!(record["publicKeyVersion"], 1);
    assert_eq!(record["nonce"], requests[0]["nonce"]);
    assert!(record["signature"].as_str().unwrap().split('.').count() == 3);
    assert!(record["issuedAt"].as_str().unwrap().ends_with('Z'));
    assert!(record["verifiedAt"].as_str().unwrap().ends_with('Z'));

    let nonce = record["nonce"].as_str().unwrap();
    assert!(nonce.len() >= 22 && nonce.len() <= 255, "{nonce}");
    assert!(nonce
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    check(&mock, &[]).assert_code(0);
    assert_ne!(
        mock.registrations()[1]["nonce"],
        requests[0]["nonce"],
        "nonce is fresh per run"
    );
}

#[test]
fn not_entitled_exits_77_and_writes_no_record() {
    let mock = Mock::start(&["--answer", "not-entitled"]);
    let record_path = mock.path("record.json");
    let result = check(&mock, &["--output", record_path.to_str().unwrap()]);
    result.assert_code(77);
    assert!(
        result.stderr.contains("CustomerNotEntitledException"),
        "{}",
        result.stderr
    );
    assert!(!record_path.exists());
    assert_eq!(mock.registrations().len(), 1, "no retry");
}

#[test]
fn deployment_errors_exit_78_at_once_naming_the_fix() {
    let cases = [
        ("platform-not-supported", "ECS"),
        ("invalid-product-code", "--product-code"),
        ("invalid-public-key-version", "--public-key-version"),
        ("invalid-region", "AWS_REGION"),
        ("disabled-api", "DisabledApiException"),
        ("access-denied", "aws-marketplace:RegisterUsage"),
        ("unrecognized-client", "task role"),
    ];
    for (answer, hint) in cases {
        let mock = Mock::start(&["--answer", answer]);
        let result = check(&mock, &[]);
        result.assert_code(78);
        assert!(result.stderr.contains(hint), "{answer}: {}", result.stderr);
        assert_eq!(
            result.stderr.trim().lines().count(),
            1,
            "{answer}: one line: {}",
            result.stderr
        );
        assert_eq!(mock.registrations().len(), 1, "{answer}: no retry");
    }
}

#[test]
fn transient_failures_are_retried_until_entitled() {
    for answer in [
        "throttle*2,ok",
        "internal-error*2,ok",
        "http-502-html,http-503-empty,ok",
        "reset,ok",
    ] {
        let mock = Mock::start(&["--answer", answer]);
        let result = check(&mock, &["--log-level", "debug"]);
        result.assert_code(0);
        let expected = answer
            .split(',')
            .map(|p| p.split('*').nth(1).map_or(1, |n| n.parse().unwrap()))
            .sum::<usize>();
        assert_eq!(
            mock.registrations().len(),
            expected,
            "{answer}: {}",
            result.stderr
        );
        assert!(
            result.stderr.contains("attempts=") || result.stderr.contains("attempts"),
            "{}",
            result.stderr
        );
    }
}

#[test]
fn only_transient_failures_until_the_budget_exit_75_on_time() {
    let mock = Mock::start(&["--answer", "throttle"]);
    let result = check(&mock, &["--timeout", "3s"]);
    result.assert_code(75);
    assert!(
        result.stderr.contains("ThrottlingException"),
        "{}",
        result.stderr
    );
    assert!(
        result.elapsed < Duration::from_secs(5),
        "{:?}",
        result.elapsed
    );
    assert!(mock.registrations().len() >= 2, "it retried");
}

#[test]
fn a_stalled_server_cannot_hold_the_process_past_the_budget() {
    let mock = Mock::start(&["--answer", "stall"]);
    let result = check(&mock, &["--timeout", "3s", "--attempt-timeout", "1s"]);
    result.assert_code(75);
    assert!(
        result.stderr.contains("no answer within"),
        "{}",
        result.stderr
    );
    assert!(
        result.elapsed < Duration::from_secs(5),
        "{:?}",
        result.elapsed
    );
    assert!(
        mock.registrations().len() >= 2,
        "attempt timeouts are retried"
    );
}

#[test]
fn a_refused_connection_is_transient() {
    let mock = Mock::start(&[]);
    let mut command = entitle(&mock, &["check", "--timeout", "2s"]);
    command.env(
        "AWS_ENDPOINT_URL_MARKETPLACE_METERING",
        "http://127.0.0.1:9",
    );
    let result = run(&mut command);
    result.assert_code(75);
    assert!(
        result.elapsed < Duration::from_secs(4),
        "{:?}",
        result.elapsed
    );
}

#[test]
fn forged_or_mismatched_tokens_exit_76() {
    let answers = [
        "wrong-key",
        "alg-none",
        "hs256",
        "rs256",
        "wrong-product-code",
        "wrong-nonce",
        "wrong-version",
        "version-as-string",
        "missing-nonce",
        "replay",
        "tampered",
        "truncated",
        "garbage",
        "empty",
        "huge",
        "no-signature",
        "not-json",
    ];
    for answer in answers {
        let mock = Mock::start(&["--answer", answer]);
        let record_path = mock.path("record.json");
        let result = check(&mock, &["--output", record_path.to_str().unwrap()]);
        result.assert_code(76);
        assert!(!record_path.exists(), "{answer}: no record");
        assert_eq!(
            result.stderr.trim().lines().count(),
            1,
            "{answer}: {}",
            result.stderr
        );
    }
}

#[test]
fn an_earlier_valid_token_replayed_to_a_new_run_is_rejected() {
    let mock = Mock::start(&["--answer", "ok,replay"]);
    check(&mock, &[]).assert_code(0);
    let result = check(&mock, &[]);
    result.assert_code(76);
    assert!(result.stderr.contains("nonce"), "{}", result.stderr);
}

#[test]
fn key_rotation_notice_warns_but_stays_entitled() {
    let mock = Mock::start(&["--answer", "ok-rotation"]);
    let record = mock.path("record.json");
    let result = check(&mock, &["--output", record.to_str().unwrap()]);
    result.assert_code(0);
    // The mock announces a rotation 30 days ahead: a future date is not "has expired".
    assert!(
        result.stderr.contains("WARN")
            && result
                .stderr
                .contains("will rotate this product's public key at"),
        "{}",
        result.stderr
    );
    assert!(!result.stderr.contains("expired"), "{}", result.stderr);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let when = saved["publicKeyRotationTimestamp"].as_str().unwrap();
    assert!(result.stderr.contains(when), "{when}: {}", result.stderr);
}

#[test]
fn configuration_errors_are_found_before_any_request() {
    let mock = Mock::start(&[]);
    let small_key = mock.path("small.pem");
    let small = Mock::start(&["--key-bits", "1024"]);
    std::fs::copy(&small.public_key, &small_key).unwrap();
    drop(small);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("ENTITLE_PRODUCT_CODE", "bad code!")], "product code"),
        (
            vec![("ENTITLE_PUBLIC_KEY_FILE", "/nonexistent/key.pem")],
            "/nonexistent/key.pem",
        ),
        (
            vec![("ENTITLE_PUBLIC_KEY_FILE", small_key.to_str().unwrap())],
            "1024-bit",
        ),
        (
            vec![("ENTITLE_PUBLIC_KEY_VERSION", "0")],
            "public key version",
        ),
        (
            vec![("ENTITLE_OUTPUT", "/nonexistent/dir/record.json")],
            "does not exist",
        ),
        (
            vec![("AWS_ENDPOINT_URL_MARKETPLACE_METERING", "")],
            "set but empty",
        ),
        (vec![("AWS_ENDPOINT_URL_STS", " ")], "set but empty"),
        (vec![("AWS_REGION", "us east 1")], "not a region name"),
    ];
    for (env, hint) in cases {
        let mut command = entitle(&mock, &["check"]);
        for (k, v) in &env {
            command.env(k, v);
        }
        let result = run(&mut command);
        result.assert_code(78);
        assert!(result.stderr.contains(hint), "{env:?}: {}", result.stderr);
    }
    let mut no_code = entitle(&mock, &["check"]);
    no_code.env_remove("ENTITLE_PRODUCT_CODE");
    let result = run(&mut no_code);
    result.assert_code(78);
    assert!(
        result.stderr.contains("ENTITLE_PRODUCT_CODE"),
        "{}",
        result.stderr
    );
    assert!(mock.requests().is_empty(), "no request was sent");
}

#[test]
fn usage_errors_exit_64_with_one_line() {
    let mock = Mock::start(&[]);
    for args in [
        vec!["check", "--no-such-flag"],
        vec!["check", "--timeout", "soon"],
        vec!["check", "--public-key-version", "one"],
        vec!["launch"],
    ] {
        let result = run(&mut entitle(&mock, &args));
        result.assert_code(64);
        assert_eq!(
            result.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            result.stderr
        );
    }
    assert!(mock.requests().is_empty());
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        vec!["--help"],
        vec!["help", "check"],
        vec!["help", "verify"],
        vec!["help", "run"],
        vec!["check", "--help"],
        vec!["help", "seal"],
        vec!["seal", "--help"],
    ] {
        let result = run(&mut bare_entitle(&args));
        result.assert_code(0);
        assert!(result.stdout.contains("entitle"), "{args:?}");
    }
    let version = run(&mut bare_entitle(&["--version"]));
    version.assert_code(0);
    let expected = format!("entitle {} (", env!("CARGO_PKG_VERSION"));
    assert!(version.stdout.starts_with(&expected), "{}", version.stdout);
}

#[test]
fn no_region_or_no_credentials_exit_78_quickly() {
    let cases: [(&[&str], &str); 2] = [
        (&["AWS_REGION"], "AWS_REGION"),
        (
            &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            "credentials",
        ),
    ];
    for (removed, hint) in cases {
        let mock = Mock::start(&[]);
        let mut command = entitle(&mock, &["check"]);
        for var in removed {
            command.env_remove(var);
        }
        assert_78_quickly(&mock, &mut command, hint);
    }
}

/// The instance role is not a credential source AWS Marketplace supports, so a reachable but
/// unhelpful metadata service must not keep a pod without IRSA retrying for the whole budget.
#[test]
fn no_credentials_with_a_metadata_service_in_reach_still_exits_78_quickly() {
    let mock = Mock::start(&[]);
    let mut command = entitle(&mock, &["check"]);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &mock.url);
    assert_78_quickly(&mock, &mut command, "credentials");
}

fn assert_78_quickly(mock: &Mock, command: &mut std::process::Command, hint: &str) {
    let result = run(command);
    result.assert_code(78);
    assert!(result.stderr.contains(hint), "{}", result.stderr);
    assert!(
        result.elapsed < Duration::from_secs(5),
        "{:?}",
        result.elapsed
    );
    assert!(mock.registrations().is_empty());
}

#[test]
fn ecs_task_role_credentials_from_the_container_endpoint() {
    let mock = Mock::start(&[
        "--credentials",
        "ASIAECSTASKROLE00001:ecsSecretKeyDoNotLeak000000000000000000",
    ]);
    let mut command = entitle(&mock, &["check", "--log-level", "trace"]);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/ecs/creds", mock.url),
        );
    let result = run(&mut command);
    result.assert_code(0);
    assert_eq!(mock.request_kinds(), ["ecs", "register"]);
    let register = &mock.registrations()[0];
    assert_eq!(register["sigv4"], "ok");
    assert_eq!(register["securityToken"], true);
    assert!(
        !result.stderr.contains("ecsSecretKeyDoNotLeak"),
        "secret key leaked into the log"
    );
}

#[test]
fn eks_irsa_web_identity_through_sts() {
    let mock = Mock::start(&[
        "--credentials",
        "ASIAIRSAROLE00000001:irsaSecretKeyDoNotLeak00000000000000000",
    ]);
    let mut command = entitle(&mock, &["check", "--log-level", "trace"]);
    with_irsa(&mut command, &mock.path("web-identity-token"), &mock.url);
    let result = run(&mut command);
    result.assert_code(0);
    assert_eq!(mock.request_kinds(), ["sts", "register"]);
    assert_eq!(mock.registrations()[0]["sigv4"], "ok");
    assert!(
        !result.stderr.contains("irsaSecretKeyDoNotLeak"),
        "secret key leaked into the log"
    );
}

#[test]
fn secrets_never_reach_the_log_even_at_trace() {
    let mock = Mock::start(&["--answer", "throttle,ok"]);
    let mut command = entitle(&mock, &["check", "--log-level", "trace"]);
    command.env("AWS_SESSION_TOKEN", "SessionTokenThatMustNotLeak0123456789");
    let result = run(&mut command);
    result.assert_code(0);
    for secret in [SECRET_ACCESS_KEY, "SessionTokenThatMustNotLeak0123456789"] {
        assert!(!result.stderr.contains(secret), "{secret} leaked");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mock = Mock::start(&["--answer", "throttle,not-entitled"]);
    let result = check(&mock, &["--log-format", "json", "--log-level", "debug"]);
    result.assert_code(77);
    let lines: Vec<_> = result.stderr.lines().collect();
    assert!(lines.len() >= 2, "{}", result.stderr);
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
}

#[test]
fn endpoint_from_the_flag_and_from_aws_endpoint_url() {
    let mock = Mock::start(&[]);
    let mut flag = entitle(&mock, &["check", "--endpoint-url", &mock.url]);
    flag.env_remove("AWS_ENDPOINT_URL_MARKETPLACE_METERING");
    run(&mut flag).assert_code(0);
    let mut global = entitle(&mock, &["check"]);
    global
        .env_remove("AWS_ENDPOINT_URL_MARKETPLACE_METERING")
        .env("AWS_ENDPOINT_URL", &mock.url);
    run(&mut global).assert_code(0);
    assert_eq!(mock.registrations().len(), 2);
}

#[test]
fn verify_checks_a_token_or_a_record_offline() {
    let mock = Mock::start(&[]);
    let record_path = mock.path("record.json");
    check(&mock, &["--output", record_path.to_str().unwrap()]).assert_code(0);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    let token_path = mock.path("token.jwt");
    std::fs::write(&token_path, record["signature"].as_str().unwrap()).unwrap();
    let nonce = record["nonce"].as_str().unwrap();
    let token_arg = token_path.to_str().unwrap();

    run(&mut entitle(
        &mock,
        &["verify", "--token", token_arg, "--nonce", nonce],
    ))
    .assert_code(0);
    run(&mut entitle(
        &mock,
        &["verify", "--record", record_path.to_str().unwrap()],
    ))
    .assert_code(0);
    let mut from_env = entitle(&mock, &["verify"]);
    from_env
        .env("ENTITLE_TOKEN", record["signature"].as_str().unwrap())
        .env("ENTITLE_NONCE", nonce);
    run(&mut from_env).assert_code(0);

    run(&mut entitle(
        &mock,
        &["verify", "--token", token_arg, "--nonce", "another-nonce"],
    ))
    .assert_code(76);
    let mut other_product = entitle(&mock, &["verify", "--token", token_arg, "--nonce", nonce]);
    other_product.env("ENTITLE_PRODUCT_CODE", "free-product");
    run(&mut other_product).assert_code(76);

    let tampered = record_path.with_file_name("tampered.json");
    let mut bad = record.clone();
    bad["nonce"] = "forged-nonce".into();
    std::fs::write(&tampered, bad.to_string()).unwrap();
    run(&mut entitle(
        &mock,
        &["verify", "--record", tampered.to_str().unwrap()],
    ))
    .assert_code(76);
    std::fs::write(&tampered, "not json").unwrap();
    run(&mut entitle(
        &mock,
        &["verify", "--record", tampered.to_str().unwrap()],
    ))
    .assert_code(76);
    run(&mut entitle(&mock, &["verify", "--nonce", nonce])).assert_code(78);
    assert_eq!(mock.registrations().len(), 1, "verify never calls AWS");
}

#[test]
fn an_unusable_ssl_cert_file_is_a_configuration_error_not_a_crash() {
    let mock = Mock::start(&[]);
    let garbage = mock.path("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let empty = mock.path("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    for (bundle, hint) in [
        (&garbage, "not a usable PEM"),
        (&empty, "no BEGIN CERTIFICATE"),
    ] {
        let mut command = entitle(&mock, &["check"]);
        command.env("SSL_CERT_FILE", bundle);
        let result = run(&mut command);
        result.assert_code(78);
        assert!(result.stderr.contains(hint), "{}", result.stderr);
    }
    let mut missing = entitle(&mock, &["check"]);
    missing.env("SSL_CERT_FILE", "/nonexistent/ca.pem");
    run(&mut missing).assert_code(78);
    assert!(mock.registrations().is_empty());
}

#[test]
fn a_huge_answer_is_cut_off_while_read() {
    let mock = Mock::start(&["--answer", "huge-body"]);
    let mut command = entitle(&mock, &["check"]);
    let result = run(&mut command);
    result.assert_code(76);
    assert!(result.stderr.contains("length limit"), "{}", result.stderr);
    assert_eq!(mock.registrations().len(), 1, "no retry");
}

/// At the default level a long retry is not silent: the first transient failure is said at
/// once, and the last line's advice matches the cause, with durations people can read.
#[test]
fn retries_are_visible_at_the_default_level_and_the_advice_matches_the_cause() {
    let cases = [
        ("throttle", "quota", "ThrottlingException"),
        (
            "internal-error",
            "server errors",
            "InternalServiceErrorException",
        ),
    ];
    for (answer, advice, cause) in cases {
        let mock = Mock::start(&["--answer", answer]);
        let result = check(&mock, &["--timeout", "2s"]);
        result.assert_code(75);
        let first = result
            .stderr
            .lines()
            .find(|l| l.contains("WARN"))
            .unwrap_or_else(|| panic!("{answer}: no warning:\n{}", result.stderr));
        assert!(first.contains("failed, retrying for up to"), "{first}");
        let last = result.stderr.lines().last().unwrap_or_default();
        assert!(
            last.contains(cause) && last.contains(advice),
            "{answer}: {last}"
        );
        assert!(last.contains("--timeout 2.0s"), "rounded: {last}");
        assert!(!last.contains("s,") || !last.contains(".000"), "{last}");
    }
    let mock = Mock::start(&[]);
    let mut refused = entitle(&mock, &["check", "--timeout", "2s"]);
    refused.env(
        "AWS_ENDPOINT_URL_MARKETPLACE_METERING",
        "http://127.0.0.1:9",
    );
    let result = run(&mut refused);
    result.assert_code(75);
    let last = result.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("127.0.0.1:9") && last.contains("network access"),
        "names the address and points at the network: {last}"
    );
}

#[test]
fn no_credentials_is_one_short_line_naming_the_sources_tried() {
    let mock = Mock::start(&[]);
    let mut command = entitle(&mock, &["check"]);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let result = run(&mut command);
    result.assert_code(78);
    assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
    assert!(
        result
            .stderr
            .contains("tried environment variables, profile, EKS IRSA web identity, ECS task role"),
        "{}",
        result.stderr
    );
    assert!(result.stderr.len() < 400, "{}", result.stderr);
}

#[test]
fn debug_logs_say_where_requests_go_and_which_credentials_answered() {
    let mock = Mock::start(&[]);
    let result = check(&mock, &["--log-level", "debug"]);
    result.assert_code(0);
    assert!(
        result.stderr.contains(&format!("url={}/", mock.url))
            && result.stderr.contains("route=direct"),
        "{}",
        result.stderr
    );
    assert!(
        result
            .stderr
            .contains("AWS credentials loaded source=\"environment variables\""),
        "{}",
        result.stderr
    );
    assert!(!result.stderr.contains(SECRET_ACCESS_KEY));
}

#[test]
fn an_unknown_log_level_is_a_usage_error_not_silence() {
    let mock = Mock::start(&["--answer", "not-entitled"]);
    for level in ["verbose", "warning", "debug3"] {
        let result = check(&mock, &["--log-level", level]);
        result.assert_code(64);
        assert!(
            result
                .stderr
                .contains("error, warn, info, debug, trace, off"),
            "{level}: {}",
            result.stderr
        );
    }
    assert!(mock.registrations().is_empty(), "nothing was sent");
}
