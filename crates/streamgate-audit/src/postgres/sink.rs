//! The PostgreSQL sink, its reader and its health check.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use crate::{
    clock::{AuditClock, rfc3339_string},
    event::{Actor, AuditEvent},
    event_json,
    file::{
        SigningKey,
        record::{self, GENESIS},
    },
    postgres::schema,
    sink::{AuditQuery, AuditSink, QueryFuture, SinkError, SinkFuture, TimeRange},
};

/// Where and how the PostgreSQL sink writes. See the [module docs](crate::postgres).
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresSinkConfig {
    url: String,
    instance: String,
    table: String,
    key: SigningKey,
    retention: Option<Duration>,
    clock: AuditClock,
    timeout: Duration,
}

impl PostgresSinkConfig {
    /// Writes to the database at `url` (`postgres://user@host/db`; the connection has no TLS,
    /// see the [module docs](crate::postgres)) as replica `instance`, signing heads with `key`.
    /// `instance` should survive restarts (e.g. a StatefulSet pod name): retention only removes
    /// this instance's events.
    pub fn new(url: impl Into<String>, instance: impl Into<String>, key: SigningKey) -> Self {
        Self {
            url: url.into(),
            instance: instance.into(),
            table: "audit_events".to_owned(),
            key,
            retention: Some(crate::file::DEFAULT_RETENTION),
            clock: AuditClock::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// The events table (default `audit_events`; heads go to `<table>_heads`).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Removes this instance's events older than `retention` (default 30 days), at the first
    /// connection and on housekeeping; `None` keeps everything.
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// The clock retention is measured with.
    pub fn clock(mut self, clock: AuditClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long connecting, the setup after it, one batch, retention or one query may take
    /// before it counts as failed (default 5 s). Sessions also set `lock_timeout` to half of it
    /// and `statement_timeout` to it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects and bounds the session's lock waits and statements by the timeout, so that a
    /// session holding a lock on the table cannot stall this one indefinitely.
    pub(crate) async fn connect(&self) -> Result<Client, SinkError> {
        let client = connect(&self.url, self.timeout).await?;
        let ms = self.timeout.as_millis().clamp(1, i32::MAX as u128);
        let lock_ms = (ms / 2).max(1);
        let settings = format!("SET lock_timeout = {lock_ms}; SET statement_timeout = {ms};");
        tokio::time::timeout(self.timeout, client.batch_execute(&settings))
            .await
            .map_err(|_| SinkError::new("setting up the PostgreSQL session timed out"))?
            .map_err(db_error("setting up the PostgreSQL session failed"))?;
        Ok(client)
    }
}

/// Runs `future` within `timeout`, naming `what` when it takes longer.
async fn timed<T>(
    timeout: Duration,
    what: &'static str,
    future: impl Future<Output = Result<T, SinkError>>,
) -> Result<T, SinkError> {
    tokio::time::timeout(timeout, future)
        .await
        .unwrap_or_else(|_| Err(SinkError::new(format!("{what} timed out"))))
}

pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Client, SinkError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| SinkError::with_source("invalid PostgreSQL URL", e))?;
    config.connect_timeout(timeout);
    let (client, connection) = tokio::time::timeout(timeout, config.connect(NoTls))
        .await
        .map_err(|_| SinkError::new("connecting to PostgreSQL timed out"))?
        .map_err(|e| SinkError::with_source("cannot connect to PostgreSQL", e))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "audit PostgreSQL connection ended");
        }
    });
    Ok(client)
}

fn db_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SinkError {
    move |e| SinkError::with_source(what, e)
}

#[derive(Debug, Clone, Copy)]
struct Chain {
    first_seq: i64,
    next_seq: i64,
    hash: [u8; 32],
}

