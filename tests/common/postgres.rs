//! A PostgreSQL server for the tests that need one: the server of `TOWER_WEBHOOK_POSTGRES_URL`,
//! each test in a schema of its own; or a private `postgres` child on a free port of 127.0.0.1,
//! in a cluster of its own made by `initdb`, for the tests that stop, kill or freeze it.
//!
//! The tests have it as `common::postgres` (with the `postgres` feature). It uses nothing but std
//! and tokio, so that a bench or an example can include this file with `#[path]` as well.
//!
//! PostgreSQL refuses to run as root: when the tests do, the private server runs as the
//! `postgres` user (or `nobody`).
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::hash_map::RandomState,
    fs::OpenOptions,
    hash::{BuildHasher, Hasher},
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// The server the tests share, when set: `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`.
pub(crate) const URL_VAR: &str = "TOWER_WEBHOOK_POSTGRES_URL";

/// A directory with the `initdb` and `postgres` binaries for a private server, when they are
/// neither on the `PATH` nor in `/usr/lib/postgresql/<N>/bin`.
pub(crate) const BIN_VAR: &str = "TOWER_WEBHOOK_POSTGRES_BIN";

/// The longest schema name [`database`] makes (PostgreSQL's limit is 63 bytes).
const MAX_SCHEMA: usize = 60;

/// How long a private server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(30);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// 8 random hex digits (std's randomly keyed hasher over a counter and the time).
fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:08x}", hasher.finish() & 0xffff_ffff)
}

/// `tw_<test>_<pid>_<random hex>`: lower case, `[a-z0-9_]` only, at most [`MAX_SCHEMA`] bytes.
pub(crate) fn schema_name(test: &str) -> String {
    let suffix = format!("_{}_{}", std::process::id(), random_hex());
    let room = MAX_SCHEMA - "tw_".len() - suffix.len();
    let mut name = String::with_capacity(room);
    for c in test.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        };
        // `module::test` reads better as `module_test` than `module__test`.
        if c == '_' && (name.is_empty() || name.ends_with('_')) {
            continue;
        }
        if name.len() == room {
            break;
        }
        name.push(c);
    }
    let name = name.trim_end_matches('_');
    format!("tw_{name}{suffix}")
}

/// A database for one test: the server of [`URL_VAR`] or a private [`Server`], and a schema
/// name of its own, which the test gives the crate as its schema (the crate creates it).
pub(crate) struct Database {
    pub(crate) url: String,
    pub(crate) schema: String,
    /// The private server, stopped when this is dropped; `None` on the server of [`URL_VAR`].
    server: Option<Server>,
}

impl Database {
    /// The crate's database on this server, in this test's schema (created when opened).
    pub(crate) async fn open(&self) -> tower_webhook::postgres::Postgres {
        tower_webhook::postgres::Postgres::builder(&self.url)
            .expect("a valid URL")
            .schema(self.schema.clone())
            .open()
            .await
            .expect("the database opens")
    }

    /// A client of its own on this server, its connection driven in the background.
    pub(crate) async fn client(&self) -> tower_webhook::postgres::tokio_postgres::Client {
        use tower_webhook::postgres::tokio_postgres;
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("a connection");
        tokio::spawn(connection);
        client
    }
}

/// A database for `test`: on the server of [`URL_VAR`] when it is set, else on a private server;
/// `None`, after saying why, when neither is possible, unless `CI=true`: then it fails.
pub(crate) async fn database(test: &str) -> Option<Database> {
    let schema = schema_name(test);
    if let Some(url) = std::env::var(URL_VAR).ok().filter(|url| !url.is_empty()) {
        return Some(Database {
            url,
            schema,
            server: None,
        });
    }
    let install = match Install::find() {
        Ok(install) => install,
        Err(why) => {
            assert!(
                !in_ci(),
                "{test}: CI=true but {URL_VAR} is not set and no private PostgreSQL server can \
                 be started: {why}"
            );
            eprintln!(
                "{test}: skipped: {URL_VAR} is not set and no private PostgreSQL server can be \
                 started: {why} (install PostgreSQL or set {URL_VAR}=postgres://USER@HOST:PORT/DB)"
            );
            return None;
        }
    };
    let server = Server::start_with(install).await;
    Some(Database {
        url: server.url(),
        schema,
        server: Some(server),
    })
}

