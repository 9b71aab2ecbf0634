//! Checks every queue backend must pass.

use std::time::Duration;

use tower_webhook::queue::{Pull, Queue, QueueStats};

/// The stats of `queue`, as `(ready, pending, delayed, dead)`.
async fn counts(queue: &impl Queue) -> (u64, u64, u64, u64) {
    let QueueStats {
        ready,
        pending,
        delayed,
        dead,
        ..
    } = queue.stats().await.unwrap();
    (ready, pending, delayed, dead)
}

/// `Queue::stats` follows the traffic of an empty queue: pushed, pulled, retried,
/// dead-lettered, acknowledged.
pub(crate) async fn stats_follow_the_traffic(queue: &impl Queue) {
    assert_eq!(counts(queue).await, (0, 0, 0, 0), "an empty queue");
    for n in 0..4 {
        queue.push(format!("{{\"n\":{n}}}").into()).await.unwrap();
    }
    assert_eq!(counts(queue).await, (4, 0, 0, 0), "four pushed");
    let pull = Pull::up_to(2).hidden_for(Duration::from_secs(60));
    let taken = queue.pull("stats", pull).await.unwrap();
    assert_eq!(taken.len(), 2);
    assert_eq!(counts(queue).await, (2, 2, 0, 0), "two of them pulled");
    queue
        .retry(&taken[0], "failed", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        counts(queue).await,
        (2, 1, 1, 0),
        "one sent back for an hour"
    );
    queue.dead_letter(&taken[1], "failed again").await.unwrap();
    assert_eq!(counts(queue).await, (2, 0, 1, 1), "one dead-lettered");
    let taken = queue.pull("stats", pull).await.unwrap();
    assert_eq!(taken.len(), 2, "the delayed one is not due");
    queue.ack(&taken[0]).await.unwrap();
    assert_eq!(
        counts(queue).await,
        (0, 1, 1, 1),
        "one processed, one in progress"
    );
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        stats.depth(),
        2,
        "one pending and one delayed are not processed yet"
    );
}
