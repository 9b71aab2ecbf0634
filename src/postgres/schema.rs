//! The crate's tables in their schema, their versions, and the statements on them.

use std::sync::Arc;

use deadpool_postgres::Object;
use tokio_postgres::GenericClient;

use super::PostgresError;

/// The schema version this version of the crate writes and reads.
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// How many rows hold each count: concurrent transactions add to different rows, rather than
/// waiting for each other's commits on one.
const STRIPES: i32 = 32;

/// The schema, version by version: `MIGRATIONS[n]` upgrades a schema of version `n`. `{s}` is
/// the quoted schema, `{stripes}` the number of rows per count.
///
/// A record's `state`: 1 claimed by a delivery being processed (with its token), 2 done.
/// `counts` holds the number of deduplication records (`dedupe`) and of each queue's messages
/// (`queue:NAME`), kept by statement triggers, summed over its stripes: a transaction adds to
/// the row of its transaction id's stripe only, so that transactions of several statements (a
/// replay, a handler's own) never lock two rows of one count, in whatever order.
/// A queue's `acked` message was acknowledged in a handler's own transaction
/// (`PostgresQueue::ack_in`: an update, which takes no count row); its worker's acknowledgement,
/// or the sweep once its lease has run out, deletes it.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the deduplication records, the queues, the dead letters, their counts.
    r"
CREATE TABLE {s}.dedupe (
    key text PRIMARY KEY,
    state smallint NOT NULL,
    token text,
    expires_at timestamptz NOT NULL
);
CREATE INDEX dedupe_expiry ON {s}.dedupe (expires_at);
CREATE TABLE {s}.queue (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    payload bytea NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    pulled boolean NOT NULL DEFAULT false,
    visible_at timestamptz NOT NULL DEFAULT now(),
    replays integer NOT NULL DEFAULT 0,
    first_failed_at timestamptz,
    acked boolean NOT NULL DEFAULT false
);
CREATE INDEX queue_due ON {s}.queue (queue, visible_at, id);
CREATE INDEX queue_acked ON {s}.queue (visible_at) WHERE acked;
CREATE TABLE {s}.dead (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    message_id bigint NOT NULL,
    payload bytea NOT NULL,
    attempts integer NOT NULL,
    error text NOT NULL,
    first_failed_at timestamptz,
    failed_at timestamptz NOT NULL,
    replays integer NOT NULL
);
CREATE INDEX dead_queue ON {s}.dead (queue, id);
CREATE TABLE {s}.counts (
    name text NOT NULL,
    stripe smallint NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (name, stripe)
);

