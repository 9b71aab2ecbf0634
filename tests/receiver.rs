//! The `receiver` example against a real Redis, as an operator runs it: `--dedupe redis://…`
//! with Redis frozen (SIGSTOP) while a delivery arrives.
//!
//! The example's binary is the one `cargo test` builds beside the tests (in `target/…/examples`);
//! run with `cargo test --all-features` (a lone `--test receiver` builds it first when it is
//! missing or older than the test).
#![cfg(feature = "redis")]

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{SECRET, redis::Server};
use tower_webhook::provider::videonest;

/// The receiver's binary, built by `cargo test` beside this test's.
fn receiver_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile
        .join("examples")
        .join(format!("receiver{}", std::env::consts::EXE_SUFFIX));
    // Missing, or older than this test (a lone `cargo test --test receiver` builds no
    // example): built now.
    let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if modified(&binary) < modified(&exe) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--example", "receiver"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the receiver example");
    }
    binary
}

/// A running receiver: its address and what it printed, killed when dropped.
struct Receiver {
    child: Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(receiver_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .trim_end()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .parse()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let printed = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                printed.lock().unwrap().push(line);
            }
        });
        Self { child, addr, lines }
    }

    /// Posts `body` signed as VideoNest signs it: the status, and whether it was answered as a
    /// duplicate.
    fn post(&self, body: &str) -> (u16, bool) {
        let signed = videonest::signed_request(SECRET, body.to_owned()).unwrap();
        let signature = signed.headers()[videonest::SIGNATURE_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "POST /webhook HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             X-VideoNest-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("{response:?}"));
        let duplicate = response
            .to_ascii_lowercase()
            .contains("x-webhook-duplicate: true");
        (status, duplicate)
    }

    /// The lines printed for events with `id`, once one is (the receiver prints before it
    /// answers, but this side reads its output on a thread of its own).
    fn printed_for(&self, id: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.lines_for(id) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.lines_for(id)
    }

    /// The lines read so far for events with `id`.
    fn lines_for(&self, id: &str) -> usize {
        let needle = format!("\"id\":\"{id}\"");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(&needle))
            .count()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(id: &str) -> String {
    format!(
        r#"{{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{{"id":"{id}","status":"ready"}}}}"#
    )
}

/// Redis frozen for 5 s while a delivery arrives: 503. Once it is thawed, the same delivery,
/// sent again, is processed at once (never refused as in flight: the claim Redis ran late was
/// released behind it), exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_stall_does_not_leave_the_delivery_refused() {
    let Some(server) = Server::require("receiver-stall").await else {
        return;
    };
    let url = server.url();
    let receiver = Receiver::start(&[
        "--provider",
        "videonest",
        "--secret",
        SECRET,
        "--listen",
        "127.0.0.1:0",
        "--dedupe",
        &url,
    ]);
    assert_eq!(receiver.post(&event("vid_warm_up")), (200, false));

    let body = event("vid_stalled");
    let frozen = Instant::now();
    server.freeze();
    let stalled = tokio::task::spawn_blocking({
        let body = body.clone();
        let receiver_addr = receiver.addr;
        move || post_to(receiver_addr, &body)
    });
    let (status, _) = stalled.await.unwrap();
    assert_eq!(status, 503, "answered while Redis is frozen");
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(frozen.elapsed())).await;
    server.thaw();
    let thawed = Instant::now();

    // The provider sends it again, every 100 ms until it is accepted.
    let mut answers = Vec::new();
    let processed = loop {
        let answer = receiver.post(&body);
        answers.push(answer.0);
        if answer.0 == 200 {
            break answer;
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(20),
            "still refused 20 s after the thaw: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "processed {:?} after the thaw, answers {answers:?}",
        thawed.elapsed()
    );
    assert!(!answers.contains(&409), "refused as in flight: {answers:?}");
    assert_eq!(processed, (200, false), "processed, not a duplicate");
    assert_eq!(receiver.printed_for("vid_stalled"), 1);
    // Exactly once: its next repeat is a duplicate, and prints nothing (read up to the line
    // of an event sent after it: output is in order).
    assert_eq!(receiver.post(&body), (200, true));
    assert_eq!(receiver.post(&event("vid_after")), (200, false));
    assert_eq!(receiver.printed_for("vid_after"), 1);
    assert_eq!(receiver.lines_for("vid_stalled"), 1);
}

/// [`Receiver::post`] from another thread.
fn post_to(addr: SocketAddr, body: &str) -> (u16, bool) {
    let receiver = Receiver {
        child: Command::new("true").spawn().unwrap(),
        addr,
        lines: Arc::default(),
    };
    receiver.post(body)
}