/// The PostgreSQL sink. See the [module docs](crate::postgres).
pub struct PostgresSink {
    config: PostgresSinkConfig,
    client: Option<Client>,
    chain: Option<Chain>,
    buf: Vec<u8>,
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("instance", &self.config.instance)
            .field("table", &self.config.table)
            .field("connected", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

/// The columns of one batch, bound as arrays.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    id: Vec<String>,
    ts: Vec<String>,
    event_type: Vec<String>,
    actor: Vec<String>,
    wallet: Vec<Option<String>>,
    event: Vec<String>,
    prev: Vec<String>,
    hash: Vec<String>,
}

/// A text value PostgreSQL accepts: `TEXT` cannot hold a NUL character, so each one becomes
/// U+FFFD (the replacement character). Everything else is kept as it is.
pub(crate) fn text(value: &str) -> String {
    if value.contains('\0') {
        value.replace('\0', "\u{FFFD}")
    } else {
        value.to_owned()
    }
}

/// The longest value kept in an indexed column (`actor`, `event_type`), in bytes. A B-tree
/// index entry must fit in a third of a page (about 2.7 KB): a longer user id would fail every
/// insert of its batch, and the writer would retry it forever. The `event` column keeps the
/// whole value; queries compare it there when theirs is longer.
pub(crate) const MAX_INDEXED_BYTES: usize = 1024;

/// `value` [made safe for `TEXT`](text) and cut to [`MAX_INDEXED_BYTES`] at a character
/// boundary.
pub(crate) fn indexed(value: &str) -> String {
    let mut value = text(value);
    if value.len() > MAX_INDEXED_BYTES {
        let mut end = MAX_INDEXED_BYTES;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

/// The `actor` and `wallet` columns of an event, made [safe for `TEXT`](text) and
/// [bounded](indexed).
pub(crate) fn actor_columns(actor: &Actor) -> (String, Option<String>) {
    match actor {
        Actor::User { id, wallet } => (indexed(id), wallet.map(|w| w.to_string().to_lowercase())),
        Actor::Wallet { address } => {
            let address = address.to_string().to_lowercase();
            (address.clone(), Some(address))
        }
        Actor::Anonymous => ("anonymous".to_owned(), None),
    }
}

impl PostgresSink {
    /// A sink for `config`; it connects at its first write.
    ///
    /// # Errors
    /// When the table name or the URL is invalid, or the instance id contains a NUL character.
    pub fn new(config: PostgresSinkConfig) -> Result<Self, SinkError> {
        schema::check_table(&config.table)?;
        if config.instance.contains('\0') {
            return Err(SinkError::new(
                "the audit instance id contains a NUL character",
            ));
        }
        config
            .url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| SinkError::with_source("invalid PostgreSQL URL", e))?;
        Ok(Self {
            config,
            client: None,
            chain: None,
            buf: Vec::new(),
        })
    }

    /// A health check on the same database (a new connection and `SELECT 1` per check).
    #[must_use]
    pub fn health(&self) -> PostgresHealth {
        PostgresHealth {
            url: self.config.url.clone(),
            timeout: self.config.timeout,
        }
    }

    /// A reader answering the seed's queries from the database.
    #[must_use]
    pub fn reader(&self) -> PostgresQuery {
        PostgresQuery {
            config: self.config.clone(),
            client: Arc::new(Mutex::new(None)),
        }
    }

    /// Connects, migrates and loads this instance's chain when not connected. The setup after
    /// connecting (tables, chain, retention) runs within the configured timeout; on any failure
    /// the connection is dropped and the chain known before is kept.
    async fn ensure(&mut self) -> Result<(), SinkError> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        let client = self.config.connect().await?;
        self.client = Some(client);
        let before = self.chain;
        let result = timed(
            self.config.timeout,
            "setting up the audit tables",
            self.setup(),
        )
        .await;
        if result.is_err() {
            self.client = None;
            self.chain = before;
        }
        result
    }

    async fn setup(&mut self) -> Result<(), SinkError> {
        let t = &self.config.table;
        let client = self.client()?;
        let names = schema::objects(t);
        let present: bool = client
            .query_one(
                "SELECT bool_and(to_regclass(n) IS NOT NULL) FROM unnest($1::text[]) AS n",
                &[&names],
            )
            .await
            .map_err(db_error("looking up the audit tables failed"))?
            .get(0);
        if !present {
            client
                .batch_execute(&schema::migrate(t))
                .await
                .map_err(db_error("creating the audit tables failed"))?;
            if let Err(error) = client.batch_execute(&schema::unique_id(t)).await {
                tracing::warn!(
                    table = %t,
                    %error,
                    "cannot create the unique index on audit event ids; an event whose commit acknowledgement is lost may be stored twice"
                );
            }
        }
        let loaded = self.load_chain().await?;
        self.chain = Some(loaded);
        if self.config.retention.is_some() {
            self.purge().await?;
        }
        Ok(())
    }

    async fn load_chain(&self) -> Result<Chain, SinkError> {
        let client = self.client()?;
        let t = &self.config.table;
        let last = client
            .query_opt(
                &format!(
                    "SELECT seq, hash FROM {t} WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1"
                ),
                &[&self.config.instance],
            )
            .await
            .map_err(db_error("reading the audit chain failed"))?;
        let head = client
            .query_opt(
                &format!("SELECT first_seq FROM {t}_heads WHERE instance_id = $1"),
                &[&self.config.instance],
            )
            .await
            .map_err(db_error("reading the audit head failed"))?;
        Ok(match last {
            Some(row) => {
                let seq: i64 = row.get(0);
                let hash: String = row.get(1);
                Chain {
                    first_seq: head.map_or(0, |h| h.get(0)),
                    next_seq: seq + 1,
                    hash: record::parse_hex32(hash.as_bytes())
                        .ok_or_else(|| SinkError::new("a stored audit hash is not hex"))?,
                }
            }
            None => Chain {
                first_seq: 0,
                next_seq: 0,
                hash: GENESIS,
            },
        })
    }

    fn client(&self) -> Result<&Client, SinkError> {
        self.client
            .as_ref()
            .ok_or_else(|| SinkError::new("not connected to PostgreSQL"))
    }

    fn head_params(&self, chain: &Chain) -> (i64, i64, String, String) {
        let hash = record::hex32(&chain.hash);
        let seq = chain.next_seq - 1;
        let sig = self.config.key.sign(&schema::head_message(
            &self.config.instance,
            chain.first_seq,
            seq,
            &hash,
        ));
        (chain.first_seq, seq, hash, sig)
    }

    /// Writes one batch; on any error the connection is dropped, so the next attempt
    /// reconnects and reloads the chain.
    async fn write_batch(&mut self, events: &[AuditEvent]) -> Result<(), SinkError> {
        let result = self.write_events(events).await;
        if result.is_err() {
            self.client = None;
        }
        result
    }

    async fn write_events(&mut self, events: &[AuditEvent]) -> Result<(), SinkError> {
        let reconnecting = self.client.as_ref().is_none_or(Client::is_closed);
        let before = self.chain;
        self.ensure().await?;
        let mut chain = self
            .chain
            .ok_or_else(|| SinkError::new("no audit chain loaded"))?;
        if reconnecting && let (Some(before), Some(first)) = (before, events.first()) {
            // A batch whose commit was acknowledged too late for us is already stored.
            if chain.next_seq > before.next_seq
                && timed(
                    self.config.timeout,
                    "reading a stored audit event",
                    self.stored_id(before.next_seq),
                )
                .await?
                    == Some(first.id)
            {
                let stored = before.next_seq + events.len() as i64;
                if stored == chain.next_seq {
                    return Ok(());
                }
            }
        }
        let mut columns = Columns::default();
        for event in events {
            self.buf.clear();
            let seq = u64::try_from(chain.next_seq).unwrap_or_default();
            record::begin(&mut self.buf, seq, &chain.hash, "event");
            self.buf.extend_from_slice(b",\"event\":");
            let event_start = self.buf.len();
            event_json::write_event(&mut self.buf, event);
            let hash: [u8; 32] = Sha256::digest(&self.buf).into();
            let (actor, wallet) = actor_columns(&event.actor);
            columns.seq.push(chain.next_seq);
            columns.id.push(event.id.to_string());
            columns.ts.push(rfc3339_string(event.timestamp));
            columns.event_type.push(indexed(&event.event_type));
            columns.actor.push(actor);
            columns.wallet.push(wallet);
            columns
                .event
                .push(String::from_utf8_lossy(&self.buf[event_start..]).into_owned());
            columns.prev.push(record::hex32(&chain.hash));
            columns.hash.push(record::hex32(&hash));
            chain.hash = hash;
            chain.next_seq += 1;
        }
        let (first_seq, seq, hash, sig) = self.head_params(&chain);
        let t = self.config.table.clone();
        let instance = self.config.instance.clone();
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| SinkError::new("not connected to PostgreSQL"))?;
        let write = async {
            let tx = client
                .transaction()
                .await
                .map_err(db_error("starting an audit transaction failed"))?;
            let inserted = tx
                .execute(
                    &schema::insert(&t),
                    &[
                        &instance,
                        &columns.seq,
                        &columns.id,
                        &columns.ts,
                        &columns.event_type,
                        &columns.actor,
                        &columns.wallet,
                        &columns.event,
                        &columns.prev,
                        &columns.hash,
                    ],
                )
                .await
                .map_err(db_error("inserting audit events failed"))?;
            if inserted != columns.seq.len() as u64 {
                return Err(SinkError::new(format!(
                    "{} of {} audit events were already stored; reloading the chain",
                    columns.seq.len() as u64 - inserted,
                    columns.seq.len()
                )));
            }
            tx.execute(
                &schema::upsert_head(&t),
                &[&instance, &first_seq, &seq, &hash, &sig],
            )
            .await
            .map_err(db_error("updating the audit head failed"))?;
            tx.commit()
                .await
                .map_err(db_error("committing audit events failed"))
        };
        match tokio::time::timeout(self.config.timeout, write).await {
            Ok(Ok(())) => {
                self.chain = Some(chain);
                Ok(())
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(SinkError::new(
                "writing audit events to PostgreSQL timed out",
            )),
        }
    }

    async fn stored_id(&self, seq: i64) -> Result<Option<uuid::Uuid>, SinkError> {
        let t = &self.config.table;
        let row = self
            .client()?
            .query_opt(
                &format!("SELECT id::text FROM {t} WHERE instance_id = $1 AND seq = $2"),
                &[&self.config.instance, &seq],
            )
            .await
            .map_err(db_error("reading a stored audit event failed"))?;
        Ok(row.and_then(|r| r.get::<_, String>(0).parse().ok()))
    }

    /// Removes this instance's oldest events, a prefix of its chain: everything before the first
    /// event still within the retention (the newest event always stays). The head's first
    /// sequence number moves in the same transaction.
    async fn purge(&mut self) -> Result<(), SinkError> {
        let (Some(retention), Some(mut chain)) = (self.config.retention, self.chain) else {
            return Ok(());
        };
        if chain.next_seq == 0 {
            return Ok(());
        }
        let Some(cutoff) = self.config.clock.now().checked_sub(retention) else {
            return Ok(());
        };
        let cutoff = rfc3339_string(cutoff);
        let t = self.config.table.clone();
        let instance = self.config.instance.clone();
        let last = chain.next_seq - 1;
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| SinkError::new("not connected to PostgreSQL"))?;
        let tx = client
            .transaction()
            .await
            .map_err(db_error("starting an audit transaction failed"))?;
        tx.execute(
            &format!(
                "DELETE FROM {t} WHERE instance_id = $1 AND seq < COALESCE(
                     (SELECT min(seq) FROM {t} WHERE instance_id = $1 AND ts >= $2::text::timestamptz),
                     $3)"
            ),
            &[&instance, &cutoff, &last],
        )
        .await
        .map_err(db_error("removing old audit events failed"))?;
        let first: Option<i64> = tx
            .query_one(
                &format!("SELECT min(seq) FROM {t} WHERE instance_id = $1"),
                &[&instance],
            )
            .await
            .map_err(db_error("reading the audit chain failed"))?
            .get(0);
        chain.first_seq = first.unwrap_or(chain.next_seq);
        let hash = record::hex32(&chain.hash);
        let sig = self.config.key.sign(&schema::head_message(
            &instance,
            chain.first_seq,
            last,
            &hash,
        ));
        tx.execute(
            &schema::upsert_head(&t),
            &[&instance, &chain.first_seq, &last, &hash, &sig],
        )
        .await
        .map_err(db_error("updating the audit head failed"))?;
        tx.commit()
            .await
            .map_err(db_error("committing the audit retention failed"))?;
        self.chain = Some(chain);
        Ok(())
    }

    async fn housekeeping(&mut self) -> Result<(), SinkError> {
        self.ensure().await?;
        let result = timed(
            self.config.timeout,
            "removing old audit events",
            self.purge(),
        )
        .await;
        if result.is_err() {
            self.client = None;
        }
        result
    }
}

