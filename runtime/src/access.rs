//! Who may use the console and how a request proves it came from the console's own
//! pages. Off loopback the daemon has a token: the console asks for it once and keeps a
//! session cookie (HttpOnly, SameSite=Strict) signed with a key made at start-up (a
//! restart ends sessions). Every state-changing request, on loopback too, must carry the
//! page's anti-forgery token and must not come from another site (`Origin`,
//! `Sec-Fetch-Site`): a page elsewhere cannot switch a flow off or send SMS.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The names a request may call the daemon by (its `Host`), beside IP addresses and
/// `localhost`: a page on a name that rebinds to this machine's address is refused, so
/// it cannot read the API or drive the console as if it were the daemon's own.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    /// Names given with `--allow-host`, lower case.
    names: Vec<String>,
}

impl Hosts {
    pub fn new(names: impl IntoIterator<Item = String>) -> Hosts {
        Hosts {
            names: names
                .into_iter()
                .map(|n| n.trim().trim_end_matches('.').to_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Whether a request with this `Host` header may be answered: an IP address (no name
    /// to rebind), `localhost` (or a name under it), or a name given; no header (HTTP/1.0)
    /// is answered too.
    pub fn allow(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true;
        };
        let name = match host.strip_prefix('[') {
            // `[::1]:8080`
            Some(v6) => {
                return v6
                    .split(']')
                    .next()
                    .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
            }
            None => host.rsplit_once(':').map_or(host, |(name, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    name
                } else {
                    host
                }
            }),
        };
        let name = name.trim_end_matches('.').to_lowercase();
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

/// The session cookie's name.
pub const COOKIE: &str = "switchboard_session";

/// How long a session lasts.
const SESSION_SECS: u64 = 12 * 3600;

/// The daemon's console keys: made at start-up, never stored.
pub struct Keys {
    key: [u8; 32],
}

impl Default for Keys {
    fn default() -> Keys {
        Keys {
            key: rand::random(),
        }
    }
}

impl Keys {
    fn mac(&self, what: &[&str]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        for part in what {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// A new session's cookie value: `expiry.nonce.mac`.
    pub fn new_session(&self) -> String {
        let expiry = (now() + SESSION_SECS).to_string();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let mac = self.mac(&["session", &expiry, &nonce]);
        format!("{expiry}.{nonce}.{mac}")
    }

    /// Whether a cookie value is a session this daemon made and that has not expired.
    pub fn valid_session(&self, value: &str) -> bool {
        let mut parts = value.split('.');
        let (Some(expiry), Some(nonce), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let fresh = expiry.parse::<u64>().is_ok_and(|at| at > now());
        fresh
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                mac.as_bytes(),
                self.mac(&["session", expiry, nonce]).as_bytes(),
            ))
    }

    /// The anti-forgery token of pages served to `session` (empty without one).
    pub fn csrf(&self, session: &str) -> String {
        self.mac(&["csrf", session])
    }
}

/// The `Set-Cookie` value for a session (`Secure` is left out: the daemon serves plain
/// HTTP; put TLS in front of it off loopback).
pub fn set_cookie(value: &str) -> String {
    // No Max-Age: the browser forgets it when it closes; the value itself expires after
    // SESSION_SECS whatever the browser keeps.
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict")
}

/// A path on this server to go to after signing in: `/…`, never `//host` or `/\host`
/// (which browsers read as another site), nor anything with a scheme or control
/// characters; otherwise `/`.
pub fn local_path(next: &str) -> &str {
    let off_site = !next.starts_with('/')
        || next.starts_with("//")
        || next.contains('\\')
        || next.chars().any(char::is_control);
    if off_site {
        "/"
    } else {
        next
    }
}

/// Wrong tokens tried at the sign-in page: past [`SignIns::MAX_FAILURES`] in a minute,
/// every sign-in waits for the minute to pass, so a token cannot be guessed by rote.
#[derive(Default)]
pub struct SignIns {
    failures: std::sync::Mutex<std::collections::VecDeque<std::time::Instant>>,
}

impl SignIns {
    /// Wrong tokens a minute before sign-ins wait.
    pub const MAX_FAILURES: usize = 10;

    /// How long until a sign-in may be tried (`None`: now).
    pub fn wait(&self) -> Option<std::time::Duration> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let minute = std::time::Duration::from_secs(60);
        while failures.front().is_some_and(|at| at.elapsed() >= minute) {
            failures.pop_front();
        }
        (failures.len() >= Self::MAX_FAILURES).then(|| {
            failures
                .front()
                .map_or(minute, |at| minute.saturating_sub(at.elapsed()))
        })
    }

    /// A wrong token was tried.
    pub fn failed(&self) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.push_back(std::time::Instant::now());
        if failures.len() > Self::MAX_FAILURES * 4 {
            failures.pop_front();
        }
    }
}

/// The `Set-Cookie` value that ends a session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session cookie a request carries, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE)
}

/// The value of the cookie `wanted` a request carries, if any.
pub fn cookie_named(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_string())
}

/// Without a token (on loopback) nobody signs in, but each browser still gets its own
/// anti-forgery token: keyed by this cookie, a random id it is given on its first page.
pub const VISITOR_COOKIE: &str = "switchboard_visitor";

/// The browser's id (32 hex digits), if it carries one.
pub fn visitor(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, VISITOR_COOKIE)
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A new browser's id, and the `Set-Cookie` value that gives it.
pub fn new_visitor() -> (String, String) {
    let id = hex::encode(rand::random::<[u8; 16]>());
    let cookie = format!("{VISITOR_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict");
    (id, cookie)
}

/// Whether a request comes from another site: the browser says so (`Sec-Fetch-Site:
/// cross-site`), or its `Origin` names another host than the one it was sent to.
/// Clients that are not browsers send neither and are not cross-site.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match (header("origin"), header("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .split_once("://")
                .map_or(origin, |(_, rest)| rest)
                .trim_end_matches('/');
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_addresses_localhost_and_names_given_are_answered() {
        let hosts = Hosts::new(["Switchboard.Example.com".to_string()]);
        for ok in [
            None,
            Some("127.0.0.1:8080"),
            Some("10.0.0.5"),
            Some("[::1]:8080"),
            Some("localhost:8080"),
            Some("LOCALHOST"),
            Some("app.localhost:1"),
            Some("switchboard.example.com"),
            Some("switchboard.example.com.:443"),
        ] {
            assert!(hosts.allow(ok), "{ok:?} is answered");
        }
        for refused in [
            Some("rebind.evil.example:8080"),
            Some("evil.example"),
            Some("localhost.evil.example"),
            Some("127.0.0.1.nip.io:8080"),
            Some("[not-an-address]:1"),
            Some(""),
        ] {
            assert!(!hosts.allow(refused), "{refused:?} is refused");
        }
    }

