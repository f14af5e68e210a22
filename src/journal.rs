//! The journal: metering state made durable before anything is acknowledged. An append-only
//! file of checksummed frames, each one batch of ledger events, written by one thread with one
//! `fdatasync` per batch (group commit: every report that arrives while a batch is being
//! written goes into the next one). On start it is replayed: a torn tail (a write cut short by
//! a crash, so never acknowledged) is dropped with a warning, and the state is compacted into a
//! fresh file. Without a state folder it runs in memory.
//!
//! Frame: payload length (u32 LE) | first 8 bytes of the payload's SHA-256 | payload (the
//! batch's events as JSON).

use crate::ledger::{Event, Hour, Ledger};
use crate::record::write_atomically;
use crate::unix_now;
use ring::digest::{digest, SHA256};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use tokio::sync::oneshot;
use tracing::{error, warn};

const JOURNAL: &str = "journal";
const LOCK: &str = "lock";
const HEADER: usize = 12;
/// A journal larger than this is compacted after the next batch.
const COMPACT_AT: u64 = 4 * 1024 * 1024;
/// Reports waiting for the writer beyond this are refused (503) instead of queued.
const MAX_QUEUED: usize = 100_000;

/// Why something could not be made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalError(pub String);

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What replaying found, for the start line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub frames: usize,
    pub torn_bytes: u64,
}

/// A report waiting for the writer, and who to tell when it is durable.
struct Pending {
    dimension: String,
    quantity: u64,
    received_at: i64,
    done: oneshot::Sender<Result<Hour, JournalError>>,
}

/// Sender events waiting for the writer, and who to tell.
type PendingEvents = (Vec<Event>, oneshot::Sender<Result<(), JournalError>>);

#[derive(Default)]
struct Queue {
    reports: Vec<Pending>,
    events: Vec<PendingEvents>,
    closing: bool,
    /// The writer sleeps on the condvar: only then does a new entry need to wake it (while it
    /// writes and syncs, it takes whatever queued up when it comes back).
    writer_idle: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    ledger: Mutex<Ledger>,
    stats: Mutex<Stats>,
}

/// What the writer did: reports made durable and the synced batches they took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub reports: u64,
    pub batches: u64,
}

/// The writer's side: the open file (none in memory mode) and where it lives.
struct Store {
    folder: PathBuf,
    file: File,
    size: u64,
    _lock: File,
}

/// The handle the relay and the sender share.
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Option<thread::JoinHandle<()>>>>,
}

