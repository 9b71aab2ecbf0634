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
            .args(["build", "--all-features", "--example", "receiver"])
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
        Self::start_with_env(args, &[])
    }

    /// Starts a receiver with `args` and the environment variables `env` set.
    fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(receiver_binary())
            .args(args)
            .envs(env.iter().copied())
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
        self.post_signed_with(SECRET, body)
    }

    /// Posts `body` signed with `secret`.
    fn post_signed_with(&self, secret: &str, body: &str) -> (u16, bool) {
        post_signed(self.addr, secret, body)
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
    post_signed(addr, SECRET, body)
}

/// Posts `body` to the receiver at `addr`, signed with `secret`: the status, and whether it was
/// answered as a duplicate.
fn post_signed(addr: SocketAddr, secret: &str, body: &str) -> (u16, bool) {
    try_post_signed(addr, secret, body).unwrap_or_else(|err| panic!("POST to {addr}: {err}"))
}

/// [`post_signed`], or why no answer came (the connection refused, reset or cut short).
fn try_post_signed(addr: SocketAddr, secret: &str, body: &str) -> std::io::Result<(u16, bool)> {
    try_post_signed_to(addr, "/webhook", secret, body)
}

/// [`try_post_signed`] to `path`.
fn try_post_signed_to(
    addr: SocketAddr,
    path: &str,
    secret: &str,
    body: &str,
) -> std::io::Result<(u16, bool)> {
    let signed = videonest::signed_request(secret, body.to_owned()).unwrap();
    let signature = signed.headers()[videonest::SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         X-VideoNest-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        addr,
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:?}")))?;
    let duplicate = response
        .to_ascii_lowercase()
        .contains("x-webhook-duplicate: true");
    Ok((status, duplicate))
}

/// The arguments of a VideoNest receiver on a free port, then `more`.
fn videonest_args<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--provider",
        "videonest",
        "--secret",
        SECRET,
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(more);
    args
}

/// A VideoNest receiver on a free port, with `more` arguments.
fn videonest_receiver(more: &[&str]) -> Receiver {
    Receiver::start(&videonest_args(more))
}

/// A VideoNest receiver on a free port with `--queue url`, whose handler fails with
/// probability `fail_rate`, with `more` arguments.
fn queued_receiver(url: &str, fail_rate: &str, more: &[&str]) -> Receiver {
    let mut args = vec!["--queue", url, "--fail-rate", fail_rate];
    args.extend_from_slice(more);
    videonest_receiver(&args)
}

/// A SQLite file in a folder of the test's own, removed when dropped.
struct SqliteFile {
    dir: PathBuf,
    /// `sqlite:PATH`, as the receiver takes it.
    url: String,
}

