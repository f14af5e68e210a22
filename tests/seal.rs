//! Sealed trust as a vendor and a buyer meet it: seal the real binary, run it against
//! `entitle-mock`, try every override, damage the seal, copy the binary.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const MARKER: &[u8] = b"entitle:seal-slot:v1";

/// Seals the `entitle` binary under test for `entries` (product code, key version, key file).
fn seal(dir: &Path, entries: &[(&str, &str, &Path)], extra: &[&str]) -> PathBuf {
    let output = dir.join("entitle-sealed");
    let mut command = bare_entitle(&["seal"]);
    for (code, version, key) in entries {
        command.args([
            "--product-code",
            code,
            "--public-key-version",
            version,
            "--public-key-file",
        ]);
        command.arg(key);
    }
    command.args(extra).arg("--output").arg(&output);
    run(&mut command).assert_code(0);
    output
}

/// `entitle` replaced by `binary`, with the mock's endpoint, region and credentials but no
/// product or key options.
fn sealed_command(binary: &Path, mock: &Mock, args: &[&str]) -> Command {
    let configured = entitle(mock, args);
    let mut command = Command::new(binary);
    command.args(args).env_clear();
    for (key, value) in configured.get_envs() {
        if let (Some(value), false) = (value, key.to_string_lossy().starts_with("ENTITLE_")) {
            command.env(key, value);
        }
    }
    command
}

fn slot_offset(bytes: &[u8]) -> usize {
    let mut found = bytes
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == MARKER);
    let (offset, _) = found.next().expect("slot marker");
    assert!(found.next().is_none(), "marker appears once");
    offset
}

#[test]
fn a_sealed_binary_needs_no_options_and_refuses_every_override() {
    let mock = Mock::start(&["--answer", "ok"]);
    let sealed = seal(
        mock.dir.path(),
        &[(PRODUCT_CODE, "1", &mock.public_key)],
        &["--default-timeout", "20s"],
    );

    let version = run(&mut sealed_command(&sealed, &mock, &["--version"]));
    version.assert_code(0);
    assert!(
        version.stdout.contains(&format!("sealed: {PRODUCT_CODE}")),
        "{}",
        version.stdout
    );
    let inspect = run(&mut sealed_command(&sealed, &mock, &["inspect"]));
    inspect.assert_code(0);
    assert!(
        inspect.stdout.contains("sha256:") && inspect.stdout.contains("default timeout 20s"),
        "{}",
        inspect.stdout
    );

    run(&mut sealed_command(&sealed, &mock, &["check"])).assert_code(0);
    let mut same_code = sealed_command(&sealed, &mock, &["check"]);
    same_code.env("ENTITLE_PRODUCT_CODE", PRODUCT_CODE);
    run(&mut same_code).assert_code(0);
    assert_eq!(mock.registrations().len(), 2);

    let other_key = mock.path("other.pem");
    std::fs::copy(&mock.public_key, &other_key).unwrap();
    type Override<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let overrides: Vec<Override> = vec![
        (
            "key file flag",
            vec!["check", "--public-key-file", other_key.to_str().unwrap()],
            vec![],
        ),
        (
            "key file env",
            vec!["check"],
            vec![("ENTITLE_PUBLIC_KEY_FILE", other_key.to_str().unwrap())],
        ),
        (
            "inline key env",
            vec!["check"],
            vec![("ENTITLE_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----")],
        ),
        (
            "key version",
            vec!["check", "--public-key-version", "1"],
            vec![],
        ),
        (
            "free product code",
            vec!["check"],
            vec![("ENTITLE_PRODUCT_CODE", "free-product-code")],
        ),
        (
            "verify with own key",
            vec![
                "verify",
                "--public-key-file",
                other_key.to_str().unwrap(),
                "--nonce",
                "n",
            ],
            vec![],
        ),
    ];
    for (what, args, env) in overrides {
        let mut command = sealed_command(&sealed, &mock, &args);
        command.envs(env);
        let result = run(&mut command);
        result.assert_code(78);
        assert!(
            result.stderr.contains("sealed"),
            "{what}: {}",
            result.stderr
        );
    }
    assert_eq!(mock.registrations().len(), 2, "refused before any request");

    let reseal = run(Command::new(&sealed)
        .args(["seal", "--product-code", "x", "--public-key-file"])
        .arg(&other_key)
        .arg("--output")
        .arg(mock.path("twice")));
    reseal.assert_code(78);
    assert!(
        reseal.stderr.contains("already sealed"),
        "{}",
        reseal.stderr
    );
}

