//! `streamgate_auth_decisions_total{source,decision,reason}`.

use std::sync::{Arc, OnceLock};

use metrics::Counter;
use streamgate_core::MetricsHandle;

use crate::{AuthDecision, AuthReason, AuthSource};

/// The counter's name.
pub const AUTH_DECISIONS_TOTAL: &str = "streamgate_auth_decisions_total";

const SLOTS: usize = AuthSource::ALL.len() * AuthReason::COUNT;

/// Decision counters: each (source, reason) series is registered once, on first use, and held.
#[derive(Clone)]
pub(crate) struct DecisionCounters {
    handle: MetricsHandle,
    slots: Arc<[OnceLock<Counter>]>,
}

impl std::fmt::Debug for DecisionCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionCounters")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl DecisionCounters {
    pub(crate) fn new(handle: MetricsHandle) -> Self {
        handle.describe_counter(
            AUTH_DECISIONS_TOTAL,
            "Authentication and authorization decisions, by credential source, decision and reason.",
        );
        Self {
            handle,
            slots: (0..SLOTS).map(|_| OnceLock::new()).collect(),
        }
    }

    pub(crate) fn record(&self, decision: AuthDecision) {
        let slot = decision.source.index() * AuthReason::COUNT + decision.reason.index();
        self.slots[slot]
            .get_or_init(|| {
                self.handle.counter(
                    AUTH_DECISIONS_TOTAL,
                    &[
                        ("source", decision.source.as_str()),
                        ("decision", decision.decision().as_str()),
                        ("reason", decision.reason.as_str()),
                    ],
                )
            })
            .increment(1);
    }
}
