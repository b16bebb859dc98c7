//! The [`RateLimit`] service and its response future.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use smallvec::SmallVec;
use streamgate_core::route_label_from;
use tower_service::Service;

use crate::{
    Check, Decision, RequestInfo, StoreFuture, header_value,
    layer::{FailMode, Plan, PolicyState, Shared},
    response::{self, RateHeaders, RateLimitValue, RateLimited},
    store::{Decisions, StoreResult},
};

type Checks = SmallVec<[Check; 4]>;
type Owners = SmallVec<[usize; 4]>;

/// The service made by [`RateLimitLayer`](crate::RateLimitLayer).
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> RateLimit<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Work left for after the inner service answered.
pub(crate) struct After {
    headers: Option<RateHeaders>,
    outcome: Option<Box<Outcome>>,
}

/// Outcome-based checks to charge when the response status matches.
struct Outcome {
    shared: Arc<Shared>,
    checks: SmallVec<[(Check, usize); 2]>,
}

impl After {
    const NOTHING: Self = Self {
        headers: None,
        outcome: None,
    };

    /// Adds the headers; charges matching outcome-based policies. Returns the charge when the
    /// store answers later: the response waits for it, so that the next request sees it.
    fn finish<B>(self, response: &mut Response<B>) -> Option<(StoreFuture, Arc<Shared>)> {
        if let Some(headers) = self.headers {
            headers.apply(response.headers_mut());
        }
        let outcome = self.outcome?;
        let status = response.status();
        let matching: SmallVec<[Check; 2]> = outcome
            .checks
            .iter()
            .filter(|(_, owner)| {
                outcome.shared.policies[*owner]
                    .counts
                    .as_ref()
                    .is_some_and(|counts| counts(status))
            })
            .map(|(check, _)| *check)
            .collect();
        if matching.is_empty() {
            return None;
        }
        let mut record = outcome.shared.store.record(&matching);
        match record.take_ready() {
            Some(result) => {
                outcome.shared.record_failed(result.err());
                None
            }
            None => Some((record, outcome.shared)),
        }
    }
}

/// Lets a store call finish on its own (re-charging policies after a shadow-limited batch).
fn detach(shared: &Arc<Shared>, mut future: StoreFuture) {
    match future.take_ready() {
        Some(result) => shared.record_failed(result.err()),
        None => {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let shared = shared.clone();
                handle.spawn(async move { shared.record_failed(future.await.err()) });
            }
        }
    }
}

enum Verdict<B> {
    Reject(Response<B>),
    Pass(After),
}

/// How the one-policy path went.
enum Single {
    /// The plan has several policies: build the batch.
    Several,
    /// The policy's key extractor found no key: the policy does not apply.
    NoKey,
    /// The store allowed the request and the policy is not outcome-based: nothing else to do.
    Allowed(After),
    /// Anything else (limited, outcome-based, a store error, a store that answers later): the
    /// general path takes it from here.
    Other {
        check: Check,
        owner: usize,
        store: StoreFuture,
        ready: Option<StoreResult>,
    },
}

impl Shared {
    /// Which plan applies to a request, or `None` when it is exempt.
    fn plan_for<B>(&self, request: &Request<B>) -> Option<usize> {
        if self.exempt_methods.contains(request.method()) {
            return None;
        }
        let index = if self.routes.is_empty() {
            0
        } else {
            let label = route_label_from(request.extensions());
            self.routes.get(label).copied().unwrap_or(0)
        };
        let plan = &self.plans[index];
        (!plan.exempt && !plan.policies.is_empty()).then_some(index)
    }

    /// Decides a plan of one policy (the common case) without building a batch: the store
    /// answers a single check, and an allowed decision becomes the headers directly.
    #[inline]
    fn single<B>(&self, plan: usize, request: &Request<B>) -> Single {
        let plan_state = &self.plans[plan];
        let [owner] = plan_state.policies[..] else {
            return Single::Several;
        };
        let policy = &self.policies[owner];
        let info = RequestInfo::of(request);
        let Some(key) = policy.key.extract(&info) else {
            return Single::NoKey;
        };
        let check = policy.check(key, plan_state.cost);
        let mut store = self.store.check(std::slice::from_ref(&check));
        let ready = store.take_ready();
        if let Some(Ok(decisions)) = &ready
            && let [decision] = decisions[..]
            && decision.is_allowed()
            && policy.counts.is_none()
        {
            policy.allowed.increment(1);
            let headers = self
                .headers
                .then(|| self.single_headers(plan_state, policy, &decision));
            return Single::Allowed(After {
                headers,
                outcome: None,
            });
        }
        Single::Other {
            check,
            owner,
            store,
            ready,
        }
    }

    /// The headers of a plan of one policy.
    fn single_headers(
        &self,
        plan: &Plan,
        policy: &PolicyState,
        decision: &Decision,
    ) -> RateHeaders {
        RateHeaders {
            ratelimit: header_value::ratelimit_value(
                policy.id.get(),
                &policy.value_prefix,
                decision.remaining(),
                response::whole_seconds(decision.reset()),
            ),
            policy: plan
                .policy_header
                .clone()
                .unwrap_or_else(|| HeaderValue::from_static("")),
            legacy: self
                .legacy_headers
                .then(|| response::legacy_headers(policy.quota.burst_size(), decision)),
        }
    }

