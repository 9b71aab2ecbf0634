//! Checks every queue backend must pass.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use http::StatusCode;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::{
    dedupe::{DUPLICATE_HEADER, store::Token},
    provider::videonest,
    queue::{
        Backoff, DeadLetter, Delivery, Enqueue, MessageId, Page, Pull, Queue, QueueStats, Select,
        Worker,
    },
};

use super::SECRET;

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

/// Pushes `n` payloads and dead-letters each after one attempt, 100 at a time (a small queue
/// holds them): their message ids, in order.
async fn dead_letters(queue: &impl Queue, n: usize) -> Vec<MessageId> {
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let round = (n - ids.len()).min(100);
        for _ in 0..round {
            let i = ids.len();
            ids.push(queue.push(format!("{{\"n\":{i}}}").into()).await.unwrap());
        }
        let mut taken = Vec::with_capacity(round);
        while taken.len() < round {
            let pulled = queue
                .pull("dead", Pull::up_to(round - taken.len()))
                .await
                .unwrap();
            assert!(!pulled.is_empty(), "every pushed message can be pulled");
            taken.extend(pulled);
        }
        taken.sort_by_key(|message| ids.iter().position(|id| *id == message.id));
        for message in &taken {
            queue
                .dead_letter(message, &format!("failed: {}", message.id))
                .await
                .unwrap();
        }
    }
    ids
}

/// Replays of ids listed twice, of ids no dead letter has (some that are not ids at all, or
/// past what Redis takes) and of more than fit: each once, the rest skipped, the oldest first.
/// `queue` holds at most 400 messages.
pub(crate) async fn replays_take_each_id_once_skip_strangers_and_go_oldest_first(
    queue: &impl Queue,
) {
    let pushed = dead_letters(queue, 250).await;
    // Room for 150 more messages.
    for _ in 0..250 {
        queue.push("{}".into()).await.unwrap();
    }
    let (letters, _) = all_pages(queue, 100).await;
    let ids: Vec<MessageId> = letters.iter().map(|l| l.id.clone()).collect();
    let strangers = [
        "99999999999999999999-0",
        "18446744073709551615-18446744073709551615",
        "-",
        "+",
        "(0-0",
        "",
        "dead-",
        "dead-99999999999999999999",
    ];
    for stranger in strangers {
        let stranger = MessageId(stranger.into());
        let which = Select::Ids(vec![stranger.clone()]);
        assert_eq!(
            queue.replay_dead_letters(which.clone()).await.unwrap(),
            0,
            "{stranger}"
        );
        assert_eq!(
            queue.purge_dead_letters(which).await.unwrap(),
            0,
            "{stranger}"
        );
        let page = Page::first(10).after(stranger.clone());
        let after = queue.list_dead_letters(page).await;
        let after = after.unwrap_or_else(|err| panic!("{stranger}: {err}"));
        assert!(after.letters.is_empty(), "{stranger}: nothing after it");
    }
    let twice = Select::Ids(vec![ids[0].clone(), ids[0].clone(), ids[0].clone()]);
    assert_eq!(
        queue.replay_dead_letters(twice).await.unwrap(),
        1,
        "an id listed thrice, once"
    );
    assert_eq!(queue.stats().await.unwrap().ready, 251);
    // 249 asked for, 149 fit: the oldest go first, the newest 100 stay.
    let rest = Select::Ids(ids[1..].to_vec());
    assert_eq!(queue.replay_dead_letters(rest).await.unwrap(), 149);
    let (left, _) = all_pages(queue, 100).await;
    let left: Vec<&MessageId> = left.iter().map(|l| &l.message_id).collect();
    let newest: Vec<&MessageId> = pushed[150..].iter().collect();
    assert_eq!(left, newest);
}

/// Every dead letter, a page of `limit` at a time.
async fn all_pages(queue: &impl Queue, limit: usize) -> (Vec<DeadLetter>, usize) {
    let mut letters = Vec::new();
    let mut pages = 0;
    let mut page = Page::first(limit);
    loop {
        let listed = queue.list_dead_letters(page.clone()).await.unwrap();
        pages += 1;
        assert!(listed.letters.len() <= limit);
        letters.extend(listed.letters);
        match listed.next {
            Some(next) => page = Page::first(limit).after(next),
            None => return (letters, pages),
        }
    }
}

