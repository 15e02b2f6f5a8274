//! Fleet consumers: any number of instances of one consumer sharing a
//! category's work, with buckets that move between them by themselves and
//! positions that a stale owner cannot overwrite.
//!
//! A fleet is a consumer id plus a category, started with
//! [`Consumer::start_fleet`](crate::Consumer::start_fleet) in every
//! instance. Everything it needs lives in the message store, written
//! through the [`MessageStore`](message_store::MessageStore) trait: no
//! extra table, no session state, no advisory lock, so it works the same
//! on every backend, as Message DB's functions-only role, and behind
//! PgBouncer in transaction mode.
//!
//! # Buckets
//!
//! The category is split into `P` buckets ([`FleetOptions::with_buckets`],
//! default 8) by Message DB's consumer-group hash of the cardinal id:
//! bucket `b` is exactly consumer-group member `b` of size `P`, so all of a
//! stream's messages are in one bucket and per-stream order holds. Bucket
//! `b` keeps its position in Eventide's position stream
//! `{category}:position-{id}-{b}of{P}` (the stream of the same member of
//! [`Consumer::start_group`](crate::Consumer::start_group), so a static
//! group of size `P` can become a fleet and resume). With one bucket the
//! position stream is the plain consumer's, `{category}:position-{id}`:
//! one instance works, the others stand by.
//!
//! `P` is fixed for the life of a fleet: it is the most instances that can
//! have work. An instance that sees another counting the buckets
//! differently stops with [`Error::FleetMismatch`](crate::Error::FleetMismatch).
//!
//! # Records
//!
//! * **Heartbeats.** Every instance appends a `Heartbeat` to the fleet stream
//!   `{category}:fleet-{id}` every third of the lease duration: its
//!   instance id, the bucket count, the lease duration and the buckets it
//!   runs. An instance that shuts down appends `Left`.
//! * **Claims.** An instance takes a bucket by appending `Claimed` (its
//!   instance id, the bucket's last recorded position) to the bucket's
//!   position stream, expecting the stream's version it read: a
//!   compare-and-swap, so of two instances claiming at once one wins. The
//!   claim's stream position is the bucket's **generation**, the fencing
//!   token handlers see in [`current_lease`].
//! * **Releases.** An instance that gives a bucket up appends `Released`
//!   once its handler in flight finished and its position was recorded,
//!   expecting the version it read after checking that its claim still
//!   stands.
//! * **Positions.** The bucket's consumer records `Recorded` positions as
//!   every consumer does, each expecting the version of its previous
//!   record, so the first commit after someone else's claim fails: a stale
//!   owner's commit is refused, and it stops handling the bucket.
//!
//! Claims and releases carry the last recorded position, so a reader that
//! takes a position stream's last message (as Eventide's consumers do)
//! reads the right position.
//!
//! # Time
//!
//! No two machines' clocks are compared. An instance is live while its
//! heartbeats say it is ready and the store's timestamp of its last one is
//! at most its lease duration (the one its heartbeat gives) older than that
//! of the observer's own latest heartbeat: both are the store's clock. An
//! instance holds a bucket while its claim is the last one, it is live, and
//! no heartbeat it wrote after the claim leaves the bucket out.
//!
//! An instance fences itself by its own clock, counted from the moment it
//! sent the last heartbeat that landed (observers saw that heartbeat no
//! earlier): at `L - L/3` its buckets take no more messages (and it says it
//! is not ready until a heartbeat lands in time again), at `L - L/6` a
//! handler still running is dropped, so nothing of it runs when others may
//! take over at `L`. A tick never runs past those moments, so a store call
//! that hangs does not hold the fence up. Each bucket's loop also looks at
//! that moment itself before every message, so a loop that wakes from a
//! pause starts nothing, whichever of the instance's tasks runs first.
//!
//! # Timings, with lease duration `L`
//!
//! * Each instance ticks every `L/3`: one heartbeat append, one read of the
//!   fleet stream since the last tick, and a read of each bucket's last
//!   record (two more reads of a bucket whose positions moved since the
//!   last tick). Renewals cost `3/L` appends per second per instance,
//!   whatever `P` is: 0.3 a second with the default `L` of 10 s.
//! * **Join or leave:** every instance sees the change at its next tick;
//!   an instance over its share stops the buckets it gives up, each
//!   finishing its message in flight and recording its position (at most
//!   the [`shutdown_deadline`](crate::ConsumerOptions::shutdown_deadline)),
//!   then releases them; the new holder claims them at its next tick. The
//!   fleet is balanced within one bucket after about `2 × L/3` plus that
//!   drain: under `2 × L` with quick handlers.
//! * **Crash:** the buckets of an instance that stopped heartbeating are
//!   claimed once its last heartbeat is `L` old in the store's time: within
//!   `L + 2 × L/3`. Messages it handled after its last recorded position
//!   are delivered again (at least once).
//! * **Pause** (a stopped process, a long GC): its buckets are taken over
//!   after `L`; when it resumes, its handler in flight may finish, but it
//!   starts no other message (its fence is past), its next commit is
//!   refused, and it stops handling the bucket; the new owner has
//!   delivered again from the last position recorded before the claim.
//!   Handlers that write elsewhere fence those writes with the generation.
//! * **Partition from the store, or a slow store:** an instance whose
//!   renewals do not land stops taking messages at `L - L/3` and drops its
//!   handler in flight at `L - L/6`; others take over at `L`. Once its
//!   heartbeats land in time again it rejoins, and the plan gives it its
//!   share.
//!
//! A clock step of the store's server (not a steady drift) can shorten a
//! lease; fencing still refuses stale commits.

mod bucket;
mod fence;
mod handle;
mod instance;
mod members;
mod options;
mod plan;
mod records;
mod start;
mod tick;

pub(crate) use bucket::Sink;
pub(crate) use fence::FenceView;
pub use handle::{BucketHealth, FleetHandle, FleetHealth};
pub use options::{FleetOptions, DEFAULT_BUCKETS, DEFAULT_LEASE_DURATION};
pub use records::{CLAIMED, HEARTBEAT, LEFT, RELEASED};

/// The bucket a fleet handler runs in, and its generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The bucket: consumer-group member `bucket` of size `buckets`.
    pub bucket: u32,
    /// The fleet's bucket count.
    pub buckets: u32,
    /// The stream position of the claim this instance holds the bucket
    /// by: it grows with every change of holder, so a write tagged with it
    /// can be refused when a later generation has written.
    pub generation: u64,
    /// This instance's id.
    pub instance: String,
}

tokio::task_local! {
    // Shared: a bucket's loop scopes every message with the same lease.
    static LEASE: std::sync::Arc<Lease>;
}

/// The lease of the fleet bucket whose handler is running on this task:
/// `None` outside a fleet's handler (and in tasks a handler spawns).
pub fn current_lease() -> Option<Lease> {
    LEASE.try_with(|lease| Lease::clone(lease)).ok()
}

/// Runs `future` with `lease` as [`current_lease`].
pub(crate) async fn with_lease<F: std::future::Future>(
    lease: Option<std::sync::Arc<Lease>>,
    future: F,
) -> F::Output {
    match lease {
        Some(lease) => LEASE.scope(lease, future).await,
        None => future.await,
    }
}
