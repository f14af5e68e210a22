//! Answer scripts: which mode answers each request, in order. `--answer` plays RegisterUsage
//! [`Mode`]s; `--meter-answer` plays MeterUsage modes with the same syntax.

use std::fmt;

/// A set of answer modes with names, so that a [`Playlist`] of them can be parsed.
pub trait Named: Copy + Eq + fmt::Debug + 'static {
    const NAMES: &'static [(&'static str, Self)];
    /// The mode of an empty-handed default script.
    const DEFAULT: Self;

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
    }
}

/// One way of answering a RegisterUsage request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ok,
    OkRotation,
    NotEntitled,
    PlatformNotSupported,
    InvalidProductCode,
    InvalidPublicKeyVersion,
    InvalidRegion,
    DisabledApi,
    AccessDenied,
    UnrecognizedClient,
    Throttle,
    InternalError,
    Http502Html,
    Http503Empty,
    NotJson,
    Stall,
    StallBody,
    Reset,
    CloseMidBody,
    LengthMismatch,
    ChunkedGarbage,
    NoRead,
    HugeBody,
    WrongKey,
    AlgNone,
    Hs256,
    Rs256,
    WrongProductCode,
    WrongNonce,
    WrongVersion,
    VersionAsString,
    MissingNonce,
    Replay,
    Tampered,
    Truncated,
    Garbage,
    Empty,
    NoSignature,
    Huge,
}

const NAMES: &[(&str, Mode)] = &[
    ("ok", Mode::Ok),
    ("ok-rotation", Mode::OkRotation),
    ("not-entitled", Mode::NotEntitled),
    ("platform-not-supported", Mode::PlatformNotSupported),
    ("invalid-product-code", Mode::InvalidProductCode),
    ("invalid-public-key-version", Mode::InvalidPublicKeyVersion),
    ("invalid-region", Mode::InvalidRegion),
    ("disabled-api", Mode::DisabledApi),
    ("access-denied", Mode::AccessDenied),
    ("unrecognized-client", Mode::UnrecognizedClient),
    ("throttle", Mode::Throttle),
    ("internal-error", Mode::InternalError),
    ("http-502-html", Mode::Http502Html),
    ("http-503-empty", Mode::Http503Empty),
    ("not-json", Mode::NotJson),
    ("stall", Mode::Stall),
    ("stall-body", Mode::StallBody),
    ("reset", Mode::Reset),
    ("close-mid-body", Mode::CloseMidBody),
    ("length-mismatch", Mode::LengthMismatch),
    ("chunked-garbage", Mode::ChunkedGarbage),
    ("no-read", Mode::NoRead),
    ("huge-body", Mode::HugeBody),
    ("wrong-key", Mode::WrongKey),
    ("alg-none", Mode::AlgNone),
    ("hs256", Mode::Hs256),
    ("rs256", Mode::Rs256),
    ("wrong-product-code", Mode::WrongProductCode),
    ("wrong-nonce", Mode::WrongNonce),
    ("wrong-version", Mode::WrongVersion),
    ("version-as-string", Mode::VersionAsString),
    ("missing-nonce", Mode::MissingNonce),
    ("replay", Mode::Replay),
    ("tampered", Mode::Tampered),
    ("truncated", Mode::Truncated),
    ("garbage", Mode::Garbage),
    ("empty", Mode::Empty),
    ("no-signature", Mode::NoSignature),
    ("huge", Mode::Huge),
];

impl Named for Mode {
    const NAMES: &'static [(&'static str, Mode)] = NAMES;
    const DEFAULT: Mode = Mode::Ok;
}

impl Mode {
    pub fn name(self) -> &'static str {
        Named::name(self)
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        <Mode as Named>::from_name(name)
    }

    pub fn all_names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(n, _)| *n)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Entries are played in order; the last one repeats forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Playlist<M> {
    entries: Vec<(M, u64)>,
    pos: usize,
    used: u64,
}

/// The RegisterUsage script (`--answer`).
pub type Script = Playlist<Mode>;

impl<M: Named> Playlist<M> {
    pub fn parse(text: &str) -> Result<Playlist<M>, String> {
        let entries = text
            .split(',')
            .map(parse_entry)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Playlist {
            entries,
            pos: 0,
            used: 0,
        })
    }

    pub fn peek(&self) -> M {
        self.entries[self.pos].0
    }

    pub fn take(&mut self) -> M {
        let (mode, count) = self.entries[self.pos];
        if self.pos + 1 < self.entries.len() {
            self.used += 1;
            if self.used >= count {
                self.pos += 1;
                self.used = 0;
            }
        }
        mode
    }
}

impl<M: Named> Default for Playlist<M> {
    fn default() -> Self {
        Playlist {
            entries: vec![(M::DEFAULT, 1)],
            pos: 0,
            used: 0,
        }
    }
}

fn parse_entry<M: Named>(entry: &str) -> Result<(M, u64), String> {
    let entry = entry.trim();
    let (name, count) = match entry.split_once('*') {
        Some((name, count)) => (name.trim(), parse_count(count.trim(), entry)?),
        None => (entry, 1),
    };
    if name.is_empty() {
        return Err(format!("empty entry in answer script near {entry:?}"));
    }
    let mode = M::from_name(name).ok_or_else(|| {
        let all: Vec<_> = M::NAMES.iter().map(|(n, _)| *n).collect();
        format!("unknown answer mode {name:?} (one of: {})", all.join(", "))
    })?;
    Ok((mode, count))
}

fn parse_count(count: &str, entry: &str) -> Result<u64, String> {
    match count.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "bad repeat count in answer script entry {entry:?}: want an integer >= 1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(script: &str, n: usize) -> Vec<Mode> {
        let mut s = Script::parse(script).unwrap();
        (0..n).map(|_| s.take()).collect()
    }

    #[test]
    fn repeats_then_last_forever() {
        use Mode::*;
        assert_eq!(
            play("throttle*3,ok", 6),
            [Throttle, Throttle, Throttle, Ok, Ok, Ok]
        );
        assert_eq!(
            play("ok,not-entitled*2,reset", 6),
            [Ok, NotEntitled, NotEntitled, Reset, Reset, Reset]
        );
        assert_eq!(play("stall*2", 4), [Stall; 4]);
        assert_eq!(play(" wrong-key * 2 , ok ", 3), [WrongKey, WrongKey, Ok]);
    }

    #[test]
    fn peek_does_not_consume() {
        let mut s = Script::parse("no-read,ok").unwrap();
        assert_eq!(s.peek(), Mode::NoRead);
        assert_eq!(s.peek(), Mode::NoRead);
        assert_eq!(s.take(), Mode::NoRead);
        assert_eq!(s.peek(), Mode::Ok);
    }

    #[test]
    fn rejects_bad_scripts() {
        for bad in ["", "ok,", "nope", "ok*0", "ok*x", "ok*", "*3", "ok*-1"] {
            assert!(Script::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn every_name_round_trips() {
        for name in Mode::all_names() {
            assert_eq!(Mode::from_name(name).unwrap().name(), name);
        }
        assert_eq!(Script::default(), Script::parse("ok").unwrap());
    }
}
