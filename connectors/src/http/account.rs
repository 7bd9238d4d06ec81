//! One HTTP client per account: its base URL, how it proves who it is (a bearer token, a
//! named header, several headers, a key in the query), the rate limit it shares with
//! every flow using the account, and the timeout of each call. Every request a
//! connector makes for an account — a send, a look-up, a subscription, an account check
//! — goes through it, so none bypasses the account's pace or its credentials' handling.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::SendError;
use flows::{RateLimit, Secret};
use reqwest::Method;
use serde_json::Value;

use super::limits::{self, Limiter};
use super::{HttpClient, Response};

/// How an account's requests prove who sends them.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Nothing (a public endpoint, or auth the caller adds per request).
    None,
    /// `Authorization: Bearer <secret>`.
    Bearer(Secret),
    /// One header holding the secret (`x-api-key`, `TokenAsms`).
    Header(&'static str, Secret),
    /// Several headers, each a secret (the generic HTTP account's).
    Headers(Vec<(String, Secret)>),
    /// The secret as a query parameter (`?key=` for Google's API keys).
    Query(&'static str, Secret),
    /// The secret as the first path segment after the base URL, behind a prefix
    /// (Telegram's `/bot<token>/sendMessage`). Only the request on the wire holds it:
    /// [`AccountClient::url`], which previews and history show, does not.
    PathPrefix(&'static str, Secret),
}

/// An account's client.
#[derive(Clone)]
pub struct AccountClient {
    base: String,
    auth: Auth,
    /// Headers every request carries that are not secrets (Aranda's `UrlAsms`).
    headers: Vec<(&'static str, String)>,
    limiter: Option<Limiter>,
    /// The URL last asked for, parsed: a flow sends to one URL again and again, and
    /// parsing it each time (its host checked as an international name) was ~4 % of a
    /// single send's instructions.
    last_url: Arc<Mutex<Option<(String, reqwest::Url)>>>,
}

impl AccountClient {
    /// A client for account `name` (which keys the shared rate limit) at `base`.
    pub fn new(name: &str, base: &str, auth: Auth, limit: RateLimit) -> AccountClient {
        AccountClient {
            base: base.trim_end_matches('/').to_string(),
            auth,
            headers: Vec::new(),
            limiter: limits::shared(name, limit),
            last_url: Arc::default(),
        }
    }

    /// A header every request carries (not a secret).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The URL of `path` under the base URL; an absolute URL is kept as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        if path.is_empty() {
            return self.base.clone();
        }
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// The URL a request goes to: [`AccountClient::url`], with the secret in its path
    /// for an account that puts it there.
    fn wire_url(&self, url: String) -> String {
        match &self.auth {
            Auth::PathPrefix(prefix, secret) if url.starts_with(&self.base) => format!(
                "{}/{prefix}{}{}",
                self.base,
                secret.expose(),
                &url[self.base.len()..]
            ),
            _ => url,
        }
    }

    /// `url` parsed, from the last parse when it is the URL asked for last.
    fn parsed(&self, url: &str) -> Option<reqwest::Url> {
        let mut last = self.last_url.lock().ok()?;
        if let Some((text, parsed)) = last.as_ref() {
            if text == url {
                return Some(parsed.clone());
            }
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        *last = Some((url.to_string(), parsed.clone()));
        Some(parsed)
    }

    /// A request to `url` (absolute, or a path under the base URL).
    pub fn request(&self, method: Method, url: &str, timeout: Duration) -> Call<'_> {
        let http = HttpClient::shared(timeout);
        let url = self.wire_url(self.url(url));
        let builder = match self.parsed(&url) {
            Some(parsed) => http.client().request(method, parsed),
            // Not a URL: reqwest says so when the call is sent.
            None => http.client().request(method, url),
        }
        .timeout(timeout);
        Call {
            account: self,
            http,
            builder,
        }
    }

    /// The call a prepared request describes: its method and URL, and its body as JSON
    /// unless it has none (`null`).
    pub fn prepared(
        &self,
        request: &engine::Prepared,
        timeout: Duration,
    ) -> Result<Call<'_>, SendError> {
        let call = self.request(super::method(request.method)?, &request.url, timeout);
        Ok(if request.body.is_null() {
            call
        } else {
            call.json(&request.body)
        })
    }

    pub fn get(&self, url: &str, timeout: Duration) -> Call<'_> {
        self.request(Method::GET, url, timeout)
    }

    pub fn post(&self, url: &str, timeout: Duration) -> Call<'_> {
        self.request(Method::POST, url, timeout)
    }
}

