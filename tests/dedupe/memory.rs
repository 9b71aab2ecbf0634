//! `MemoryStore`'s bound: a full store never forgets a record that has not expired; it refuses
//! new claims instead (503 through the layer), and expired records make room.

use std::{
    future::Future,
    pin::pin,
    sync::{Arc, Barrier},
    task::{Context, Poll, Waker},
    time::Duration,
};

use http::StatusCode;
use tower_webhook::{
    Rejection,
    dedupe::{
        DedupeLayer,
        store::{Claim, MemoryStore, Store, StoreError, Token},
    },
    provider::videonest,
};

use crate::suite::{Harness, vn_event};

const LEASE: Duration = Duration::from_secs(300);
const DAY: Duration = Duration::from_secs(86_400);

/// The output of a future that is ready at once, as `MemoryStore`'s are.
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("MemoryStore's futures are ready at once"),
    }
}

/// Enough new keys that every one of the store's 32 shards is full, whatever the hash keys (a
/// shard is left with a free place with a probability below 10⁻¹⁰).
const ATTEMPTS: usize = 1_000;

/// Claims and completes `ATTEMPTS` new keys (`{prefix}0`, `{prefix}1`, …) for `retention`:
/// returns the keys recorded, in order, and how many claims were refused because the store was
/// full (each with the store's `max_entries`).
fn fill(store: &MemoryStore, prefix: &str, retention: Duration) -> (Vec<String>, usize) {
    let mut recorded = Vec::new();
    let mut refused = 0;
    for i in 0..ATTEMPTS {
        let key = format!("{prefix}{i}");
        let token = Token::random();
        match now(store.claim(&key, &token, LEASE)) {
            Ok(Claim::Acquired) => {
                now(store.complete(&key, &token, retention)).unwrap();
                recorded.push(key);
            }
            Err(StoreError::Full { max_entries }) => {
                assert_eq!(max_entries, 64);
                refused += 1;
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    (recorded, refused)
}

#[test]
fn a_full_store_keeps_every_unexpired_record_and_refuses_new_keys() {
    let store = MemoryStore::with_max_entries(64);
    let (recorded, refused) = fill(&store, "done-", DAY);
    assert_eq!(recorded.first().map(String::as_str), Some("done-0"));
    // A replay of the first key is a duplicate: its record was not dropped to make room.
    assert_eq!(
        now(store.claim("done-0", &Token::random(), LEASE)).unwrap(),
        Claim::Done
    );
    assert_eq!(recorded.len(), 64, "every shard is full");
    assert_eq!(refused, ATTEMPTS - 64);
    assert_eq!(store.len(), 64);
    // Every record is still there: a replay of any of them, the first above all, is a duplicate.
    for key in &recorded {
        assert_eq!(
            now(store.claim(key, &Token::random(), LEASE)).unwrap(),
            Claim::Done,
            "{key}"
        );
    }
    // A new key is refused rather than making room with a record that has not expired.
    assert!(matches!(
        now(store.claim("new", &Token::random(), LEASE)),
        Err(StoreError::Full { max_entries: 64 })
    ));
    let stats = store.stats();
    assert_eq!((stats.len, stats.max_entries), (64, 64));
    assert_eq!(stats.expired_removed, 0);
    assert_eq!(stats.refused_full, (ATTEMPTS - 64 + 1) as u64);
}

#[test]
fn a_full_store_keeps_unexpired_claims_and_refuses_new_keys() {
    let store = MemoryStore::with_max_entries(64);
    let mut claimed = Vec::new();
    for i in 0..ATTEMPTS {
        let key = format!("claim-{i}");
        match now(store.claim(&key, &Token::random(), LEASE)) {
            Ok(Claim::Acquired) => claimed.push(key),
            Err(StoreError::Full { .. }) => {}
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(claimed.len(), 64);
    for key in &claimed {
        assert_eq!(
            now(store.claim(key, &Token::random(), LEASE)).unwrap(),
            Claim::InFlight,
            "{key}"
        );
    }
}

#[test]
fn expired_records_make_room_in_a_full_store() {
    let store = MemoryStore::with_max_entries(64);
    let brief = Duration::from_millis(50);
    // (Records could expire while the store is filled on a slow machine, so how many are
    // recorded is not asserted here.)
    let (recorded, _) = fill(&store, "brief-", brief);
    std::thread::sleep(3 * brief);
    // Every record has expired: new keys take their places, kept for a day this time.
    let (kept, refused) = fill(&store, "day-", DAY);
    assert_eq!((kept.len(), refused), (64, ATTEMPTS - 64));
    assert_eq!(store.len(), 64);
    for key in &kept {
        assert_eq!(
            now(store.claim(key, &Token::random(), LEASE)).unwrap(),
            Claim::Done,
            "{key}"
        );
    }
    // Each brief record was removed once, as expired; no other record was.
    let stats = store.stats();
    assert_eq!(stats.expired_removed, recorded.len() as u64);
    assert_eq!((stats.len, stats.max_entries), (64, 64));
    // The store is full of live records again.
    assert!(matches!(
        now(store.claim("brief-0", &Token::random(), LEASE)),
        Err(StoreError::Full { .. })
    ));
    assert_eq!(store.stats().refused_full, stats.refused_full + 1);
}

#[test]
fn concurrent_claims_of_a_free_key_acquire_it_once() {
    for round in 0..20 {
        let store = MemoryStore::with_max_entries(64);
        if round % 2 == 1 {
            // Every shard full of expired records: the winner makes room, the others see its
            // claim.
            fill(&store, "expired-", Duration::from_millis(1));
            std::thread::sleep(Duration::from_millis(5));
        }
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let key = format!("contended-{round}");
        let claims: Vec<Claim> = (0..threads)
            .map(|_| {
                let (store, barrier, key) = (store.clone(), Arc::clone(&barrier), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    now(store.claim(&key, &Token::random(), LEASE)).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();
        let acquired = claims
            .iter()
            .filter(|claim| matches!(claim, Claim::Acquired))
            .count();
        assert_eq!(acquired, 1, "{claims:?}");
        assert!(
            claims
                .iter()
                .all(|claim| matches!(claim, Claim::Acquired | Claim::InFlight))
        );
    }
}

#[tokio::test]
async fn through_the_layer_a_full_store_answers_503_and_replays_stay_duplicates() {
    let store = MemoryStore::with_max_entries(32);
    let harness = Harness::new(DedupeLayer::<videonest::Event, _>::new(store.clone()));
    let mut processed = Vec::new();
    for i in 0..ATTEMPTS {
        let body = vn_event(&format!("vid_{i}"));
        let answer = harness.send(&body).await;
        match answer.status {
            StatusCode::OK => {
                assert!(!answer.duplicate);
                processed.push(body);
            }
            StatusCode::SERVICE_UNAVAILABLE => assert!(
                matches!(
                    answer.rejection,
                    Some(Rejection::Store(StoreError::Full { max_entries: 32 }))
                ),
                "{answer:?}"
            ),
            other => panic!("{other}: {answer:?}"),
        }
    }
    // A replay of the first delivery (VideoNest signs no timestamp the layer could check) is
    // still a duplicate: its record was not dropped to make room.
    let replay = harness.send(&processed[0]).await;
    assert_eq!((replay.status, replay.duplicate), (StatusCode::OK, true));
    assert_eq!(processed.len(), 32, "every shard is full");
    assert_eq!(
        harness.calls(),
        32,
        "the handler ran only for what was recorded"
    );
    // A new event is refused, and the handler does not run.
    let new = harness.send(&vn_event("vid_new")).await;
    assert_eq!(new.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(new.text.contains("full"), "{}", new.text);
    assert_eq!(harness.calls(), 32);
    assert_eq!(store.len(), 32);
}
