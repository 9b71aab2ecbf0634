//! The queue on a SQLite file: the checks every backend passes (`common/queue.rs`), and what a
//! file adds: deliveries that outlive the queue that stored them, a dead worker's message
//! taken over, two queues in one file, and deduplicated pushes stored once.
#![cfg(all(feature = "queue", feature = "sqlite"))]

mod common;

use std::{path::PathBuf, time::Duration};

use tower_webhook::{
    dedupe::store::Token,
    queue::{Pull, Pushed, Queue, SqliteQueue},
};

/// A folder of this test's own, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "tower-webhook-sqlite-queue-{test}-{}-{}",
            std::process::id(),
            Token::random().as_str()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    async fn queue(&self) -> SqliteQueue {
        SqliteQueue::open(self.0.join("webhooks.db")).await.unwrap()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_queue_stats_follow_the_traffic() {
    let folder = Folder::new("stats");
    common::queue::stats_follow_the_traffic(&folder.queue().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_dead_letters_are_listed_replayed_and_purged() {
    let folder = Folder::new("dead");
    common::queue::dead_letters_are_listed_replayed_and_purged(&folder.queue().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_replays_enqueue_a_dead_letter_once() {
    let folder = Folder::new("replays");
    common::queue::concurrent_replays_enqueue_a_dead_letter_once(&folder.queue().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_replay_bypasses_the_dedupe_record_and_is_processed_once() {
    let folder = Folder::new("replay-dedupe");
    common::queue::a_replay_bypasses_the_dedupe_record_and_is_processed_once(folder.queue().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replays_take_each_id_once_skip_strangers_and_go_oldest_first() {
    let folder = Folder::new("replay-ids");
    let queue = folder.queue().await.max_len(400);
    common::queue::replays_take_each_id_once_skip_strangers_and_go_oldest_first(&queue).await;
}

/// Stored, then the queue is dropped (a restart): the message is still there; one pulled and
/// never settled (its worker died) comes back after its visibility timeout as attempt 2, and a
/// settlement by the dead worker's attempt changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_outlive_the_queue_and_a_dead_workers_come_back() {
    let folder = Folder::new("restart");
    let queue = folder.queue().await;
    let id = queue.push("{\"n\":1}".into()).await.unwrap();
    let taken = queue
        .pull(
            "dies",
            Pull::up_to(1).hidden_for(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    assert_eq!((taken.len(), taken[0].attempt), (1, 1));
    drop(queue);
    let queue = folder.queue().await;
    let pull = Pull::up_to(1).waiting(Duration::from_secs(5));
    let again = queue.pull("lives", pull).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((&again[0].id, again[0].attempt), (&id, 2));
    queue.ack(&taken[0]).await.unwrap();
    assert_eq!(
        queue.stats().await.unwrap().pending,
        1,
        "the stale ack changed nothing"
    );
    queue.ack(&again[0]).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

/// Two queues in one file keep apart; deduplicated pushes of one key, many at once, store one
/// message; a full queue refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_share_a_file_apart_and_concurrent_pushes_of_a_key_store_once() {
    let folder = Folder::new("apart");
    let one = folder.queue().await.name("one").max_len(3);
    let two = folder.queue().await.name("two");
    let retention = Duration::from_secs(3600);
    // All spawned before any is awaited: concurrent.
    let pushes: Vec<_> = (0..32)
        .map(|_| {
            let one = one.clone();
            tokio::spawn(async move { one.push_once("key", retention, "{}".into()).await })
        })
        .collect();
    let mut stored = 0;
    for push in pushes {
        match push.await.unwrap().unwrap() {
            Pushed::Stored(_) => stored += 1,
            Pushed::Duplicate => {}
            Pushed::Claimed => panic!("no claim was made"),
        }
    }
    assert_eq!(stored, 1);
    two.push("{}".into()).await.unwrap();
    assert_eq!(one.stats().await.unwrap().ready, 1);
    assert_eq!(two.stats().await.unwrap().ready, 1);
    one.push("{}".into()).await.unwrap();
    one.push("{}".into()).await.unwrap();
    let full = one.push("{}".into()).await.unwrap_err();
    assert!(
        matches!(full, tower_webhook::queue::QueueError::Full { capacity: 3 }),
        "{full:?}"
    );
    let taken = two.pull("w", Pull::up_to(10)).await.unwrap();
    assert_eq!(taken.len(), 1, "only its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failures_are_retried_then_dead_lettered() {
    let folder = Folder::new("retried");
    common::queue::failures_are_retried_then_dead_lettered(folder.queue().await).await;
}

/// A pull given up before its turn (its future dropped while another process holds the file)
/// takes nothing: the message is not hidden and no attempt is spent. A wait too long to add to
/// the clock is a long wait, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_given_up_before_its_turn_takes_nothing() {
    let folder = Folder::new("dropped-pull");
    let queue = folder.queue().await;
    queue.push("{}".into()).await.unwrap();
    let other = rusqlite::Connection::open(folder.0.join("webhooks.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let pull = queue.pull("gives-up", Pull::up_to(1));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), pull)
            .await
            .is_err()
    );
    other.execute_batch("COMMIT").unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.pending), (1, 0), "nothing was taken");
    let forever = Pull::up_to(1).waiting(Duration::MAX);
    let taken = queue.pull("stays", forever).await.unwrap();
    assert_eq!((taken.len(), taken[0].attempt), (1, 1), "its first attempt");
}
