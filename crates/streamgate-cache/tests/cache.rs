//! The cache layer over an axum router: hits, freshness under paused time, per-user keys,
//! what is never stored, request directives, invalidation and metrics.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

mod common;

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode},
    middleware,
    response::IntoResponse,
    routing::get,
};
use common::{Answer, header, test_identity};
use streamgate_cache::{CacheLayer, CacheRoute};
use streamgate_core::MetricsHandle;
use streamgate_metrics::MetricsRecorder;

const MINUTE: Duration = Duration::from_secs(60);

/// The app under test: each handler counts its calls and answers with the caller and the count.
struct App {
    router: Router,
    calls: Arc<AtomicU32>,
    recorder: MetricsRecorder,
}

fn app(layer: impl FnOnce(MetricsHandle) -> CacheLayer) -> App {
    let calls = Arc::new(AtomicU32::new(0));
    let recorder = MetricsRecorder::new();
    let counted = |calls: &Arc<AtomicU32>| {
        let calls = calls.clone();
        move || calls.fetch_add(1, Ordering::SeqCst) + 1
    };
    let (item, headers, big, write) = (
        counted(&calls),
        counted(&calls),
        counted(&calls),
        counted(&calls),
    );
    let slow = counted(&calls);
    let me = counted(&calls);
    let router = Router::new()
        .route(
            "/items/{id}",
            get(
                move |Path(id): Path<String>, request_headers: HeaderMap| async move {
                    let user = request_headers
                        .get("x-user")
                        .map_or("anonymous".into(), |v| v.to_str().unwrap().to_owned());
                    format!("item {id} for {user}, call {}", item())
                },
            )
            .put(move || async move {
                write();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/with/{case}",
            get(move |Path(case): Path<String>| async move {
                let call = headers();
                let mut response = format!("call {call}").into_response();
                let (name, value) = match case.as_str() {
                    "no-store" => ("cache-control", "no-store"),
                    "private" => ("cache-control", "private, max-age=60"),
                    "short" => ("cache-control", "max-age=1"),
                    "cookie" => ("set-cookie", "session=1"),
                    "vary-other" => ("vary", "x-other"),
                    "vary-accept" => ("vary", "Accept"),
                    "not-found" => {
                        *response.status_mut() = StatusCode::NOT_FOUND;
                        ("x-case", "not-found")
                    }
                    _ => ("x-case", "plain"),
                };
                response
                    .headers_mut()
                    .insert(name, HeaderValue::from_static(value));
                response
            }),
        )
        .route(
            "/items/me",
            get(move || async move { format!("me, call {}", me()) }),
        )
        .route(
            "/slow",
            get(move || async move {
                let call = slow();
                tokio::time::sleep(Duration::from_secs(1)).await;
                format!("slow, call {call}")
            })
            .put(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/big",
            get(move || async move {
                big();
                "x".repeat(100)
            }),
        )
        .layer(layer(MetricsHandle::new(recorder.clone())))
        .layer(middleware::from_fn(test_identity));
    App {
        router,
        calls,
        recorder,
    }
}

fn default_layer(metrics: MetricsHandle) -> CacheLayer {
    CacheLayer::builder()
        .route("/items/{id}", CacheRoute::ttl(MINUTE))
        .route("/items/me", CacheRoute::ttl(MINUTE))
        .route("/with/{case}", CacheRoute::ttl(MINUTE))
        .route("/big", CacheRoute::ttl(MINUTE))
        .route("/slow", CacheRoute::ttl(MINUTE))
        .max_body_bytes(64)
        .metrics(metrics)
        .build()
}

impl App {
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        common::send(&self.router, method, path, headers).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[]).await
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[tokio::test(start_paused = true)]
async fn a_stored_response_is_served_until_its_ttl_passes() {
    let app = app(default_layer);
    let first = app.get("/items/1").await;
    assert_eq!(first.body, "item 1 for anonymous, call 1");
    assert_eq!(
        header(&first, "cache-status"),
        "streamgate; fwd=uri-miss; stored"
    );
    assert_eq!(header(&first, "x-cache"), "MISS");

    tokio::time::advance(Duration::from_secs(20)).await;
    let hit = app.get("/items/1").await;
    assert_eq!(hit.status, StatusCode::OK);
    assert_eq!(hit.body, "item 1 for anonymous, call 1");
    assert_eq!(header(&hit, "cache-status"), "streamgate; hit; ttl=40");
    assert_eq!(header(&hit, "x-cache"), "HIT");
    assert_eq!(header(&hit, "age"), "20");
    assert_eq!(header(&hit, "content-type"), "text/plain; charset=utf-8");

    let other_query = app.get("/items/1?page=2").await;
    assert_eq!(
        other_query.body, "item 1 for anonymous, call 2",
        "the query is in the key"
    );

    tokio::time::advance(Duration::from_secs(40)).await;
    let stale = app.get("/items/1").await;
    assert_eq!(stale.body, "item 1 for anonymous, call 3");
    assert_eq!(header(&stale, "x-cache"), "MISS");
    assert_eq!(app.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn each_user_has_their_own_entries_and_credentials_without_a_context_bypass() {
    let app = app(default_layer);
    let ada = app.send("GET", "/items/1", &[("x-user", "ada")]).await;
    let bob = app.send("GET", "/items/1", &[("x-user", "bob")]).await;
    assert_eq!(ada.body, "item 1 for ada, call 1");
    assert_eq!(
        bob.body, "item 1 for bob, call 2",
        "bob never gets ada's answer"
    );
    let ada_again = app.send("GET", "/items/1", &[("x-user", "ada")]).await;
    assert_eq!(ada_again.body, "item 1 for ada, call 1");
    let anonymous = app.get("/items/1").await;
    assert_eq!(anonymous.body, "item 1 for anonymous, call 3");

    for credentials in [("authorization", "Bearer abc"), ("cookie", "session=1")] {
        let answer = app.send("GET", "/items/1", &[credentials]).await;
        assert_eq!(header(&answer, "cache-status"), "streamgate; fwd=bypass");
        assert_eq!(header(&answer, "x-cache"), "BYPASS");
    }
    assert_eq!(app.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_shared_route_has_one_entry_for_every_caller() {
    let app = app(|metrics| {
        CacheLayer::builder()
            .route("/items/{id}", CacheRoute::ttl(MINUTE).shared())
            .metrics(metrics)
            .build()
    });
    app.send("GET", "/items/1", &[("x-user", "ada")]).await;
    let bob = app
        .send(
            "GET",
            "/items/1",
            &[("x-user", "bob"), ("authorization", "x")],
        )
        .await;
    assert_eq!(bob.body, "item 1 for ada, call 1");
    assert_eq!(header(&bob, "x-cache"), "HIT");
}

#[tokio::test(start_paused = true)]
async fn responses_that_forbid_or_escape_the_key_are_not_stored() {
    let app = app(default_layer);
    for case in ["no-store", "cookie", "vary-other", "not-found", "private"] {
        let path = format!("/with/{case}");
        let first = app.get(&path).await;
        let second = app.get(&path).await;
        assert_ne!(first.body, second.body, "{case} was served from the cache");
        assert_eq!(
            header(&second, "cache-status"),
            "streamgate; fwd=uri-miss",
            "{case}"
        );
    }
    // A private response is kept for its own user.
    app.send("GET", "/with/private", &[("x-user", "ada")]).await;
    let own = app.send("GET", "/with/private", &[("x-user", "ada")]).await;
    assert_eq!(header(&own, "x-cache"), "HIT");
    // Varying on a header of the key is fine.
    app.get("/with/vary-accept").await;
    assert_eq!(
        header(&app.get("/with/vary-accept").await, "x-cache"),
        "HIT"
    );
    let json = app
        .send(
            "GET",
            "/with/vary-accept",
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(
        header(&json, "x-cache"),
        "MISS",
        "another Accept is another entry"
    );
    // An Accept on two lines is their list, not its first line.
    let both = [("accept", "text/plain"), ("accept", "application/json")];
    app.send("GET", "/with/vary-accept", &both).await;
    assert_eq!(
        header(
            &app.send("GET", "/with/vary-accept", &both).await,
            "x-cache"
        ),
        "HIT"
    );
    let one_line = [("accept", "text/plain, application/json")];
    assert_eq!(
        header(
            &app.send("GET", "/with/vary-accept", &one_line).await,
            "x-cache"
        ),
        "HIT",
        "the same list on one line"
    );
    let plain = [("accept", "text/plain")];
    assert_eq!(
        header(
            &app.send("GET", "/with/vary-accept", &plain).await,
            "x-cache"
        ),
        "MISS",
        "the first line alone is another entry"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shorter_max_age_wins_over_the_route_ttl() {
    let app = app(default_layer);
    app.get("/with/short").await;
    assert_eq!(header(&app.get("/with/short").await, "x-cache"), "HIT");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(header(&app.get("/with/short").await, "x-cache"), "MISS");
}

#[tokio::test(start_paused = true)]
async fn bodies_over_the_limit_are_sent_whole_and_not_stored() {
    let app = app(default_layer);
    let first = app.get("/big").await;
    assert_eq!(first.body.len(), 100);
    assert_eq!(header(&first, "cache-status"), "streamgate; fwd=uri-miss");
    let second = app.get("/big").await;
    assert_eq!(second.body.len(), 100);
    assert_eq!(app.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn request_directives_skip_the_stored_answer() {
    let app = app(default_layer);
    app.get("/items/1").await;
    let refreshed = app
        .send("GET", "/items/1", &[("cache-control", "no-cache")])
        .await;
    assert_eq!(refreshed.body, "item 1 for anonymous, call 2");
    assert_eq!(
        header(&refreshed, "cache-status"),
        "streamgate; fwd=request; stored"
    );
    assert_eq!(
        app.get("/items/1").await.body,
        "item 1 for anonymous, call 2",
        "refreshed"
    );

    let unstored = app
        .send("GET", "/items/1", &[("cache-control", "no-store")])
        .await;
    assert_eq!(unstored.body, "item 1 for anonymous, call 3");
    assert_eq!(header(&unstored, "cache-status"), "streamgate; fwd=request");
    assert_eq!(
        app.get("/items/1").await.body,
        "item 1 for anonymous, call 2"
    );
}

/// Entries are kept by the path as sent, since the router routes by it: `/items/%6De` reaches
/// `/items/{id}` where `/items/me` is a route of its own, and must not answer for it. A write
/// removes the entries of every spelling of its path.
#[tokio::test(start_paused = true)]
async fn spellings_of_a_path_are_entries_of_their_own_that_a_write_to_any_removes() {
    let app = app(default_layer);
    let encoded = app.get("/items/%6De").await;
    assert_eq!(encoded.body, "item me for anonymous, call 1");
    let me = app.get("/items/me").await;
    assert_eq!(
        (header(&me, "x-cache"), me.body.as_str()),
        ("MISS", "me, call 2")
    );
    assert_eq!(header(&app.get("/items/%6De").await, "x-cache"), "HIT");
    assert_eq!(header(&app.get("/items/me").await, "x-cache"), "HIT");
    app.send("PUT", "/items/%61", &[]).await;
    app.get("/items/a").await;
    app.get("/items/%61").await;
    app.send("PUT", "/items/a", &[]).await;
    for path in ["/items/a", "/items/%61"] {
        assert_eq!(header(&app.get(path).await, "x-cache"), "MISS", "{path}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_successful_write_removes_its_paths_entries_and_metrics_count_it_all() {
    let app = app(default_layer);
    app.get("/items/1").await;
    app.get("/items/2").await;
    assert_eq!(header(&app.get("/items/1").await, "x-cache"), "HIT");
    assert_eq!(
        app.send("PUT", "/items/1", &[]).await.status,
        StatusCode::NO_CONTENT
    );
    let after = app.get("/items/1").await;
    assert_eq!(
        header(&after, "x-cache"),
        "MISS",
        "the write removed /items/1"
    );
    assert_eq!(
        header(&app.get("/items/2").await, "x-cache"),
        "HIT",
        "not /items/2"
    );

    app.send("GET", "/items/1", &[("authorization", "Bearer x")])
        .await;
    let text = app.recorder.render();
    for expected in [
        r#"streamgate_cache_lookups_total{result="hit"} 2"#,
        r#"streamgate_cache_lookups_total{result="miss"} 3"#,
        r#"streamgate_cache_lookups_total{result="bypass"} 1"#,
        "streamgate_cache_stores_total 3",
        "streamgate_cache_invalidations_total 1",
        "# HELP streamgate_cache_lookups_total",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_of_one_key_send_one_request_on() {
    let app = Arc::new(app(default_layer));
    let mut waiting = Vec::new();
    for _ in 0..10 {
        let app = app.clone();
        waiting.push(tokio::spawn(async move { app.get("/slow").await }));
    }
    let mut answers = Vec::new();
    for handle in waiting {
        answers.push(handle.await.unwrap());
    }
    assert_eq!(app.calls(), 1, "one request went to the handler");
    assert!(answers.iter().all(|a| a.body == "slow, call 1"));
    let misses = answers
        .iter()
        .filter(|a| header(a, "x-cache") == "MISS")
        .count();
    assert_eq!(misses, 1);
    let text = app.recorder.render();
    assert!(
        text.contains(r#"streamgate_cache_lookups_total{result="collapsed"} 9"#),
        "{text}"
    );
}

/// A write while a miss is being fetched: the answer, read before the write, is not stored
/// after it (with a no-cache request too).
#[tokio::test(start_paused = true)]
async fn a_response_fetched_before_a_write_is_not_stored_after_it() {
    let app = Arc::new(app(default_layer));
    for asked in [&[][..], &[("cache-control", "no-cache")]] {
        let fetching = {
            let app = app.clone();
            tokio::spawn(async move { app.send("GET", "/slow", asked).await })
        };
        let before = app.calls();
        while app.calls() == before {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            app.send("PUT", "/slow", &[]).await.status,
            StatusCode::NO_CONTENT
        );
        let old = fetching.await.unwrap();
        assert!(
            !header(&old, "cache-status").ends_with("; stored"),
            "{asked:?}: {}",
            header(&old, "cache-status")
        );
        assert_eq!(
            header(&app.get("/slow").await, "x-cache"),
            "MISS",
            "{asked:?}"
        );
        // Without a write in between, the answer is stored.
        assert_eq!(
            header(&app.get("/slow").await, "x-cache"),
            "HIT",
            "{asked:?}"
        );
        app.send("PUT", "/slow", &[]).await;
    }
}

#[tokio::test(start_paused = true)]
async fn waiters_go_on_by_themselves_when_the_first_request_is_cancelled() {
    let app = Arc::new(app(default_layer));
    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.get("/slow").await })
    };
    tokio::task::yield_now().await;
    let second = {
        let app = app.clone();
        tokio::spawn(async move { app.get("/slow").await })
    };
    tokio::task::yield_now().await;
    first.abort();
    let answer = second.await.unwrap();
    assert_eq!(answer.body, "slow, call 2");
    assert_eq!(
        header(&answer, "cache-status"),
        "streamgate; fwd=uri-miss; stored"
    );
    assert_eq!(app.calls(), 2);
}

/// The value of the unlabelled series `name` in `text`.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_full_memory_store_evicts_counts_it_and_reports_its_size() {
    let app = app(|metrics| {
        CacheLayer::builder()
            .route("/items/{id}", CacheRoute::ttl(MINUTE))
            .max_entries(10)
            .metrics(metrics)
            .build()
    });
    for id in 0..200 {
        app.get(&format!("/items/{id}")).await;
    }
    let text = app.recorder.render();
    assert_eq!(series(&text, "streamgate_cache_stores_total"), 200.0);
    let held = series(&text, "streamgate_cache_entries");
    assert!((1.0..=10.0).contains(&held), "{held} entries held");
    let evicted = series(&text, "streamgate_cache_evictions_total");
    assert!(evicted >= 180.0, "{evicted} evictions\n{text}");
    assert!(
        text.contains("# HELP streamgate_cache_evictions_total"),
        "{text}"
    );
}
