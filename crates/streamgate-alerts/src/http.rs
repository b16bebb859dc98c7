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
#[derive(Clone)]
pub(crate) struct JsonPoster {
    client: reqwest::Client,
    url: reqwest::Url,
    /// The URL as messages show it: without its user and password.
    shown: String,
}

impl std::fmt::Debug for JsonPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonPoster")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// `url` as messages may show it: a user and password in it (`https://user:pass@host/`, a
/// webhook's credentials) become `***`. Works on text that is not a URL too.
pub(crate) fn without_credentials(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        ),
        None => url.to_owned(),
    }
}

impl JsonPoster {
    /// Checks `url` (http, or https with the `https` feature) and builds the client; each request
    /// may take at most `timeout`.
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Self, HandlerConfigError> {
        install_crypto_provider();
        let shown = without_credentials(url);
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| HandlerConfigError(format!("`{shown}` is not a URL: {e}")))?;
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        let builder = match parsed.scheme() {
            "http" => builder,
            "https" => https(builder, &shown)?,
            other => {
                return Err(HandlerConfigError(format!(
                    "`{shown}`: the scheme must be http or https, not {other}"
                )));
            }
        };
        let client = builder
            .build()
            .map_err(|e| HandlerConfigError(format!("cannot build a client for `{shown}`: {e}")))?;
        Ok(Self {
            client,
            url: parsed,
            shown,
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
            .map_err(|e| HandlerError(format!("POST {}: {}", self.shown, e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(HandlerError(format!(
                "POST {}: answered {status}",
                self.shown
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
        "`{url}` is https: enable the `https` feature of streamgate-alerts (of streamgate, \
         through the facade)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_are_not_shown() {
        for (url, shown) in [
            (
                "http://hookuser:s3cretpass@127.0.0.1:9/hook",
                "http://***@127.0.0.1:9/hook",
            ),
            (
                "https://TOKEN@hooks.example.com/x?a=b@c",
                "https://***@hooks.example.com/x?a=b@c",
            ),
            ("ftp://user:pass@am", "ftp://***@am"),
            ("user:pass@host/path", "***@host/path"),
            ("http://127.0.0.1:9093/", "http://127.0.0.1:9093/"),
            ("http://host/a@b", "http://host/a@b"),
        ] {
            assert_eq!(without_credentials(url), shown, "{url}");
        }
    }

    #[test]
    fn errors_do_not_show_the_password() {
        let error = JsonPoster::new("ftp://user:s3cretpass@am", Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(
            !error.contains("s3cretpass") && error.contains("***@am"),
            "{error}"
        );
        let error = JsonPoster::new("http://user:s3cretpass@[::1", Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(!error.contains("s3cretpass"), "{error}");
    }

    #[tokio::test]
    async fn a_failed_post_does_not_show_the_password() {
        // Nothing listens on port 9 of the loopback address.
        let poster = JsonPoster::new(
            "http://hookuser:s3cretpass@127.0.0.1:9/hook",
            Duration::from_secs(5),
        )
        .unwrap();
        let error = poster.post(b"{}".to_vec()).await.unwrap_err().0;
        assert!(!error.contains("s3cretpass"), "{error}");
        assert!(!error.contains("hookuser"), "{error}");
        assert!(error.contains("http://***@127.0.0.1:9/hook"), "{error}");
    }
}
