//! The SMTP stand-in: a small SMTP server (RFC 5321's EHLO, AUTH PLAIN, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT; no TLS) that records each message it takes — sender, recipients,
//! subject and decoded body — as `service: smtp` in the sandbox's messages. Like the
//! other stand-ins it takes any password except one beginning with `invalid` (535), and
//! refuses recipients beginning with `invalid` (550, permanent) or `busy` (451, try
//! later), so every outcome class can be seen offline.

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::standin::{field, next_id, Recorder, Standin};

/// Its entry among the stand-ins: how its messages read (it serves no HTTP).
pub const STANDIN: Standin = Standin {
    service: "SMTP",
    tag: "smtp",
    mount: "",
    env: &[],
    routes: axum::Router::new,
    describe: Some(describe),
    seed: None,
};

fn describe(m: &Value) -> String {
    let to: Vec<String> = m["to"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    format!(
        "E-mail to {}: {} — {}",
        to.join(", "),
        field(m, "subject"),
        field(m, "body").trim()
    )
}

/// Serve SMTP on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, recorder: Recorder) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let recorder = recorder.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, recorder).await {
                tracing::debug!(error = %e, "SMTP stand-in session ended");
            }
        });
    }
}

/// The longest command line taken (RFC 5321 says 512; AUTH lines run longer).
const MAX_LINE: usize = 4096;
/// The largest message taken.
const MAX_DATA: usize = 10 * 1024 * 1024;

async fn session(stream: TcpStream, recorder: Recorder) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"220 sandbox.switchboard ESMTP stand-in\r\n")
        .await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 || line.len() > MAX_LINE {
            return Ok(());
        }
        let command = line.trim_end();
        let upper = command.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-sandbox.switchboard\r\n250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SIZE 10485760".into()
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
            let mut token = command[command.len() - rest.len()..].trim().to_string();
            if token.is_empty() {
                write.write_all(b"334 \r\n").await?;
                let mut answer = String::new();
                read.read_line(&mut answer).await?;
                token = answer.trim().to_string();
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token.as_bytes())
                .unwrap_or_default();
            let password = decoded.rsplit(|b| *b == 0).next().unwrap_or_default();
            if password.is_empty() || password.starts_with(b"invalid") {
                "535 5.7.8 Authentication credentials invalid".into()
            } else {
                "235 2.7.0 Authentication successful".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            from = Some(address(&command[10..]));
            to.clear();
            "250 2.1.0 OK".into()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address(&command[8..]);
            if from.is_none() {
                "503 5.5.1 MAIL first".into()
            } else if rcpt.starts_with("invalid") || !rcpt.contains('@') {
                format!("550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown")
            } else if rcpt.starts_with("busy") {
                format!("451 4.3.0 <{rcpt}>: mailbox busy, try again later")
            } else {
                to.push(rcpt);
                "250 2.1.5 OK".into()
            }
        } else if upper == "DATA" {
            if to.is_empty() {
                "554 5.5.1 No valid recipients".into()
            } else {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut read).await?;
                let id = next_id();
                let (subject, body) = parse(&data);
                recorder.push(
                    "smtp",
                    json!({"from": from.take(), "to": std::mem::take(&mut to), "subject": subject, "body": body, "queued_as": format!("sandbox-{id}")}),
                );
                format!("250 2.0.0 OK: queued as sandbox-{id}")
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            "250 2.0.0 OK".into()
        } else if upper == "NOOP" {
            "250 2.0.0 OK".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognized".into()
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}

/// `<a@b>` (with any parameters after it) as `a@b`.
fn address(text: &str) -> String {
    let text = text.trim();
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or_else(|| text.split_whitespace().next().unwrap_or_default());
    inner.to_string()
}

/// The message up to the line holding a single dot, dot-stuffing undone.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(data);
        }
        if line == ".\r\n" || line == ".\n" {
            return Ok(data);
        }
        if data.len() < MAX_DATA {
            data.push_str(line.strip_prefix('.').unwrap_or(&line));
        }
    }
}

/// The subject (encoded words decoded) and the body (its transfer encoding undone).
fn parse(data: &str) -> (String, String) {
    let (head, body) = data
        .split_once("\r\n\r\n")
        .or_else(|| data.split_once("\n\n"))
        .unwrap_or((data, ""));
    // Unfold continued header lines.
    let head = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let subject = header("Subject")
        .map(|s| decode_words(&s))
        .unwrap_or_default();
    let encoding = header("Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body = match encoding.as_str() {
        "base64" => {
            let compact: String = body.split_whitespace().collect();
            String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .unwrap_or_default(),
            )
            .into_owned()
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_string(),
    };
    (subject, body.replace("\r\n", "\n"))
}

fn quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `=?utf-8?b?…?=` and `=?utf-8?q?…?=` words decoded (adjacent ones joined, as RFC 2047
/// has it); other text as it is.
fn decode_words(text: &str) -> String {
    let mut out = String::new();
    let mut last_encoded = false;
    for word in text.split_whitespace() {
        let decoded = word
            .strip_prefix("=?")
            .and_then(|w| w.strip_suffix("?="))
            .and_then(|inner| {
                let mut parts = inner.splitn(3, '?');
                let (_charset, kind, payload) = (parts.next()?, parts.next()?, parts.next()?);
                match kind.to_ascii_lowercase().as_str() {
                    "b" => base64::engine::general_purpose::STANDARD
                        .decode(payload.as_bytes())
                        .ok()
                        .map(|b| String::from_utf8_lossy(&b).into_owned()),
                    "q" => Some(quoted_printable(&payload.replace('_', " "))),
                    _ => None,
                }
            });
        let encoded = decoded.is_some();
        let joined = encoded && last_encoded;
        if !out.is_empty() && !joined {
            out.push(' ');
        }
        out.push_str(decoded.as_deref().unwrap_or(word));
        last_encoded = encoded;
    }
    out
}