#[test]
fn a_redirected_endpoint_cannot_make_a_sealed_binary_trust_its_key() {
    let vendor = Mock::start(&[]);
    let sealed = seal(
        vendor.dir.path(),
        &[(PRODUCT_CODE, "1", &vendor.public_key)],
        &[],
    );
    let attacker = Mock::start(&[]);
    let result = run(&mut sealed_command(&sealed, &attacker, &["check"]));
    result.assert_code(76);
    assert!(result.stderr.contains("signature"), "{}", result.stderr);
}

#[test]
fn several_sealed_products_are_chosen_by_product_code() {
    let mock = Mock::start(&[]);
    let sealed = seal(
        mock.dir.path(),
        &[
            ("prod-paid-a", "1", &mock.public_key),
            ("prod-paid-b", "3", &mock.public_key),
        ],
        &[],
    );
    let ambiguous = run(&mut sealed_command(&sealed, &mock, &["check"]));
    ambiguous.assert_code(78);
    assert!(
        ambiguous.stderr.contains("prod-paid-a, prod-paid-b"),
        "{}",
        ambiguous.stderr
    );
    let mut chosen = sealed_command(&sealed, &mock, &["check"]);
    chosen.env("ENTITLE_PRODUCT_CODE", "prod-paid-b");
    run(&mut chosen).assert_code(0);
    let sent = &mock.registrations()[0];
    assert_eq!(
        (
            sent["productCode"].as_str(),
            sent["publicKeyVersion"].as_u64()
        ),
        (Some("prod-paid-b"), Some(3))
    );
}

#[test]
fn the_seal_survives_copying_and_any_damage_is_refused() {
    let mock = Mock::start(&[]);
    let sealed = seal(
        mock.dir.path(),
        &[(PRODUCT_CODE, "1", &mock.public_key)],
        &[],
    );
    let copied_dir = mock.path("another-image");
    std::fs::create_dir(&copied_dir).unwrap();
    let copied = copied_dir.join("entitle");
    std::fs::copy(&sealed, &copied).unwrap();
    run(&mut sealed_command(&copied, &mock, &["check"])).assert_code(0);

    let bytes = std::fs::read(&sealed).unwrap();
    let offset = slot_offset(&bytes);
    for (what, position) in [
        ("state", offset + 24),
        ("checksum", offset + 40),
        ("payload", offset + 70),
        ("padding", offset + 9000),
    ] {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x20;
        let path = mock.path("damaged");
        std::fs::write(&path, &damaged).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let result = run(&mut sealed_command(&path, &mock, &["check"]));
        result.assert_code(78);
        assert!(
            result.stderr.contains("damaged"),
            "{what}: {}",
            result.stderr
        );
        let version = run(&mut sealed_command(&path, &mock, &["--version"]));
        assert!(
            version.stdout.contains("seal damaged"),
            "{what}: {}",
            version.stdout
        );
    }
    assert_eq!(mock.registrations().len(), 1);
}

#[test]
fn cutting_the_end_off_a_sealed_binary_never_unseals_it() {
    let mock = Mock::start(&[]);
    let sealed = seal(
        mock.dir.path(),
        &[(PRODUCT_CODE, "1", &mock.public_key)],
        &[],
    );
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(
        slot_offset(&bytes) + 16 * 1024 < bytes.len(),
        "the slot is not at the end"
    );
    let cut = mock.path("cut");
    std::fs::write(&cut, &bytes[..bytes.len() - 4096]).unwrap();
    std::fs::set_permissions(&cut, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut command = sealed_command(&cut, &mock, &["--version"]);
    command.env("ENTITLE_PUBLIC_KEY_FILE", &mock.public_key);
    // The kernel may refuse the damaged ELF outright: also fine.
    if let Ok(out) = command.output() {
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("unsealed"),
            "a cut binary must not come up unsealed"
        );
    }
}

