//! The queue in PostgreSQL: the checks every backend passes (`common/queue.rs`), and what the
//! database adds: messages that outlive the queue, queues apart in one schema, the schema's
//! version, `LISTEN/NOTIFY`, and exactly-once effects: a worker killed inside its transaction
//! leaves neither its effect nor its acknowledgement, one that committed leaves both.
//!
//! A server: `TOWER_WEBHOOK_POSTGRES_URL`, or a private one (`common/postgres.rs`); each test
//! works in a schema of its own.
#![cfg(all(feature = "queue", feature = "postgres"))]

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tower::service_fn;
use tower_webhook::{
    Verified,
    postgres::{Postgres, PostgresError, tokio_postgres},
    queue::{Delivery, PostgresQueue, Pull, Pushed, Queue, QueueError, Worker},
};

use common::postgres::{Database, database};

/// The database of `test`, or `None` (the test is skipped, outside CI) without a server.
async fn open(test: &str) -> Option<(Database, Postgres)> {
    let database = database(test).await?;
    let postgres = database.open().await;
    Some((database, postgres))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queue_stats_follow_the_traffic() {
    let Some((_db, postgres)) = open("postgres_queue_stats").await else {
        return;
    };
    common::queue::stats_follow_the_traffic(&PostgresQueue::new(&postgres)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dead_letters_are_listed_replayed_and_purged() {
    let Some((_db, postgres)) = open("postgres_dead_letters").await else {
        return;
    };
    common::queue::dead_letters_are_listed_replayed_and_purged(&PostgresQueue::new(&postgres))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_replays_enqueue_a_dead_letter_once() {
    let Some((_db, postgres)) = open("postgres_concurrent_replays").await else {
        return;
    };
    common::queue::concurrent_replays_enqueue_a_dead_letter_once(&PostgresQueue::new(&postgres))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_replay_bypasses_the_dedupe_record_and_is_processed_once() {
    let Some((_db, postgres)) = open("postgres_replay_dedupe").await else {
        return;
    };
    common::queue::a_replay_bypasses_the_dedupe_record_and_is_processed_once(PostgresQueue::new(
        &postgres,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replays_take_each_id_once_skip_strangers_and_go_oldest_first() {
    let Some((_db, postgres)) = open("postgres_replay_ids").await else {
        return;
    };
    let queue = PostgresQueue::new(&postgres).max_len(400);
    common::queue::replays_take_each_id_once_skip_strangers_and_go_oldest_first(&queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failures_are_retried_then_dead_lettered() {
    let Some((_db, postgres)) = open("postgres_failures").await else {
        return;
    };
    common::queue::failures_are_retried_then_dead_lettered(PostgresQueue::new(&postgres)).await;
}

/// Stored, then every handle is dropped (a restart): the message is still there; one pulled
/// and never settled (its worker died) comes back after its visibility timeout as attempt 2,
/// and a settlement by the dead worker's attempt changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_outlive_the_queue_and_a_dead_workers_come_back() {
    let Some((db, postgres)) = open("postgres_restart").await else {
        return;
    };
    let id = PostgresQueue::new(&postgres)
        .push("{\"n\":1}".into())
        .await
        .unwrap();
    drop(postgres);
    let queue = PostgresQueue::new(&db.open().await);
    let taken = queue
        .pull("w1", Pull::up_to(5).hidden_for(Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((&taken[0].id, taken[0].attempt), (&id, 1));
    assert!(
        queue.pull("w2", Pull::up_to(5)).await.unwrap().is_empty(),
        "hidden while its lease runs"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = queue
        .pull("w2", Pull::up_to(5).waiting(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!((&again[0].id, again[0].attempt), (&id, 2));
    // The first worker wakes up and settles: nothing changes, the second still holds it.
    queue.ack(&taken[0]).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().pending, 1);
    queue.ack(&again[0]).await.unwrap();
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

/// Two queues of one schema keep their messages apart; 64 concurrent deduplicated pushes of one
/// key, from two handles as two replicas, store one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_share_a_schema_apart_and_concurrent_pushes_of_a_key_store_once() {
    let Some((db, postgres)) = open("postgres_two_queues").await else {
        return;
    };
    let (a, b) = (
        PostgresQueue::new(&postgres).name("a"),
        PostgresQueue::new(&db.open().await).name("b"),
    );
    a.push("for a".into()).await.unwrap();
    assert!(b.pull("w", Pull::up_to(5)).await.unwrap().is_empty());
    assert_eq!(b.stats().await.unwrap().depth(), 0);
    let other = PostgresQueue::new(&db.open().await).name("a");
    let pushes = (0..64)
        .map(|i| {
            let queue = if i % 2 == 0 { a.clone() } else { other.clone() };
            tokio::spawn(async move {
                queue
                    .push_once("key", Duration::from_secs(60), "once".into())
                    .await
                    .unwrap()
            })
        })
        .collect::<Vec<_>>();
    let mut stored = 0;
    for push in pushes {
        match push.await.unwrap() {
            Pushed::Stored(_) => stored += 1,
            Pushed::Duplicate => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(a.stats().await.unwrap().ready, 2);
}

/// A full queue refuses, and takes again once a message is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_until_a_message_goes() {
    let Some((_db, postgres)) = open("postgres_full").await else {
        return;
    };
    let queue = PostgresQueue::new(&postgres).max_len(2);
    queue.push("1".into()).await.unwrap();
    queue.push("2".into()).await.unwrap();
    assert!(matches!(
        queue.push("3".into()).await,
        Err(QueueError::Full { capacity: 2 })
    ));
    assert!(matches!(
        queue
            .push_once("k", Duration::from_secs(60), "3".into())
            .await,
        Err(QueueError::Full { capacity: 2 })
    ));
    let taken = queue.pull("w", Pull::up_to(1)).await.unwrap();
    queue.ack(&taken[0]).await.unwrap();
    queue.push("3".into()).await.unwrap();
    // The refused deduplicated push recorded nothing: it is stored now.
    queue
        .ack(&queue.pull("w", Pull::up_to(1)).await.unwrap()[0])
        .await
        .unwrap();
    assert!(matches!(
        queue
            .push_once("k", Duration::from_secs(60), "3".into())
            .await
            .unwrap(),
        Pushed::Stored(_)
    ));
}

/// The schema carries its version; a newer one is refused with an error that says so; a name
/// the crate does not use is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some((db, postgres)) = open("postgres_schema").await else {
        return;
    };
    drop(postgres);
    let client = db.client().await;
    let version: i32 = client
        .query_one(
            &format!("SELECT version FROM \"{}\".schema_version", db.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 1);
    client
        .execute(
            &format!("UPDATE \"{}\".schema_version SET version = 9", db.schema),
            &[],
        )
        .await
        .unwrap();
    let refused = Postgres::builder(&db.url)
        .unwrap()
        .schema(db.schema.clone())
        .open()
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            PostgresError::NewerSchema {
                found: 9,
                supported: 1
            }
        ),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("newer"), "{refused}");
    let invalid = Postgres::builder(&db.url)
        .unwrap()
        .schema("Robert'); DROP TABLE students;--")
        .open()
        .await
        .unwrap_err();
    assert!(
        matches!(invalid, PostgresError::InvalidSchema(_)),
        "{invalid:?}"
    );
}

/// A push is notified on the schema's channel, outside its transaction; a pull waiting on
/// another handle (another replica) is handed the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_notified_to_waiting_pulls_elsewhere() {
    let Some((db, postgres)) = open("postgres_notify").await else {
        return;
    };
    let (listener, mut connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = message {
                notified.send(n.channel().to_owned()).ok();
            }
        }
    });
    listener
        .batch_execute(&format!("LISTEN {}_queue", db.schema))
        .await
        .unwrap();
    let elsewhere = PostgresQueue::new(&db.open().await);
    let waiting = tokio::spawn(async move {
        elsewhere
            .pull("w", Pull::up_to(1).waiting(Duration::from_secs(60)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    PostgresQueue::new(&postgres)
        .push("{}".into())
        .await
        .unwrap();
    let channel = common::guard("a notification", notifications.recv()).await;
    assert_eq!(channel.as_deref(), Some(&*format!("{}_queue", db.schema)));
    let taken = common::guard("the waiting pull", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.len(), 1);
}

/// The effects table of the exactly-once tests, and the message to process.
async fn effects(db: &Database) -> tokio_postgres::Client {
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS \"{}\".effects (delivery text PRIMARY KEY, attempt int)",
            db.schema
        ))
        .await
        .unwrap();
    client
}

async fn effect_rows(client: &tokio_postgres::Client, db: &Database) -> Vec<(String, i32)> {
    client
        .query(
            &format!("SELECT delivery, attempt FROM \"{}\".effects", db.schema),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// A stored delivery, as the HTTP side stores one.
fn payload(id: &str) -> bytes::Bytes {
    let body = format!(r#"{{"event":"video.processed","timestamp":"t","data":{{"id":"{id}"}}}}"#);
    let event: tower_webhook::provider::videonest::Event = serde_json::from_str(&body).unwrap();
    let verified = Verified::new(event, body).with_provider("videonest");
    serde_json::to_vec(&serde_json::json!({"v": 1, "verified": verified, "key": null}))
        .unwrap()
        .into()
}

type Event = tower_webhook::provider::videonest::Event;

/// Writes the effect of `delivery` and acknowledges it in one transaction; `inside` runs
/// between the acknowledgement and the commit.
async fn process_exactly_once<F: std::future::Future<Output = ()>>(
    queue: &PostgresQueue,
    schema: &str,
    delivery: &Delivery<Event>,
    inside: impl FnOnce() -> F,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut client = queue.database().pool().get().await?;
    let transaction = client.transaction().await?;
    transaction
        .execute(
            &format!("INSERT INTO \"{schema}\".effects (delivery, attempt) VALUES ($1, $2)"),
            &[&delivery.id().0, &i32::try_from(delivery.attempt())?],
        )
        .await?;
    queue.ack_in(&transaction, delivery).await?;
    inside().await;
    transaction.commit().await?;
    Ok(())
}

/// Run by `a_worker_killed_inside_its_transaction_leaves_neither_effect_nor_ack` in a process
/// of its own: a worker that writes the effect, acknowledges in the transaction, says so, and
/// waits there to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of a_worker_killed_inside_its_transaction_leaves_neither_effect_nor_ack"]
async fn child_worker_waits_inside_its_transaction() {
    let (Ok(url), Ok(schema)) = (
        std::env::var("TOWER_WEBHOOK_CHILD_URL"),
        std::env::var("TOWER_WEBHOOK_CHILD_SCHEMA"),
    ) else {
        panic!("run by its parent test, with the database in the environment");
    };
    let postgres = Postgres::builder(&url)
        .unwrap()
        .schema(schema.clone())
        .open()
        .await
        .unwrap();
    let queue = PostgresQueue::new(&postgres);
    let handler = {
        let queue = queue.clone();
        service_fn(move |delivery: Delivery<Event>| {
            let (queue, schema) = (queue.clone(), schema.clone());
            async move {
                process_exactly_once(&queue, &schema, &delivery, || async {
                    println!("inside {}", delivery.id());
                    std::future::pending::<()>().await;
                })
                .await
            }
        })
    };
    Worker::new(queue, handler)
        .visibility_timeout(Duration::from_secs(2))
        .run(std::future::pending::<()>())
        .await
        .unwrap();
}

/// A worker process killed (SIGKILL) after writing its effect and acknowledging inside its
/// transaction, before the commit: neither the effect nor the acknowledgement is there, and the
/// delivery is processed again, once, by the next worker, whose commit leaves both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_inside_its_transaction_leaves_neither_effect_nor_ack() {
    let Some((db, postgres)) = open("postgres_killed_worker").await else {
        return;
    };
    let reader = effects(&db).await;
    let queue = PostgresQueue::new(&postgres);
    let id = queue.push(payload("vid_killed")).await.unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_worker_waits_inside_its_transaction",
            "--nocapture",
        ])
        .env("TOWER_WEBHOOK_CHILD_URL", &db.url)
        .env("TOWER_WEBHOOK_CHILD_SCHEMA", &db.schema)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.starts_with("inside "))
    });
    let line = common::guard("the child inside its transaction", line)
        .await
        .unwrap();
    assert_eq!(line, Some(format!("inside {id}")));
    // Inside the transaction: nothing of it is visible.
    assert!(effect_rows(&reader, &db).await.is_empty());
    assert_eq!(queue.stats().await.unwrap().pending, 1);
    child.kill().unwrap();
    child.wait().unwrap();

    // The next worker takes it once its lease has run out, as attempt 2, and commits.
    let runs: Arc<Mutex<Vec<u32>>> = Arc::default();
    let handler = {
        let (queue, runs, schema) = (queue.clone(), Arc::clone(&runs), db.schema.clone());
        service_fn(move |delivery: Delivery<Event>| {
            let (queue, runs, schema) = (queue.clone(), Arc::clone(&runs), schema.clone());
            async move {
                runs.lock().unwrap().push(delivery.attempt());
                process_exactly_once(&queue, &schema, &delivery, || async {}).await
            }
        })
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(queue.clone(), handler)
            .visibility_timeout(Duration::from_secs(2))
            .run(async {
                stopped.await.ok();
            }),
    );
    common::guard("the delivery processed again", async {
        while effect_rows(&reader, &db).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // Past another lease: nothing comes back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.send(()).ok();
    worker.await.unwrap().unwrap();
    assert_eq!(effect_rows(&reader, &db).await, vec![(id.0.clone(), 2)]);
    assert_eq!(*runs.lock().unwrap(), vec![2]);
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

/// A delivery whose lease ran out and was taken by another worker cannot acknowledge in its
/// transaction: `ack_in` refuses, the transaction rolls back, and only the holder's effect is
/// committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_without_the_lease_is_refused_and_rolled_back() {
    let Some((db, postgres)) = open("postgres_lease_lost").await else {
        return;
    };
    let reader = effects(&db).await;
    let queue = PostgresQueue::new(&postgres);
    queue.push(payload("vid_lease")).await.unwrap();
    let first = queue
        .pull("w1", Pull::up_to(1).hidden_for(Duration::from_millis(100)))
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = queue
        .pull("w2", Pull::up_to(1).waiting(Duration::from_secs(5)))
        .await
        .unwrap()
        .remove(0);
    let (first, second) = (
        Delivery::<Event>::from_message(&first).unwrap(),
        Delivery::<Event>::from_message(&second).unwrap(),
    );
    let late = process_exactly_once(&queue, &db.schema, &first, || async {}).await;
    let err = late.unwrap_err();
    assert!(
        matches!(err.downcast_ref::<QueueError>(), Some(QueueError::NotHeld)),
        "{err}"
    );
    process_exactly_once(&queue, &db.schema, &second, || async {})
        .await
        .unwrap();
    assert_eq!(
        effect_rows(&reader, &db).await,
        vec![(second.id().0.clone(), 2)]
    );
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

/// Committed with its effect: the worker's own acknowledgement afterwards changes nothing, and
/// the delivery never comes back, past its lease too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_delivery_has_its_effect_once_and_never_comes_back() {
    let Some((db, postgres)) = open("postgres_committed").await else {
        return;
    };
    let reader = effects(&db).await;
    let queue = PostgresQueue::new(&postgres);
    for n in 0..20 {
        queue.push(payload(&format!("vid_{n}"))).await.unwrap();
    }
    let runs: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = {
        let (queue, runs, schema) = (queue.clone(), Arc::clone(&runs), db.schema.clone());
        service_fn(move |delivery: Delivery<Event>| {
            let (queue, runs, schema) = (queue.clone(), Arc::clone(&runs), schema.clone());
            async move {
                runs.lock().unwrap().push(delivery.id().0.clone());
                process_exactly_once(&queue, &schema, &delivery, || async {}).await
            }
        })
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(queue.clone(), handler)
            .concurrency(4)
            .visibility_timeout(Duration::from_millis(500))
            .run(async {
                stopped.await.ok();
            }),
    );
    common::guard("20 deliveries processed", async {
        while effect_rows(&reader, &db).await.len() < 20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.send(()).ok();
    worker.await.unwrap().unwrap();
    assert_eq!(runs.lock().unwrap().len(), 20, "each processed once");
    assert_eq!(effect_rows(&reader, &db).await.len(), 20);
    assert_eq!(queue.stats().await.unwrap().depth(), 0);
}

/// Concurrent replays of many dead letters each (an operator's and the admin page's) neither
/// deadlock nor fail: a transaction counts its messages on one row only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replays_of_many_dead_letters_do_not_deadlock() {
    let Some((_db, postgres)) = open("postgres_replay_deadlock").await else {
        return;
    };
    let queue = PostgresQueue::new(&postgres);
    for n in 0..2000 {
        queue.push(format!("{n}").into()).await.unwrap();
    }
    for _ in 0..3 {
        let mut left = 2000;
        while left > 0 {
            let taken = queue.pull("w", Pull::up_to(500)).await.unwrap();
            for message in &taken {
                queue.dead_letter(message, "failed").await.unwrap();
            }
            left -= taken.len();
        }
        let ids: Vec<_> = queue
            .list_dead_letters(tower_webhook::queue::Page::first(5000))
            .await
            .unwrap()
            .letters
            .into_iter()
            .map(|letter| letter.id)
            .collect();
        assert_eq!(ids.len(), 2000);
        let start = Arc::new(tokio::sync::Barrier::new(4));
        let replays = ids
            .chunks(500)
            .map(|chunk| {
                let (queue, chunk, start) = (queue.clone(), chunk.to_vec(), Arc::clone(&start));
                tokio::spawn(async move {
                    // Each with a connection, all at once.
                    queue.stats().await.unwrap();
                    start.wait().await;
                    queue
                        .replay_dead_letters(tower_webhook::queue::Select::Ids(chunk))
                        .await
                })
            })
            .collect::<Vec<_>>();
        let mut replayed = 0;
        for replay in replays {
            replayed += replay.await.unwrap().unwrap();
        }
        assert_eq!(replayed, 2000);
    }
}

/// A handler's transaction that acknowledged (`ack_in`) and has not committed yet holds no lock
/// a push needs: pushes go on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_handler_transaction_does_not_hold_pushes_back() {
    let Some((db, postgres)) = open("postgres_ack_in_locks").await else {
        return;
    };
    let _effects = effects(&db).await;
    let queue = PostgresQueue::new(
        &Postgres::builder(&db.url)
            .unwrap()
            .schema(db.schema.clone())
            .timeout(Duration::from_secs(2))
            .open()
            .await
            .unwrap(),
    );
    drop(postgres);
    for n in 0..8 {
        queue.push(payload(&format!("vid_open_{n}"))).await.unwrap();
    }
    let taken = queue.pull("w", Pull::up_to(8)).await.unwrap();
    // Eight handlers, each holding its transaction open after `ack_in` until told to end.
    let (end, ended) = tokio::sync::watch::channel(false);
    let (acked, mut acks) = tokio::sync::mpsc::unbounded_channel();
    for message in taken {
        let (queue, acked, mut ended) = (queue.clone(), acked.clone(), ended.clone());
        tokio::spawn(async move {
            let delivery = Delivery::<Event>::from_message(&message).unwrap();
            let mut client = queue.database().pool().get().await.unwrap();
            let transaction = client.transaction().await.unwrap();
            queue.ack_in(&transaction, &delivery).await.unwrap();
            acked.send(()).ok();
            let _ = ended.wait_for(|end| *end).await;
            transaction.rollback().await.unwrap();
        });
    }
    for _ in 0..8 {
        common::guard("an acknowledgement in a transaction", acks.recv())
            .await
            .unwrap();
    }
    let pushes = (0..32)
        .map(|n| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.push(format!("{n}").into()).await })
        })
        .collect::<Vec<_>>();
    for push in pushes {
        push.await.unwrap().unwrap();
    }
    end.send(true).ok();
}

/// A pull that timed out (a statement waiting on a lock) neither keeps its connection busy for
/// the next operation nor takes the message later: the statement is cancelled and the
/// connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_that_timed_out_is_cancelled_and_its_connection_not_reused() {
    let Some((db, _postgres)) = open("postgres_timeout_cancel").await else {
        return;
    };
    // One connection, so that the next operation would get the busy one.
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let manager =
        tower_webhook::postgres::deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = tower_webhook::postgres::deadpool_postgres::Pool::builder(manager)
        .max_size(1)
        .build()
        .unwrap();
    let postgres = Postgres::on(pool)
        .schema(db.schema.clone())
        .timeout(Duration::from_millis(500))
        .open()
        .await
        .unwrap();
    let queue = PostgresQueue::new(&postgres);
    // The pull's statement is prepared on the connection: the next pull waits in its execution.
    assert!(queue.pull("w", Pull::up_to(1)).await.unwrap().is_empty());
    queue.push("held".into()).await.unwrap();
    // Another session locks the whole table: the pull waits for it.
    let mut blocker = db.client().await;
    let lock = blocker.transaction().await.unwrap();
    lock.batch_execute(&format!(
        "LOCK TABLE \"{}\".queue IN ACCESS EXCLUSIVE MODE",
        db.schema
    ))
    .await
    .unwrap();
    let timed_out = queue.pull("w", Pull::up_to(1)).await;
    assert!(
        matches!(&timed_out, Err(QueueError::Unavailable(_))),
        "{timed_out:?}"
    );
    // The abandoned statement is cancelled: no session waits for the lock any more.
    let watcher = db.client().await;
    common::guard("the abandoned pull cancelled", async {
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE wait_event_type = 'Lock' AND datname = current_database()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    lock.rollback().await.unwrap();
    // The next operation is not stuck behind the abandoned pull, and the message was not taken
    // by it: it is here, attempt 1.
    let taken = queue.pull("w", Pull::up_to(1)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        taken[0].attempt, 1,
        "the timed-out pull did not take it later"
    );
}

/// Open without migrating: a missing schema is refused and nothing is created; a current one is
/// opened by a role that may use the tables but create nothing in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_schema_opens_without_ddl_for_a_role_that_may_not_create() {
    let Some((db, postgres)) = open("postgres_least_privilege").await else {
        return;
    };
    let missing = Postgres::builder(&db.url)
        .unwrap()
        .schema(format!("missing_{}", std::process::id()))
        .without_migrating()
        .open()
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            tower_webhook::postgres::PostgresError::OlderSchema { found: 0, .. }
        ),
        "{missing:?}"
    );
    let admin = db.client().await;
    let role = format!("{}_app", db.schema);
    let schema = &db.schema;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN; \
             GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\"; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"{schema}\" TO \"{role}\"; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA \"{schema}\" TO \"{role}\"; \
             GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA \"{schema}\" TO \"{role}\";"
        ))
        .await
        .unwrap();
    let as_role = db.url.replacen("postgres@", &format!("{role}@"), 1);
    let outcome: Result<(), String> = match Postgres::builder(&as_role)
        .unwrap()
        .schema(db.schema.clone())
        .open()
        .await
    {
        Ok(database) => PostgresQueue::new(&database)
            .push("{}".into())
            .await
            .map(drop)
            .map_err(|err| err.to_string()),
        Err(err) => Err(format!("{err:?}")),
    };
    drop(postgres);
    let _ = admin
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\";"))
        .await;
    outcome.unwrap();
}

