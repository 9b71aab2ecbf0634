//! A Redis server for the tests, benches and the soak example that need one: the server of
//! `TOWER_WEBHOOK_REDIS_URL`, or a private `redis-server` child on a free port of 127.0.0.1; and a
//! reader of what it is sent (`MONITOR`).
//!
//! The tests have it as `common::redis`; the benches and `examples/soak.rs` include this file
//! with `#[path]`, so it uses nothing but the dependencies they all have.
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub(crate) const URL_VAR: &str = "TOWER_WEBHOOK_REDIS_URL";

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1")
}

/// An error with its sources, on one line.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// `redis-server` on the `PATH` (or where Debian puts it).
pub(crate) fn redis_server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/bin".into(),
            "/usr/sbin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|dir| dir.join("redis-server"))
        .find(|binary| binary.is_file())
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Sends one inline command on a new connection; the reply to read.
fn ask(port: u16, command: &str) -> std::io::Result<BufReader<TcpStream>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    Ok(BufReader::new(stream))
}

/// Sends one inline command on a new connection and reads the first line of the reply.
pub(crate) fn command(port: u16, command: &str) -> std::io::Result<String> {
    let mut line = String::new();
    ask(port, command)?.read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// The text of `INFO <section>`.
pub(crate) fn info(port: u16, section: &str) -> String {
    bulk(port, &format!("INFO {section}"))
}

/// The text of an inline command's bulk-string reply (`INFO`, `CLUSTER NODES`…).
pub(crate) fn bulk(port: u16, command: &str) -> String {
    let mut reader = ask(port, command).unwrap();
    let mut header = String::new();
    reader.read_line(&mut header).unwrap();
    let len: usize = header.trim_end().trim_start_matches('$').parse().unwrap();
    let mut body = vec![0; len + 2];
    reader.read_exact(&mut body).unwrap();
    String::from_utf8_lossy(&body[..len]).into_owned()
}

/// `redis-server`, which this test needs; `None`, after saying why, when there is none, unless
/// `CI=true`: then it fails.
fn required_binary(test: &str) -> Option<PathBuf> {
    let binary = redis_server_binary();
    assert!(
        binary.is_some() || !in_ci(),
        "{test}: CI=true but there is no redis-server binary to start a private server"
    );
    if binary.is_none() {
        eprintln!("{test}: skipped: it needs a private redis-server, and there is none");
    }
    binary
}

/// What a private server keeps on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// Nothing, but what [`Server::stop`] saves (`SHUTDOWN SAVE` writes a snapshot).
    Snapshot,
    /// An append-only file synced on every write (`appendfsync always`), so that a SIGKILL
    /// ([`Server::kill`]) loses no acknowledged write, as a production Redis holding a queue
    /// should be configured.
    AppendAlways,
}

/// A `redis-server` child process on 127.0.0.1, killed when dropped (its directory removed).
pub(crate) struct Server {
    binary: PathBuf,
    pub(crate) port: u16,
    dir: PathBuf,
    persistence: Persistence,
    /// More arguments for `redis-server` (a cluster node's).
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// A private server; `None`, after saying why, without a `redis-server` binary.
    pub(crate) async fn start(test: &str) -> Option<Self> {
        let Some(binary) = redis_server_binary() else {
            eprintln!(
                "{test}: skipped: {URL_VAR} is not set and there is no redis-server to start \
                 (install Redis, or set {URL_VAR}=redis://HOST:PORT)"
            );
            return None;
        };
        Some(Self::start_with(binary).await)
    }

    /// A private server, which this test needs (it stops the server, or counts everything the
    /// server is sent); `None`, after saying why, without a `redis-server` binary, unless
    /// `CI=true`: then it fails.
    pub(crate) async fn require(test: &str) -> Option<Self> {
        Some(Self::start_with(required_binary(test)?).await)
    }

    /// [`require`](Self::require), with more arguments for `redis-server`.
    pub(crate) async fn require_with_args(test: &str, args: &[&str]) -> Option<Self> {
        let binary = required_binary(test)?;
        Some(
            Self::launch_with_args(binary, Persistence::Snapshot, args)
                .await
                .unwrap_or_else(|err| panic!("{test}: {err}")),
        )
    }

