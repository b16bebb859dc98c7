//! The seed's upload service, wrapped in every StreamGate layer with embedded defaults.
//!
//! ```text
//! cargo run --example upload_service                       # listens on 127.0.0.1:8080
//! cargo run --example upload_service -- --addr 127.0.0.1:9000
//! cargo run --example upload_service -- --prometheus-rules > rules.yml   # for Prometheus
//! STREAMGATE_ADDR=127.0.0.1:9000 cargo run --example upload_service
//! cargo run --example upload_service -- --config my-service.yaml  # the layers it describes
//! ```
//!
//! With `--config`, the file (and `STREAMGATE__` variables) decide every layer instead of the
//! demo's settings below: `streamgate.yaml`, with every key at its default, has no
//! `security.auth`, so uploads then answer 401.
//!
//! It stores file metadata with an owner wallet (in memory), fetches it by id and lists it by
//! owner. Reads are public; uploading needs the `files:write` permission, which the `uploader`
//! role has: at start the service prints a token with that role (signed with a key made for this
//! run). Bodies are sanitized and validated; every client IP is rate limited with the seed's
//! defaults; every request is measured at `/metrics`, and the seed's alert rules (error rate,
//! p99 latency) are evaluated over it and listed at `/alerts`; `GET /files/{id}` is answered
//! from the response cache for 30 s (`x-cache: HIT`); uploads and refusals are written to a
//! hash-chained, signed audit trail in a temporary directory (printed at start, with the command
//! that verifies it). The service flushes the trail and writes its final checkpoint when stopped
//! with Ctrl-C or SIGTERM (`docker stop`, `systemctl stop`).
//!
//! ```text
//! TOKEN=...   # printed at start
//! curl -s -XPOST localhost:8080/files -H "authorization: Bearer $TOKEN" \
//!   -H 'content-type: application/json' \
//!   -d '{"name":"cat.png","size_bytes":1024,"content_type":"image/png",
//!        "owner":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}'
//! curl -s localhost:8080/files/<id>
//! curl -s localhost:8080/owners/0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed/files
//! curl -s localhost:8080/metrics
//! curl -s localhost:8080/alerts
//! ```

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use streamgate::{
    Config, SecureHeaders, Stack,
    audit::{AuditLogger, FileSink, FileSinkConfig, SigningKey},
    cache::{CacheLayer, CacheRoute},
    core::{EthAddress, Problem, SecurityContext},
    security::{
        Issuer, JwtAuth, JwtKey, Policy, Rbac, Role, RouteTable, SecurityContextLayer,
        jsonwebtoken::{EncodingKey, Header, encode},
    },
    validate::{Sanitize, Sanitizer, Valid, validate_address, wire_names},
};
use uuid::Uuid;
use validator::Validate;

/// What the service knows about one uploaded file.
#[derive(Debug, Clone, Serialize)]
struct FileMetadata {
    id: Uuid,
    name: String,
    size_bytes: u64,
    content_type: String,
    owner: EthAddress,
    uploaded_at_unix: u64,
}

/// The body of `POST /files`.
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct NewFile {
    #[validate(length(min = 1, max = 255))]
    name: String,
    #[validate(range(min = 1, max = 10_737_418_240_u64))]
    size_bytes: u64,
    #[validate(length(min = 3, max = 127))]
    content_type: String,
    #[validate(custom(function = validate_address))]
    owner: String,
}

impl Sanitize for NewFile {
    fn sanitize(&mut self) {
        Sanitizer::TEXT.max_chars(255).apply(&mut self.name);
        Sanitizer::IDENTIFIER.apply(&mut self.content_type);
        Sanitizer::IDENTIFIER.apply(&mut self.owner);
    }
}

wire_names!(NewFile {});

/// The path of `GET /files/{id}`: a UUID, or a 422 problem+json naming `/id`.
#[derive(Debug, Deserialize, Validate)]
struct FilePath {
    id: Uuid,
}

impl Sanitize for FilePath {}

wire_names!(FilePath {});

/// The path of `GET /owners/{owner}/files`: an Ethereum address (EIP-55 checksummed when mixed
/// case), or a 422 problem+json naming `/owner`.
#[derive(Debug, Deserialize, Validate)]
struct OwnerPath {
    #[validate(custom(function = validate_address))]
    owner: String,
}

impl Sanitize for OwnerPath {
    fn sanitize(&mut self) {
        Sanitizer::IDENTIFIER.apply(&mut self.owner);
    }
}

wire_names!(OwnerPath {});

#[derive(Debug, Default)]
struct Files {
    by_id: HashMap<Uuid, FileMetadata>,
    by_owner: HashMap<EthAddress, Vec<Uuid>>,
}

type Store = Arc<RwLock<Files>>;

fn bad_request(detail: String) -> Response {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
        .with_detail(detail)
        .into_response()
}

