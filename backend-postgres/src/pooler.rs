//! How a call runs on a leased connection, directly or behind a
//! transaction-mode pooler (PgBouncer's `pool_mode = transaction`).
//!
//! Directly, a call is one statement that sqlx prepares once per
//! connection under a name and then runs in one round trip.
//!
//! Behind a pooler, a client's consecutive round trips may reach different
//! server connections, and only an open transaction keeps one: named
//! statements would be missing (or already taken) on the next server, and
//! sqlx's unnamed ones are parsed in one round trip and run in the next.
//! So each call is its own explicit transaction of unnamed statements:
//! `BEGIN`, parse, run, `COMMIT`, four round trips, all on one server
//! connection. Message DB's functions each run in their caller's
//! transaction either way, so a call's effect is the same.

/// Runs `$call` (a statement of `statements`, written with `$conn` for the
/// connection and `$persistent` for how to prepare it) on a connection
/// leased from the store's warm set, and parks the connection again when
/// the statement completed; behind a pooler, as an explicit transaction of
/// unnamed statements. With `sent = &Sent`, records whether the statement
/// went out.
macro_rules! leased {
    ($store:expr, |$conn:ident, $persistent:ident| $call:expr) => {
        async {
            let mut lease = $store.inner.warm.lease().await?;
            let result =
                $crate::pooler::run!($store.inner.pooled, lease, |$conn, $persistent| $call);
            lease.done(&result);
            result
        }
    };
    ($store:expr, sent = $sent:expr, |$conn:ident, $persistent:ident| $call:expr) => {
        async {
            $sent.set(false);
            let mut lease = $store.inner.warm.lease().await?;
            $sent.set(true);
            let result =
                $crate::pooler::run!($store.inner.pooled, lease, |$conn, $persistent| $call);
            lease.done(&result);
            result
        }
    };
}

/// The statement itself on the connection `$lease` derefs to: directly, or
/// (`$pooled`) in its own transaction.
macro_rules! run {
    ($pooled:expr, $lease:ident, |$conn:ident, $persistent:ident| $call:expr) => {
        if $pooled {
            async {
                let mut tx = sqlx::Connection::begin(&mut *$lease).await?;
                let outcome = {
                    let $conn: &mut sqlx::PgConnection = &mut *tx;
                    let $persistent = false;
                    $call.await
                };
                match outcome {
                    Ok(value) => {
                        tx.commit().await?;
                        Ok(value)
                    }
                    Err(error) => {
                        // Now, not on the connection's next use: until then
                        // the pooler could give its server to nobody else.
                        tx.rollback().await.ok();
                        Err(error)
                    }
                }
            }
            .await
        } else {
            let $conn: &mut sqlx::PgConnection = &mut *$lease;
            let $persistent = true;
            $call.await
        }
    };
}

pub(crate) use leased;
pub(crate) use run;