impl AuditSink for PostgresSink {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn write<'a>(&'a mut self, events: &'a [AuditEvent]) -> SinkFuture<'a> {
        Box::pin(self.write_batch(events))
    }

    fn maintain(&mut self) -> SinkFuture<'_> {
        Box::pin(self.housekeeping())
    }

    fn query(&self) -> Option<Arc<dyn AuditQuery>> {
        Some(Arc::new(self.reader()))
    }
}

/// A readiness check on the sink's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresHealth {
    url: String,
    timeout: Duration,
}

impl PostgresHealth {
    /// Connects and runs `SELECT 1`, within the sink's timeout.
    ///
    /// # Errors
    /// When the database cannot be reached or does not answer in time.
    pub async fn check(&self) -> Result<(), SinkError> {
        let client = connect(&self.url, self.timeout).await?;
        tokio::time::timeout(self.timeout, client.simple_query("SELECT 1"))
            .await
            .map_err(|_| SinkError::new("PostgreSQL did not answer in time"))?
            .map_err(db_error("PostgreSQL health check failed"))?;
        Ok(())
    }
}

/// The seed's queries answered by SQL. Cheap to clone.
#[derive(Clone)]
pub struct PostgresQuery {
    config: PostgresSinkConfig,
    client: Arc<Mutex<Option<Client>>>,
}