async fn create_file(
    State(store): State<Store>,
    uploader: SecurityContext,
    Valid(Json(new)): Valid<Json<NewFile>>,
) -> Response {
    let owner = match EthAddress::parse(&new.owner) {
        Ok(owner) => owner,
        Err(reason) => return bad_request(format!("owner: {reason}")),
    };
    tracing::info!(uploader = uploader.user_id(), %owner, "file registered");
    let metadata = FileMetadata {
        id: Uuid::now_v7(),
        name: new.name,
        size_bytes: new.size_bytes,
        content_type: new.content_type,
        owner,
        uploaded_at_unix: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let mut files = store
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    files.by_owner.entry(owner).or_default().push(metadata.id);
    files.by_id.insert(metadata.id, metadata.clone());
    (StatusCode::CREATED, Json(metadata)).into_response()
}

async fn get_file(
    State(store): State<Store>,
    Valid(Path(path)): Valid<Path<FilePath>>,
) -> Response {
    let files = store
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match files.by_id.get(&path.id) {
        Some(file) => Json(file.clone()).into_response(),
        None => Problem::new(StatusCode::NOT_FOUND)
            .with_detail("no file has this id")
            .into_response(),
    }
}

async fn list_by_owner(
    State(store): State<Store>,
    Valid(Path(path)): Valid<Path<OwnerPath>>,
) -> Response {
    let owner = match EthAddress::parse(&path.owner) {
        Ok(owner) => owner,
        Err(reason) => return bad_request(format!("owner: {reason}")),
    };
    let files = store
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let listed: Vec<&FileMetadata> = files
        .by_owner
        .get(&owner)
        .into_iter()
        .flatten()
        .filter_map(|id| files.by_id.get(id))
        .collect();
    Json(listed).into_response()
}

/// The listen address and the stack, from the flags, the environment and the config file, and
/// whether to print the alert rules for Prometheus instead of serving.
const USAGE: &str = "usage: upload_service [--addr HOST:PORT] [--config FILE] [--prometheus-rules]
  --addr HOST:PORT     where to listen (default 127.0.0.1:8080, or STREAMGATE_ADDR)
  --config FILE        the layers FILE describes instead of the demo's (STREAMGATE__ variables
                       override its keys); uploads then need the `security.auth` FILE sets up
  --prometheus-rules   print the alert rules as a Prometheus rule file and exit";

/// What the command line asks for.
enum Command {
    /// Serve on this address.
    Serve(SocketAddr, Stack),
    /// Print the alert rules.
    PrintRules(Stack),
    /// Print the usage.
    Help,
}

fn setup() -> Result<Command, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = std::env::var("STREAMGATE_ADDR").ok();
    let mut config_path = None;
    let mut print_rules = false;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--addr" => addr = Some(args.next().ok_or("--addr needs a value")?),
            "--config" => config_path = Some(args.next().ok_or("--config needs a file")?),
            "--prometheus-rules" => print_rules = true,
            "--help" | "-h" => return Ok(Command::Help),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let addr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let stack = match config_path {
        Some(path) => {
            let config = Config::from_file(&path).map_err(|e| e.to_string())?;
            Stack::from_config(&config).map_err(|e| e.to_string())?
        }
        // The rules need neither a token nor an audit trail.
        None => demo_stack(!print_rules),
    };
    Ok(if print_rules {
        Command::PrintRules(stack)
    } else {
        Command::Serve(addr, stack)
    })
}

/// Prints the stack's alert rules as a Prometheus rule file.
async fn print_prometheus_rules(stack: &Stack) -> ExitCode {
    if let Some(logger) = stack.audit_logger() {
        logger.shutdown().await;
    }
    match stack.prometheus_rules() {
        Some(Ok(rules)) => {
            print!("{}", rules.yaml);
            for name in rules.left_out {
                eprintln!(
                    "upload_service: rule {name} reads a value reported in process; left out"
                );
            }
            ExitCode::SUCCESS
        }
        Some(Err(error)) => {
            eprintln!("upload_service: {error}");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("upload_service: alerts are off");
            ExitCode::FAILURE
        }
    }
}

const DEMO_ISSUER: &str = "https://demo.streamgate.local";

/// The embedded defaults plus a security context: JWTs signed with a key made for this run,
/// reads public, uploads for `uploader`s. When `serving`, prints a token to try it with and
/// opens the audit trail.
fn demo_stack(serving: bool) -> Stack {
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let jwt = JwtAuth::builder()
        .issuer(Issuer::new(DEMO_ISSUER).key(JwtKey::hmac(secret.as_bytes())))
        .build()
        .expect("a valid demo JWT configuration");
    let rbac = Rbac::builder()
        .role(Role::new("reader").permissions(["files:read"]))
        .role(
            Role::new("uploader")
                .inherits("reader")
                .permissions(["files:write"]),
        )
        .build()
        .expect("a valid role table");
    let stack = Stack::new("upload");
    let security = SecurityContextLayer::builder()
        .jwt(jwt)
        .allow_anonymous(true)
        .metrics(stack.layer_metrics())
        .build();
    let routes = RouteTable::new()
        .route_method(
            axum::http::Method::POST,
            "/files",
            Policy::permission("files:write"),
        )
        .route("/files/{id}", Policy::Public)
        .route("/owners/{owner}/files", Policy::Public);
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    let claims = serde_json::json!({"iss": DEMO_ISSUER, "sub": "demo-uploader", "exp": exp, "roles": ["uploader"]});
    if serving {
        match encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        ) {
            Ok(token) => eprintln!("demo token (role uploader, valid 1h): {token}"),
            Err(error) => eprintln!("upload_service: cannot sign the demo token: {error}"),
        }
    }
    // A file's metadata is the same for every caller and never changes: one shared entry.
    let cache = CacheLayer::builder()
        .route(
            "/files/{id}",
            CacheRoute::ttl(Duration::from_secs(30)).shared(),
        )
        .metrics(stack.layer_metrics())
        .build();
    let stack = stack
        .security(security)
        .authorize(rbac.route_table(routes))
        .cache(cache)
        .request_timeout(Duration::from_secs(30))
        .secure_headers(SecureHeaders::api());
    if !serving {
        return stack;
    }
    match demo_audit_logger(&stack) {
        Ok(logger) => stack.audit(logger),
        Err(message) => {
            eprintln!("upload_service: audit trail off: {message}");
            stack
        }
    }
}

