//! Service-account auth: a JWT signed (RS256) with the key file's private key, exchanged
//! at the token URL for a bearer token, cached per service account until shortly before
//! it expires.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::http::{self, AccountClient};

/// Reading sheets.
pub const READ: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";
/// Appending rows.
pub const WRITE: &str = "https://www.googleapis.com/auth/spreadsheets";

#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

type Cache = Mutex<HashMap<String, (String, Instant)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// A bearer token for the service account in `key_file`, for `scope`.
pub async fn token(
    client: &AccountClient,
    key_file: &Path,
    token_url: &str,
    scope: &str,
) -> Result<String, String> {
    let text = std::fs::read_to_string(key_file).map_err(|e| {
        format!(
            "cannot read the service account key file `{}`: {e}",
            key_file.display()
        )
    })?;
    let key: KeyFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "`{}` is not a service account key file (client_email, private_key): {e}",
            key_file.display()
        )
    })?;
    let cache_key = format!("{}|{token_url}|{scope}", key.client_email);
    if let Some((token, until)) = cache().lock().ok().and_then(|c| c.get(&cache_key).cloned()) {
        if Instant::now() < until {
            return Ok(token);
        }
    }
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: &key.client_email,
        scope,
        aud: token_url,
        iat: now,
        exp: now + 3600,
    };
    let signing = EncodingKey::from_rsa_pem(key.private_key.as_bytes())
        .map_err(|e| format!("the key file's private_key is not an RSA key: {e}"))?;
    let jwt = encode(&Header::new(Algorithm::RS256), &claims, &signing)
        .map_err(|e| format!("cannot sign the token request: {e}"))?;
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", jwt.as_str()),
    ];
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", http::encode_component(v)))
        .collect::<Vec<_>>()
        .join("&");
    let response = client
        .post(token_url, std::time::Duration::from_secs(15))
        .body("application/x-www-form-urlencoded", body)
        .send()
        .await
        .map_err(|e| format!("the token request failed: {e}"))?;
    if !response.status.is_success() {
        return Err(format!(
            "the token request was refused (HTTP {}): {}",
            response.status.as_u16(),
            http::snippet(&response.body)
        ));
    }
    let token: TokenResponse = serde_json::from_slice(&response.body)
        .map_err(|e| format!("the token answer is not a token: {e}"))?;
    let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600).saturating_sub(60));
    if let Ok(mut c) = cache().lock() {
        c.insert(
            cache_key,
            (token.access_token.clone(), Instant::now() + lifetime),
        );
    }
    Ok(token.access_token)
}