/// The crate's statements need `read committed`: connections whose default isolation is
/// another are refused when opened, with an error that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_default_isolation_is_refused() {
    let Some((db, _postgres)) = open("postgres_isolation").await else {
        return;
    };
    let url = format!(
        "{}?options=-c%20default_transaction_isolation%3Drepeatable%5C%20read",
        db.url
    );
    let refused = Postgres::builder(&url)
        .unwrap()
        .schema(db.schema.clone())
        .open()
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PostgresError::Isolation(level) if level == "repeatable read"),
        "{refused:?}"
    );
}

/// A dead letter's error with a NUL (PostgreSQL's text has none) is stored, the NUL replaced;
/// a queue emptied with `TRUNCATE` takes pushes again (its count went with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_an_error_and_a_truncated_queue_are_handled() {
    let Some((db, postgres)) = open("postgres_nul_truncate").await else {
        return;
    };
    let queue = PostgresQueue::new(&postgres).max_len(3);
    queue.push("1".into()).await.unwrap();
    let taken = queue.pull("w", Pull::up_to(1)).await.unwrap();
    queue.dead_letter(&taken[0], "bad\u{0}byte").await.unwrap();
    let letters = queue
        .list_dead_letters(tower_webhook::queue::Page::first(10))
        .await
        .unwrap()
        .letters;
    assert_eq!(letters[0].error, "bad\u{fffd}byte");
    for n in 0..3 {
        queue.push(format!("{n}").into()).await.unwrap();
    }
    assert!(matches!(
        queue.push("full".into()).await,
        Err(QueueError::Full { .. })
    ));
    db.client()
        .await
        .batch_execute(&format!("TRUNCATE \"{}\".queue", db.schema))
        .await
        .unwrap();
    queue.push("after".into()).await.unwrap();
}