CREATE FUNCTION {s}.dedupe_counted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
DECLARE delta bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO delta FROM added;
    ELSE
        SELECT -count(*) INTO delta FROM removed;
    END IF;
    IF delta <> 0 THEN
        INSERT INTO {s}.counts AS c (name, stripe, n)
            VALUES ('dedupe', (txid_current() % {stripes})::smallint, delta)
            ON CONFLICT (name, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END $f$;
CREATE TRIGGER dedupe_added AFTER INSERT ON {s}.dedupe
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {s}.dedupe_counted();
CREATE TRIGGER dedupe_removed AFTER DELETE ON {s}.dedupe
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION {s}.dedupe_counted();

CREATE FUNCTION {s}.queue_counted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {s}.counts AS c (name, stripe, n)
            SELECT 'queue:' || queue, (txid_current() % {stripes})::smallint, count(*)
            FROM added GROUP BY queue
            ON CONFLICT (name, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO {s}.counts AS c (name, stripe, n)
            SELECT 'queue:' || queue, (txid_current() % {stripes})::smallint, -count(*)
            FROM removed GROUP BY queue
            ON CONFLICT (name, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END $f$;
CREATE TRIGGER queue_added AFTER INSERT ON {s}.queue
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {s}.queue_counted();
CREATE TRIGGER queue_removed AFTER DELETE ON {s}.queue
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION {s}.queue_counted();

-- A table emptied at once (TRUNCATE) takes its counts with it.
CREATE FUNCTION {s}.counts_truncated() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    DELETE FROM {s}.counts WHERE name LIKE TG_ARGV[0];
    RETURN NULL;
END $f$;
CREATE TRIGGER dedupe_truncated AFTER TRUNCATE ON {s}.dedupe
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.counts_truncated('dedupe');
CREATE TRIGGER queue_truncated AFTER TRUNCATE ON {s}.queue
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.counts_truncated('queue:%');

-- What a record says to a claim or a deduplicated push: 1 done, 2 claimed, 3 a state a
-- later version wrote.
CREATE FUNCTION {s}.verdict(state smallint) RETURNS smallint LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $f$
    SELECT CASE state WHEN 2 THEN 1 WHEN 1 THEN 2 ELSE 3 END::smallint
$f$;

-- Claims k for lease_ms with token t: 0 acquired, 1 done, 2 in flight, 3 unknown state,
-- 4 full (a new key while max_entries records have not expired).
CREATE FUNCTION {s}.claim(k text, t text, lease_ms bigint, max_entries bigint)
RETURNS smallint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
DECLARE found_state smallint;
BEGIN
    SELECT state INTO found_state FROM {s}.dedupe WHERE key = k AND expires_at > now();
    IF FOUND THEN
        RETURN {s}.verdict(found_state);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {s}.dedupe WHERE key = k)
        AND (SELECT coalesce(sum(n), 0) FROM {s}.counts WHERE name = 'dedupe') >= max_entries
    THEN
        -- Expired records make room first.
        DELETE FROM {s}.dedupe WHERE key IN (
            SELECT key FROM {s}.dedupe WHERE expires_at <= now()
            LIMIT 4096 FOR UPDATE SKIP LOCKED);
        IF (SELECT coalesce(sum(n), 0) FROM {s}.counts WHERE name = 'dedupe') >= max_entries
        THEN
            RETURN 4;
        END IF;
    END IF;
    INSERT INTO {s}.dedupe AS d (key, state, token, expires_at)
        VALUES (k, 1, t, now() + lease_ms::float8 * interval '1 millisecond')
        ON CONFLICT (key) DO UPDATE
            SET state = 1, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
            WHERE d.expires_at <= now();
    IF FOUND THEN
        RETURN 0;
    END IF;
    -- Another claim or push of the key committed first: its record decides.
    SELECT state INTO found_state FROM {s}.dedupe WHERE key = k;
    RETURN {s}.verdict(coalesce(found_state, 1::smallint));
END $f$;

-- Stores a message in queue q unless it holds max_len: its id, or NULL when full.
CREATE FUNCTION {s}.push(q text, p bytea, max_len bigint, r integer)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
DECLARE stored bigint;
BEGIN
    IF (SELECT coalesce(sum(n), 0) FROM {s}.counts WHERE name = 'queue:' || q) >= max_len THEN
        RETURN NULL;
    END IF;
    INSERT INTO {s}.queue (queue, payload, replays) VALUES (q, p, r) RETURNING id INTO stored;
    RETURN stored;
END $f$;

-- Stores a message in queue q and records k done for retention_ms, unless k has a record:
-- outcome 0 stored (message is its id), 1 duplicate, 2 claimed, 3 unknown state, 4 full.
CREATE FUNCTION {s}.push_once(q text, k text, retention_ms bigint, p bytea, max_len bigint,
    OUT outcome smallint, OUT message bigint) LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
DECLARE found_state smallint;
BEGIN
    SELECT state INTO found_state FROM {s}.dedupe WHERE key = k AND expires_at > now();
    IF FOUND THEN
        outcome := {s}.verdict(found_state);
        RETURN;
    END IF;
    IF (SELECT coalesce(sum(n), 0) FROM {s}.counts WHERE name = 'queue:' || q) >= max_len THEN
        outcome := 4;
        RETURN;
    END IF;
    INSERT INTO {s}.dedupe AS d (key, state, token, expires_at)
        VALUES (k, 2, NULL, now() + retention_ms::float8 * interval '1 millisecond')
        ON CONFLICT (key) DO UPDATE
            SET state = 2, token = NULL, expires_at = EXCLUDED.expires_at
            WHERE d.expires_at <= now();
    IF NOT FOUND THEN
        SELECT state INTO found_state FROM {s}.dedupe WHERE key = k;
        outcome := {s}.verdict(coalesce(found_state, 2::smallint));
        RETURN;
    END IF;
    INSERT INTO {s}.queue (queue, payload) VALUES (q, p) RETURNING id INTO message;
    outcome := 0;
END $f$;

-- Moves the dead letters ids of queue q back to it, oldest first, while it has room.
CREATE FUNCTION {s}.replay(q text, ids bigint[], max_len bigint,
    OUT replayed bigint, OUT is_full boolean) LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
DECLARE letter record;
DECLARE room bigint;
BEGIN
    replayed := 0;
    is_full := false;
    room := max_len - (SELECT coalesce(sum(n), 0) FROM {s}.counts WHERE name = 'queue:' || q);
    FOR letter IN SELECT id FROM {s}.dead WHERE queue = q AND id = ANY(ids) ORDER BY id LOOP
        IF room <= 0 THEN
            is_full := true;
            RETURN;
        END IF;
        WITH gone AS (DELETE FROM {s}.dead WHERE id = letter.id RETURNING payload, replays)
            INSERT INTO {s}.queue (queue, payload, replays)
            SELECT q, payload, replays + 1 FROM gone;
        IF FOUND THEN
            replayed := replayed + 1;
            room := room - 1;
        END IF;
    END LOOP;
END $f$;
",
];

/// The statements, on one schema.
#[derive(Clone, Debug)]
pub(crate) struct Sql(Arc<Statements>);

#[derive(Debug)]
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
pub(crate) struct Statements {
    schema: String,
    quoted: String,
    channel: String,
    pub(crate) claim: String,
    pub(crate) complete: String,
    pub(crate) release: String,
    pub(crate) sweep: String,
    pub(crate) sweep_acked: String,
    pub(crate) push: String,
    pub(crate) push_once: String,
    pub(crate) pull: String,
    pub(crate) ack: String,
    pub(crate) ack_many: String,
    pub(crate) ack_in: String,
    pub(crate) retry: String,
    pub(crate) dead_letter: String,
    pub(crate) stats: String,
    pub(crate) list_dead: String,
    pub(crate) newest_dead: String,
    pub(crate) oldest_dead: String,
    pub(crate) replay: String,
    pub(crate) purge_ids: String,
    pub(crate) purge_some: String,
}

impl std::ops::Deref for Sql {
    type Target = Statements;

    fn deref(&self) -> &Statements {
        &self.0
    }
}

/// Whether `schema` is a name the crate uses: no quoting surprises, room for the channel's
/// suffix within PostgreSQL's 63 bytes.
fn valid(schema: &str) -> bool {
    let mut chars = schema.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && schema.len() <= 48
}

impl Sql {
    pub(crate) fn new(schema: &str) -> Result<Self, PostgresError> {
        if !valid(schema) {
            return Err(PostgresError::InvalidSchema(schema.to_owned()));
        }
        let quoted = format!("\"{schema}\"");
        let s = |sql: &str| sql.replace("{s}", &quoted);
        // A message is held by the delivery that pulled it, until its attempt changes.
        let held = "id = $1 AND queue = $2 AND pulled AND attempts = $3";
        Ok(Self(Arc::new(Statements {
            channel: format!("{schema}_queue"),
            claim: s("SELECT {s}.claim($1, $2, $3, $4)"),
            complete: s("UPDATE {s}.dedupe SET state = 2, token = NULL, \
                 expires_at = now() + $3::bigint::float8 * interval '1 millisecond' \
                 WHERE key = $1 AND token = $2 AND state = 1"),
            // Whether the claim was released, and whether the key is done (then a claim of the
            // token still on its way cannot take it).
            release: s("WITH gone AS (DELETE FROM {s}.dedupe \
                 WHERE key = $1 AND token = $2 AND state = 1 RETURNING 1) \
                 SELECT EXISTS (SELECT 1 FROM gone), \
                 EXISTS (SELECT 1 FROM {s}.dedupe WHERE key = $1 AND state = 2 \
                   AND expires_at > now())"),
            sweep: s(
                "DELETE FROM {s}.dedupe WHERE key IN (SELECT key FROM {s}.dedupe \
                 WHERE expires_at <= now() LIMIT 1000 FOR UPDATE SKIP LOCKED)",
            ),
            sweep_acked: s(
                "DELETE FROM {s}.queue WHERE id IN (SELECT id FROM {s}.queue \
                 WHERE acked AND visible_at <= now() LIMIT 1000 FOR UPDATE SKIP LOCKED)",
            ),
            push: s("SELECT {s}.push($1, $2, $3, 0)"),
            push_once: s("SELECT outcome, message FROM {s}.push_once($1, $2, $3, $4, $5)"),
            pull: s(
                "UPDATE {s}.queue m SET attempts = m.attempts + 1, pulled = true, \
                 visible_at = now() + $3::bigint::float8 * interval '1 millisecond' \
                 FROM (SELECT id FROM {s}.queue \
                   WHERE queue = $1 AND visible_at <= now() AND NOT acked \
                   ORDER BY visible_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) due \
                 WHERE m.id = due.id RETURNING m.id, m.payload, m.attempts, m.replays",
            ),
            ack: s(&format!("DELETE FROM {{s}}.queue WHERE {held}")),
            ack_many: s("DELETE FROM {s}.queue m \
                 USING unnest($1::bigint[], $3::integer[]) AS held (id, attempts) \
                 WHERE m.id = held.id AND m.queue = $2 AND m.pulled \
                 AND m.attempts = held.attempts"),
            ack_in: s(&format!(
                "UPDATE {{s}}.queue SET acked = true WHERE {held} AND NOT acked"
            )),
            retry: s(&format!(
                "UPDATE {{s}}.queue SET pulled = false, \
                 visible_at = now() + $4::bigint::float8 * interval '1 millisecond', \
                 first_failed_at = coalesce(first_failed_at, \
                   CASE WHEN attempts = 1 THEN now() END) WHERE {held} AND NOT acked"
            )),
            dead_letter: s(&format!(
                "WITH gone AS (DELETE FROM {{s}}.queue WHERE {held} AND NOT acked \
                   RETURNING *) \
                 INSERT INTO {{s}}.dead (queue, message_id, payload, attempts, error, \
                   first_failed_at, failed_at, replays) \
                 SELECT queue, id, payload, attempts, $4, \
                   coalesce(first_failed_at, CASE WHEN attempts = 1 THEN now() END), now(), \
                   replays FROM gone"
            )),
            stats: s("SELECT \
                 count(*) FILTER (WHERE NOT pulled AND visible_at <= now()), \
                 count(*) FILTER (WHERE pulled AND NOT acked), \
                 count(*) FILTER (WHERE NOT pulled AND visible_at > now()), \
                 (SELECT count(*) FROM {s}.dead WHERE queue = $1) \
                 FROM {s}.queue WHERE queue = $1"),
            list_dead: s(
                "SELECT id, message_id, payload, attempts, error, first_failed_at, \
                 failed_at, replays FROM {s}.dead WHERE queue = $1 AND id > $2 \
                 ORDER BY id LIMIT $3",
            ),
            newest_dead: s("SELECT max(id) FROM {s}.dead WHERE queue = $1"),
            oldest_dead: s("SELECT id FROM {s}.dead WHERE queue = $1 AND id <= $2 \
                 ORDER BY id LIMIT $3"),
            replay: s("SELECT replayed, is_full FROM {s}.replay($1, $2, $3)"),
            purge_ids: s("DELETE FROM {s}.dead WHERE queue = $1 AND id = ANY($2)"),
            purge_some: s("DELETE FROM {s}.dead WHERE id IN \
                 (SELECT id FROM {s}.dead WHERE queue = $1 LIMIT 1000)"),
            schema: schema.to_owned(),
            quoted,
        })))
    }

    pub(crate) fn schema(&self) -> &str {
        &self.0.schema
    }

    /// The `LISTEN`/`NOTIFY` channel of the schema's queues (a valid identifier unquoted).
    pub(crate) fn channel(&self) -> &str {
        &self.0.channel
    }
}

/// The version of the schema, 0 when it has none: read only.
async fn version(client: &impl GenericClient, quoted: &str) -> Result<i32, PostgresError> {
    let table = format!("{quoted}.schema_version");
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt(&format!("SELECT version FROM {table} WHERE id = 1"), &[])
        .await?
        .map_or(0, |row| row.get(0)))
}