/// 1,000 dead letters listed a page at a time, replayed by id and all, purged by id and all.
pub(crate) async fn dead_letters_are_listed_replayed_and_purged(queue: &impl Queue) {
    let before = SystemTime::now() - Duration::from_secs(1);
    let pushed = dead_letters(queue, 1_000).await;
    let (letters, pages) = all_pages(queue, 100).await;
    assert_eq!(pages, 10, "ten full pages, the last saying it is the last");
    assert_eq!(letters.len(), 1_000);
    let mut message_ids: Vec<&MessageId> = letters.iter().map(|l| &l.message_id).collect();
    message_ids.sort_by_key(|id| &id.0);
    let mut expected: Vec<&MessageId> = pushed.iter().collect();
    expected.sort_by_key(|id| &id.0);
    assert_eq!(message_ids, expected, "each pushed message, once");
    let own: HashSet<&MessageId> = letters.iter().map(|l| &l.id).collect();
    assert_eq!(own.len(), 1_000, "each dead letter has an id of its own");
    for letter in &letters {
        assert_eq!(letter.attempts, 1);
        assert_eq!(letter.error, format!("failed: {}", letter.message_id));
        assert_eq!(letter.replays, 0);
        let failed = letter.failed_at.expect("when it failed");
        assert!(failed >= before && failed <= SystemTime::now() + Duration::from_secs(1));
        assert!(
            letter
                .first_failed_at
                .is_some_and(|first| first <= failed + Duration::from_millis(1))
        );
    }
    // An odd page size, and a page after the last letter.
    assert_eq!(all_pages(queue, 333).await.1, 4);
    let last = letters.last().unwrap().id.clone();
    let after_last = queue
        .list_dead_letters(Page::first(10).after(last))
        .await
        .unwrap();
    assert!(after_last.letters.is_empty() && after_last.next.is_none());

    // Replay three by id: back as new messages, attempt 1, one replay each.
    let chosen: Vec<MessageId> = [0, 500, 999]
        .iter()
        .map(|&i| letters[i].id.clone())
        .collect();
    let unknown = MessageId("0-1".into());
    let mut ids = chosen.clone();
    ids.push(unknown);
    assert_eq!(
        queue.replay_dead_letters(Select::Ids(ids)).await.unwrap(),
        3
    );
    assert_eq!(
        queue
            .replay_dead_letters(Select::Ids(chosen))
            .await
            .unwrap(),
        0,
        "replayed already"
    );
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.dead), (3, 997));
    let replayed = queue.pull("dead", Pull::up_to(10)).await.unwrap();
    assert_eq!(replayed.len(), 3);
    let mut payloads: Vec<String> = replayed
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    payloads.sort();
    assert_eq!(payloads, [r#"{"n":0}"#, r#"{"n":500}"#, r#"{"n":999}"#]);
    assert!(replayed.iter().all(|m| m.attempt == 1 && m.replays == 1));
    for message in &replayed {
        queue.ack(message).await.unwrap();
    }

    // Purge two by id, replay all the others, purge all.
    let purge: Vec<MessageId> = [1, 2].iter().map(|&i| letters[i].id.clone()).collect();
    assert_eq!(
        queue
            .purge_dead_letters(Select::Ids(purge.clone()))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        queue.purge_dead_letters(Select::Ids(purge)).await.unwrap(),
        0
    );
    assert_eq!(queue.replay_dead_letters(Select::All).await.unwrap(), 995);
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.dead), (995, 0));
    assert_eq!(queue.replay_dead_letters(Select::All).await.unwrap(), 0);
    let taken = queue.pull("dead", Pull::up_to(1_000)).await.unwrap();
    assert_eq!(taken.len(), 995);
    for message in &taken[..5] {
        queue.dead_letter(message, "again").await.unwrap();
    }
    let again = queue.list_dead_letters(Page::first(10)).await.unwrap();
    assert_eq!(again.letters.len(), 5);
    assert!(
        again.letters.iter().all(|l| l.replays == 1),
        "a replay is remembered"
    );
    assert_eq!(queue.purge_dead_letters(Select::All).await.unwrap(), 5);
    assert_eq!(queue.stats().await.unwrap().dead, 0);
    assert_eq!(queue.purge_dead_letters(Select::All).await.unwrap(), 0);
}

/// Two replays of one dead letter at once enqueue it once.
pub(crate) async fn concurrent_replays_enqueue_a_dead_letter_once(queue: &impl Queue) {
    dead_letters(queue, 1).await;
    let letters = queue
        .list_dead_letters(Page::first(1))
        .await
        .unwrap()
        .letters;
    let which = Select::Ids(vec![letters[0].id.clone()]);
    for _ in 0..20 {
        let (a, b) = tokio::join!(
            queue.replay_dead_letters(which.clone()),
            queue.replay_dead_letters(which.clone())
        );
        let replayed = a.unwrap() + b.unwrap();
        assert!(replayed <= 1, "replayed {replayed} times");
        if replayed == 1 {
            break;
        }
    }
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.ready, stats.dead), (1, 0));
}

