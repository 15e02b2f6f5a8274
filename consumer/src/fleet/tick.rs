//! An instance's tick, every third of the lease: renew the heartbeat, read
//! the fleet and the buckets' claims, plan, give up and claim buckets.

use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::bucket::{self, BucketContext};
use super::instance::{Instance, Running};
use super::plan;
use super::records::{self, Heartbeat};
use super::Lease;
use crate::error::Error;
use message_store::ExpectedVersion;

impl Instance {
    pub(super) async fn tick(&mut self) {
        let id = self.renew().await;
        if !self.renewed_recently() {
            // Others may take its buckets soon (the loop fences them): plan nothing.
            return;
        }
        let store = self.setup.store.clone();
        if let Err(error) = self.setup.members.observe(store.as_ref(), id).await {
            return self.error("reading the fleet", error);
        }
        // A newcomer that counts differently stops before it claims
        // anything; the instances already at work leave it out.
        let mismatch = self.setup.members.mismatch(self.setup.fleet.buckets());
        if let Some((instance, theirs)) = mismatch.filter(|_| !self.planned) {
            self.fatal = Some(Error::FleetMismatch {
                fleet: self.setup.fleet_stream.as_str().to_owned(),
                instance,
                theirs,
                ours: self.setup.fleet.buckets(),
            });
            return;
        }
        // A few at a time: a tick must stay well inside a heartbeat interval.
        let mut reads = Vec::with_capacity(self.records.len());
        for (stream, cached) in self.setup.position_streams.iter().zip(&self.records) {
            reads.push(records::read_bucket(store.as_ref(), stream, cached));
        }
        let read: Vec<_> = futures::stream::iter(reads).buffered(4).collect().await;
        for (bucket, read) in read.into_iter().enumerate() {
            match read {
                Ok(record) => self.records[bucket] = record,
                Err(error) => return self.error("reading a bucket's claims", error),
            }
        }
        self.stop_lost();
        self.plan_and_act().await;
    }

    /// Appends this instance's heartbeat (its running buckets, its lease,
    /// whether it is ready); returns the heartbeat's id.
    pub(super) async fn renew(&mut self) -> Uuid {
        let sent = Instant::now();
        let id = Uuid::new_v4();
        let fleet = &self.setup.fleet;
        let heartbeat = Heartbeat {
            instance: self.setup.instance.clone(),
            buckets: fleet.buckets(),
            lease_ms: u64::try_from(fleet.lease_duration().as_millis()).unwrap_or(u64::MAX),
            running: self.running.keys().copied().collect(),
            ready: self.renewed_recently() || self.renewed_at.is_none(),
        };
        let written = self
            .setup
            .store
            .write(
                &self.setup.fleet_stream,
                vec![heartbeat.message().with_id(id)],
                ExpectedVersion::Any,
            )
            .await;
        match written {
            Ok(_) => {
                self.renewed_at = Some(sent);
                self.fenced = false;
                if let Some(until) = self.fence_at() {
                    self.lease_clock.extend(until);
                }
                self.setup.shared.update(|h| h.renewals += 1);
            }
            Err(error) => {
                self.setup.shared.update(|h| h.renewal_failures += 1);
                self.error("renewing the heartbeat", error);
            }
        }
        id
    }

    /// Stops the buckets someone claimed since this instance did.
    fn stop_lost(&mut self) {
        let lost: Vec<u32> = self
            .running
            .iter()
            .filter(|(b, r)| {
                !r.stopping
                    && self.records[**b as usize]
                        .claim
                        .as_ref()
                        .is_some_and(|c| c.generation > r.generation)
            })
            .map(|(b, _)| *b)
            .collect();
        for bucket in lost {
            self.setup.shared.update(|h| h.losses += 1);
            self.setup.shared.lease_changed("loss");
            if let Some(running) = self.running.get_mut(&bucket) {
                running.lost = true;
            }
            self.stop(bucket);
        }
    }

    async fn plan_and_act(&mut self) {
        let me = self.setup.instance.clone();
        let buckets = self.setup.fleet.buckets();
        let live = self.setup.members.live(&me, buckets);
        self.planned = true;
        let holders: Vec<Option<String>> = (0..buckets)
            .map(|bucket| {
                if self.running.contains_key(&bucket) {
                    return Some(me.clone());
                }
                let claim = self.records[bucket as usize].claim.as_ref()?;
                (claim.instance != me && self.setup.members.holds(claim, bucket))
                    .then(|| claim.instance.clone())
            })
            .collect();
        let target = plan::assign(&live, &holders);
        self.setup.shared.update(|h| h.members = live.clone());
        let give_up: Vec<u32> = self
            .running
            .iter()
            .filter(|(b, r)| !r.stopping && target[**b as usize] != me)
            .map(|(b, _)| *b)
            .collect();
        for bucket in give_up {
            self.stop(bucket);
        }
        for bucket in 0..buckets {
            let index = bucket as usize;
            if target[index] == me && holders[index].is_none() {
                self.claim(bucket).await;
            }
        }
    }

    async fn claim(&mut self, bucket: u32) {
        let index = bucket as usize;
        let record = self.records[index].clone();
        let setup = &self.setup;
        let stream = &setup.position_streams[index];
        let claimed = records::claim(
            setup.store.as_ref(),
            stream,
            record.version,
            &setup.instance,
        )
        .await;
        let (generation, resumes) = match claimed {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return, // someone wrote first; the next tick sees who
            Err(error) => return self.error("claiming a bucket", error),
        };
        let taken_over = record
            .claim
            .as_ref()
            .is_some_and(|c| c.instance != setup.instance);
        setup.shared.update(|h| {
            if taken_over {
                h.takeovers += 1;
            } else {
                h.claims += 1;
            }
        });
        setup
            .shared
            .lease_changed(if taken_over { "takeover" } else { "claim" });
        let token = CancellationToken::new();
        let context = BucketContext {
            store: setup.store.clone(),
            category: setup.category.clone(),
            options: setup.bucket_options[index].clone(),
            handlers: setup.handlers.clone(),
            shared: setup.shared.clone(),
            position_stream: stream.clone(),
            lease: Lease {
                bucket,
                buckets: setup.fleet.buckets(),
                generation,
                instance: setup.instance.clone(),
            },
            resumes,
            lease_duration: setup.fleet.lease_duration(),
            crash: setup.crash.clone(),
            fence: self.lease_clock.view(),
            sink: setup.sink.clone(),
        };
        let run = bucket::run(context, token.clone());
        let task = self.tasks.spawn(async move { (bucket, run.await) });
        self.task_buckets.insert(task.id(), bucket);
        self.running.insert(
            bucket,
            Running {
                generation,
                token,
                stopping: false,
                lost: false,
            },
        );
    }
}
