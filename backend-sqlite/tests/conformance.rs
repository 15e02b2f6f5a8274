//! The shared conformance suite on `SqliteStore`, each case on a fresh
//! temporary file: as a file other processes may write (subscriptions
//! poll for their messages) and as one only this process writes
//! (subscriptions are woken by every write).

use message_store_sqlite::{Durability, SqliteOptions, SqliteStore};

/// Synced at checkpoints: a test file need not survive a power cut.
fn options() -> SqliteOptions {
    SqliteOptions::new().with_durability(Durability::Normal)
}

/// A file other processes may write too.
mod shared {
    use super::*;
    message_store_conformance::conformance_suite!(
        async { SqliteStore::open_temporary_with(options()).await.unwrap() },
        property_cases = 64
    );
}

/// A file only this process writes.
mod single_process {
    use super::*;
    message_store_conformance::conformance_suite!(
        async {
            SqliteStore::open_temporary_with(options().with_single_process(true))
                .await
                .unwrap()
        },
        property_cases = 64
    );
}