#[test]
fn an_unsealed_binary_says_so() {
    let version = run(&mut bare_entitle(&["--version"]));
    version.assert_code(0);
    assert!(version.stdout.contains("(unsealed)"), "{}", version.stdout);
    let inspect = run(&mut bare_entitle(&["inspect"]));
    inspect.assert_code(0);
    assert!(inspect.stdout.contains("unsealed"), "{}", inspect.stdout);
}

#[test]
fn install_copies_the_binary_with_its_seal() {
    let mock = Mock::start(&[]);
    let sealed = seal(
        mock.dir.path(),
        &[(PRODUCT_CODE, "1", &mock.public_key)],
        &[],
    );
    let empty_dir = mock.path("emptydir");
    std::fs::create_dir(&empty_dir).unwrap();
    run(Command::new(&sealed).arg("install").arg(&empty_dir)).assert_code(0);
    let installed = empty_dir.join("entitle");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&installed).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o755);
    run(&mut sealed_command(&installed, &mock, &["check"])).assert_code(0);
    let refused = run(&mut bare_entitle(&["install", "/nonexistent/folder"]));
    refused.assert_code(78);
    assert!(
        refused.stderr.contains("/nonexistent/folder"),
        "{}",
        refused.stderr
    );
}

/// A metered product sealed with its dimensions: metering is on without any option, and a
/// buyer can neither drop dimensions nor swap the list.
#[test]
fn sealed_dimensions_turn_metering_on_and_a_different_list_is_refused() {
    let mock = Mock::start(&["--period", "2s", "--dimensions", "scans,gb"]);
    let output = mock.path("entitle-metered");
    let mut command = bare_entitle(&[
        "seal",
        "--product-code",
        PRODUCT_CODE,
        "--meter",
        "scans,gb",
        "--output",
    ]);
    command.arg(&output);
    run(&mut command).assert_code(0);
    let inspect = run(&mut sealed_command(&output, &mock, &["inspect"]));
    assert!(
        inspect
            .stdout
            .contains(&format!("product {PRODUCT_CODE} meter scans,gb")),
        "{}",
        inspect.stdout
    );
    let check = run(&mut sealed_command(&output, &mock, &["check"]));
    check.assert_code(0);
    let dry_runs: Vec<String> = mock
        .requests()
        .iter()
        .filter(|r| r["kind"] == "meter")
        .map(|r| r["dimension"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        dry_runs,
        ["scans", "gb"],
        "the sealed dimensions are checked"
    );
    for (what, list) in [
        ("dropped", "scans"),
        ("swapped", "scans,free"),
        ("none", ""),
    ] {
        let mut command = sealed_command(&output, &mock, &["check"]);
        command.env("ENTITLE_METER_DIMENSIONS", list);
        let result = run(&mut command);
        if list.is_empty() {
            result.assert_code(0);
            continue;
        }
        result.assert_code(78);
        assert!(
            result.stderr.contains("sealed to meter scans,gb"),
            "{what}: {}",
            result.stderr
        );
    }
    let mut same_in_another_order =
        sealed_command(&output, &mock, &["check", "--meter", "gb,scans"]);
    run(&mut same_in_another_order).assert_code(0);
}

/// `verify --record` on a binary sealed for several products takes the record's product when
/// it is one of them, with no ENTITLE_PRODUCT_CODE needed.
#[test]
fn verify_record_picks_the_records_product_among_several_sealed() {
    let mock = Mock::start(&[]);
    let record = mock.path("record.json");
    let mut command = entitle(&mock, &["check", "--output", record.to_str().unwrap()]);
    command.env("ENTITLE_PRODUCT_CODE", "prod-paid-b");
    run(&mut command).assert_code(0);
    let sealed = seal(
        mock.dir.path(),
        &[
            ("prod-paid-a", "1", &mock.public_key),
            ("prod-paid-b", "1", &mock.public_key),
        ],
        &[],
    );
    let verify = run(&mut sealed_command(
        &sealed,
        &mock,
        &["verify", "--record", record.to_str().unwrap()],
    ));
    verify.assert_code(0);
    assert!(verify.stderr.contains("prod-paid-b"), "{}", verify.stderr);
}