/// A delivery stored once (`Enqueue::deduplicate`), dead-lettered, then replayed: processed
/// once more although its key says "received", exactly once, as a replay; repeats of the event
/// are still duplicates.
pub(crate) async fn a_replay_bypasses_the_dedupe_record_and_is_processed_once<Q>(queue: Q)
where
    Q: Queue + Clone,
{
    let namespace = format!("replay-{}", Token::random().as_str());
    let http = ServiceBuilder::new()
        .layer(videonest::layer([SECRET]).unwrap())
        .service(
            Enqueue::<videonest::Event, _>::new(queue.clone())
                .deduplicate()
                .namespace(namespace),
        );
    let body = r#"{"event":"video.processed","timestamp":"t","data":{"id":"replayed"}}"#;
    let post = || async {
        let request = videonest::signed_request(SECRET, body).unwrap();
        let response = http.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.headers().contains_key(DUPLICATE_HEADER)
    };
    assert!(!post().await, "stored");
    let seen: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    let fail = Arc::new(AtomicBool::new(true));
    let handler = {
        let (seen, fail) = (Arc::clone(&seen), Arc::clone(&fail));
        service_fn(move |delivery: Delivery<videonest::Event>| {
            seen.lock()
                .unwrap()
                .push((delivery.attempt(), delivery.replays()));
            let failed = fail.load(Ordering::SeqCst);
            async move { if failed { Err("failing") } else { Ok(()) } }
        })
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(queue.clone(), handler)
            .max_attempts(1)
            .run(async {
                stopped.await.ok();
            }),
    );
    let until = |what: &'static str, mut done: Box<dyn FnMut() -> bool + Send>| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not in 20 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let seen_now = Arc::clone(&seen);
    until(
        "dead-lettered",
        Box::new(move || seen_now.lock().unwrap().len() == 1),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue.stats().await.unwrap().dead != 1 {
        assert!(Instant::now() < deadline, "no dead letter in 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(post().await, "a repeat is a duplicate");

    fail.store(false, Ordering::SeqCst);
    assert_eq!(queue.replay_dead_letters(Select::All).await.unwrap(), 1);
    let seen_now = Arc::clone(&seen);
    until(
        "replayed",
        Box::new(move || seen_now.lock().unwrap().len() == 2),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue.stats().await.unwrap().depth() != 0 {
        assert!(
            Instant::now() < deadline,
            "the replay was not settled in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        post().await,
        "a repeat after the replay is still a duplicate"
    );
    // Time for a second processing to show, if there were one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), [(1, 0), (1, 1)]);
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.depth(), stats.dead), (0, 0));
}

/// A delivery whose service fails is retried with backoff, as attempts 1, 2, 3, then
/// dead-lettered with its last error; a delivery whose service succeeds is processed once and
/// acknowledged.
pub(crate) async fn failures_are_retried_then_dead_lettered<Q>(queue: Q)
where
    Q: Queue + Clone,
{
    let body = |id: &str| {
        format!(r#"{{"event":"video.processed","timestamp":"t","data":{{"id":"{id}"}}}}"#)
    };
    let http = ServiceBuilder::new()
        .layer(videonest::layer([SECRET]).unwrap())
        .service(Enqueue::<videonest::Event, _>::new(queue.clone()));
    for id in ["poison", "fine"] {
        let request = videonest::signed_request(SECRET, body(id)).unwrap();
        let response = http.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let handler = {
        let seen = Arc::clone(&seen);
        service_fn(move |delivery: Delivery<videonest::Event>| {
            let id = delivery.event().id().unwrap_or("-").to_owned();
            seen.lock().unwrap().push((id.clone(), delivery.attempt()));
            let attempt = delivery.attempt();
            async move {
                if id == "poison" {
                    Err(format!("poison failed on attempt {attempt}"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(queue.clone(), handler)
            .max_attempts(3)
            .backoff(Backoff::exponential(
                Duration::from_millis(20),
                Duration::from_millis(40),
            ))
            .run(async {
                stopped.await.ok();
            }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = queue.stats().await.unwrap();
        if stats.dead == 1 && stats.depth() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("fine".to_owned(), 1),
            ("poison".to_owned(), 1),
            ("poison".to_owned(), 2),
            ("poison".to_owned(), 3)
        ]
    );
    let dead = queue
        .list_dead_letters(Page::first(10))
        .await
        .unwrap()
        .letters;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].attempts, dead[0].error.as_str()),
        (3, "poison failed on attempt 3")
    );
    assert!(dead[0].first_failed_at.is_some() && dead[0].first_failed_at <= dead[0].failed_at);
}
