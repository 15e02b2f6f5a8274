//! Units of work: atomic writes across streams, what a unit sees, how it
//! ends, and how units meet each other and plain writers at a category's lock.

mod atomic;
mod ended;
mod locks;
mod visibility;

pub use atomic::*;
pub use ended::*;
pub use locks::*;
pub use visibility::*;

use message_store::{Error, MessageStore, OpenUnit, UnitOptions, UnitState};

/// Opens a unit with default options, failing the test if it cannot.
async fn begin(store: &dyn MessageStore) -> Box<dyn OpenUnit> {
    begin_with(store, UnitOptions::new()).await
}

async fn begin_with(store: &dyn MessageStore, options: UnitOptions) -> Box<dyn OpenUnit> {
    store
        .begin(options)
        .await
        .unwrap_or_else(|e| panic!("beginning a unit of work: {e}"))
}

/// The state a `UnitEnded` error names; fails the test for anything else.
fn ended<T: std::fmt::Debug>(result: message_store::Result<T>, what: &str) -> UnitState {
    match result {
        Err(Error::UnitEnded { state }) => state,
        other => panic!("{what}: expected UnitEnded, got {other:?}"),
    }
}
