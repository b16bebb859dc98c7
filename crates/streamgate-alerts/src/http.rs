//! The HTTP client of the webhook and Alertmanager handlers.

use std::time::Duration;

use crate::HandlerError;

/// Why a handler could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerConfigError(pub(crate) String);

impl std::fmt::Display for HandlerConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandlerConfigError {}

/// A client that posts JSON to one URL.
#[derive(Debug, Clone)]
pub(crate) struct JsonPoster {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl JsonPoster {
    /// Checks `url` (http, or https with the `https` feature) and builds the client; each request
    /// may take at most `timeout`.
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Self, HandlerConfigError> {
        install_crypto_provider();
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| HandlerConfigError(format!("`{url}` is not a URL: {e}")))?;
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        let builder = match parsed.scheme() {
            "http" => builder,
            "https" => https(builder, url)?,
            other => {
                return Err(HandlerConfigError(format!(
                    "`{url}`: the scheme must be http or https, not {other}"
                )));
            }
        };
        let client = builder
            .build()
            .map_err(|e| HandlerConfigError(format!("cannot build a client for `{url}`: {e}")))?;
        Ok(Self {
            client,
            url: parsed,
        })
    }

    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Posts `body` (JSON); an answer other than 2xx is an error naming the status.
    pub(crate) async fn post(&self, body: Vec<u8>) -> Result<(), HandlerError> {
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| HandlerError(format!("POST {}: {e}", self.url)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(HandlerError(format!(
                "POST {}: answered {status}",
                self.url
            )))
        }
    }
}

/// Installs ring as rustls's process provider unless one is installed: reqwest built with
/// rustls (by this crate's `https` feature or another crate's) needs one to build any client.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(feature = "https")]
fn https(
    builder: reqwest::ClientBuilder,
    _url: &str,
) -> Result<reqwest::ClientBuilder, HandlerConfigError> {
    Ok(builder.https_only(true))
}

#[cfg(not(feature = "https"))]
fn https(
    _builder: reqwest::ClientBuilder,
    url: &str,
) -> Result<reqwest::ClientBuilder, HandlerConfigError> {
    Err(HandlerConfigError(format!(
        "`{url}` is https: enable the `https` feature of streamgate-alerts"
    )))
}
