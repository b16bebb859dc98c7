//! One multiplexed connection to a Redis server, for the layers' shared stores (feature
//! `redis`): made on first use, made again at most every 100 ms after it broke, every call
//! bounded by a timeout.
//!
//! ```no_run
//! use std::time::Duration;
//! use streamgate_core::redis::RedisConnection;
//!
//! # async fn run() -> Result<(), streamgate_core::store::StoreError> {
//! let redis = RedisConnection::open("redis://127.0.0.1:6379", Duration::from_millis(50))?;
//! redis.ping().await?;
//! let answer: String = redis
//!     .bounded(async {
//!         let mut connection = redis.get().await?;
//!         redis.settle(redis::cmd("ECHO").arg("hi").query_async(&mut connection).await)
//!     })
//!     .await?;
//! assert_eq!(answer, "hi");
//! # Ok(()) }
//! ```

use std::{
    fmt,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{AsyncConnectionConfig, Client, RedisError, aio::MultiplexedConnection};

use crate::store::StoreError;

const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// A connection to one Redis server, shared by a store's clones (the connection is
/// multiplexed: concurrent calls share it).
pub struct RedisConnection {
    client: Client,
    config: AsyncConnectionConfig,
    current: Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
    epoch: Instant,
    /// Milliseconds since `epoch` before which no new connection is tried.
    retry_at_ms: AtomicU64,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to the server at `url`, made on first use; connecting and each answer are
    /// bounded by `timeout`.
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = Client::open(url)
            .map_err(|error| StoreError::with_source("invalid Redis URL", error))?;
        Ok(Self {
            client,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout),
            current: Mutex::new(None),
            timeout,
            epoch: Instant::now(),
            retry_at_ms: AtomicU64::new(0),
        })
    }

    /// The bound on each call.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection, made now when there is none and the last attempt is 100 ms old.
    ///
    /// # Errors
    /// When the server cannot be reached, or was not reachable less than 100 ms ago.
    pub async fn get(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(connection) = self.lock().clone() {
            return Ok(connection);
        }
        let now = self.now_ms();
        if now < self.retry_at_ms.load(Ordering::Relaxed) {
            return Err(StoreError::new(
                "Redis unreachable; waiting before reconnecting",
            ));
        }
        let backoff = u64::try_from(RECONNECT_BACKOFF.as_millis()).unwrap_or(u64::MAX);
        self.retry_at_ms
            .store(now.saturating_add(backoff), Ordering::Relaxed);
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(|error| StoreError::with_source("cannot connect to Redis", error))?;
        *self.lock() = Some(connection.clone());
        Ok(connection)
    }

    /// Forgets the connection: the next call makes a new one.
    pub fn reset(&self) {
        self.lock().take();
    }

    /// A call's result as a store's: the connection is kept on success or a script error, and
    /// forgotten when it broke.
    ///
    /// # Errors
    /// When `result` is an error.
    pub fn settle<T>(&self, result: Result<T, RedisError>) -> Result<T, StoreError> {
        result.map_err(|error| {
            if error.is_io_error()
                || error.is_connection_dropped()
                || error.is_connection_refusal()
                || error.is_timeout()
            {
                self.reset();
            }
            StoreError::with_source("Redis call failed", error)
        })
    }

    /// `call`, or an error once the timeout has passed (and the connection is made again).
    ///
    /// # Errors
    /// `call`'s error, or the timeout.
    pub async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                self.reset();
                Err(StoreError::new("Redis did not answer within the timeout"))
            }
        }
    }

    /// Pings the server within the timeout (readiness).
    ///
    /// # Errors
    /// When the server cannot be reached or does not answer in time.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let mut connection = self.get().await?;
            let answer: redis::RedisResult<String> =
                redis::cmd("PING").query_async(&mut connection).await;
            self.settle(answer).map(drop)
        })
        .await
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, Option<MultiplexedConnection>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