    /// A private replica of `primary`, which this test needs; `None` as for
    /// [`require`](Self::require). Returns once the replica is in sync.
    pub(crate) async fn require_replica_of(test: &str, primary: &Self) -> Option<Self> {
        let replica = Self::require(test).await?;
        let reply = command(
            replica.port,
            &format!("REPLICAOF 127.0.0.1 {}", primary.port),
        )
        .expect("REPLICAOF");
        assert_eq!(reply, "+OK");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // `INFO replication` is a bulk reply: read it whole.
            let info = info(replica.port, "replication");
            if info.contains("master_link_status:up") {
                return Some(replica);
            }
            assert!(
                Instant::now() < deadline,
                "the replica did not sync: {info}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A private server of `binary` without persistence; fails if it does not start.
    pub(crate) async fn start_with(binary: PathBuf) -> Self {
        Self::launch_new(binary, Persistence::Snapshot)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// A private server of `binary` (a path, or a name to look up on the `PATH`) on a free port,
    /// in a directory of its own; an error says why it did not start.
    pub(crate) async fn launch_new(
        binary: PathBuf,
        persistence: Persistence,
    ) -> Result<Self, String> {
        Self::launch_with_args(binary, persistence, &[]).await
    }

    /// [`launch_new`](Self::launch_new), with more arguments for `redis-server`.
    pub(crate) async fn launch_with_args(
        binary: PathBuf,
        persistence: Persistence,
        args: &[&str],
    ) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "tower-webhook-redis-{}-{}",
            std::process::id(),
            tower_webhook::dedupe::store::Token::random().as_str()
        ));
        std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let mut server = Self {
            binary,
            port: 0,
            dir,
            persistence,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            child: None,
        };
        let mut failures = Vec::new();
        // Another process may take the free port before the server binds it: try another.
        for _ in 0..5 {
            server.port = free_port();
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(err) => failures.push(err),
            }
        }
        Err(format!("redis-server did not start: {failures:?}"))
    }

    /// Starts the server on its port, with its directory, and waits until it answers PING (so
    /// after it has loaded what it keeps on disk).
    pub(crate) async fn launch(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let persistence: &[&str] = match self.persistence {
            Persistence::Snapshot => &["--save", "", "--appendonly", "no"],
            Persistence::AppendAlways => &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
        };
        let mut child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(persistence)
            .args(&self.args)
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("{}: {err}", self.binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if command(self.port, "PING").is_ok_and(|reply| reply == "+PONG") {
                self.child = Some(child);
                return Ok(());
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<_> = log.lines().rev().take(5).collect();
                return Err(format!(
                    "port {}: {}; log: {tail:?}",
                    self.port,
                    exited.map_or("no PING answer in 10 s".to_owned(), |s| s.to_string())
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server as an operator does: `SHUTDOWN SAVE`, so that its records are read back
    /// when it starts again, as on a production server with persistence.
    pub(crate) async fn stop(&mut self) {
        let mut child = self.child.take().expect("the server runs");
        let _ = command(self.port, "SHUTDOWN SAVE");
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not shut down in 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server with SIGKILL, as a crash does: it keeps only what it wrote to disk.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("the server runs");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again, on the same port.
    pub(crate) async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is stopped");
        self.launch().await.expect("redis-server restarts");
    }

    /// Freezes the server with SIGSTOP: a stall, not an outage (its connections stay open, what
    /// clients send waits in the socket and runs once it is thawed).
    pub(crate) fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Thaws a frozen server with SIGCONT.
    pub(crate) fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private `redis-server` that speaks TLS only, with the certificate of
/// `tests/fixtures/tls` (for 127.0.0.1, signed by the test CA `ca.pem`), killed when dropped.
pub(crate) struct TlsServer {
    child: Child,
    pub(crate) port: u16,
    dir: PathBuf,
}

impl TlsServer {
    /// The test CA's certificate, PEM.
    pub(crate) fn ca() -> Vec<u8> {
        std::fs::read(Self::fixtures().join("ca.pem")).expect("tests/fixtures/tls/ca.pem")
    }

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
    }

    /// The server, which this test needs; `None` as for [`Server::require`]. Returns once it
    /// accepts connections.
    pub(crate) async fn require(test: &str) -> Option<Self> {
        let binary = required_binary(test)?;
        let dir = std::env::temp_dir().join(format!(
            "tower-webhook-redis-tls-{}-{}",
            std::process::id(),
            tower_webhook::dedupe::store::Token::random().as_str()
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the server");
        let fixtures = Self::fixtures();
        let port = free_port();
        let child = Command::new(&binary)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(fixtures.join("server.pem"))
            .arg("--tls-key-file")
            .arg(fixtures.join("server-key.pem"))
            .arg("--tls-ca-cert-file")
            .arg(fixtures.join("ca.pem"))
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let log = std::fs::read_to_string(server.dir.join("redis.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "{test}: redis-server with TLS did not listen in 10 s: {log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(server)
    }

    /// `rediss://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of private `redis-server` children on 127.0.0.1: masters, each with one
/// replica, made with `redis-cli --cluster create`; every node killed when dropped.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Server>,
}

impl Cluster {
    /// A private cluster of `masters` masters and as many replicas (a node times out after
    /// 1 s, so that a replica takes over soon after its master dies), which this test needs;
    /// `None`, after saying why, without `redis-server` and `redis-cli`, unless `CI=true`: then
    /// it fails. Returns once every node sees every slot served and every replica is in sync.
    pub(crate) async fn require(test: &str, masters: usize) -> Option<Self> {
        let binary = redis_server_binary();
        let cli = binary
            .as_ref()
            .map(|binary| binary.with_file_name("redis-cli"));
        let (Some(binary), Some(cli)) = (binary, cli.filter(|cli| cli.is_file())) else {
            assert!(
                !in_ci(),
                "{test}: CI=true but there is no redis-server and redis-cli to start a cluster"
            );
            eprintln!("{test}: skipped: it needs redis-server and redis-cli, and there are none");
            return None;
        };
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "1000",
        ];
        let mut nodes = Vec::new();
        for _ in 0..masters * 2 {
            let node = Server::launch_with_args(binary.clone(), Persistence::Snapshot, &args)
                .await
                .unwrap_or_else(|err| panic!("{test}: a cluster node: {err}"));
            nodes.push(node);
        }
        let output = Command::new(&cli)
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "{test}: redis-cli --cluster create: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok(test, &[]).await;
        Some(cluster)
    }

    /// Waits until every node but those of `down` says the cluster is ok, and every master
    /// among them has its replica in sync.
    pub(crate) async fn wait_until_ok(&self, test: &str, down: &[usize]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = || (0..self.nodes.len()).filter(|index| !down.contains(index));
            let ok = up().all(|index| {
                let port = self.nodes[index].port;
                bulk(port, "CLUSTER INFO").contains("cluster_state:ok")
                    && (!self.is_master(index)
                        || info(port, "replication").contains("state=online"))
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{test}: the cluster is not ok in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `redis+cluster://` and every node.
    pub(crate) fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Waits (30 s at most) until node `replica`, asked itself, serves `key`'s slot as master.
    pub(crate) async fn until_promoted(&self, key: &str, replica: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.master_of(key, replica) != Some(replica) {
            assert!(Instant::now() < deadline, "no failover in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether node `index` is a master.
    pub(crate) fn is_master(&self, index: usize) -> bool {
        self.myself(index).2.contains("master")
    }

    /// The node serving `key`'s slot as master, asked of node `asked` (up); `None` while the
    /// node knows of none that is not failing.
    pub(crate) fn master_of(&self, key: &str, asked: usize) -> Option<usize> {
        let slot: u16 = command(
            self.nodes[asked].port,
            &format!("CLUSTER KEYSLOT \"{key}\""),
        )
        .expect("CLUSTER KEYSLOT")
        .trim_start_matches(':')
        .parse()
        .expect("a slot");
        let nodes = bulk(self.nodes[asked].port, "CLUSTER NODES");
        let line = nodes.lines().find(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            fields.get(2).is_some_and(|flags| flags.contains("master"))
                && !fields[2].contains("fail")
                && fields[8..].iter().any(|range| {
                    let (start, end) = range.split_once('-').unwrap_or((range, range));
                    match (start.parse::<u16>(), end.parse::<u16>()) {
                        (Ok(start), Ok(end)) => (start..=end).contains(&slot),
                        _ => false,
                    }
                })
        })?;
        let port: u16 = line
            .split(' ')
            .nth(1)
            .expect("an address")
            .split(['@', ':'])
            .nth(1)
            .and_then(|port| port.parse().ok())
            .expect("a port");
        Some(self.index_of(port))
    }

    /// The replica of master `master`.
    pub(crate) fn replica_of(&self, master: usize) -> usize {
        let id = self.myself(master).0;
        (0..self.nodes.len())
            .find(|&index| index != master && self.myself(index).3 == id)
            .unwrap_or_else(|| panic!("node {master} has no replica"))
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|node| node.port == port)
            .expect("a node of this cluster")
    }

    /// Node `index`'s own line of `CLUSTER NODES`: its id, address, flags and master's id.
    fn myself(&self, index: usize) -> (String, String, String, String) {
        let nodes = bulk(self.nodes[index].port, "CLUSTER NODES");
        let line = nodes
            .lines()
            .find(|line| line.contains("myself"))
            .expect("a line for the node itself");
        let fields: Vec<&str> = line.split(' ').collect();
        (
            fields[0].to_owned(),
            fields[1].to_owned(),
            fields[2].to_owned(),
            fields[3].to_owned(),
        )
    }
}

/// A master with a replica and three Sentinels watching it as `mymaster` (down after 1 s),
/// all private children on 127.0.0.1, killed when dropped.
pub(crate) struct Sentinels {
    pub(crate) master: Server,
    pub(crate) replica: Server,
    sentinels: Vec<(Child, u16)>,
    dir: PathBuf,
}

impl Sentinels {
    /// The master, its replica (in sync) and three Sentinels that agree on both, which this
    /// test needs; `None` as for [`Server::require`].
    pub(crate) async fn require(test: &str) -> Option<Self> {
        let master = Server::require(test).await?;
        let replica = Server::require_replica_of(test, &master).await?;
        let binary = master.binary.clone();
        let dir = master.dir.join("sentinels");
        std::fs::create_dir_all(&dir).expect("the Sentinels' directory");
        let mut sentinels = Vec::new();
        // A master is down after 3 s without an answer: on a loaded machine a busy master (one
        // forking for a replica's full sync) must not be failed over a second time.
        for index in 0..3 {
            let port = free_port();
            let conf = dir.join(format!("sentinel-{index}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor mymaster 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds mymaster 3000\n\
                     sentinel failover-timeout mymaster 10000\n",
                    dir.display(),
                    master.port
                ),
            )
            .expect("a Sentinel's configuration");
            let child = Command::new(&binary)
                .arg(&conf)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server --sentinel starts");
            sentinels.push((child, port));
        }
        let this = Self {
            master,
            replica,
            sentinels,
            dir,
        };
        // Every Sentinel answers, knows the other two and the replica.
        let deadline = Instant::now() + Duration::from_secs(30);
        for &(_, port) in &this.sentinels {
            loop {
                let known = command(port, "SENTINEL MASTER mymaster").is_ok()
                    && bulk_lines(port, "SENTINEL SENTINELS mymaster") >= 2
                    && bulk_lines(port, "SENTINEL REPLICAS mymaster") >= 1;
                if known {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{test}: the Sentinels did not meet in 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Some(this)
    }

    /// `redis+sentinel://` and every Sentinel, then `mymaster`.
    pub(crate) fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|(_, port)| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+sentinel://{}/mymaster", hosts.join(","))
    }

    /// Has every Sentinel forget `mymaster` and watch the server on `port` as `mymaster`
    /// instead: a switch of master no Sentinel made, so none closes the old master's clients.
    pub(crate) fn watch(&self, port: u16) {
        for &(_, sentinel) in &self.sentinels {
            assert_eq!(
                command(sentinel, "SENTINEL REMOVE mymaster").unwrap(),
                "+OK"
            );
            assert_eq!(
                command(
                    sentinel,
                    &format!("SENTINEL MONITOR mymaster 127.0.0.1 {port} 2")
                )
                .unwrap(),
                "+OK"
            );
        }
    }

    /// The port of the master the Sentinels name now.
    pub(crate) fn master_port(&self) -> Option<u16> {
        let port = self.sentinels[0].1;
        let reply = array_of_bulks(port, "SENTINEL GET-MASTER-ADDR-BY-NAME mymaster")?;
        reply.get(1)?.parse().ok()
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for (child, _) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How many elements an inline command's array reply has (0 when it is not an array).
fn bulk_lines(port: u16, command_line: &str) -> usize {
    let mut header = String::new();
    if let Ok(mut reply) = ask(port, command_line) {
        let _ = reply.read_line(&mut header);
    }
    header
        .trim_end()
        .strip_prefix('*')
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

/// An inline command's reply as an array of bulk strings.
fn array_of_bulks(port: u16, command_line: &str) -> Option<Vec<String>> {
    let mut reader = ask(port, command_line).ok()?;
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let count: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut item = vec![0; len + 2];
        reader.read_exact(&mut item).ok()?;
        items.push(String::from_utf8_lossy(&item[..len]).into_owned());
    }
    Some(items)
}

/// Reads what a server is sent, with redis-rs's `MONITOR` connection.
#[cfg(feature = "redis")]
pub(crate) struct Monitor {
    monitor: redis::aio::Monitor,
    /// A connection of its own that sends the marks, opened before `MONITOR` started (so its
    /// handshake is not among the commands), and its address as the server sees it.
    marker: redis::aio::MultiplexedConnection,
    marker_addr: String,
    marks: usize,
}

#[cfg(feature = "redis")]
impl Monitor {
    /// Monitors the server at `url`.
    pub(crate) async fn start(url: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let mut marker = client.get_multiplexed_async_connection().await?;
        // Its line in `CLIENT LIST` (`CLIENT INFO` would need Redis 6.2).
        let id: u64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut marker)
            .await?;
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut marker)
            .await?;
        let marker_addr = clients
            .lines()
            .find(|line| line.starts_with(&format!("id={id} ")))
            .and_then(|line| {
                line.split(' ')
                    .find_map(|field| field.strip_prefix("addr="))
            })
            .unwrap_or_else(|| panic!("client {id} is not in CLIENT LIST: {clients}"))
            .to_owned();
        Ok(Self {
            monitor: client.get_async_monitor().await?,
            marker,
            marker_addr,
            marks: 0,
        })
    }

    /// The names of the commands clients sent since the last call (the commands scripts run
    /// inside the server left out): everything the server received before a mark that this
    /// sends now.
    pub(crate) async fn commands(&mut self) -> Vec<String> {
        use futures_util::StreamExt as _;

        self.marks += 1;
        let mark = format!("tower-webhook-mark-{}", self.marks);
        let _: String = redis::cmd("ECHO")
            .arg(&mark)
            .query_async(&mut self.marker)
            .await
            .expect("the mark is sent");
        let mut lines = self.monitor.on_message::<String>();
        let mut commands = Vec::new();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), lines.next())
                .await
                .expect("MONITOR showed the mark within 10 s")
                .expect("MONITOR ended");
            // 1711111111.123456 [0 127.0.0.1:40000] "EVALSHA" "…" …
            let source = line
                .split_once('[')
                .and_then(|(_, rest)| rest.split_once(']'))
                .map_or("", |(source, _)| source);
            if source.ends_with(&self.marker_addr) {
                if line.contains(&mark) {
                    return commands;
                }
                continue;
            }
            if source.ends_with(" lua") {
                continue;
            }
            let name = line.split('"').nth(1).unwrap_or_default();
            commands.push(name.to_ascii_lowercase());
        }
    }
}

/// Writes `value` at `key` for a minute, as a record of another version would be.
#[cfg(feature = "redis")]
pub(crate) async fn set_for_a_minute(
    connection: &mut tower_webhook::RedisConnection,
    key: &str,
    value: &str,
) {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("PX")
        .arg(60_000)
        .query_async::<()>(connection)
        .await
        .unwrap();
}
