//! An instance's lease by its own clock, shared with its buckets' loops:
//! the instant until which they may start a message. The instance moves it
//! on with every renewal that lands and revokes it when it fences itself;
//! each loop looks before every message, so a loop that wakes from a pause
//! past its lease starts nothing, however its tasks are scheduled.

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The instance's side: sets the instant.
#[derive(Debug)]
pub(crate) struct Fence {
    until: watch::Sender<Option<Instant>>,
}

/// A bucket loop's side: waits while the lease is lapsed.
#[derive(Debug, Clone)]
pub(crate) struct FenceView {
    until: watch::Receiver<Option<Instant>>,
}

impl Fence {
    /// A fence that holds nothing until the first renewal lands.
    pub(crate) fn new() -> Self {
        Fence {
            until: watch::channel(None).0,
        }
    }

    /// Lets the loops start messages until `until`.
    pub(crate) fn extend(&self, until: Instant) {
        self.until.send_replace(Some(until));
    }

    /// Lets no loop start another message until the next renewal.
    pub(crate) fn revoke(&self) {
        self.until.send_replace(None);
    }

    /// A view for a bucket loop.
    pub(crate) fn view(&self) -> FenceView {
        FenceView {
            until: self.until.subscribe(),
        }
    }
}

impl FenceView {
    /// True at once while the lease holds; else waits until a renewal
    /// moves it on (true) or `token` is cancelled (false: the instance
    /// fenced itself and stops the loop).
    pub(crate) async fn hold(&mut self, token: &CancellationToken) -> bool {
        loop {
            let holds = self
                .until
                .borrow_and_update()
                .is_some_and(|until| Instant::now() < until);
            if holds {
                return true;
            }
            tokio::select! {
                biased;
                () = token.cancelled() => return false,
                changed = self.until.changed() => {
                    if changed.is_err() {
                        // The instance is gone: its loop stops the buckets.
                        token.cancelled().await;
                        return false;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_lapsed_lease_holds_the_loop_until_renewed_or_cancelled() {
        let fence = Fence::new();
        let mut view = fence.view();
        let token = CancellationToken::new();
        fence.extend(Instant::now() + Duration::from_secs(1));
        assert!(view.hold(&token).await, "within the lease");

        tokio::time::advance(Duration::from_secs(2)).await;
        let waiting = tokio::spawn({
            let (mut view, token) = (view.clone(), token.clone());
            async move { view.hold(&token).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "past the lease it waits");
        fence.extend(Instant::now() + Duration::from_secs(1));
        assert!(waiting.await.unwrap(), "a renewal lets it go on");

        fence.revoke();
        let waiting = tokio::spawn({
            let token = token.clone();
            async move { view.hold(&token).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "revoked, it waits");
        token.cancel();
        assert!(!waiting.await.unwrap(), "cancelled, it stops");
    }
}