impl Journal {
    /// Opens (replays and compacts) the journal in `folder`, or an empty in-memory one, and
    /// starts its writer. `start` is the `Started` event of this run.
    pub fn open(
        folder: Option<&Path>,
        start: Event,
        now: i64,
    ) -> Result<(Journal, Replayed), String> {
        let period = match &start {
            Event::Started { period, .. } => *period,
            _ => 1,
        };
        let mut ledger = Ledger::new(period);
        let (store, replayed) = match folder {
            Some(folder) => {
                let (store, replayed) = Store::open(folder, &mut ledger)?;
                (Some(store), replayed)
            }
            None => (None, Replayed::default()),
        };
        if ledger.period() != period && replayed.frames > 0 {
            return Err(format!(
                "the metering state was written with a {} s period, this run uses {} s; use another --meter-state folder (or the same ENTITLE_METER_PERIOD)",
                ledger.period(),
                period
            ));
        }
        ledger.apply(&start);
        let store = match store {
            Some(mut store) => {
                store.compact(&ledger, now)?;
                Some(store)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            ledger: Mutex::new(ledger),
            stats: Mutex::new(Stats::default()),
        });
        let writer_shared = Arc::clone(&shared);
        let writer = thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_loop(&writer_shared, store))
            .map_err(|e| format!("cannot start the journal thread: {e}"))?;
        Ok((
            Journal {
                shared,
                writer: Arc::new(Mutex::new(Some(writer))),
            },
            replayed,
        ))
    }

    /// Books `quantity` of `dimension` received at `received_at`; resolves with the hour it was
    /// booked into once it is durable.
    pub async fn report(
        &self,
        dimension: &str,
        quantity: u64,
        received_at: i64,
    ) -> Result<Hour, JournalError> {
        let (done, receiver) = oneshot::channel();
        let writer_idle = {
            let mut queue = lock(&self.shared.queue);
            if queue.closing {
                return Err(JournalError("the relay is stopping".into()));
            }
            if queue.reports.len() >= MAX_QUEUED {
                return Err(JournalError(
                    "too many reports are waiting to be written".into(),
                ));
            }
            queue.reports.push(Pending {
                dimension: dimension.to_owned(),
                quantity,
                received_at,
                done,
            });
            queue.writer_idle
        };
        if writer_idle {
            self.shared.wake.notify_one();
        }
        receiver
            .await
            .unwrap_or_else(|_| Err(JournalError("the journal writer stopped".into())))
    }

    /// Makes the sender's `events` durable and applies them.
    pub async fn record(&self, events: Vec<Event>) -> Result<(), JournalError> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, receiver) = oneshot::channel();
        lock(&self.shared.queue).events.push((events, done));
        self.shared.wake.notify_one();
        receiver
            .await
            .unwrap_or_else(|_| Err(JournalError("the journal writer stopped".into())))
    }

    /// The ledger as of the last durable batch.
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.shared.ledger)
    }

    pub fn stats(&self) -> Stats {
        *lock(&self.shared.stats)
    }

    /// Refuses new reports, writes what is queued, compacts and stops the writer.
    pub fn close(&self) {
        lock(&self.shared.queue).closing = true;
        self.shared.wake.notify_one();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_loop(shared: &Shared, mut store: Option<Store>) {
    let mut broken: Option<JournalError> = None;
    loop {
        let (reports, sender_events, closing) = {
            let mut queue = lock(&shared.queue);
            while queue.reports.is_empty() && queue.events.is_empty() && !queue.closing {
                queue.writer_idle = true;
                queue = shared.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            queue.writer_idle = false;
            (
                std::mem::take(&mut queue.reports),
                std::mem::take(&mut queue.events),
                queue.closing,
            )
        };
        if reports.is_empty() && sender_events.is_empty() && closing {
            break;
        }
        let (events, hours) = batch(&lock(&shared.ledger), &reports, &sender_events);
        let written = match (&broken, store.as_mut()) {
            (Some(error), _) => Err(error.clone()),
            (None, Some(store)) => store.append(&events),
            (None, None) => Ok(()),
        };
        if let Err(error) = &written {
            if broken.is_none() {
                error!(%error, "metering journal write failed; usage is refused until entitle restarts");
            }
            broken = Some(error.clone());
        } else {
            let mut ledger = lock(&shared.ledger);
            for event in &events {
                ledger.apply(event);
            }
            let mut stats = lock(&shared.stats);
            stats.reports += reports.len() as u64;
            stats.batches += 1;
        }
        for (pending, hour) in reports.into_iter().zip(hours) {
            let _ = pending.done.send(written.clone().map(|()| hour));
        }
        for (_, done) in sender_events {
            let _ = done.send(written.clone());
        }
        if let (None, Some(store)) = (&broken, store.as_mut()) {
            if store.size > COMPACT_AT {
                let now = unix_now();
                if let Err(e) = store.compact(&lock(&shared.ledger), now) {
                    warn!(error = %e, "could not compact the metering journal; it keeps growing");
                }
            }
        }
    }
    if let (None, Some(store)) = (&broken, store.as_mut()) {
        if let Err(e) = store.compact(&lock(&shared.ledger), unix_now()) {
            warn!(error = %e, "could not compact the metering journal at stop");
        }
    }
}

/// The batch's events: the sender's first (they may close hours), then the reports booked
/// against the result and summed per dimension and hour. Also each report's hour.
fn batch(
    ledger: &Ledger,
    reports: &[Pending],
    sender_events: &[PendingEvents],
) -> (Vec<Event>, Vec<Hour>) {
    let mut events: Vec<Event> = sender_events
        .iter()
        .flat_map(|(events, _)| events.iter().cloned())
        .collect();
    let booked = if events.is_empty() {
        None
    } else {
        let mut next = ledger.clone();
        events.iter().for_each(|e| next.apply(e));
        Some(next)
    };
    let booking = booked.as_ref().unwrap_or(ledger);
    let mut sums: BTreeMap<(&str, Hour), u64> = BTreeMap::new();
    let hours: Vec<Hour> = reports
        .iter()
        .map(|report| {
            let hour = booking.book(&report.dimension, report.received_at);
            let sum = sums.entry((report.dimension.as_str(), hour)).or_default();
            *sum = sum.saturating_add(report.quantity);
            hour
        })
        .collect();
    events.extend(
        sums.into_iter()
            .map(|((dimension, hour), quantity)| Event::Usage {
                dimension: dimension.to_owned(),
                hour,
                quantity,
            }),
    );
    (events, hours)
}

impl Store {
    /// Locks the folder, replays its journal into `ledger` and drops a torn tail.
    fn open(folder: &Path, ledger: &mut Ledger) -> Result<(Store, Replayed), String> {
        std::fs::create_dir_all(folder).map_err(|e| {
            format!(
                "cannot create --meter-state folder {}: {e}; mount a writable volume there (an emptyDir or a task volume)",
                folder.display()
            )
        })?;
        let lock = take_lock(folder)?;
        let path = folder.join(JOURNAL);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let (good, frames) =
            replay(&bytes, ledger).map_err(|e| format!("{}: {e}", path.display()))?;
        let torn_bytes = (bytes.len() - good) as u64;
        if torn_bytes > 0 {
            warn!(
                journal = %path.display(),
                dropped_bytes = torn_bytes,
                kept_frames = frames,
                "dropped the torn tail of the metering journal (a write cut short by a crash: nothing in it was acknowledged)"
            );
            file.set_len(good as u64)
                .map_err(|e| format!("cannot truncate {}: {e}", path.display()))?;
        }
        Ok((
            Store {
                folder: folder.to_owned(),
                file,
                size: good as u64,
                _lock: lock,
            },
            Replayed { frames, torn_bytes },
        ))
    }

    fn append(&mut self, events: &[Event]) -> Result<(), JournalError> {
        let frame = frame(events);
        let io = |e: std::io::Error| {
            JournalError(format!(
                "cannot write the metering journal in {}: {e}",
                self.folder.display()
            ))
        };
        self.file.write_all(&frame).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.size += frame.len() as u64;
        Ok(())
    }

    /// Replaces the journal with one snapshot frame, atomically, then syncs the folder so the
    /// rename itself is durable: a crash leaves the old journal or the snapshot.
    fn compact(&mut self, ledger: &Ledger, now: i64) -> Result<(), String> {
        let snapshot = frame(&[Event::Snapshot(Box::new(ledger.compacted(now)))]);
        let path = self.folder.join(JOURNAL);
        let result = (|| {
            write_atomically(&path, &snapshot, 0o666)?;
            File::open(&self.folder)?.sync_all()?;
            OpenOptions::new().append(true).open(&path)
        })();
        let file = result.map_err(|e| format!("cannot compact {}: {e}", path.display()))?;
        self.file = file;
        self.size = snapshot.len() as u64;
        Ok(())
    }
}

/// Holds `folder/lock` exclusively (flock) so two relays never share a journal.
fn take_lock(folder: &Path) -> Result<File, String> {
    let path = folder.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            format!(
                "cannot write in --meter-state folder {} ({e}); mount a writable volume there",
                folder.display()
            )
        })?;
    // SAFETY: flock on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(format!(
            "--meter-state folder {} is in use by another entitle (pid {}); give each relay its own folder",
            folder.display(),
            holder.trim()
        ));
    }
    let _ = file.set_len(0);
    let _ = file.write_all(std::process::id().to_string().as_bytes());
    Ok(file)
}

