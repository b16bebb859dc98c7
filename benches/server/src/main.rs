//! The server that `benches/load.sh` measures: the same two routes bare or under StreamGate.
//!
//! ```text
//! cargo run --release -p streamgate-bench-server -- --stack bare --port 3000
//! cargo run --release -p streamgate-bench-server -- --stack full --port 3001
//! cargo run --release -p streamgate-bench-server -- --layers metrics --port 3001
//! cargo run --release -p streamgate-bench-server -- --print-token   # the Authorization token to send
//! cargo run --release -p streamgate-bench-server --features redis -- --layers ratelimit --redis redis://127.0.0.1:6379
//! ```
//!
//! Routes: `GET /items/{id}` (a small JSON object), `POST /items` (a JSON body with `email` and
//! `name`, validated: bare deserializes and calls `validator`'s `validate()` by hand), and
//! `GET /metrics`. The layered server is [`streamgate::Stack`] with the chosen layers on (client
//! IP resolution is always on); every layer is configured so that the measured traffic passes:
//! wrk's one client IP is never rate limited. It runs on a current-thread runtime: `load.sh` pins
//! the process to one core.
//!
//! The hand-assembled ecosystem stack it is compared with is a separate program
//! (`benches/ecosystem`), so that its dependencies' features do not change this one's build.

use std::{collections::BTreeSet, process::ExitCode};

use axum::{
    Json, Router,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use streamgate::{
    Stack,
    audit::{AuditLogger, FileSink, FileSinkConfig, SigningKey},
    metrics::{MetricsRecorder, metrics_route},
    ratelimit::{Policy as RatePolicy, Quota, RateLimitLayer},
    security::{
        Issuer, JwtAuth, JwtKey, SecurityContextLayer,
        jsonwebtoken::{EncodingKey, Header, encode},
    },
    validate::{Sanitize, Valid, wire_names},
};

mod routes;

use routes::{ISSUER, NewItem, SECRET, create_item_by_hand, get_item, serve};

/// Every layer `--layers` accepts; `--stack full` turns on all of them.
const LAYERS: [&str; 7] = [
    "audit",
    "metrics",
    "ratelimit",
    "request_id",
    "security",
    "stack",
    "validate",
];

/// A token the security layer accepts, valid for a day.
fn bench_token() -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 86_400;
    let claims =
        serde_json::json!({"iss": ISSUER, "sub": "bench", "exp": exp, "roles": ["editor"]});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("HS256 signing cannot fail")
}

// The by-hand route sanitizes nothing, so neither does the extractor: the two do the same work.
impl Sanitize for NewItem {}
wire_names!(NewItem {});

async fn create_item(Valid(Json(item)): Valid<Json<NewItem>>) -> impl IntoResponse {
    (StatusCode::CREATED, item.name)
}

struct Args {
    layers: BTreeSet<String>,
    port: u16,
    /// The rate-limit layer decides on this Redis server instead of in memory.
    redis: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut layers = None;
    let mut port = 3000;
    let mut redis = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--stack" => {
                layers = Some(match value()?.as_str() {
                    "bare" => BTreeSet::new(),
                    "full" => LAYERS.iter().map(|l| (*l).to_owned()).collect(),
                    "stack" => BTreeSet::from(["stack".to_owned()]),
                    other => return Err(format!("--stack is bare, stack or full, not {other}")),
                });
            }
            "--layers" => {
                let list = value()?;
                let chosen: BTreeSet<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                if let Some(unknown) = chosen.iter().find(|l| !LAYERS.contains(&l.as_str())) {
                    return Err(format!(
                        "unknown layer {unknown}; layers: {}",
                        LAYERS.join(",")
                    ));
                }
                layers = Some(chosen);
            }
            "--redis" => redis = Some(value()?),
            "--print-token" => {
                println!("{}", bench_token());
                std::process::exit(0);
            }
            "--port" => {
                port = value()?.parse().map_err(|e| format!("--port: {e}"))?;
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        layers: layers.unwrap_or_default(),
        port,
        redis,
    })
}

/// The shared Redis store (built with `--features redis`).
#[cfg(feature = "redis")]
fn redis_store(
    url: &str,
    stack: &Stack,
) -> std::sync::Arc<dyn streamgate::ratelimit::RateLimitStore> {
    let store = streamgate::ratelimit::RedisStore::builder(url)
        .metrics(stack.layer_metrics())
        .build()
        .expect("a valid Redis URL");
    std::sync::Arc::new(store)
}

#[cfg(not(feature = "redis"))]
fn redis_store(
    _url: &str,
    _stack: &Stack,
) -> std::sync::Arc<dyn streamgate::ratelimit::RateLimitStore> {
    eprintln!(
        "bench_server: --redis needs the `redis` feature (cargo build -p streamgate-bench-server --features redis)"
    );
    std::process::exit(2)
}

/// The router; call inside the runtime (the audit writer is a tokio task).
fn app(args: &Args) -> Router {
    let layers = &args.layers;
    let on = |layer: &str| layers.contains(layer);
    let create = if on("validate") {
        post(create_item)
    } else {
        post(create_item_by_hand)
    };
    let routes = Router::new()
        .route("/items/{id}", get(get_item))
        .route("/items", create);
    if layers.is_empty() {
        return routes.route("/metrics", metrics_route(MetricsRecorder::new()));
    }
    // `--layers stack`: the Stack with every optional layer off, the base the others add to.
    let mut stack = Stack::new("bench")
        .request_ids(on("request_id"))
        .metrics(on("metrics"))
        .validation(on("validate"))
        .no_rate_limits();
    if on("ratelimit") {
        // One policy per client IP, far above what one wrk client can send.
        let mut limit = RateLimitLayer::builder()
            .policy(RatePolicy::new(
                "per-ip",
                Quota::per_second(10_000_000).burst(10_000_000),
            ))
            .metrics(stack.layer_metrics());
        if let Some(url) = args.redis.as_deref() {
            limit = limit.store(redis_store(url, &stack));
        }
        let limit = limit.build().expect("a valid rate limit");
        stack = stack.rate_limit(limit);
    }
    if on("audit") {
        // The default policy: POST /items is recorded, GET /items/{id} is not. The file sink
        // writes to a temporary directory named after the process (load.sh removes it).
        let dir =
            std::env::temp_dir().join(format!("streamgate-bench-audit-{}", std::process::id()));
        let key = SigningKey::new(&[7; 32]).expect("a 32-byte key");
        let sink = FileSink::open(FileSinkConfig::new(dir, key)).expect("an audit directory");
        let logger = AuditLogger::builder()
            .sink(sink)
            .metrics(stack.layer_metrics())
            .start();
        stack = stack.audit(logger);
    }
    if on("security") {
        let jwt = JwtAuth::builder()
            .issuer(Issuer::new(ISSUER).key(JwtKey::hmac(SECRET)))
            .build()
            .expect("a valid JWT configuration");
        let layer = SecurityContextLayer::builder()
            .jwt(jwt)
            .metrics(stack.layer_metrics())
            .build();
        stack = stack.security(layer);
    }
    let routes = if on("metrics") {
        routes
    } else {
        routes.route("/metrics", metrics_route(MetricsRecorder::new()))
    };
    stack.apply(routes)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench_server: {message}");
            return ExitCode::from(2);
        }
    };
    let layers: Vec<&str> = args.layers.iter().map(String::as_str).collect();
    let listening = format!(" with layers [{}]", layers.join(","));
    serve("bench_server", args.port, &listening, || app(&args))
}
