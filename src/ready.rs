//! `/health/ready`: the readiness probe, over the shared engines the stack uses and the checks a
//! service adds with [`Stack::readiness_check`](crate::Stack::readiness_check).
//!
//! Every check runs at each probe, concurrently, each bounded by [`CHECK_TIMEOUT`]. All pass:
//! `200` with `{"status": "ready", "checks": {"<name>": "ok", ...}}`. One fails: `503` with a
//! problem+json body whose `checks` member says `ok`, `failed` or `timed out` for each check;
//! why a check failed is logged (`tracing`, target `streamgate::ready`), never sent, since an
//! engine's error can name hosts and users.

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use serde_json::{Map, Value};
use streamgate_core::Problem;

/// The path of the readiness probe.
pub const READY_PATH: &str = "/health/ready";

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a readiness check returns: `Err` with why it is not ready (logged, not sent).
pub type ReadyFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type Check = Arc<dyn Fn() -> ReadyFuture + Send + Sync>;

/// The named checks `/health/ready` runs.
#[derive(Clone, Default)]
pub(crate) struct Readiness {
    checks: Vec<(Arc<str>, Check)>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Readiness {
    /// Adds `check` under `name`, replacing a check of the same name.
    pub(crate) fn add<F, Fut, E>(&mut self, name: &str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let check: Check = Arc::new(move || {
            let running = check();
            Box::pin(async move { running.await.map_err(|e| e.to_string()) })
        });
        self.checks.retain(|(known, _)| **known != *name);
        self.checks.push((name.into(), check));
    }

    /// Adds every check of `other`.
    pub(crate) fn extend(&mut self, other: &Self) {
        for (name, check) in &other.checks {
            self.checks.retain(|(known, _)| known != name);
            self.checks.push((name.clone(), check.clone()));
        }
    }

    /// The route answering the probe.
    pub(crate) fn route<S>(self) -> MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        get(move || {
            let readiness = self.clone();
            async move { readiness.probe(CHECK_TIMEOUT).await }
        })
    }

    /// Runs every check concurrently and answers with their verdicts.
    async fn probe(&self, timeout: Duration) -> Response {
        let mut running = tokio::task::JoinSet::new();
        for (index, (_, check)) in self.checks.iter().enumerate() {
            let future = check();
            running.spawn(async move { (index, tokio::time::timeout(timeout, future).await) });
        }
        let mut verdicts = vec!["failed"; self.checks.len()];
        while let Some(joined) = running.join_next().await {
            let Ok((index, outcome)) = joined else {
                continue; // a check that panicked stays "failed"
            };
            let name = &self.checks[index].0;
            verdicts[index] = match outcome {
                Ok(Ok(())) => "ok",
                Ok(Err(error)) => {
                    tracing::warn!(target: "streamgate::ready", check = %name, %error, "not ready");
                    "failed"
                }
                Err(_) => {
                    tracing::warn!(target: "streamgate::ready", check = %name, ?timeout, "not ready: timed out");
                    "timed out"
                }
            };
        }
        let failing: Vec<&str> = self
            .checks
            .iter()
            .zip(&verdicts)
            .filter(|(_, verdict)| **verdict != "ok")
            .map(|((name, _), _)| &**name)
            .collect();
        let checks: Map<String, Value> = self
            .checks
            .iter()
            .zip(verdicts)
            .map(|((name, _), verdict)| (name.to_string(), Value::from(verdict)))
            .collect();
        if failing.is_empty() {
            return Json(serde_json::json!({"status": "ready", "checks": checks})).into_response();
        }
        Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_title("Not Ready")
            .with_detail(format!("not ready: {}", failing.join(", ")))
            .with_member("checks", checks)
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn every_check_ok_is_ready_and_one_failing_or_hanging_is_not() {
        let mut readiness = Readiness::default();
        readiness.add("store", || async { Ok::<_, String>(()) });
        let (status, json) = body(readiness.probe(CHECK_TIMEOUT).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json,
            serde_json::json!({"status": "ready", "checks": {"store": "ok"}})
        );

        readiness.add("database", || async {
            Err::<(), _>("connection refused by db.internal:5432")
        });
        readiness.add("queue", std::future::pending::<Result<(), String>>);
        let (status, json) = body(readiness.probe(CHECK_TIMEOUT).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json["detail"], "not ready: database, queue");
        assert_eq!(
            json["checks"],
            serde_json::json!({"store": "ok", "database": "failed", "queue": "timed out"})
        );
        assert!(!json.to_string().contains("db.internal"), "{json}");
    }

    #[tokio::test]
    async fn a_check_added_twice_runs_once_with_the_latest() {
        let mut readiness = Readiness::default();
        readiness.add("store", || async { Err::<(), _>("down") });
        readiness.add("store", || async { Ok::<_, String>(()) });
        let (status, json) = body(readiness.probe(CHECK_TIMEOUT).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["checks"], serde_json::json!({"store": "ok"}));
    }
}