fn frame(events: &[Event]) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    let payload = serde_json::to_vec(events).unwrap_or_default();
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&digest(&SHA256, &payload).as_ref()[..8]);
    frame.extend_from_slice(&payload);
    frame
}

/// Applies every intact frame; returns the length of the intact prefix and the frame count.
/// A frame whose checksum holds but whose events do not parse is not a torn write: that is an
/// error, never silently dropped.
fn replay(bytes: &[u8], ledger: &mut Ledger) -> Result<(usize, usize), String> {
    let mut at = 0;
    let mut frames = 0;
    while let Some((length, events)) = read_frame(&bytes[at..])? {
        for event in &events {
            ledger.apply(event);
        }
        at += length;
        frames += 1;
    }
    Ok((at, frames))
}

/// One intact frame at the start of `bytes` (its length and events), or `None` when what is
/// there is incomplete or fails its checksum.
fn read_frame(bytes: &[u8]) -> Result<Option<(usize, Vec<Event>)>, String> {
    let Some(length) = bytes.get(..4) else {
        return Ok(None);
    };
    let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
    let (Some(checksum), Some(payload)) = (
        bytes.get(4..HEADER),
        HEADER
            .checked_add(length)
            .and_then(|end| bytes.get(HEADER..end)),
    ) else {
        return Ok(None);
    };
    if &digest(&SHA256, payload).as_ref()[..8] != checksum {
        return Ok(None);
    }
    let events = serde_json::from_slice(payload)
        .map_err(|e| format!("an intact frame of the metering journal does not parse ({e}); it was written by another version of entitle"))?;
    Ok(Some((HEADER + length, events)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(dimension: &str, hour: Hour, quantity: u64) -> Event {
        Event::Usage {
            dimension: dimension.into(),
            hour,
            quantity,
        }
    }

    #[test]
    fn frames_replay_and_a_torn_tail_is_dropped_at_any_cut() {
        let mut bytes = frame(&[Event::Started { at: 10, period: 60 }]);
        bytes.extend(frame(&[usage("scans", 1, 5), usage("gb", 1, 7)]));
        let whole = bytes.len();
        bytes.extend(frame(&[usage("scans", 1, 100)]));
        for cut in whole..bytes.len() {
            let mut ledger = Ledger::new(60);
            let (good, frames) = replay(&bytes[..cut], &mut ledger).unwrap();
            assert_eq!((good, frames), (whole, 2), "cut at {cut}");
            assert_eq!(ledger.state().slots["scans"][&1].open, 5);
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(replay(&flipped, &mut Ledger::new(60)).unwrap().1, 2);
        let mut garbage = frame(&[]);
        garbage.truncate(HEADER);
        garbage.extend_from_slice(b"nope");
        garbage[..4].copy_from_slice(&4u32.to_le_bytes());
        let sum = digest(&SHA256, b"nope");
        garbage[4..HEADER].copy_from_slice(&sum.as_ref()[..8]);
        assert!(
            replay(&garbage, &mut Ledger::new(60)).is_err(),
            "intact but unparsable is an error"
        );
    }

    #[test]
    fn every_event_round_trips_through_a_frame() {
        let mut ledger = Ledger::new(60);
        ledger.apply(&Event::Started { at: 5, period: 60 });
        ledger.apply(&usage("scans", 1, 5));
        let events = vec![
            Event::Started { at: 5, period: 60 },
            usage("scans", 1, 5),
            Event::Intent {
                dimension: "scans".into(),
                hour: 1,
                quantity: 5,
                timestamp: 70,
                token: "t".into(),
                carry: Some((2, 1)),
            },
            Event::Sent {
                dimension: "scans".into(),
                hour: 1,
                record_id: "r".into(),
            },
            Event::Folded {
                dimension: "gb".into(),
                hour: 1,
                to: 2,
                reason: "x".into(),
            },
            Event::Snapshot(Box::new(ledger.state().clone())),
        ];
        let bytes = frame(&events);
        assert_eq!(read_frame(&bytes).unwrap(), Some((bytes.len(), events)));
    }

    #[test]
    fn a_journal_survives_reopening_and_refuses_a_second_owner() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let started = |at| Event::Started { at, period: 60 };
        let (journal, replayed) = Journal::open(Some(dir.path()), started(100), 100).unwrap();
        assert_eq!(replayed, Replayed::default());
        let second = Journal::open(Some(dir.path()), started(100), 100);
        assert!(second.err().unwrap().contains("in use by another entitle"));
        let hours: Vec<Hour> = runtime.block_on(async {
            vec![
                journal.report("scans", 2, 130).await.unwrap(),
                journal.report("scans", 3, 190).await.unwrap(),
            ]
        });
        assert_eq!(hours, vec![2, 3]);
        journal.close();
        drop(journal);
        let (reopened, replayed) = Journal::open(Some(dir.path()), started(200), 200).unwrap();
        assert_eq!(
            replayed.frames, 1,
            "compacted into one snapshot at the stop"
        );
        let ledger = reopened.ledger().clone();
        let slots = &ledger.state().slots["scans"];
        assert_eq!((slots[&2].open, slots[&3].open), (2, 3));
        assert_eq!(reopened.ledger().state().software_start, Some(100));
        reopened.close();
    }
}
