//! The seed's upload service, wrapped in every StreamGate layer with embedded defaults.
//!
//! ```text
//! cargo run --example upload_service                       # listens on 127.0.0.1:8080
//! cargo run --example upload_service -- --addr 127.0.0.1:9000
//! STREAMGATE_ADDR=127.0.0.1:9000 cargo run --example upload_service
//! cargo run --example upload_service -- --config streamgate.yaml
//! ```
//!
//! It stores file metadata with an owner wallet (in memory), fetches it by id and lists it by
//! owner:
//!
//! ```text
//! curl -s -XPOST localhost:8080/files -H 'content-type: application/json' \
//!   -d '{"name":"cat.png","size_bytes":1024,"content_type":"image/png",
//!        "owner":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}'
//! curl -s localhost:8080/files/<id>
//! curl -s localhost:8080/owners/0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed/files
//! curl -s localhost:8080/metrics
//! ```

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, RwLock},
    time::SystemTime,
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
    Config, Stack,
    core::{EthAddress, Problem},
};
use uuid::Uuid;

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFile {
    name: String,
    size_bytes: u64,
    content_type: String,
    owner: String,
}

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

async fn create_file(State(store): State<Store>, Json(new): Json<NewFile>) -> Response {
    let owner = match EthAddress::parse(&new.owner) {
        Ok(owner) => owner,
        Err(reason) => return bad_request(format!("owner: {reason}")),
    };
    if new.name.trim().is_empty() || new.name.len() > 255 {
        return bad_request("name: between 1 and 255 characters".to_owned());
    }
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

async fn get_file(State(store): State<Store>, Path(id): Path<Uuid>) -> Response {
    let files = store
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match files.by_id.get(&id) {
        Some(file) => Json(file.clone()).into_response(),
        None => Problem::new(StatusCode::NOT_FOUND)
            .with_detail("no file has this id")
            .into_response(),
    }
}

async fn list_by_owner(State(store): State<Store>, Path(owner): Path<String>) -> Response {
    let owner = match EthAddress::parse(&owner) {
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

/// The listen address and the stack, from the flags, the environment and the config file.
fn setup() -> Result<(SocketAddr, Stack), String> {
    let mut args = std::env::args().skip(1);
    let mut addr = std::env::var("STREAMGATE_ADDR").ok();
    let mut config_path = None;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--addr" => addr = Some(args.next().ok_or("--addr needs a value")?),
            "--config" => config_path = Some(args.next().ok_or("--config needs a file")?),
            other => {
                return Err(format!(
                    "unknown flag {other} (use --addr HOST:PORT, --config FILE)"
                ));
            }
        }
    }
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let addr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let stack = match config_path {
        Some(path) => {
            let config = Config::from_file(&path).map_err(|e| e.to_string())?;
            Stack::from_config(&config).map_err(|e| e.to_string())?
        }
        None => Stack::new("upload"),
    };
    Ok((addr, stack))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (addr, stack) = match setup() {
        Ok(setup) => setup,
        Err(message) => {
            eprintln!("upload_service: {message}");
            return ExitCode::from(2);
        }
    };
    let routes = Router::new()
        .route("/files", post(create_file))
        .route("/files/{id}", get(get_file))
        .route("/owners/{owner}/files", get(list_by_owner))
        .with_state(Store::default());
    let app = stack.apply(routes);

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
    println!("  GET  http://{addr}/health/live");
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("upload_service: {error}");
            ExitCode::FAILURE
        }
    }
}