    #[test]
    fn sessions_and_tokens_are_this_daemons_own() {
        let keys = Keys::default();
        let session = keys.new_session();
        assert!(keys.valid_session(&session));
        assert!(!Keys::default().valid_session(&session), "another key");
        let forged = format!("9999999999.{}", session.split_once('.').map_or("", |p| p.1));
        assert!(!keys.valid_session(&forged), "a later expiry");
        assert!(!keys.valid_session("1.2.3") && !keys.valid_session(""));
        let csrf = keys.csrf(&session);
        assert_eq!(csrf, keys.csrf(&session));
        assert_ne!(csrf, keys.csrf(""), "each session has its own");
        assert_ne!(
            csrf,
            Keys::default().csrf(&session),
            "each daemon has its own"
        );
    }

    #[test]
    fn requests_from_other_sites_are_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:7000")])));
        assert!(!cross_site(&headers(&[
            ("host", "127.0.0.1:7000"),
            ("origin", "http://127.0.0.1:7000")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:7000"),
            ("origin", "https://evil.example")
        ])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("origin", "null")])));
        let mut cookies = HeaderMap::new();
        cookies.insert(
            "cookie",
            HeaderValue::from_static("a=1; switchboard_session=x.y.z"),
        );
        assert_eq!(cookie(&cookies).as_deref(), Some("x.y.z"));
    }
}