impl fmt::Debug for PostgresQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresQuery")
            .field("table", &self.config.table)
            .finish_non_exhaustive()
    }
}

impl PostgresQuery {
    async fn run(
        &self,
        filter: &str,
        value: &str,
        range: TimeRange,
        limit: usize,
        keep: impl Fn(&AuditEvent) -> bool,
    ) -> Result<Vec<AuditEvent>, SinkError> {
        let mut slot = self.client.lock().await;
        let result = timed(
            self.config.timeout,
            "the audit query",
            self.query(&mut slot, filter, value, range, limit, keep),
        )
        .await;
        if result.is_err() {
            *slot = None;
        }
        result
    }

    async fn query(
        &self,
        slot: &mut Option<Client>,
        filter: &str,
        value: &str,
        range: TimeRange,
        limit: usize,
        keep: impl Fn(&AuditEvent) -> bool,
    ) -> Result<Vec<AuditEvent>, SinkError> {
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(self.config.connect().await?);
        }
        let client = slot
            .as_ref()
            .ok_or_else(|| SinkError::new("not connected to PostgreSQL"))?;
        let t = &self.config.table;
        let sql = format!(
            "SELECT event FROM {t} WHERE {filter} AND ts >= $2::text::timestamptz
             AND ts < $3::text::timestamptz ORDER BY ts, instance_id, seq LIMIT $4"
        );
        // Stored times are whole milliseconds: `ts >= ceil(start)` and `ts < ceil(end)` hold
        // exactly when the range contains them.
        let (start, end) = (
            rfc3339_string(ceil_millis(range.start)),
            rfc3339_string(ceil_millis(range.end)),
        );
        let cut = indexed(value);
        // A value cut for the index matches every value that starts like it: those rows are
        // read past the limit and told apart here, the limit applied to what is kept.
        let sql_limit = if cut.len() < text(value).len() {
            i64::MAX
        } else {
            i64::try_from(limit).unwrap_or(i64::MAX)
        };
        let rows = client
            .query(&sql, &[&cut, &start, &end, &sql_limit])
            .await
            .map_err(db_error("audit query failed"))?;
        let mut events = Vec::with_capacity(rows.len().min(limit));
        for row in &rows {
            let event = serde_json::from_str::<AuditEvent>(row.get(0))
                .map_err(|e| SinkError::with_source("a stored audit event is not valid", e))?;
            if keep(&event) {
                events.push(event);
                if events.len() == limit {
                    break;
                }
            }
        }
        Ok(events)
    }
}

