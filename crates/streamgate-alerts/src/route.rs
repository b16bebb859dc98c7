//! `GET /alerts`: the active alerts and the health they give.

use axum::{Json, extract::State, routing::MethodRouter};
use serde::Serialize;

use crate::{Alert, Alerts, Health};

#[derive(Serialize)]
struct AlertsPage {
    health: Health,
    alerts: Vec<Alert>,
}

/// A `GET` route answering the pending and firing alerts as JSON, with the health they give:
/// `{"health":"degraded","alerts":[...]}`. Mount it at `/alerts` (the `Stack` does).
pub fn alerts_route<S>(alerts: Alerts) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    axum::routing::get(|State(alerts): State<Alerts>| async move {
        Json(AlertsPage {
            health: alerts.health(),
            alerts: alerts.active(),
        })
    })
    .with_state(alerts)
}