    fn checks<B>(&self, plan: usize, request: &Request<B>) -> (Checks, Owners) {
        let plan = &self.plans[plan];
        let info = RequestInfo::of(request);
        let mut checks = Checks::new();
        let mut owners = Owners::new();
        for &index in &plan.policies {
            let policy = &self.policies[index];
            if let Some(key) = policy.key.extract(&info) {
                checks.push(policy.check(key, plan.cost));
                owners.push(index);
            }
        }
        (checks, owners)
    }

    fn evaluate<B: From<Bytes>>(
        self: &Arc<Self>,
        plan: usize,
        checks: &Checks,
        owners: &Owners,
        result: StoreResult,
    ) -> Verdict<B> {
        let decisions = match result {
            Ok(decisions) if decisions.len() == checks.len() => decisions,
            Ok(_) => return self.store_failed(&"the store answered a different number of checks"),
            Err(error) => return self.store_failed(&error),
        };
        let mut violated: SmallVec<[usize; 2]> = SmallVec::new();
        let mut retry_after = Duration::ZERO;
        let mut shadow_limited = false;
        for (decision, &owner) in decisions.iter().zip(owners) {
            let policy = &self.policies[owner];
            if decision.is_allowed() {
                policy.allowed.increment(1);
            } else if policy.shadow || self.shadow {
                policy.shadowed.increment(1);
                shadow_limited = true;
                if self.shadow_log.allow() {
                    tracing::info!(policy = %policy.name, "request over rate limit, let through in shadow mode (logged at most once a second; counted in streamgate_ratelimit_requests_total)");
                }
            } else {
                policy.limited.increment(1);
                violated.push(owner);
                retry_after = retry_after.max(decision.retry_after());
            }
        }
        let rejecting = !violated.is_empty();
        let headers =
            (self.headers || rejecting).then(|| self.rate_headers(plan, &decisions, owners));
        if rejecting {
            let body = if violated.len() == 1 {
                self.policies[violated[0]].reject_body.clone()
            } else {
                response::problem_body(violated.iter().map(|&o| &*self.policies[o].name))
            };
            let names = violated
                .iter()
                .map(|&o| self.policies[o].name.clone())
                .collect();
            return Verdict::Reject(response::too_many_requests(
                body,
                headers.unwrap_or_else(|| self.rate_headers(plan, &decisions, owners)),
                RateLimited::new(names, retry_after),
            ));
        }
        if shadow_limited {
            // The store took nothing for the batch; charge the policies that allowed it.
            let charge: SmallVec<[Check; 4]> = checks
                .iter()
                .zip(&decisions)
                .filter(|(check, decision)| {
                    decision.is_allowed() && check.mode() == crate::CheckMode::Consume
                })
                .map(|(check, _)| *check)
                .collect();
            if !charge.is_empty() {
                detach(self, self.store.record(&charge));
            }
        }
        if !self.plans[plan].has_outcome {
            return Verdict::Pass(After {
                headers,
                outcome: None,
            });
        }
        let outcome_checks: SmallVec<[(Check, usize); 2]> = checks
            .iter()
            .zip(owners)
            .filter(|(check, _)| check.mode() == crate::CheckMode::Peek)
            .map(|(check, owner)| (*check, *owner))
            .collect();
        let outcome = (!outcome_checks.is_empty()).then(|| {
            Box::new(Outcome {
                shared: self.clone(),
                checks: outcome_checks,
            })
        });
        Verdict::Pass(After { headers, outcome })
    }

    /// The `RateLimit` and `RateLimit-Policy` headers (and legacy ones) for the decisions.
    fn rate_headers(&self, plan: usize, decisions: &Decisions, owners: &Owners) -> RateHeaders {
        let plan = &self.plans[plan];
        let ratelimit = if let ([decision], [owner]) = (&decisions[..], &owners[..]) {
            let policy = &self.policies[*owner];
            header_value::ratelimit_value(
                policy.id.get(),
                &policy.value_prefix,
                decision.remaining(),
                response::whole_seconds(decision.reset()),
            )
        } else {
            let mut value = RateLimitValue::new();
            for (decision, &owner) in decisions.iter().zip(owners) {
                value.push(&self.policies[owner].name, decision);
            }
            value.into_header()
        };
        let policy = if owners.len() == plan.policies.len() {
            plan.policy_header.clone()
        } else {
            // A custom key left some policy out: list only those that applied.
            let text = owners
                .iter()
                .map(|&o| response::policy_item(&self.policies[o].name, &self.policies[o].quota))
                .collect::<Vec<_>>()
                .join(", ");
            HeaderValue::from_str(&text).ok()
        };
        let legacy = self.legacy_headers.then(|| {
            let (decision, owner) = decisions
                .iter()
                .zip(owners)
                .min_by_key(|(decision, _)| decision.remaining())
                .map_or((decisions[0], owners[0]), |(decision, owner)| {
                    (*decision, *owner)
                });
            response::legacy_headers(self.policies[owner].quota.burst_size(), &decision)
        });
        RateHeaders {
            ratelimit,
            policy: policy.unwrap_or_else(|| HeaderValue::from_static("")),
            legacy,
        }
    }