impl Drop for Database {
    /// On the shared server, drops the test's schema (with `psql`, when there is one; failures
    /// are ignored), unless the test failed: then it is kept for a look.
    fn drop(&mut self) {
        if self.server.is_some() {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "schema {} is kept in the database of {URL_VAR}",
                self.schema
            );
            return;
        }
        let Some(psql) = client_binary("psql") else {
            return;
        };
        let _ = Command::new(psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.url, "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema))
            .env("PGCONNECT_TIMEOUT", "5")
            .env("PGOPTIONS", "-c lock_timeout=5s -c statement_timeout=30s")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A user to run PostgreSQL as, when the tests run as root.
#[derive(Clone, Debug)]
struct Owner {
    name: String,
    uid: u32,
    gid: u32,
}

impl Owner {
    /// `None` unless this process runs as root (effective uid 0, read from `/proc/self/status`);
    /// then the `postgres` user of `/etc/passwd`, or `nobody`.
    fn needed() -> Result<Option<Self>, String> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let euid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|euid| euid.parse::<u32>().ok());
        if euid != Some(0) {
            return Ok(None);
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let user = |wanted: &str| {
            passwd.lines().find_map(|line| {
                let fields: Vec<_> = line.split(':').collect();
                match fields[..] {
                    [name, _, uid, gid, ..] if name == wanted => Some(Self {
                        name: name.to_owned(),
                        uid: uid.parse().ok()?,
                        gid: gid.parse().ok()?,
                    }),
                    _ => None,
                }
            })
        };
        match user("postgres").or_else(|| user("nobody")) {
            Some(owner) if owner.uid != 0 => Ok(Some(owner)),
            _ => Err(
                "the tests run as root, which PostgreSQL refuses, and /etc/passwd has \
                      neither a postgres nor a nobody user to run it as"
                    .to_owned(),
            ),
        }
    }
}

/// What a private server needs: the directory of `initdb` and `postgres`, and who runs them.
#[derive(Clone, Debug)]
struct Install {
    bin: PathBuf,
    owner: Option<Owner>,
}

impl Install {
    fn find() -> Result<Self, String> {
        Ok(Self {
            bin: bin_dir()?,
            owner: Owner::needed()?,
        })
    }

    /// `binary` of the bin directory, run as the owner (when the tests run as root).
    fn command(&self, binary: &str, dir: &Path) -> Command {
        let mut command = Command::new(self.bin.join(binary));
        command.current_dir(dir).stdin(Stdio::null());
        if let Some(owner) = &self.owner {
            // As root, std also clears the supplementary groups before `setuid`.
            command.uid(owner.uid).gid(owner.gid);
        }
        command
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

/// The directory of `initdb` and `postgres`: [`BIN_VAR`]; else that of the `initdb` on the
/// `PATH` (symbolic links resolved, so that `/usr/local/bin/initdb` pointing into
/// `/usr/lib/postgresql/15/bin` gives that); else Debian's `/usr/lib/postgresql/<N>/bin` of the
/// highest `N`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(BIN_VAR).filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        return Err(format!(
            "{BIN_VAR}={} has no initdb and postgres",
            dir.display()
        ));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let initdb = dir.join("initdb");
        if !initdb.is_file() {
            continue;
        }
        let resolved = std::fs::canonicalize(&initdb)
            .ok()
            .and_then(|initdb| initdb.parent().map(Path::to_path_buf));
        if let Some(found) = resolved
            .into_iter()
            .chain([dir])
            .find(|dir| has_server_binaries(dir))
        {
            return Ok(found);
        }
    }
    debian_bin_dirs()
        .into_iter()
        .rev()
        .find(|dir| has_server_binaries(dir))
        .ok_or_else(|| {
            "there is no initdb and postgres on the PATH nor in /usr/lib/postgresql/<N>/bin"
                .to_owned()
        })
}

