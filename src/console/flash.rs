//! Toasts: the line said after an action (a run started, a flow switched off, a refusal and
//! why), carried across the redirect in a short-lived cookie and shown once, by the page
//! the browser lands on, which clears it.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

const COOKIE: &str = "sb_flash";
/// Longer texts are cut: a cookie is small, and a toast is one line.
const MOST: usize = 300;

/// What a toast says, and whether it is good news.
#[derive(Clone, Debug, PartialEq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Flash {
        Flash {
            ok: true,
            text: text.into(),
        }
    }

    pub fn refused(text: impl Into<String>) -> Flash {
        Flash {
            ok: false,
            text: text.into(),
        }
    }
}

/// The toast a request carries, if any.
pub fn read(headers: &HeaderMap) -> Option<Flash> {
    let value = runtime::access::cookie_named(headers, COOKIE)?;
    let (kind, text) = value.split_at_checked(1)?;
    let text: String = url::form_urlencoded::parse(format!("t={text}").as_bytes())
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned())?;
    (!text.is_empty()).then(|| Flash {
        ok: kind == "1",
        text,
    })
}

/// Go to `to`, where the toast is shown.
pub fn redirect(to: &str, flash: &Flash) -> Response {
    let text: String = flash.text.chars().take(MOST).collect();
    let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    let cookie = format!(
        "{COOKIE}={}{encoded}; Path=/; Max-Age=60; HttpOnly; SameSite=Strict",
        if flash.ok { "1" } else { "0" }
    );
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The toast was shown: the browser forgets it.
pub fn clear(response: &mut Response) {
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("sb_flash=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toast_survives_the_redirect_as_written() {
        let said = Flash::refused("flow `a b` is invalid: mend it; ÿ & = ;");
        let response = redirect("/", &said);
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {cookie}")).expect("a header"),
        );
        assert_eq!(read(&headers), Some(said));
        assert_eq!(read(&HeaderMap::new()), None);
    }
}