impl AuditQuery for PostgresQuery {
    fn events_by_actor<'a>(
        &'a self,
        actor: &'a str,
        range: TimeRange,
        limit: usize,
    ) -> QueryFuture<'a> {
        // A value cut for the index matches every actor sharing its start: compare the whole.
        let whole = text(actor);
        let exact = move |event: &AuditEvent| {
            whole.len() <= MAX_INDEXED_BYTES
                || matches!(&event.actor, Actor::User { id, .. } if text(id) == whole)
        };
        Box::pin(self.run(
            "(actor = $1 OR wallet = lower($1))",
            actor,
            range,
            limit,
            exact,
        ))
    }

    fn events_by_type<'a>(
        &'a self,
        event_type: &'a str,
        range: TimeRange,
        limit: usize,
    ) -> QueryFuture<'a> {
        let whole = text(event_type);
        let exact = move |event: &AuditEvent| {
            whole.len() <= MAX_INDEXED_BYTES || text(&event.event_type) == whole
        };
        Box::pin(self.run("event_type = $1", event_type, range, limit, exact))
    }
}

/// `time` rounded up to a whole millisecond.
fn ceil_millis(time: SystemTime) -> SystemTime {
    let Ok(since_epoch) = time.duration_since(UNIX_EPOCH) else {
        return time;
    };
    let sub_millis = since_epoch.subsec_nanos() % 1_000_000;
    if sub_millis == 0 {
        time
    } else {
        time + Duration::from_nanos(u64::from(1_000_000 - sub_millis))
    }
}
