//! Keeping a process to the places it was told: `switchboard quickstart` talks to the
//! built-in stand-in and nothing else, whatever the accounts file of the flows it runs
//! says — a directory's real `base_url` and real keys must never be used by a try-out.
//! Once [`only`] is called, every HTTP request and every SMTP connection to any other
//! address is refused before anything leaves the process.

use std::sync::OnceLock;

/// The addresses (`host:port`) the process may reach, once confined.
static ALLOWED: OnceLock<Vec<String>> = OnceLock::new();

/// Why a refused address is refused (`switchboard quickstart` says it).
static WHY: OnceLock<String> = OnceLock::new();

/// Confine the process to these addresses, for good; `why` is told with each refusal.
pub fn only(addresses: Vec<String>, why: &str) {
    let _ = ALLOWED.set(addresses);
    let _ = WHY.set(why.to_string());
}

/// Whether the process may reach `host`:`port`: the reason it may not, if not.
pub fn check(host: &str, port: u16) -> Result<(), String> {
    let Some(allowed) = ALLOWED.get() else {
        return Ok(());
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let here = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    if allowed.contains(&here) {
        return Ok(());
    }
    Err(format!(
        "{} ({here} is not it)",
        WHY.get()
            .map(String::as_str)
            .unwrap_or("the process is confined")
    ))
}

/// [`check`] for a URL.
pub fn check_url(url: &url::Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    check(host, url.port_or_known_default().unwrap_or(0))
}
