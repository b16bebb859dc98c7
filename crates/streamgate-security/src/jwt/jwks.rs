//! JWKS sources: a file or a URL, fetched when a token names an unknown `kid`, at most once per
//! refresh interval.

use std::{fmt, future::Future, net::IpAddr, path::PathBuf, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use crate::ConfigError;

/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

type FetchFuture = Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>;

/// Fetches a JWKS document; implement it to bring your own HTTP client (for example an https
/// client with the TLS set-up of your service).
pub trait JwksFetch: Send + Sync + 'static {
    /// Fetches the document's bytes.
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>;
}

impl<F, Fut> JwksFetch for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Bytes, String>> + Send + 'static,
{
    fn fetch(&self) -> FetchFuture {
        Box::pin(self())
    }
}

/// Where an issuer's JSON Web Key Set comes from.
///
/// The keys are (re)loaded when a token names a `kid` that is not known yet, at most once per
/// [`refresh_interval`](JwksSource::refresh_interval) (default 60 s), so a flood of tokens with
/// made-up `kid`s causes at most one fetch per interval.
#[derive(Clone)]
pub struct JwksSource {
    location: Location,
    pub(crate) refresh_interval: Duration,
    timeout: Duration,
}

#[derive(Clone)]
enum Location {
    File(PathBuf),
    Http(Uri),
    #[cfg(feature = "https")]
    Https(reqwest::Client, String),
    Custom(Arc<dyn JwksFetch>),
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = match &self.location {
            Location::File(path) => path.display().to_string(),
            Location::Http(uri) => uri.to_string(),
            #[cfg(feature = "https")]
            Location::Https(_, url) => url.clone(),
            Location::Custom(_) => "custom".to_owned(),
        };
        f.debug_struct("JwksSource")
            .field("location", &location)
            .field("refresh_interval", &self.refresh_interval)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl JwksSource {
    fn with(location: Location) -> Self {
        Self {
            location,
            refresh_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
        }
    }

    /// A JWKS document in a file, read at start-up and re-read on an unknown `kid`.
    #[must_use]
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::with(Location::File(path.into()))
    }

    /// A JWKS URL. `https` needs this crate's `https` feature (reqwest with rustls; the ring
    /// provider is installed as the process default when none is) or your own client through
    /// [`JwksSource::custom`]. Plain `http` is accepted only for a loopback host (`127.0.0.0/8`,
    /// `::1`, `localhost`) unless `allow_plain_http` is set.
    ///
    /// # Errors
    /// The URL does not parse, is neither `http` nor `https`, is `https` without the `https`
    /// feature, or is `http` to a non-loopback host without `allow_plain_http`.
    pub fn url(url: &str, allow_plain_http: bool) -> Result<Self, ConfigError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| ConfigError::new(format!("invalid JWKS URL `{url}`: {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return https_source(url),
            _ => {
                return Err(ConfigError::new(format!(
                    "JWKS URL `{url}` must be http(s)"
                )));
            }
        }
        let host = uri
            .host()
            .ok_or_else(|| ConfigError::new(format!("JWKS URL `{url}` has no host")))?;
        if !allow_plain_http && !is_loopback(host) {
            return Err(ConfigError::new(format!(
                "JWKS URL `{url}` uses plain http to a non-loopback host; keys fetched that way \
                 can be replaced in transit. Use https, or allow plain http explicitly"
            )));
        }
        Ok(Self::with(Location::Http(uri)))
    }

    /// Keys fetched by your own client.
    #[must_use]
    pub fn custom(fetch: impl JwksFetch) -> Self {
        Self::with(Location::Custom(Arc::new(fetch)))
    }

    /// The shortest time between two fetches (default 60 s).
    #[must_use]
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// How long one fetch may take (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads a file source synchronously (start-up).
    pub(crate) fn read_file_now(&self) -> Option<Result<Vec<u8>, ConfigError>> {
        match &self.location {
            Location::File(path) => Some(std::fs::read(path).map_err(|e| {
                ConfigError::new(format!("cannot read JWKS file {}: {e}", path.display()))
            })),
            _ => None,
        }
    }

    pub(crate) async fn fetch(&self) -> Result<Bytes, String> {
        let fetch = async {
            match &self.location {
                Location::File(path) => tokio::fs::read(path)
                    .await
                    .map(Bytes::from)
                    .map_err(|e| format!("cannot read {}: {e}", path.display())),
                Location::Http(uri) => http_get(uri).await,
                #[cfg(feature = "https")]
                Location::Https(client, url) => https_get(client, url).await,
                Location::Custom(fetch) => fetch.fetch().await,
            }
        };
        match tokio::time::timeout(self.timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }
}

#[cfg(not(feature = "https"))]
fn https_source(url: &str) -> Result<JwksSource, ConfigError> {
    Err(ConfigError::new(format!(
        "JWKS URL `{url}` is https: enable the `https` feature of streamgate-security (of \
         streamgate, through the facade), or pass your own client with `JwksSource::custom`"
    )))
}

#[cfg(feature = "https")]
fn https_source(url: &str) -> Result<JwksSource, ConfigError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client = reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ConfigError::new(format!("cannot build the https client for `{url}`: {e}")))?;
    Ok(JwksSource::with(Location::Https(client, url.to_owned())))
}

#[cfg(feature = "https")]
async fn https_get(client: &reqwest::Client, url: &str) -> Result<Bytes, String> {
    let mut response = client
        .get(url)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("status {}", response.status()));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("body: {e}"))? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("document larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One GET over a fresh HTTP/1.1 connection.
async fn http_get(uri: &Uri) -> Result<Bytes, String> {
    let host = uri.host().ok_or("no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let target = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((target, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    if response.status() != StatusCode::OK {
        driver.abort();
        return Err(format!("status {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    driver.abort();
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        assert!(JwksSource::url("http://127.0.0.1:8080/jwks.json", false).is_ok());
        assert!(JwksSource::url("http://localhost/jwks.json", false).is_ok());
        assert!(JwksSource::url("http://[::1]:9/jwks", false).is_ok());
        let err = JwksSource::url("http://id.example.com/jwks.json", false).unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
        assert!(JwksSource::url("http://id.example.com/jwks.json", true).is_ok());
        assert!(JwksSource::url("ftp://id.example.com/jwks.json", true).is_err());
    }

    #[cfg(feature = "https")]
    #[test]
    fn https_urls_are_accepted_with_the_feature() {
        assert!(JwksSource::url("https://id.example.com/jwks.json", false).is_ok());
    }

    #[cfg(not(feature = "https"))]
    #[test]
    fn https_urls_explain_the_feature_without_it() {
        let err = JwksSource::url("https://id.example.com/jwks.json", false).unwrap_err();
        assert!(err.to_string().contains("`https` feature"), "{err}");
    }
}