impl SqliteFile {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "receiver-{test}-{}-{}",
            std::process::id(),
            tower_webhook::dedupe::store::Token::random().as_str()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}", dir.join("webhooks.db").display());
        Self { dir, url }
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The whole answer (head and body) to `GET path` on the receiver.
fn get_answer(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The body of `GET path` on the receiver, which answers 200.
fn get(addr: SocketAddr, path: &str) -> String {
    let response = get_answer(addr, path);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The value of the series `name{labels}` in Prometheus text (labels in any order); 0 when
/// absent.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (found, rest) = series.split_once('{').unwrap_or((series, "}"));
            if found != name {
                return None;
            }
            let found: Vec<&str> = rest.trim_end_matches('}').split(',').collect();
            let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            (found.len() == wanted.len() && wanted.iter().all(|w| found.contains(&w.as_str())))
                .then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

/// Runs `receiver ARGS…` (an administration command) to its end: its stdout.
fn admin(args: &[&str]) -> String {
    let output = Command::new(receiver_binary()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "receiver {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// An operator's round trip through the command line: a receiver whose handler always fails
/// dead-letters every delivery; `receiver dlq list --json` lists exactly those; once the cause
/// is fixed, `receiver dlq replay --all` has a healthy receiver process each once; and
/// `GET /metrics` counted what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed_from_the_command_line_and_counted() {
    let Some(server) = Server::require("receiver-dlq").await else {
        return;
    };
    let url = server.url();
    let serve = |fail_rate: &str| {
        queued_receiver(
            &url,
            fail_rate,
            &["--dedupe", &url, "--max-attempts", "2", "--metrics"],
        )
    };
    let failing = serve("1");
    let ids: Vec<String> = (0..6).map(|i| format!("vid_dead_{i}")).collect();
    for id in &ids {
        assert_eq!(failing.post(&event(id)), (200, false));
    }
    assert_eq!(failing.post(&event(&ids[0])), (200, true), "a repeat");
    for id in ["vid_forged_1", "vid_forged_2"] {
        assert_eq!(
            failing.post_signed_with("not the secret", &event(id)).0,
            401
        );
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed: serde_json::Value =
            serde_json::from_str(&admin(&["dlq", "list", "--queue", &url, "--json"])).unwrap();
        if listed.as_array().unwrap().len() == ids.len() {
            break listed;
        }
        assert!(Instant::now() < deadline, "not all dead-lettered: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut bodies: Vec<String> = Vec::new();
    for letter in listed.as_array().unwrap() {
        assert_eq!(letter["attempts"], 2);
        assert_eq!(letter["error"], "handler failed (--fail-rate)");
        assert_eq!(letter["provider"], "videonest");
        assert_eq!(letter["replays"], 0);
        assert_ne!(letter["id"], letter["message_id"]);
        bodies.push(letter["body"].as_str().unwrap().to_owned());
    }
    bodies.sort();
    let mut sent: Vec<String> = ids.iter().map(|id| event(id)).collect();
    sent.sort();
    assert_eq!(bodies, sent, "exactly the deliveries sent, each once");
    assert_eq!(
        failing.lines.lock().unwrap().len(),
        0,
        "nothing was processed"
    );

    let metrics = get(failing.addr, "/metrics");
    let count = |name, labels: &[(&str, &str)]| sample(&metrics, name, labels);
    let vn = ("provider", "videonest");
    let requests = "webhook_requests_total";
    assert_eq!(
        count(requests, &[vn, ("outcome", "verified")]),
        7.0,
        "{metrics}"
    );
    let forged = [vn, ("outcome", "refused"), ("reason", "signature_mismatch")];
    assert_eq!(count(requests, &forged), 2.0);
    let enqueued = "webhook_enqueued_total";
    assert_eq!(count(enqueued, &[vn, ("outcome", "stored")]), 6.0);
    assert_eq!(count(enqueued, &[vn, ("outcome", "duplicate")]), 1.0);
    let deliveries = "webhook_deliveries_total";
    assert_eq!(count(deliveries, &[vn, ("outcome", "retried")]), 6.0);
    assert_eq!(count(deliveries, &[vn, ("outcome", "dead_lettered")]), 6.0);
    assert_eq!(count(deliveries, &[vn, ("outcome", "processed")]), 0.0);
    drop(failing);

    // The cause is fixed: a healthy receiver, and every dead letter replayed.
    let healthy = serve("0");
    assert_eq!(
        admin(&["dlq", "replay", "--all", "--queue", &url]),
        "replayed 6\n"
    );
    for id in &ids {
        assert_eq!(healthy.printed_for(id), 1, "{id} processed");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats: serde_json::Value =
            serde_json::from_str(&admin(&["stats", "--queue", &url, "--json"])).unwrap();
        if stats == serde_json::json!({"ready": 0, "pending": 0, "delayed": 0, "dead": 0}) {
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        admin(&["dlq", "list", "--queue", &url]),
        "",
        "no dead letter left"
    );
    let replayed_id = listed[0]["id"].as_str().unwrap();
    let (ok, out, err) = run(&["dlq", "replay", "--queue", &url, replayed_id]);
    assert!(!ok && out == "replayed 0\n", "{out}{err}");
    assert!(
        err.contains("1 of the ids given were not replayed"),
        "{err}"
    );
    // Still a duplicate, and nothing was processed twice.
    assert_eq!(healthy.post(&event(&ids[1])), (200, true));
    assert_eq!(healthy.post(&event("vid_after_replay")), (200, false));
    assert_eq!(healthy.printed_for("vid_after_replay"), 1);
    for id in &ids {
        assert_eq!(healthy.lines_for(id), 1, "{id} processed once");
    }
    // A worker counts a delivery once its handler has returned: just after the line.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = get(healthy.addr, "/metrics");
        let processed = [vn, ("outcome", "processed")];
        if sample(&metrics, deliveries, &processed) >= 7.0 || Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let count = |name, labels: &[(&str, &str)]| sample(&metrics, name, labels);
    assert_eq!(
        count(deliveries, &[vn, ("outcome", "replayed")]),
        6.0,
        "{metrics}"
    );
    assert_eq!(count(deliveries, &[vn, ("outcome", "processed")]), 7.0);
    assert_eq!(count(enqueued, &[vn, ("outcome", "duplicate")]), 1.0);
}

/// The receiver's own output for `args`: whether it succeeded, stdout, stderr.
fn run(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(receiver_binary()).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `--help` works anywhere and shows the defaults; a flag that would do nothing is refused;
/// secrets come from a file or the environment as well as the command line.
#[test]
fn the_command_line_helps_refuses_idle_flags_and_reads_secrets_from_a_file_or_the_environment() {
    for args in [
        &["--help"][..],
        &["--provider", "videonest", "--help"],
        &["dlq", "list", "-h"],
    ] {
        let (ok, out, _) = run(args);
        assert!(ok, "{args:?}");
        assert!(
            out.contains("--secret-file PATH") && out.contains("[default: 30000]"),
            "{out}"
        );
    }
    for (args, says) in [
        (
            &["--provider", "videonest", "--secret", "s", "--workers", "3"][..],
            "needs --queue",
        ),
        (
            &[
                "--provider",
                "videonest",
                "--secret",
                "s",
                "--max-attempts",
                "2",
            ],
            "needs --queue",
        ),
        (
            &[
                "--provider",
                "videonest",
                "--secret",
                "s",
                "--queue",
                "memory",
                "--stream",
                "x",
            ],
            "Redis queue",
        ),
        (&["--provider", "videonest"], "RECEIVER_SECRETS"),
        (
            &[
                "--provider",
                "videonest",
                "--tenants",
                "/nonexistent/tenants.json",
            ],
            "--tenants /nonexistent/tenants.json",
        ),
        (
            &[
                "--provider",
                "videonest",
                "--tenants",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ],
            "expected {\"tenant-id\"",
        ),
        (
            &[
                "--provider",
                "videonest",
                "--secret",
                "s",
                "--tenants",
                "/nonexistent/tenants.json",
            ],
            "--tenants",
        ),
        (
            &[
                "--provider",
                "videonest",
                "--secret-file",
                "/nonexistent/secrets",
            ],
            "--secret-file",
        ),
        (
            &["dlq", "replay", "--queue", "redis://127.0.0.1:1"],
            "either --all or the ids",
        ),
        (&["dlq", "list", "--queue", "memory"], "memory queue"),
        (&["stats", "--queue", "ftp://x"], "redis+unix://"),
        (
            &[
                "--provider",
                "videonest",
                "--secret",
                "s",
                "--dedupe",
                "sqlite://x.db",
            ],
            "not a sqlite:// URL",
        ),
        (
            &[
                "--provider",
                "videonest",
                "--secret",
                "-h",
                "--workers",
                "2",
            ],
            "needs --queue",
        ),
    ] {
        let (ok, _, err) = run(args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains(SECRET));
    }

    // A queue that cannot be reached: said with its cause, the password hidden, exit 1.
    let output = Command::new(receiver_binary())
        .args(["stats", "--queue", "redis://:hunter2-secret@127.0.0.1:1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("redis://:***@127.0.0.1:1") && !err.contains("hunter2"),
        "{err}"
    );
    assert!(!err.contains("usage:"), "{err}");
    // The other places a Redis URL carries a password: a Unix socket's `pass`, a cluster's and
    // Sentinel's user information, in the serving receiver's errors as in the commands'.
    for url in [
        "redis+unix:///nowhere/redis.sock?pass=hunter2-secret",
        "redis+cluster://:hunter2-secret@127.0.0.1:1,127.0.0.1:2",
        "redis+sentinel://:hunter2-secret@127.0.0.1:1/mymaster",
    ] {
        let output = Command::new(receiver_binary())
            .args(["stats", "--queue", url])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{url}: {err}");
    }

    let dir = std::env::temp_dir().join(format!("receiver-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secrets");
    std::fs::write(&file, format!("old-secret\n\n  {SECRET}  \n")).unwrap();
    let from_file = Receiver::start(&[
        "--provider",
        "videonest",
        "--secret-file",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(from_file.post(&event("vid_from_file")), (200, false));
    assert_eq!(from_file.post_signed_with("not it", &event("vid_x")).0, 401);
    std::fs::remove_dir_all(&dir).unwrap();

    let from_env = Receiver::start_with_env(
        &["--provider", "videonest", "--listen", "127.0.0.1:0"],
        &[("RECEIVER_SECRETS", &format!("old-secret {SECRET}"))],
    );
    assert_eq!(from_env.post(&event("vid_from_env")), (200, false));
    assert_eq!(from_env.post_signed_with("not it", &event("vid_y")).0, 401);
}

/// A binary on the `PATH` by one of `names`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A WebDriver session of a headless Chromium, through `chromedriver` (killed when dropped).
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    /// `None`, after saying why, when Chromium or chromedriver is missing, unless `CI=true`:
    /// then the test fails.
    fn start() -> Option<Self> {
        let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = on_path(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                !common::redis::in_ci(),
                "CI=true but chromium or chromedriver is missing: the browser test must run"
            );
            eprintln!("skipped: the browser test needs chromium and chromedriver");
            return None;
        };
        let port = common::redis::free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut browser = Self {
            driver,
            port,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let created = browser.call(
            "POST",
            "/session",
            Some(serde_json::json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1100,900"],
                },
            }}})),
        );
        browser.session = created["sessionId"].as_str().unwrap().to_owned();
        Some(browser)
    }

    /// One WebDriver command: its `value`.
    fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // chromedriver may keep the connection open: read the head, then as much as it says.
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let lower = head.to_ascii_lowercase();
        let mut body = Vec::new();
        if let Some(length) = lower
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
        {
            body.resize(length.trim().parse().unwrap(), 0);
            reader.read_exact(&mut body).unwrap();
        } else {
            // Chunked.
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        let body = String::from_utf8(body).unwrap();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "{method} {path}: {head}\n{value}"
        );
        value["value"].clone()
    }

    fn session(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn open(&self, url: &str) {
        self.session("POST", "/url", Some(serde_json::json!({ "url": url })));
    }

    /// The page's HTML as the browser has it.
    fn source(&self) -> String {
        self.session("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until the page holds `text` (bounded).
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let source = self.source();
            if source.contains(text) {
                return source;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {text:?}: {source}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, css: &str) {
        let found = self.session(
            "POST",
            "/element",
            Some(serde_json::json!({"using": "css selector", "value": css})),
        );
        let element = found
            .as_object()
            .and_then(|found| found.values().next())
            .and_then(serde_json::Value::as_str)
            .unwrap()
            .to_owned();
        self.session(
            "POST",
            &format!("/element/{element}/click"),
            Some(serde_json::json!({})),
        );
    }

    fn screenshot_png(&self) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = self.session("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.session("DELETE", "", None);
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The admin page in a real browser (headless Chromium through chromedriver), as an operator
/// uses it: a delivery dead-lettered by a failing receiver shows up on a healthy receiver's
/// `/admin/` (behind `--admin-token`, asked for as Basic authentication); pressing its Replay
/// button has it processed, and the page says so. `TOWER_WEBHOOK_ADMIN_SCREENSHOT=PATH` saves a
/// picture of the page with the dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_in_a_browser_shows_a_dead_letter_and_replays_it() {
    let Some(server) = Server::require("receiver-admin").await else {
        return;
    };
    let Some(browser) = Browser::start() else {
        return;
    };
    let url = server.url();
    let token = "admin-token-for-the-browser-test";
    let serve = |fail_rate: &str| {
        queued_receiver(
            &url,
            fail_rate,
            &["--max-attempts", "1", "--admin-token", token],
        )
    };
    let failing = serve("1");
    assert_eq!(failing.post(&event("vid_in_the_browser")), (200, false));
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead_one = serde_json::json!({"ready": 0, "pending": 0, "delayed": 0, "dead": 1});
    while serde_json::from_str::<serde_json::Value>(&admin(&["stats", "--queue", &url, "--json"]))
        .unwrap()
        != dead_one
    {
        assert!(Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(failing);

    let healthy = serve("0");
    let base = format!("http://{}/admin/", healthy.addr);
    // Without the token: refused, and asked for.
    let refused = get_answer(healthy.addr, "/admin/");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused
            .to_ascii_lowercase()
            .contains("www-authenticate: basic")
    );

    browser.open(&format!("http://admin:{token}@{}/admin/", healthy.addr));
    let page = browser.wait_for("vid_in_the_browser");
    assert!(page.contains("<td id=\"dead\">1</td>"), "{page}");
    assert!(page.contains("handler failed (--fail-rate)"));
    if let Ok(path) = std::env::var("TOWER_WEBHOOK_ADMIN_SCREENSHOT") {
        std::fs::write(path, browser.screenshot_png()).unwrap();
    }
    assert!(browser.screenshot_png().starts_with(b"\x89PNG"));

    browser.click("section.dead-letter form[action='/admin/replay'] button");
    let after = browser.wait_for("Replayed 1 dead letter(s).");
    assert!(after.contains("No dead letters."), "{after}");
    assert_eq!(
        healthy.printed_for("vid_in_the_browser"),
        1,
        "processed after the replay"
    );
    browser.open(&base.replace("http://", &format!("http://admin:{token}@")));
    browser.wait_for("<td id=\"dead\">0</td>");
    assert_eq!(healthy.lines_for("vid_in_the_browser"), 1, "once");
}

/// `--dedupe sqlite:PATH`: what was answered survives a SIGKILL. A delivery processed before
/// the receiver was killed is a duplicate for the receiver started again on the same file.
#[test]
fn sqlite_dedupe_records_survive_a_sigkill() {
    let sqlite = SqliteFile::new("sqlite");
    let file = sqlite.url.clone();
    let args = videonest_args(&["--dedupe", &file]);
    let first = Receiver::start(&args);
    assert_eq!(first.post(&event("vid_before_kill")), (200, false));
    assert_eq!(first.printed_for("vid_before_kill"), 1);
    assert_eq!(first.post(&event("vid_before_kill")), (200, true));
    drop(first); // SIGKILL

    let second = Receiver::start(&args);
    assert_eq!(
        second.post(&event("vid_before_kill")),
        (200, true),
        "still a duplicate"
    );
    assert_eq!(second.post(&event("vid_after_kill")), (200, false));
    assert_eq!(second.printed_for("vid_after_kill"), 1);
    assert_eq!(
        second.lines_for("vid_before_kill"),
        0,
        "not processed again"
    );
    drop(second);
}

/// `--queue sqlite:PATH --dedupe sqlite:PATH` (one file): the receiver is SIGKILLed while
/// 2,000 deliveries arrive 32 at a time and started again on the same file. Every delivery
/// that was answered 2xx is processed (at least once, across both runs); sent again, it is a
/// duplicate. Those refused or cut off by the kill are accepted when sent again, as a provider
/// retries them.
#[test]
fn a_sqlite_queue_keeps_every_acknowledged_delivery_through_a_sigkill() {
    let sqlite = SqliteFile::new("sqlite-queue");
    keeps_every_acknowledged_delivery_through_a_sigkill(&sqlite.url);
}

/// A receiver with `--queue url --dedupe url` SIGKILLed while 2,000 deliveries arrive 32 at a
/// time, and started again: every acknowledged delivery is processed, and a duplicate when sent
/// again.
fn keeps_every_acknowledged_delivery_through_a_sigkill(url: &str) {
    let args = videonest_args(&["--queue", url, "--dedupe", url]);
    let ids: Vec<String> = (0..2_000).map(|i| format!("vid_sq_{i}")).collect();
    let first = Receiver::start(&args);
    let addr = first.addr;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = ids
        .chunks(2_000_usize.div_ceil(32))
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let acknowledged = Arc::clone(&acknowledged);
            std::thread::spawn(move || {
                for id in chunk {
                    // A connection the kill cuts off is not an acknowledgement.
                    let answer = try_post_signed(addr, SECRET, &event(&id));
                    if let Ok((200, _)) = answer {
                        acknowledged.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    // Kill it mid-stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 700 {
        assert!(Instant::now() < deadline, "too slow to acknowledge");
        std::thread::sleep(Duration::from_millis(5));
    }
    let first_lines = Arc::clone(&first.lines);
    drop(first);
    for sender in senders {
        let _ = sender.join();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 700 && acknowledged.len() < ids.len(),
        "{}",
        acknowledged.len()
    );

    let second = Receiver::start(&args);
    // The provider sends again what was not acknowledged; what was is a duplicate.
    for id in &ids {
        let (status, duplicate) = second.post(&event(id));
        assert_eq!(status, 200, "{id}");
        // Acknowledged: a duplicate. Cut off by the kill: stored or not, either is right.
        assert!(
            duplicate || !acknowledged.contains(id),
            "{id} acknowledged, stored again"
        );
    }
    // Every delivery is processed, by the first run (before the kill) or the second.
    let printed_by_first = |id: &str| {
        let needle = format!("\"id\":\"{id}\"");
        first_lines
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(&needle))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let unprocessed = || {
        ids.iter()
            .filter(|id| second.lines_for(id) == 0 && !printed_by_first(id))
            .cloned()
            .collect::<Vec<_>>()
    };
    loop {
        let left = unprocessed();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "never processed: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(second);
}

/// Two receiver processes on one SQLite file, 64 concurrent deliveries of one event split
/// between them: all answered 200, one stored (the others duplicates), processed once.
#[test]
fn two_receivers_on_one_sqlite_file_store_and_process_a_repeated_delivery_once() {
    let sqlite = SqliteFile::new("sqlite-two");
    two_receivers_store_and_process_a_repeated_delivery_once(&sqlite.url);
}

/// Two receivers with `--queue url --dedupe url`, 64 concurrent deliveries of one event split
/// between them: all answered 200, one stored, processed once.
fn two_receivers_store_and_process_a_repeated_delivery_once(url: &str) {
    let args = videonest_args(&["--queue", url, "--dedupe", url]);
    let (one, two) = (Receiver::start(&args), Receiver::start(&args));
    let body = event("vid_twice_64");
    let answers: Vec<(u16, bool)> = (0..64)
        .map(|i| {
            let addr = if i % 2 == 0 { one.addr } else { two.addr };
            let body = body.clone();
            std::thread::spawn(move || post_to(addr, &body))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|sender| sender.join().unwrap())
        .collect();
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let first = answers.iter().filter(|(_, duplicate)| !duplicate).count();
    assert_eq!(first, 1, "stored once: {answers:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let processed = || one.lines_for("vid_twice_64") + two.lines_for("vid_twice_64");
    while processed() == 0 {
        assert!(Instant::now() < deadline, "never processed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Time for a second processing to show, if there were one.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(processed(), 1);
    drop((one, two));
}

/// `--queue sqlite:PATH` killed while its workers are busy: after the restart every
/// acknowledged delivery is processed, and only those in progress at the kill may be processed
/// twice (at most one per worker).
#[test]
fn a_sqlite_queue_killed_while_workers_are_busy_loses_nothing() {
    let sqlite = SqliteFile::new("sqlite-busy");
    killed_while_workers_are_busy_loses_nothing(&["--queue", &sqlite.url]);
}

/// A receiver on `backend` (its `--queue` and maybe `--dedupe`) SIGKILLed while its workers
/// are busy: after the restart every acknowledged delivery is processed, and only those in
/// progress at the kill may be processed twice (at most one per worker).
fn killed_while_workers_are_busy_loses_nothing(backend: &[&str]) {
    let mut more = backend.to_vec();
    more.extend_from_slice(&[
        "--workers",
        "4",
        "--handler-delay-ms",
        "200",
        "--visibility-ms",
        "1000",
    ]);
    let args = videonest_args(&more);
    let ids: Vec<String> = (0..24).map(|i| format!("vid_busy_{i}")).collect();
    let first = Receiver::start(&args);
    for id in &ids {
        assert_eq!(first.post(&event(id)), (200, false), "{id}");
    }
    // Some processed, others in the workers' hands.
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.lines.lock().unwrap().len() < 6 {
        assert!(Instant::now() < deadline, "the workers did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let first_lines = Arc::clone(&first.lines);
    drop(first);
    let second = Receiver::start(&args);
    let count = |id: &str| {
        let needle = format!("\"id\":\"{id}\"");
        let before = first_lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(&needle))
            .count();
        before + second.lines_for(id)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.iter().any(|id| count(id) == 0) {
        assert!(
            Instant::now() < deadline,
            "acknowledged deliveries were lost"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let twice = ids.iter().filter(|id| count(id) > 1).count();
    assert!(
        twice <= 4,
        "{twice} processed twice: more than were in progress"
    );
    assert!(ids.iter().all(|id| count(id) <= 2));
    drop(second);
}

/// A database of the test's own on the PostgreSQL server of `common::postgres` (each receiver
/// test has its own, since a receiver uses the schema `tower_webhook`); `None` (skipped,
/// outside CI) without a server.
#[cfg(feature = "postgres")]
struct PostgresDatabase {
    /// The URL of the database, as `--queue` and `--dedupe` take it.
    url: String,
    server: common::postgres::Database,
    runtime: tokio::runtime::Runtime,
}

#[cfg(feature = "postgres")]
impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let name = self.server.schema.clone();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.on_server(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }));
    }
}

#[cfg(feature = "postgres")]
impl PostgresDatabase {
    fn new(test: &str) -> Option<Self> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(common::postgres::database(test))?;
        let name = server.schema.clone();
        let (base, _) = server.url.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        let database = Self {
            url,
            server,
            runtime,
        };
        database.on_server(&format!("CREATE DATABASE \"{name}\""));
        Some(database)
    }

    /// Runs `sql` on the server's own database.
    fn on_server(&self, sql: &str) {
        self.runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&self.server.url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            client.batch_execute(sql).await.unwrap();
        });
    }

    /// How many rows `sql` counts.
    fn count(&self, sql: &str) -> i64 {
        self.runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client.query_one(sql, &[]).await.unwrap().get(0)
        })
    }
}

/// `--queue postgres://… --dedupe postgres://…` (one database): the receiver is SIGKILLed while
/// 2,000 deliveries arrive 32 at a time and started again: every acknowledged delivery is
/// processed, and a duplicate when sent again.
#[cfg(feature = "postgres")]
#[test]
fn a_postgres_queue_keeps_every_acknowledged_delivery_through_a_sigkill() {
    let Some(database) = PostgresDatabase::new("receiver_pg_sigkill") else {
        return;
    };
    keeps_every_acknowledged_delivery_through_a_sigkill(&database.url);
}

/// Two receiver processes on one database, 64 concurrent deliveries of one event split between
/// them: all answered 200, one row stored and recorded, one handler run.
#[cfg(feature = "postgres")]
#[test]
fn two_receivers_on_one_postgres_database_store_and_process_a_repeated_delivery_once() {
    let Some(database) = PostgresDatabase::new("receiver_pg_two") else {
        return;
    };
    two_receivers_store_and_process_a_repeated_delivery_once(&database.url);
    assert_eq!(
        database.count("SELECT count(*) FROM tower_webhook.dedupe"),
        1,
        "one record"
    );
    assert_eq!(
        database.count("SELECT count(*) FROM tower_webhook.queue"),
        0,
        "the one message stored was processed and acknowledged"
    );
}

/// `--queue postgres://… --dedupe postgres://…` SIGKILLed while its workers are busy (the
/// receiver's SIGKILL-mid-processing test): nothing acknowledged is lost.
#[cfg(feature = "postgres")]
#[test]
fn a_postgres_queue_killed_while_workers_are_busy_loses_nothing() {
    let Some(database) = PostgresDatabase::new("receiver_pg_busy") else {
        return;
    };
    killed_while_workers_are_busy_loses_nothing(&[
        "--queue",
        &database.url,
        "--dedupe",
        &database.url,
    ]);
}

/// PostgreSQL stopped while the receiver serves `--queue` and `--dedupe` on it: every delivery
/// is 503, never 2xx; started again, the provider's retry is stored and processed, once.
#[cfg(feature = "postgres")]
#[test]
fn a_postgres_outage_is_503_and_the_retry_is_processed_once_it_is_back() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(server) = runtime.block_on(common::postgres::Server::require("receiver_pg_outage"))
    else {
        return;
    };
    let url = server.url();
    let server = std::cell::RefCell::new(server);
    outage_is_503_and_the_retry_is_processed_once(
        &url,
        || runtime.block_on(server.borrow_mut().stop()),
        || runtime.block_on(server.borrow_mut().restart()),
    );
}

/// A receiver serving `--queue url --dedupe url`, the backend stopped by `stop` and started
/// again by `start`: every delivery meanwhile is 503, never 2xx; once it is back, the
/// provider's retry is stored and processed, once, and both deliveries are duplicates after.
fn outage_is_503_and_the_retry_is_processed_once(
    url: &str,
    stop: impl FnOnce(),
    start: impl FnOnce(),
) {
    let receiver = videonest_receiver(&["--queue", url, "--dedupe", url]);
    assert_eq!(receiver.post(&event("vid_before_outage")), (200, false));
    assert_eq!(receiver.printed_for("vid_before_outage"), 1);

    stop();
    for _ in 0..3 {
        let (status, _) = receiver.post(&event("vid_during_outage"));
        assert_eq!(status, 503, "never 2xx while the backend is down");
    }
    assert_eq!(receiver.lines_for("vid_during_outage"), 0);

    start();
    // The provider retries until it is answered 2xx.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match receiver.post(&event("vid_during_outage")) {
            (200, duplicate) => {
                assert!(!duplicate, "stored by this retry");
                break;
            }
            (503, _) => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "still refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(receiver.printed_for("vid_during_outage"), 1);
    assert_eq!(receiver.post(&event("vid_during_outage")), (200, true));
    assert_eq!(receiver.post(&event("vid_before_outage")), (200, true));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.lines_for("vid_during_outage"), 1);
    assert_eq!(receiver.lines_for("vid_before_outage"), 1);
}

/// A private Redis Cluster (three masters, a replica each) for a receiver test, and the
/// runtime its launcher runs on; `None` where the test is skipped (never with CI=true).
fn redis_cluster(test: &str) -> Option<(tokio::runtime::Runtime, common::redis::Cluster)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime.block_on(common::redis::Cluster::require(test, 3))?;
    Some((runtime, cluster))
}

/// `--queue redis+cluster://… --dedupe redis+cluster://…` SIGKILLed amid 2,000 deliveries at
/// 32 in flight: every acknowledged delivery is processed, and a duplicate when sent again.
#[test]
fn a_redis_cluster_queue_keeps_every_acknowledged_delivery_through_a_sigkill() {
    let Some((_runtime, cluster)) = redis_cluster("receiver-cluster-sigkill") else {
        return;
    };
    keeps_every_acknowledged_delivery_through_a_sigkill(&cluster.url());
}

/// `--queue redis+cluster://…` SIGKILLed while its workers are busy: nothing acknowledged is
/// lost.
#[test]
fn a_redis_cluster_queue_killed_while_workers_are_busy_loses_nothing() {
    let Some((_runtime, cluster)) = redis_cluster("receiver-cluster-busy") else {
        return;
    };
    killed_while_workers_are_busy_loses_nothing(&["--queue", &cluster.url()]);
}

/// Two receivers on one Redis Cluster take 64 concurrent deliveries of one event: one stored,
/// processed once.
#[test]
fn two_receivers_on_one_redis_cluster_store_and_process_a_repeated_delivery_once() {
    let Some((_runtime, cluster)) = redis_cluster("receiver-cluster-two") else {
        return;
    };
    two_receivers_store_and_process_a_repeated_delivery_once(&cluster.url());
}

/// The whole Redis Cluster stopped while the receiver serves `--queue` and `--dedupe` on it:
/// every delivery is 503, never 2xx; started again, the provider's retry is stored and
/// processed, once.
#[test]
fn a_redis_cluster_outage_is_503_and_the_retry_is_processed_once_it_is_back() {
    let Some((runtime, cluster)) = redis_cluster("receiver-cluster-outage") else {
        return;
    };
    let url = cluster.url();
    // Replicas first, so that none takes over from a master stopped after it.
    let (masters, replicas): (Vec<usize>, Vec<usize>) =
        (0..cluster.nodes.len()).partition(|&index| cluster.is_master(index));
    let cluster = std::cell::RefCell::new(cluster);
    outage_is_503_and_the_retry_is_processed_once(
        &url,
        || {
            for &index in replicas.iter().chain(&masters) {
                runtime.block_on(cluster.borrow_mut().nodes[index].stop());
            }
        },
        || {
            for &index in masters.iter().chain(&replicas) {
                runtime.block_on(cluster.borrow_mut().nodes[index].restart());
            }
        },
    );
}

/// `--tenants FILE`: what a platform with 1,000 customer accounts on one receiver sees.
mod tenants {
    use std::{collections::BTreeMap, path::Path, sync::atomic::AtomicBool};

    use super::*;

    const TENANTS: usize = 1_000;

    fn secret(tenant: &str) -> String {
        format!("vn_secret_of_{tenant}")
    }

    fn write(path: &Path, table: &BTreeMap<String, Vec<String>>) {
        // Written whole, then renamed: a SIGHUP never reads half a file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, serde_json::to_vec(table).unwrap()).unwrap();
        std::fs::rename(&partial, path).unwrap();
    }

    fn post(receiver: &Receiver, tenant: &str, secret: &str, body: &str) -> (u16, bool) {
        try_post_signed_to(receiver.addr, &format!("/webhook/{tenant}"), secret, body)
            .unwrap_or_else(|err| panic!("POST for {tenant}: {err}"))
    }

    fn hang_up(receiver: &Receiver) {
        let status = Command::new("kill")
            .args(["-HUP", &receiver.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Every tenant verified with its own secret and no other; an unknown tenant refused as a
    /// wrong signature; one event id under two tenants processed twice, under one once.
    #[test]
    fn a_thousand_tenants_are_each_verified_with_their_own_secret() {
        let dir = std::env::temp_dir().join(format!("receiver-tenants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tenants.json");
        let table: BTreeMap<String, Vec<String>> = (0..TENANTS)
            .map(|i| format!("t{i}"))
            .map(|tenant| (tenant.clone(), vec![secret(&tenant)]))
            .collect();
        write(&file, &table);
        let receiver = Receiver::start(&[
            "--provider",
            "videonest",
            "--tenants",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--dedupe",
            "memory",
        ]);
        for i in 0..TENANTS {
            let (tenant, next) = (format!("t{i}"), format!("t{}", (i + 1) % TENANTS));
            let body = event(&format!("vid_{i}"));
            assert_eq!(
                post(&receiver, &tenant, &secret(&tenant), &body),
                (200, false)
            );
            assert_eq!(
                post(&receiver, &next, &secret(&tenant), &body).0,
                401,
                "{tenant}'s secret on {next}'s route"
            );
        }
        assert_eq!(receiver.printed_for(&format!("vid_{}", TENANTS - 1)), 1);
        let lines = receiver.lines.lock().unwrap().clone();
        assert_eq!(lines.len(), TENANTS);
        for (i, line) in lines.iter().enumerate() {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(line["tenant"], format!("t{i}"), "{line}");
            assert_eq!(line["id"], format!("vid_{i}"));
        }
        let body = event("vid_shared");
        assert_eq!(post(&receiver, "nobody", &secret("t1"), &body).0, 401);
        assert_eq!(
            post_signed(receiver.addr, &secret("t1"), &body).0,
            404,
            "no tenant, no route"
        );
        assert_eq!(post(&receiver, "t1", &secret("t1"), &body), (200, false));
        assert_eq!(post(&receiver, "t2", &secret("t2"), &body), (200, false));
        assert_eq!(post(&receiver, "t1", &secret("t1"), &body), (200, true));
        assert_eq!(receiver.printed_for("vid_shared"), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A SIGHUP after the file changed: a tenant added, another's secret rotated (both accepted
    /// during the overlap, the old one refused once removed), while requests keep coming for a
    /// third, every one of them answered 200.
    #[test]
    fn a_sighup_adds_a_tenant_and_rotates_a_secret_without_dropping_a_request() {
        let dir = std::env::temp_dir().join(format!("receiver-tenants-hup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tenants.json");
        let mut table: BTreeMap<String, Vec<String>> = (0..TENANTS)
            .map(|i| format!("t{i}"))
            .map(|tenant| (tenant.clone(), vec![secret(&tenant)]))
            .collect();
        write(&file, &table);
        let receiver = Arc::new(Receiver::start(&[
            "--provider",
            "videonest",
            "--tenants",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]));
        let old = secret("t7");
        assert_eq!(post(&receiver, "t7", &old, &event("vid_before")).0, 200);
        assert_eq!(
            post(&receiver, "new", "vn_secret_new", &event("vid_before")).0,
            401
        );

        // Steady traffic for t5 through every reload.
        let stop = Arc::new(AtomicBool::new(false));
        let traffic = std::thread::spawn({
            let (receiver, stop) = (Arc::clone(&receiver), Arc::clone(&stop));
            move || {
                let mut statuses = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let body = event(&format!("vid_steady_{n}"));
                    statuses.push(post(&receiver, "t5", &secret("t5"), &body).0);
                    n += 1;
                }
                statuses
            }
        });
        // Accepted within 10 s of the SIGHUP (sent again should the first come early).
        let accepted_after_hangup = |tenant: &str, secret: &str| {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut n = 0;
            loop {
                hang_up(&receiver);
                n += 1;
                let status = post(
                    &receiver,
                    tenant,
                    secret,
                    &event(&format!("vid_hup_{tenant}_{n}")),
                )
                .0;
                if status == 200 {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "{tenant} still refused: {status}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        };

        // A tenant added, and t7 given a second secret: the overlap.
        table.insert("new".to_owned(), vec!["vn_secret_new".to_owned()]);
        table.insert(
            "t7".to_owned(),
            vec!["vn_rotated_t7".to_owned(), old.clone()],
        );
        write(&file, &table);
        accepted_after_hangup("new", "vn_secret_new");
        assert_eq!(
            post(&receiver, "t7", "vn_rotated_t7", &event("vid_overlap_new")).0,
            200
        );
        assert_eq!(
            post(&receiver, "t7", &old, &event("vid_overlap_old")).0,
            200
        );

        // The old secret removed.
        table.insert("t7".to_owned(), vec!["vn_rotated_t7".to_owned()]);
        write(&file, &table);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            hang_up(&receiver);
            if post(&receiver, "t7", &old, &event("vid_after_old")).0 == 401 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the old secret is still accepted"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            post(&receiver, "t7", "vn_rotated_t7", &event("vid_after_new")).0,
            200
        );

        // A file that cannot be read leaves the tenants as they were.
        std::fs::write(&file, "{not json").unwrap();
        hang_up(&receiver);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            post(&receiver, "new", "vn_secret_new", &event("vid_kept")).0,
            200
        );

        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let statuses = traffic.join().unwrap();
        assert!(
            statuses.len() > 10,
            "{} requests during the reloads",
            statuses.len()
        );
        assert!(statuses.iter().all(|&status| status == 200), "{statuses:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// `--provider discord|sendgrid|gitlab`, `--public-key`: public-key and token providers served
/// as an operator runs them.
mod other_schemes {
    use super::*;
    use tower_webhook::{
        provider::{discord, gitlab, sendgrid},
        scheme::SigningKey,
    };

    /// Posts `request` (its head and body) to `path`: the status and the body of the answer.
    fn send(
        addr: SocketAddr,
        request: http::Request<http_body_util::Full<bytes::Bytes>>,
    ) -> (u16, String) {
        use http_body_util::BodyExt as _;
        let (head, body) = request.into_parts();
        let body = futures_executor(body.collect()).unwrap().to_bytes();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // To the receiver's route, with the request's own query.
        let query = head
            .uri
            .query()
            .map(|query| format!("?{query}"))
            .unwrap_or_default();
        let mut text =
            format!("POST /webhook{query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in &head.headers {
            if name != http::header::CONTENT_LENGTH && name != http::header::HOST {
                text.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
            }
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(text.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).unwrap().parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Polls a future that is ready at once (a `Full` body).
    fn futures_executor<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("a full body is ready at once"),
        }
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn discord_pings_are_answered_and_commands_processed() {
        let key = SigningKey::ed25519([9; 32]);
        let public = format!("{:?}", key.public_key());
        // `PublicKey(Ed25519 <hex>)`
        let public = public
            .trim_end_matches(')')
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(public.len(), 64);
        let receiver = Receiver::start(&[
            "--provider",
            "discord",
            "--public-key",
            &public,
            "--listen",
            "127.0.0.1:0",
        ]);
        let ping = discord::signed_request(&key, r#"{"id":"100","type":1}"#, now()).unwrap();
        assert_eq!(send(receiver.addr, ping), (200, r#"{"type":1}"#.to_owned()));
        let command = discord::signed_request(&key, r#"{"id":"vid_cmd","type":2}"#, now()).unwrap();
        assert_eq!(send(receiver.addr, command).0, 200);
        assert_eq!(receiver.printed_for("vid_cmd"), 1);
        let other = SigningKey::ed25519([8; 32]);
        let forged = discord::signed_request(&other, r#"{"id":"101","type":1}"#, now()).unwrap();
        assert_eq!(
            send(receiver.addr, forged).0,
            401,
            "Discord checks that a bad signature is refused"
        );
    }

    #[test]
    fn sendgrid_and_gitlab_are_served() {
        let vectors = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/sendgrid.json"
        ))
        .unwrap();
        let vectors: serde_json::Value = serde_json::from_str(&vectors).unwrap();
        let key =
            SigningKey::p256_pkcs8_pem(vectors["test_private_key_pem"].as_str().unwrap()).unwrap();
        let public = vectors["cases"][1]["secrets"][0].as_str().unwrap();
        let receiver = Receiver::start(&[
            "--provider",
            "sendgrid",
            "--public-key",
            public,
            "--listen",
            "127.0.0.1:0",
        ]);
        let batch =
            r#"[{"email":"a@example.com","event":"delivered","sg_event_id":"vid_sendgrid"}]"#;
        let request = sendgrid::signed_request(&key, batch, now()).unwrap();
        assert_eq!(send(receiver.addr, request).0, 200);
        let stale = sendgrid::signed_request(&key, batch, now() - 3600).unwrap();
        assert_eq!(send(receiver.addr, stale).0, 401, "a replay an hour later");
        assert_eq!(receiver.lines.lock().unwrap().len(), 1);

        let receiver = Receiver::start(&[
            "--provider",
            "gitlab",
            "--secret",
            "gl-token",
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut push = gitlab::signed_request("gl-token", r#"{"object_kind":"push"}"#).unwrap();
        push.headers_mut()
            .insert(gitlab::EVENT_HEADER, "Push Hook".parse().unwrap());
        push.headers_mut()
            .insert(gitlab::DELIVERY_HEADER, "vid_gitlab".parse().unwrap());
        assert_eq!(send(receiver.addr, push).0, 200);
        assert_eq!(receiver.printed_for("vid_gitlab"), 1);
        let wrong = gitlab::signed_request("not-the-token", "{}").unwrap();
        assert_eq!(send(receiver.addr, wrong).0, 401);
    }

    #[test]
    fn twilio_checks_the_url_it_called() {
        use tower_webhook::provider::twilio;

        let receiver = Receiver::start(&[
            "--provider",
            "twilio",
            "--secret",
            "auth-token",
            "--listen",
            "127.0.0.1:0",
        ]);
        // The URL as Twilio called it: https://, the Host the receiver is reached by, the path.
        let url = format!("https://{}/webhook", receiver.addr);
        let form = "MessageSid=vid_twilio&SmsStatus=received&Body=Hi+there";
        let request = twilio::signed_form_request("auth-token", &url, form).unwrap();
        assert_eq!(send(receiver.addr, request).0, 200);
        assert_eq!(receiver.printed_for("vid_twilio"), 1);
        let json = twilio::signed_json_request("auth-token", &url, r#"{"x":1}"#).unwrap();
        assert_eq!(send(receiver.addr, json).0, 200);
        // Signed for another URL (a proxy's), refused.
        let elsewhere =
            twilio::signed_form_request("auth-token", "https://elsewhere.example/webhook", form)
                .unwrap();
        assert_eq!(send(receiver.addr, elsewhere).0, 401);

        // Behind a proxy: the public URL configured, whatever the Host.
        let receiver = Receiver::start(&[
            "--provider",
            "twilio",
            "--secret",
            "auth-token",
            "--public-url",
            "https://hooks.example.com",
            "--listen",
            "127.0.0.1:0",
        ]);
        let request =
            twilio::signed_form_request("auth-token", "https://hooks.example.com/webhook", form)
                .unwrap();
        assert_eq!(send(receiver.addr, request).0, 200);
    }
}