/// Opens the schema: checks the connections' isolation level, reads the schema's version, and,
/// when `migrate` and it is missing or older, creates or upgrades it, one process at a time (an
/// advisory lock), in one transaction; refuses a newer one.
pub(crate) async fn open(
    mut client: Object,
    sql: &Sql,
    migrate: bool,
) -> Result<(), PostgresError> {
    let isolation: String = client
        .query_one("SHOW default_transaction_isolation", &[])
        .await?
        .get(0);
    if isolation != "read committed" {
        return Err(PostgresError::Isolation(isolation));
    }
    let quoted = &sql.0.quoted;
    let found = version(&**client, quoted).await?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    if found > SCHEMA_VERSION {
        return Err(PostgresError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if !migrate {
        return Err(PostgresError::OlderSchema {
            found,
            expected: SCHEMA_VERSION,
        });
    }
    let transaction = client.transaction().await?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("tower_webhook:{}", sql.schema())],
        )
        .await?;
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted}; \
             CREATE TABLE IF NOT EXISTS {quoted}.schema_version \
               (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL);"
        ))
        .await?;
    // Read again under the lock: another process may have migrated meanwhile.
    let found = version(&*transaction, quoted).await?;
    if found > SCHEMA_VERSION {
        return Err(PostgresError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for migration in &MIGRATIONS[usize::try_from(found).unwrap_or(0)..] {
        transaction
            .batch_execute(
                &migration
                    .replace("{s}", quoted)
                    .replace("{stripes}", &STRIPES.to_string()),
            )
            .await?;
    }
    transaction
        .execute(
            &format!(
                "INSERT INTO {quoted}.schema_version (id, version) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version"
            ),
            &[&SCHEMA_VERSION],
        )
        .await?;
    transaction.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for good in ["tower_webhook", "_x", "a1", &"a".repeat(48)] {
            assert!(valid(good), "{good}");
        }
        for bad in ["", "1a", "A", "a-b", "a\"b", "a b", "é", &"a".repeat(49)] {
            assert!(valid(bad).then_some(()).is_none(), "{bad}");
            assert!(matches!(
                Sql::new(bad),
                Err(PostgresError::InvalidSchema(_))
            ));
        }
    }
}
