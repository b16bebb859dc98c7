//! Runs `N` requests through the audit layer, for instruction counts under callgrind.
//!
//! Modes: `bare` (no layer), `get` (a plain GET under the default policy, not recorded) and
//! `every` (every POST recorded at `Metadata` into the file sink; the run ends with
//! `shutdown().await`, so the writer's work is included). Run each mode with `N` and `2N`
//! requests; the difference of the totals divided by `N` is the cost of one request, and the
//! difference to `bare` is what the layer adds.
//!
//! ```text
//! cargo build --profile bench -p streamgate-audit --example audit_cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/every-20k.out \
//!     target/release/examples/audit_cost every 20000
//! ```

use std::{convert::Infallible, hint::black_box, sync::Arc};

use axum::body::Body;
use http::{HeaderValue, Request, Response};
use streamgate_audit::{
    AuditLayer, AuditLogger, AuditPolicy, FileSink, FileSinkConfig, Level, SigningKey,
};
use streamgate_core::{ClientIp, RouteTemplate};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_http::request_id::RequestId;

fn request(method: &str) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(http::Uri::from_static("/items/7"))
        .body(Body::empty())
        .unwrap();
    let extensions = request.extensions_mut();
    extensions.insert(RouteTemplate(Arc::from("/items/{id}")));
    extensions.insert(ClientIp("203.0.113.9".parse().unwrap()));
    extensions.insert(RequestId::new(HeaderValue::from_static(
        "0b9c3d64-1f0e-4a8e-9a57-2f0d1c3b4a5e",
    )));
    request
}

async fn ok(_request: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::empty()))
}

async fn run<S>(service: &mut S, method: &str, n: u64)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    for i in 0..n {
        let response = service.ready().await.unwrap().call(request(method)).await;
        black_box(response.unwrap());
        if i % 256 == 255 {
            // Lets the writer take what has gathered, as a server's I/O waits would.
            tokio::task::yield_now().await;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "get".to_owned());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A third argument keeps the log in that directory, to look at.
    let temp = tempfile::tempdir().unwrap();
    let dir = args
        .next()
        .map_or_else(|| temp.path().to_owned(), Into::into);
    runtime.block_on(async {
        let key = SigningKey::new(&[9; 32]).unwrap();
        let sink = FileSink::open(FileSinkConfig::new(&dir, key).retention(None)).unwrap();
        let logger = AuditLogger::builder().sink(sink).capacity(16_384).start();
        match mode.as_str() {
            "bare" => run(&mut service_fn(ok), "POST", n).await,
            "get" => {
                let mut service = ServiceBuilder::new()
                    .layer(AuditLayer::new(logger.clone()))
                    .service(service_fn(ok));
                run(&mut service, "GET", n).await;
            }
            "every" => {
                let mut service = ServiceBuilder::new()
                    .layer(
                        AuditLayer::new(logger.clone())
                            .policy(AuditPolicy::record_everything(Level::Metadata)),
                    )
                    .service(service_fn(ok));
                run(&mut service, "POST", n).await;
            }
            other => panic!("unknown mode {other}: bare, get or every"),
        }
        logger.shutdown().await;
    });
}