/// `/usr/lib/postgresql/<N>/bin`, by increasing version.
fn debian_bin_dirs() -> Vec<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// A client binary (`psql`, `pg_isready`): beside the server's, else on the `PATH`.
fn client_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    bin_dir()
        .ok()
        .into_iter()
        .chain(std::env::split_paths(&path))
        .chain(debian_bin_dirs().into_iter().rev())
        .map(|dir| dir.join(name))
        .find(|binary| binary.is_file())
}

/// Whether the server on `port` of 127.0.0.1 accepts connections: it answers a startup message
/// for the user and database `postgres` with an authentication request (an error, such as "the
/// database system is starting up", is returned as such).
pub(crate) fn accepts(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|err| format!("connect: {err}"))?;
    let timeout = Some(Duration::from_secs(5));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|err| err.to_string())?;
    // StartupMessage: length, protocol 3.0, then NUL-terminated names and values, and a NUL.
    let mut body = 196_608_u32.to_be_bytes().to_vec();
    for text in ["user", "postgres", "database", "postgres", ""] {
        body.extend_from_slice(text.as_bytes());
        body.push(0);
    }
    let length = u32::try_from(body.len() + 4).expect("a short message");
    let mut message = length.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    stream
        .write_all(&message)
        .map_err(|err| format!("send: {err}"))?;
    let mut header = [0; 5];
    stream
        .read_exact(&mut header)
        .map_err(|err| format!("read: {err}"))?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let mut rest = vec![0; usize::try_from(length.saturating_sub(4).min(8192)).unwrap_or(0)];
    stream
        .read_exact(&mut rest)
        .map_err(|err| format!("read: {err}"))?;
    match header[0] {
        b'R' => {
            // Terminate, so that the server does not log an unexpected EOF.
            let _ = stream.write_all(b"X\0\0\0\x04");
            Ok(())
        }
        b'E' => {
            // Fields: a type byte and a NUL-terminated text each; `M` is the message.
            let message = rest
                .split(|&byte| byte == 0)
                .find_map(|field| field.strip_prefix(b"M"))
                .map_or_else(String::new, |text| {
                    String::from_utf8_lossy(text).into_owned()
                });
            Err(message)
        }
        other => Err(format!("unexpected reply {:?}", char::from(other))),
    }
}

/// The pids of the children of `pid` (the postmaster's: its backends and auxiliary processes,
/// each of which PostgreSQL makes the leader of a session and process group of its own).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            (parent(child)? == pid).then_some(child)
        })
        .collect()
}

/// The state and parent of `pid`, from `/proc/<pid>/stat` (`pid (comm) state ppid …`).
fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

fn parent(pid: u32) -> Option<u32> {
    stat(pid).map(|(_, parent)| parent)
}

