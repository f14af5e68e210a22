//! One operation's answer script and its rate limit.

use std::time::Instant;

use crate::script::{Named, Playlist};

pub struct Lane<M> {
    pub script: Playlist<M>,
    bucket: Option<Bucket>,
}

impl<M: Named> Lane<M> {
    pub fn new(script: Playlist<M>, rate: Option<f64>) -> Lane<M> {
        Lane {
            script,
            bucket: rate.map(Bucket::new),
        }
    }

    /// The next script entry, or `None` when the request is over the rate.
    pub fn next_mode(&mut self) -> Option<M> {
        if let Some(bucket) = &mut self.bucket {
            if !bucket.try_take() {
                return None;
            }
        }
        Some(self.script.take())
    }

    /// Takes the next entry only if it is `mode` and the rate allows.
    pub fn take_if_next(&mut self, mode: M) -> bool {
        self.script.peek() == mode && self.next_mode().is_some()
    }
}

/// Token bucket: `rate` per second, burst `rate` (at least 1).
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Bucket {
        Bucket {
            rate,
            tokens: rate.max(1.0),
            last: Instant::now(),
        }
    }

    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate.max(1.0));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Mode, Script};

    #[test]
    fn rate_limits_without_consuming_the_script() {
        let mut lane = Lane::new(Script::parse("throttle,ok").unwrap(), Some(1.0));
        assert_eq!(lane.next_mode(), Some(Mode::Throttle));
        assert_eq!(lane.next_mode(), None);
        assert_eq!(lane.script.peek(), Mode::Ok);
    }

    #[test]
    fn take_if_next() {
        let mut lane = Lane::new(Script::parse("no-read,ok").unwrap(), None);
        assert!(!lane.take_if_next(Mode::Ok));
        assert!(lane.take_if_next(Mode::NoRead));
        assert!(!lane.take_if_next(Mode::NoRead));
    }
}