    /// Counts, and logs at a bounded rate, a charge the store could not make.
    fn record_failed(&self, error: Option<crate::StoreError>) {
        let Some(error) = error else { return };
        self.store_errors_unrecorded.increment(1);
        if self.store_error_log.allow() {
            tracing::warn!(%error, "rate-limit store could not record a response (logged at most once a second)");
        }
    }

    fn store_failed<B: From<Bytes>>(&self, error: &dyn fmt::Display) -> Verdict<B> {
        if self.store_error_log.allow() {
            tracing::warn!(%error, fail_mode = ?self.fail_mode, "rate-limit store could not decide (logged at most once a second)");
        }
        match self.fail_mode {
            FailMode::Open => {
                self.store_errors_allowed.increment(1);
                Verdict::Pass(After::NOTHING)
            }
            FailMode::Closed => {
                self.store_errors_rejected.increment(1);
                Verdict::Reject(response::store_unavailable())
            }
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let Some(plan) = self.shared.plan_for(&request) else {
            return ResponseFuture::calling(self.inner.call(request), After::NOTHING);
        };
        let (checks, owners, store, ready) = match self.shared.single(plan, &request) {
            Single::Several => {
                let (checks, owners) = self.shared.checks(plan, &request);
                if checks.is_empty() {
                    return ResponseFuture::calling(self.inner.call(request), After::NOTHING);
                }
                let mut store = self.shared.store.check(&checks);
                let ready = store.take_ready();
                (checks, owners, store, ready)
            }
            Single::NoKey => {
                return ResponseFuture::calling(self.inner.call(request), After::NOTHING);
            }
            Single::Allowed(after) => {
                return ResponseFuture::calling(self.inner.call(request), after);
            }
            Single::Other {
                check,
                owner,
                store,
                ready,
            } => (
                Checks::from_elem(check, 1),
                Owners::from_elem(owner, 1),
                store,
                ready,
            ),
        };
        match ready {
            Some(result) => match self.shared.evaluate(plan, &checks, &owners, result) {
                Verdict::Reject(response) => ResponseFuture::rejected(response),
                Verdict::Pass(after) => ResponseFuture::calling(self.inner.call(request), after),
            },
            None => {
                // The inner service was made ready for this request: take it, leave a clone.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    state: State::Waiting {
                        pending: Some(Box::new(Pending {
                            store,
                            request,
                            inner,
                            shared: self.shared.clone(),
                            plan,
                            checks,
                            owners,
                        })),
                    },
                }
            }
        }
    }
}

/// A request waiting for a store that answers later.
struct Pending<S, B> {
    store: StoreFuture,
    request: Request<B>,
    inner: S,
    shared: Arc<Shared>,
    plan: usize,
    checks: Checks,
    owners: Owners,
}

pin_project! {
    /// The response future of [`RateLimit`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Waiting {
            pending: Option<Box<Pending<S, B>>>,
        },
        Calling {
            #[pin]
            future: S::Future,
            after: Option<After>,
        },
        Rejected {
            response: Option<Box<S::Response>>,
        },
        Recording {
            record: StoreFuture,
            shared: Arc<Shared>,
            response: Option<Box<S::Response>>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn calling(future: S::Future, after: After) -> Self {
        Self {
            state: State::Calling {
                future,
                after: Some(after),
            },
        }
    }

    fn rejected(response: S::Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(Box::new(response)),
            },
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProj::Calling { future, after } => {
                    let mut response = ready!(future.poll(cx))?;
                    match after.take().and_then(|after| after.finish(&mut response)) {
                        None => return Poll::Ready(Ok(response)),
                        Some((record, shared)) => State::Recording {
                            record,
                            shared,
                            response: Some(Box::new(response)),
                        },
                    }
                }
                StateProj::Recording {
                    record,
                    shared,
                    response,
                } => {
                    let result = ready!(Pin::new(record).poll(cx));
                    shared.record_failed(result.err());
                    return Poll::Ready(Ok(*response
                        .take()
                        .expect("ResponseFuture polled after completion")));
                }
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(*response
                        .take()
                        .expect("ResponseFuture polled after completion")));
                }
                StateProj::Waiting { pending } => {
                    let waiting = pending
                        .as_mut()
                        .expect("ResponseFuture polled after completion");
                    let result = ready!(Pin::new(&mut waiting.store).poll(cx));
                    let Pending {
                        store: _,
                        request,
                        mut inner,
                        shared,
                        plan,
                        checks,
                        owners,
                    } = *pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    match shared.evaluate(plan, &checks, &owners, result) {
                        Verdict::Reject(response) => State::Rejected {
                            response: Some(Box::new(response)),
                        },
                        Verdict::Pass(after) => State::Calling {
                            future: inner.call(request),
                            after: Some(after),
                        },
                    }
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}
