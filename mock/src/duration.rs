//! Durations on the command line, in milliseconds: `500ms`, `2s`, `10m`, `1h`, `1d`, sums such
//! as `1h30m`, and (for signed values) a leading `-` or `+`.

/// Large enough for any test, small enough that no time arithmetic can overflow.
const MAX_MS: i64 = 100 * 365 * 86_400_000;

const UNITS: &[(&str, i64)] = &[
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// A duration greater than zero.
pub fn parse_positive(text: &str) -> Result<i64, String> {
    match parse_magnitude(text.trim())? {
        0 => Err(format!("want a duration greater than zero, got {text:?}")),
        ms => Ok(ms),
    }
}

/// A duration that may be negative (`-20m`).
pub fn parse_signed(text: &str) -> Result<i64, String> {
    let text = text.trim();
    match text.strip_prefix('-') {
        Some(rest) => parse_magnitude(rest).map(|ms| -ms),
        None => parse_magnitude(text.strip_prefix('+').unwrap_or(text)),
    }
}

fn parse_magnitude(text: &str) -> Result<i64, String> {
    let bad = || format!("want a duration like 500ms, 2s, 10m, 1h or 1h30m, got {text:?}");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let (number, unit) = (&rest[..digits], &rest[digits..digits + letters]);
        let scale = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s);
        let (Ok(n), Some(scale)) = (number.parse::<i64>(), scale) else {
            return Err(bad());
        };
        total = n
            .checked_mul(scale)
            .and_then(|ms| total.checked_add(ms))
            .filter(|ms| *ms <= MAX_MS)
            .ok_or_else(|| format!("duration {text:?} is too large (at most 100 years)"))?;
        rest = &rest[digits + letters..];
    }
    Ok(total)
}

/// The shortest form `parse_signed` reads back: `1h`, `90s` as `1m30s`, `-500ms`.
pub fn format(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::from(if ms < 0 { "-" } else { "" });
    let mut rest = ms.unsigned_abs();
    for (unit, scale) in UNITS {
        let scale = scale.unsigned_abs();
        if rest >= scale {
            out.push_str(&format!("{}{unit}", rest / scale));
            rest %= scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_forms() {
        assert_eq!(parse_positive("2s"), Ok(2000));
        assert_eq!(parse_positive("500ms"), Ok(500));
        assert_eq!(parse_positive("10m"), Ok(600_000));
        assert_eq!(parse_positive(" 1h "), Ok(3_600_000));
        assert_eq!(parse_positive("1d"), Ok(86_400_000));
        assert_eq!(parse_positive("1h30m"), Ok(5_400_000));
        assert_eq!(parse_positive("1s500ms"), Ok(1500));
    }

    #[test]
    fn signed_values() {
        assert_eq!(parse_signed("-20m"), Ok(-1_200_000));
        assert_eq!(parse_signed("+2h"), Ok(7_200_000));
        assert_eq!(parse_signed("2h"), Ok(7_200_000));
        assert_eq!(parse_signed("0s"), Ok(0));
        assert_eq!(parse_signed("-1h30m"), Ok(-5_400_000));
    }

    #[test]
    fn rejects_the_rest() {
        for bad in [
            "", "5", "s", "1x", "1.5s", "-", "--1s", "1h-", " - 1s", "1 h", "+-1s", "ms5",
        ] {
            assert!(parse_signed(bad).is_err(), "{bad:?}");
        }
        for bad in ["0s", "-1s", "+1s", "0ms"] {
            assert!(parse_positive(bad).is_err(), "{bad:?}");
        }
        assert!(parse_positive("99999999999999999999h").is_err());
        assert!(parse_positive("101y").is_err());
        assert!(parse_positive("36501d").is_err());
        assert!(parse_positive("36500d").is_ok());
    }

    #[test]
    fn formats_back() {
        for ms in [
            1, 500, 1000, 1500, 60_000, 90_000, 3_600_000, 5_400_000, 86_400_000,
        ] {
            assert_eq!(parse_signed(&format(ms)), Ok(ms), "{ms}");
            assert_eq!(parse_signed(&format(-ms)), Ok(-ms), "{ms}");
        }
        assert_eq!(format(3_600_000), "1h");
        assert_eq!(format(-1_200_000), "-20m");
        assert_eq!(format(1500), "1s500ms");
        assert_eq!(format(0), "0s");
    }
}
