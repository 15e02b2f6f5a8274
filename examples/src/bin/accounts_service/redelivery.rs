//! The balance projection under redelivery: the simulator passes it, and
//! catches a naive projection that adds every event it is given.

use super::*;
use message_store_consumer::simulate::{Redelivery, Simulated};

fn events() -> Vec<(StreamName, NewMessage)> {
    (0..15u64)
        .map(|n| {
            let stream = StreamName::new(format!("account-{}", n % 3)).unwrap();
            let event = if n % 4 == 3 {
                NewMessage::typed(&Withdrawn { amount: 1 })
            } else {
                NewMessage::typed(&Deposited { amount: n + 1 })
            };
            (stream, event.unwrap())
        })
        .collect()
}

/// The service's projection, or the naive one.
struct Balances {
    naive: bool,
}

#[async_trait::async_trait]
impl Simulated for Balances {
    type State = Projection;
    type Outcome = Vec<(String, u64)>;

    async fn state(&self) -> Projection {
        Projection::default()
    }

    fn consumer(&self, projection: &Projection) -> Consumer {
        let accounts = Category::new("account").unwrap();
        if !self.naive {
            return event_consumer(accounts, projection.clone()).unwrap();
        }
        let (p1, p2) = (projection.clone(), projection.clone());
        let add = |projection: &Projection, message: &Message, change: i64| {
            let mut balances = projection.lock().unwrap();
            let entry = balances.entry(message.stream_name.to_string()).or_default();
            entry.balance = entry.balance.saturating_add_signed(change);
        };
        Consumer::new(accounts)
            .on(move |e: Deposited, m: Message| {
                add(&p1, &m, i64::try_from(e.amount).unwrap());
                async { HandlerResult::Ok(()) }
            })
            .on(move |e: Withdrawn, m: Message| {
                add(&p2, &m, -i64::try_from(e.amount).unwrap());
                async { HandlerResult::Ok(()) }
            })
    }

    async fn outcome(&self, projection: &Projection) -> Vec<(String, u64)> {
        let balances = projection.lock().unwrap();
        let mut all: Vec<_> = balances
            .iter()
            .map(|(stream, b)| (stream.clone(), b.balance))
            .collect();
        all.sort();
        all
    }
}

#[tokio::test]
async fn the_projection_survives_redelivery_and_a_naive_one_does_not() {
    let redelivery = Redelivery::new(events()).with_seed(2026);
    let service = redelivery.check(&Balances { naive: false }).await.unwrap();
    assert!(service.passed(), "{service}");
    let naive = redelivery.check(&Balances { naive: true }).await.unwrap();
    assert!(!naive.passed(), "the naive projection passed: {naive}");
    assert_eq!(naive.clean, service.clean);
}