/// Sends `signal` (`-STOP`, …) to `pids` with the `kill` command; whether every one was sent.
fn signal(signal: &str, pids: &[u32]) -> bool {
    if pids.is_empty() {
        return true;
    }
    Command::new("kill")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The last `lines` lines of a log file.
fn tail(path: &Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let mut last: Vec<_> = log.lines().rev().take(lines).collect();
    last.reverse();
    last.join("\n")
}

/// A `postgres` child process on 127.0.0.1 (TCP only), in a cluster of its own; killed when
/// dropped, with every process of it, and its directory removed.
pub(crate) struct Server {
    install: Install,
    pub(crate) port: u16,
    /// The temporary directory: the cluster (`data`) and the server's log.
    dir: PathBuf,
    /// The postmaster.
    child: Option<Child>,
}

impl Server {
    /// A private server, which this test needs (it stops, kills or freezes the server); `None`,
    /// after saying why, when PostgreSQL is not installed, unless `CI=true`: then it fails.
    pub(crate) async fn require(test: &str) -> Option<Self> {
        let install = match Install::find() {
            Ok(install) => install,
            Err(why) => {
                assert!(
                    !in_ci(),
                    "{test}: CI=true but no private PostgreSQL server can be started: {why}"
                );
                eprintln!(
                    "{test}: skipped: it needs a private PostgreSQL server, and none can be \
                     started: {why} (install PostgreSQL, or set {BIN_VAR} to the directory of \
                     its initdb and postgres)"
                );
                return None;
            }
        };
        Some(Self::start_with(install).await)
    }

    /// A private server; fails if it does not start.
    async fn start_with(install: Install) -> Self {
        Self::launch_new(install)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// A new cluster in a temporary directory, and its server on a free port; an error says why
    /// it did not start.
    async fn launch_new(install: Install) -> Result<Self, String> {
        let dir = base_dir(install.owner.as_ref()).join(format!(
            "tower-webhook-postgres-{}-{}",
            std::process::id(),
            random_hex()
        ));
        let mut server = Self {
            install,
            port: 0,
            dir,
            child: None,
        };
        // From here on, dropping `server` removes the directory.
        std::fs::create_dir_all(&server.dir)
            .and_then(|()| {
                std::fs::set_permissions(&server.dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|err| format!("{}: {err}", server.dir.display()))?;
        if let Some(owner) = &server.install.owner {
            std::os::unix::fs::chown(&server.dir, Some(owner.uid), Some(owner.gid)).map_err(
                |err| format!("chown {} to {}: {err}", server.dir.display(), owner.name),
            )?;
        }
        server.initdb().await?;
        let mut failures = Vec::new();
        // Another process may take the free port before the server binds it: try another.
        for _ in 0..5 {
            server.port = free_port();
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(err) => failures.push(err),
            }
        }
        Err(format!("postgres did not start: {failures:?}"))
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// `initdb`: trust authentication, superuser `postgres`, UTF-8, the C locale.
    async fn initdb(&self) -> Result<(), String> {
        let mut command = self.install.command("initdb", &self.dir);
        command
            .arg("-D")
            .arg(self.data())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("initdb is waited for")
            .map_err(|err| format!("{}: {err}", self.install.bin.join("initdb").display()))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "initdb failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// Starts the server on its port, in its cluster, and waits until it accepts connections
    /// (so after any crash recovery).
    async fn launch(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|err| format!("{}: {err}", self.log().display()))?;
        let stderr = log.try_clone().map_err(|err| err.to_string())?;
        let mut child = self
            .install
            .command("postgres", &self.dir)
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "max_connections=200"])
            .args(["-c", "fsync=on", "-c", "synchronous_commit=on"])
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|err| format!("{}: {err}", self.install.bin.join("postgres").display()))?;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let answer = accepts(self.port);
            if answer.is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                kill_all(&mut child);
                let why = exited.map_or_else(
                    || format!("not accepting connections after {READY_WITHIN:?}: {answer:?}"),
                    |status| status.to_string(),
                );
                return Err(format!(
                    "port {}: {why}; log:\n{}",
                    self.port,
                    tail(&self.log(), 20)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as an operator does: a fast shutdown (SIGINT), which rolls back open
    /// transactions, closes the connections and writes a checkpoint. Returns once it exited.
    pub(crate) async fn stop(&mut self) {
        let mut child = self.child.take().expect("the server runs");
        // A frozen server would not shut down.
        thaw_all(child.id());
        assert!(
            signal("-INT", &[child.id()]),
            "kill -INT {}: the postmaster is gone",
            child.id()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while child
            .try_wait()
            .expect("the postmaster is waited for")
            .is_none()
        {
            if Instant::now() > deadline {
                kill_all(&mut child);
                panic!(
                    "postgres did not shut down in 30 s; log:\n{}",
                    tail(&self.log(), 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server with SIGKILL, the postmaster and every backend, as a crash of its
    /// machine does: it keeps only what it wrote to disk, and recovers when it starts again.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("the server runs");
        kill_all(&mut child);
    }

    /// Starts the server again, on the same port, in the same cluster; returns once it accepts
    /// connections.
    pub(crate) async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is stopped");
        if let Err(err) = self.launch().await {
            panic!("postgres restarts: {err}");
        }
    }

    /// [`restart`](Self::restart), by another name.
    pub(crate) async fn start_again(&mut self) {
        self.restart().await;
    }

    /// Freezes the server with SIGSTOP, the postmaster and every backend: a stall, not an outage
    /// (its connections stay open, and what clients send waits in the sockets and runs once it
    /// is thawed; a new connection waits for its startup answer).
    pub(crate) fn freeze(&self) {
        let pid = self.child.as_ref().expect("the server runs").id();
        // The postmaster first, so that it forks nothing the list below misses.
        assert!(signal("-STOP", &[pid]), "kill -STOP {pid}");
        // A backend that exits meanwhile is no longer there to stop.
        let _ = signal("-STOP", &children(pid));
    }

    /// Thaws a frozen server with SIGCONT.
    pub(crate) fn thaw(&self) {
        let pid = self.child.as_ref().expect("the server runs").id();
        assert!(thaw_all(pid), "kill -CONT {pid}");
    }

    /// The pids of the server's processes: the postmaster first, then its children.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let Some(child) = &self.child else {
            return Vec::new();
        };
        let mut pids = vec![child.id()];
        pids.extend(children(child.id()));
        pids
    }
}

/// Sends SIGCONT to the children of the postmaster `pid`, then to it; whether it was sent to it.
fn thaw_all(pid: u32) -> bool {
    let _ = signal("-CONT", &children(pid));
    signal("-CONT", &[pid])
}

/// Kills the postmaster `child` and its children with SIGKILL, and waits until they are gone
/// (so that the cluster's shared memory is free to start it again).
fn kill_all(child: &mut Child) {
    let pid = child.id();
    // Stopped, the postmaster forks no more; its children are listed before they lose it as
    // their parent.
    let _ = signal("-STOP", &[pid]);
    let backends = children(pid);
    let _ = signal("-KILL", &backends);
    let _ = child.kill();
    let _ = child.wait();
    // A killed backend is gone, or a zombie that holds nothing, within moments.
    let deadline = Instant::now() + Duration::from_secs(10);
    for backend in backends {
        while stat(backend).is_some_and(|(state, _)| state != 'Z') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Where the temporary directory goes: `std::env::temp_dir()`, unless the owner of the server
/// may not reach it (a `TMPDIR` under root's home): then `/tmp`.
fn base_dir(owner: Option<&Owner>) -> PathBuf {
    let temp = std::env::temp_dir();
    if owner.is_none() {
        return temp;
    }
    let reachable = temp
        .ancestors()
        .all(|dir| std::fs::metadata(dir).is_ok_and(|meta| meta.permissions().mode() & 0o001 != 0));
    if reachable {
        temp
    } else {
        PathBuf::from("/tmp")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_all(&mut child);
        }
        // A killed server leaves its small System V shared memory segment behind (a stopped one
        // removes it): remove it, its id being on line 7 of `postmaster.pid` after the key.
        let lock = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap_or_default();
        if let Some(id) = lock
            .lines()
            .nth(6)
            .and_then(|line| line.split_whitespace().nth(1))
            .filter(|id| id.parse::<u64>().is_ok())
        {
            let _ = Command::new("ipcrm")
                .args(["-m", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