/// A signed file audit trail in a fresh temporary directory, with a key from
/// `STREAMGATE_AUDIT_KEY` (hex) or, for this demo only, one made for this run. Only a key made
/// here is printed: one the operator supplied stays out of the terminal and its scrollback.
fn demo_audit_logger(stack: &Stack) -> Result<AuditLogger, String> {
    let (key_hex, generated) = match std::env::var("STREAMGATE_AUDIT_KEY") {
        Ok(key_hex) => (key_hex, false),
        Err(_) => (
            format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()),
            true,
        ),
    };
    let key_bytes =
        hex::decode(key_hex.trim()).map_err(|e| format!("STREAMGATE_AUDIT_KEY is not hex: {e}"))?;
    let key = SigningKey::new(&key_bytes).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("streamgate-demo-audit-{}", std::process::id()));
    let sink = FileSink::open(FileSinkConfig::new(dir.clone(), key)).map_err(|e| e.to_string())?;
    eprintln!("audit trail: {}", dir.display());
    if generated {
        eprintln!(
            "  signed with a key made for this run (STREAMGATE_AUDIT_KEY was not set); verify with:\n  \
             STREAMGATE_AUDIT_KEY={key_hex} cargo run -p streamgate-audit -- verify {}",
            dir.display()
        );
    } else {
        eprintln!(
            "  signed with the key in STREAMGATE_AUDIT_KEY; verify with:\n  \
             cargo run -p streamgate-audit -- verify {}",
            dir.display()
        );
    }
    Ok(AuditLogger::builder()
        .sink(sink)
        .metrics(stack.layer_metrics())
        .start())
}

/// The service's routes, before the stack wraps them.
fn routes() -> Router {
    Router::new()
        .route("/files", post(create_file))
        .route("/files/{id}", get(get_file))
        .route("/owners/{owner}/files", get(list_by_owner))
        .with_state(Store::default())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (addr, stack) = match setup() {
        Ok(Command::Serve(addr, stack)) => (addr, stack),
        Ok(Command::PrintRules(stack)) => return print_prometheus_rules(&stack).await,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("upload_service: {message}");
            return ExitCode::from(2);
        }
    };
    let app = stack.apply(routes());

    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("upload_service: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("upload_service listening on http://{addr}");
    println!("  POST http://{addr}/files");
    println!("  GET  http://{addr}/files/{{id}}");
    println!("  GET  http://{addr}/owners/{{wallet}}/files");
    println!("  GET  http://{addr}/metrics");
    println!("  GET  http://{addr}/alerts");
    println!("  GET  http://{addr}/health/live");
    println!("  GET  http://{addr}/health/ready");
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    // Tells the alert handlers the service stopped and flushes the audit trail.
    stack.shutdown().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("upload_service: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what `docker stop` and `systemctl stop` send), so
/// that either stop flushes the audit queue and writes the final checkpoint.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            eprintln!("upload_service: cannot listen for Ctrl-C: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                eprintln!("upload_service: cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// The status, content type and body of `GET uri` through the routes in the default stack.
    async fn get(uri: &str) -> (StatusCode, String, String) {
        let app = Stack::new("upload")
            .apply(routes())
            .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers()[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_bad_path_parameter_is_a_problem_that_names_it_without_its_value() {
        for (uri, pointer, value) in [
            ("/files/not-a-uuid", "\"/id\"", "not-a-uuid"),
            ("/owners/0x12zz/files", "\"/owner\"", "0x12zz"),
        ] {
            let (status, content_type, body) = get(uri).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
            assert_eq!(content_type, "application/problem+json", "{uri}");
            assert!(body.contains(pointer), "{uri}: {body}");
            assert!(!body.contains(value), "{uri} echoes its value: {body}");
        }
    }

    #[tokio::test]
    async fn valid_paths_reach_the_handlers() {
        let (status, content_type, _) = get(&format!("/files/{}", Uuid::nil())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(content_type, "application/problem+json");
        let (status, _, body) =
            get("/owners/0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed/files").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "[]");
    }
}
