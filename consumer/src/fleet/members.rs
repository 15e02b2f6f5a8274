//! Who is in the fleet, as the fleet stream shows it: each instance's last
//! heartbeat, judged in the store's time.
//!
//! An instance is live while it says it is ready and the store's
//! timestamp of its last heartbeat is at most its lease duration (the one
//! its heartbeat gives) older than the timestamp of this instance's own
//! latest heartbeat. Both timestamps come from the store's
//! clock, so no two machines' clocks are ever compared; while this
//! instance cannot write a heartbeat, its reference time stands still and
//! nobody expires in its eyes.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::records::{Claim, Heartbeat, HEARTBEAT, LEFT};
use message_store::{Message, MessageStore, Result, StreamName, StreamRead};

const PAGE: u64 = 100;
/// How far back a joining instance reads heartbeats at most, in pages: far
/// more than a lease's worth of heartbeats of any fleet (3 per instance).
const MAX_PAGES_BACK: usize = 1000;

#[derive(Debug, Clone)]
struct Seen {
    time: DateTime<Utc>,
    /// Its last record is `Left`.
    left: bool,
    heartbeat: Option<Heartbeat>,
}

/// The fleet as this instance has read it.
#[derive(Debug)]
pub(crate) struct Members {
    stream: StreamName,
    cursor: u64,
    seen: HashMap<String, Seen>,
    /// The store's time of this instance's latest heartbeat.
    now: Option<DateTime<Utc>>,
}

fn lease_span(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

impl Members {
    /// Reads the recent part of the fleet stream: back from its end until
    /// heartbeats are two lease durations older than its last one (the
    /// longest lease among them or this instance's).
    pub(crate) async fn open(
        store: &dyn MessageStore,
        stream: StreamName,
        lease: Duration,
    ) -> Result<Members> {
        let mut members = Members {
            stream,
            cursor: 0,
            seen: HashMap::new(),
            now: None,
        };
        let Some(version) = store.stream_version(&members.stream).await? else {
            return Ok(members);
        };
        let mut pages = Vec::new();
        let mut end = version + 1;
        let mut newest = None;
        let mut longest = lease;
        while pages.len() < MAX_PAGES_BACK {
            let start = end.saturating_sub(PAGE);
            let read = StreamRead::new()
                .with_position(start)
                .with_batch_size(end - start);
            let page = store.read_stream(&members.stream, read).await?;
            newest = newest.or(page.last().map(|m| m.time));
            for message in &page {
                if let Ok(heartbeat) = message.decode::<Heartbeat>() {
                    longest = longest.max(Duration::from_millis(heartbeat.lease_ms));
                }
            }
            let old_enough = match (page.first(), newest) {
                (Some(first), Some(newest)) => first.time < newest - lease_span(longest) * 2,
                _ => true,
            };
            pages.push(page);
            if start == 0 || old_enough {
                break;
            }
            end = start;
        }
        for page in pages.iter().rev() {
            for message in page {
                members.apply(message, None);
            }
        }
        members.cursor = version + 1;
        Ok(members)
    }

    /// Reads what was appended since; `mine` is the id of this instance's
    /// latest heartbeat, whose store time becomes the reference time.
    pub(crate) async fn observe(&mut self, store: &dyn MessageStore, mine: Uuid) -> Result<()> {
        loop {
            let read = StreamRead::new()
                .with_position(self.cursor)
                .with_batch_size(1000);
            let page = store.read_stream(&self.stream, read).await?;
            for message in &page {
                self.apply(message, Some(mine));
                self.cursor = message.position + 1;
            }
            if (page.len() as u64) < 1000 {
                return Ok(());
            }
        }
    }

    fn apply(&mut self, message: &Message, mine: Option<Uuid>) {
        if Some(message.id) == mine {
            self.now = Some(message.time);
        }
        let (left, heartbeat) = match message.message_type.as_str() {
            HEARTBEAT => match message.decode::<Heartbeat>() {
                Ok(heartbeat) => (false, Some(heartbeat)),
                Err(_) => return,
            },
            LEFT => (true, None),
            _ => return,
        };
        let Some(instance) = message.data.get("instance").and_then(|i| i.as_str()) else {
            return;
        };
        self.seen.insert(
            instance.to_owned(),
            Seen {
                time: message.time,
                left,
                heartbeat,
            },
        );
    }

    fn is_live(&self, instance: &str) -> bool {
        let (Some(seen), Some(now)) = (self.seen.get(instance), self.now) else {
            return false;
        };
        let Some(heartbeat) = seen.heartbeat.as_ref().filter(|_| !seen.left) else {
            return false;
        };
        let lease = Duration::from_millis(heartbeat.lease_ms);
        heartbeat.ready && now - seen.time <= lease_span(lease)
    }

    /// The live instances that count `buckets` buckets, `me` among them,
    /// sorted (one that counts differently is not planned with).
    pub(crate) fn live(&self, me: &str, buckets: u32) -> Vec<String> {
        let mut live: Vec<String> = self
            .seen
            .iter()
            .filter(|(i, seen)| {
                *i != me
                    && self.is_live(i)
                    && seen
                        .heartbeat
                        .as_ref()
                        .is_some_and(|h| h.buckets == buckets)
            })
            .map(|(i, _)| i.clone())
            .collect();
        live.push(me.to_owned());
        live.sort();
        live
    }

    /// True when `claim` of `bucket` stands: its instance is live and has
    /// not said since the claim that it no longer runs the bucket.
    pub(crate) fn holds(&self, claim: &Claim, bucket: u32) -> bool {
        if !self.is_live(&claim.instance) {
            return false;
        }
        let seen = &self.seen[&claim.instance];
        match &seen.heartbeat {
            Some(heartbeat) if seen.time > claim.time => heartbeat.running.contains(&bucket),
            _ => true,
        }
    }

    /// A live instance that counts the buckets differently, if any.
    pub(crate) fn mismatch(&self, buckets: u32) -> Option<(String, u32)> {
        self.seen.iter().find_map(|(instance, seen)| {
            let theirs = seen.heartbeat.as_ref()?.buckets;
            (theirs != buckets && self.is_live(instance)).then(|| (instance.clone(), theirs))
        })
    }
}