/// One request being built.
pub struct Call<'a> {
    account: &'a AccountClient,
    http: HttpClient,
    builder: reqwest::RequestBuilder,
}

impl Call<'_> {
    /// A JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    /// A body as it is, with its content type.
    pub fn body(mut self, content_type: &str, body: String) -> Self {
        self.builder = self.builder.header("content-type", content_type).body(body);
        self
    }

    /// Query parameters.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.builder = self.builder.query(pairs);
        self
    }

    /// A header for this request only.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// `Authorization: Bearer <token>` for this request only (a token fetched per call).
    pub fn bearer(mut self, token: &str) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }

    /// Wait for the account's turn, add its credentials, send, and read the whole answer.
    /// Transport failures come back classified; statuses are the caller's to read.
    pub async fn send(self) -> Result<Response, SendError> {
        limits::wait(&self.account.limiter).await;
        let mut builder = self.builder;
        for (name, value) in &self.account.headers {
            builder = builder.header(*name, value);
        }
        builder = match &self.account.auth {
            Auth::None => builder,
            Auth::Bearer(secret) => builder.bearer_auth(secret.expose()),
            Auth::Header(name, secret) => builder.header(*name, secret.expose()),
            Auth::Headers(headers) => headers.iter().fold(builder, |b, (name, secret)| {
                b.header(name.as_str(), secret.expose())
            }),
            Auth::Query(name, secret) => builder.query(&[(*name, secret.expose())]),
            // Put in the URL when the request was made.
            Auth::PathPrefix(..) => builder,
        };
        self.http.execute(builder).await
    }

    /// [`Call::send`], and a status other than 2xx as its classified error, with the
    /// service's code and message read from the body the usual way ([`super::error_body`]).
    pub async fn send_ok(self) -> Result<Response, SendError> {
        let response = self.send().await?;
        if response.status.is_success() {
            return Ok(response);
        }
        let (code, message) = super::error_body(&response.body);
        Err(super::classify(&response, code, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// The parse kept from one request must never send another to the wrong place.
    #[tokio::test]
    async fn each_request_goes_to_its_own_url_whatever_was_asked_before() {
        let server = MockServer::start().await;
        for (at, status) in [("/a", 201), ("/b", 202), ("/other/c", 203)] {
            Mock::given(method("GET"))
                .and(path(at))
                .respond_with(ResponseTemplate::new(status))
                .mount(&server)
                .await;
        }
        let account = AccountClient::new(
            "each_request_goes_to_its_own_url",
            &format!("{}/", server.uri()),
            Auth::None,
            RateLimit::Off,
        );
        let timeout = Duration::from_secs(5);
        let absolute = format!("{}/other/c", server.uri());
        let mut statuses = Vec::new();
        for url in ["a", "a", "/b", "a", absolute.as_str(), "b"] {
            let response = account.get(url, timeout).send().await;
            statuses.push(response.map(|r| r.status.as_u16()).unwrap_or(0));
        }
        assert_eq!(statuses, [201, 201, 202, 201, 203, 202]);
        // Not a URL: refused when sent, and the next good one still goes out.
        let bad = AccountClient::new("not_a_url", "http://[::1", Auth::None, RateLimit::Off);
        assert!(bad.get("x", timeout).send().await.is_err());
        let response = account.get("b", timeout).send().await;
        assert_eq!(response.map(|r| r.status.as_u16()).unwrap_or(0), 202);
    }
}
