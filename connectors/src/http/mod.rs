//! The HTTP plumbing every connector shares: one client per account ([`account`]: base
//! URL, credentials, rate limit, timeouts) over one connection pool per process (a user
//! agent, keep-alive); transport failures and status codes classified into
//! [`SendError`]s; `Retry-After` in seconds or as an HTTP date.

pub mod account;
pub mod limits;

pub use account::{AccountClient, Auth};

use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::SendError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// The user agent every request carries.
pub const USER_AGENT: &str = concat!("switchboard/", env!("CARGO_PKG_VERSION"));

/// A configured HTTP client.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    timeout: Duration,
}

/// A response read in full.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The client every request of the process shares (its connections kept alive).
fn pool() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .ok()
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Result<HttpClient, String> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpClient { client, timeout })
    }

    /// The process's connection pool, with `timeout` for messages (each request sets
    /// its own).
    pub fn shared(timeout: Duration) -> HttpClient {
        #[cfg(not(test))]
        let pool = {
            static POOL: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
            POOL.get_or_init(pool).clone()
        };
        // Unit tests each run on a runtime of their own, in parallel: a connection pooled
        // by one test (its task on that test's runtime) is dead once that runtime ends,
        // and a mock server of another test may get its port. One pool per test thread.
        #[cfg(test)]
        let pool = {
            thread_local! {
                static POOL: Option<reqwest::Client> = pool();
            }
            POOL.with(Clone::clone)
        };
        HttpClient {
            client: pool.unwrap_or_default(),
            timeout,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Send a request and read the whole response. Transport failures (timeouts,
    /// refused connections) come back as transient [`SendError`]s.
    pub async fn execute(&self, request: reqwest::RequestBuilder) -> Result<Response, SendError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| self.transport_error(e))?;
        crate::confine::check_url(request.url()).map_err(SendError::permanent)?;
        let response = client
            .execute(request)
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> SendError {
        // A request that cannot even be built (a header value with a line break) fails
        // the same way every time: retrying it would never end.
        if e.is_builder() {
            return SendError::permanent(format!(
                "the request cannot be built: {}",
                root_cause(&e)
            ));
        }
        let reason = if e.is_timeout() {
            format!("timed out after {}", humanize(self.timeout))
        } else if e.is_connect() {
            // Where it tried (scheme, host and port only: a query may hold a key), and
            // the likely fix.
            let place = e
                .url()
                .map(|u| {
                    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                    format!(" to {}://{}{port}", u.scheme(), u.host_str().unwrap_or("?"))
                })
                .unwrap_or_default();
            format!(
                "cannot connect{place}: {} (is the service — or `switchboard sandbox` — reachable there? check the account's base_url)",
                root_cause(&e).to_lowercase()
            )
        } else {
            format!("request failed: {}", root_cause(&e))
        };
        SendError::Transient {
            reason,
            retry_after: None,
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Classify a non-success response. `code` and `message` are the service's own, read
/// from its error body by the connector.
pub fn classify(response: &Response, code: Option<String>, message: String) -> SendError {
    let status = response.status;
    let message = if message.trim().is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("{message} (HTTP {})", status.as_u16())
    };
    match status.as_u16() {
        401 => SendError::Unauthorized { code, message },
        408 | 425 | 429 | 500..=599 => SendError::Transient {
            reason: match code {
                Some(code) => format!("{code}: {message}"),
                None => message,
            },
            retry_after: retry_after(&response.headers, Utc::now()),
        },
        _ => SendError::Permanent { code, message },
    }
}

/// `Retry-After`: delta seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}

/// The common `{code, message}` error body (8x8, CINNOX), or the body's text.
pub fn error_body(body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => {
            let code = json.get("code").and_then(|c| match c {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let message = json
                .get("message")
                .and_then(|m| m.as_str())
                .map(String::from)
                .unwrap_or_else(|| snippet(body));
            (code, message)
        }
        Err(_) => (None, snippet(body)),
    }
}

/// The service's id for what it accepted: the first of `keys` in a JSON answer that holds
/// text or a number.
pub fn id_in(body: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match body.get(*k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Percent-encode a URL path segment or query value ([`engine::encode_component`]).
pub use engine::encode_component;

/// At most 300 characters of a body, for an error message.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_string()
    }
}

/// A prepared request's method, as reqwest wants it.
pub fn method(method: engine::Method) -> Result<reqwest::Method, SendError> {
    use engine::Method as M;
    Ok(match method {
        M::Get => reqwest::Method::GET,
        M::Head => reqwest::Method::HEAD,
        M::Post => reqwest::Method::POST,
        M::Put => reqwest::Method::PUT,
        M::Patch => reqwest::Method::PATCH,
        M::Delete => reqwest::Method::DELETE,
        M::Options => reqwest::Method::OPTIONS,
        M::Smtp => {
            return Err(SendError::permanent(
                "an e-mail is not an HTTP request (a bug: this receiver sends over SMTP)",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn response(status: u16, retry: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(r) = retry {
            headers.insert(
                RETRY_AFTER,
                HeaderValue::from_str(r).unwrap_or(HeaderValue::from_static("0")),
            );
        }
        Response {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            headers,
            body: Vec::new(),
        }
    }

    #[test]
    fn statuses_are_told_apart() {
        assert!(matches!(
            classify(&response(401, None), None, "x".into()),
            SendError::Unauthorized { .. }
        ));
        assert!(matches!(
            classify(&response(400, None), None, "x".into()),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify(&response(404, None), None, "x".into()),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify(&response(503, None), None, "x".into()),
            SendError::Transient { .. }
        ));
        match classify(&response(429, Some("7")), None, "slow down".into()) {
            SendError::Transient { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("429 must be transient, got {other:?}"),
        }
    }

    #[test]
    fn retry_after_accepts_an_http_date() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sat, 21 Nov 2026 12:00:30 GMT"),
        );
        let now =
            DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            retry_after(&headers, now.unwrap_or_default()),
            Some(Duration::from_secs(30))
        );
    }
}
