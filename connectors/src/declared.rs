//! The generic HTTP action: a receiver action that is nothing but the call its card
//! declares. Each `{placeholder}` of the call's path is filled from the flow's options
//! (a dashboard's id) or taken out of the mapped fields, URL-encoded; the fields left are
//! the JSON body (none when nothing is left); the answer is judged by the connector's
//! [`Answer`]. A connector with real logic before the call (a phone number cleaned, an
//! amount checked) gives a [`Shape`]; batching, encodings and sign-ins stay code.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use flows::FieldKind;
use serde_json::{Map, Value};

use crate::card::Action;
use crate::http::{self, AccountClient};

/// How a connector judges its service's answer to a call.
pub type Answer = fn(&http::Response) -> Result<Delivered, SendError>;

/// A connector's own work on a record's fields before the call (and the notes it keeps
/// beside the request).
pub type Shape = fn(&mut Map<String, Value>, &mut Map<String, Value>) -> Result<(), SendError>;

/// A receiver action run from its declared call.
pub struct Declared {
    client: AccountClient,
    action: &'static Action,
    /// Placeholders the flow's options fill, by name.
    given: Vec<(&'static str, String)>,
    shape: Option<Shape>,
    answer: Answer,
    timeout: Duration,
}

impl Declared {
    /// Action `name` of `card` (its first call), through `client`.
    pub fn new(
        card: &'static crate::card::Card,
        name: &str,
        client: AccountClient,
        timeout: Duration,
    ) -> Result<Declared, String> {
        let action = card
            .action(false, name)
            .filter(|a| !a.calls.is_empty())
            .ok_or_else(|| format!("`{}` declares no call for `{name}`", card.name))?;
        Ok(Declared {
            client,
            action,
            given: Vec::new(),
            shape: None,
            answer: plain_answer,
            timeout,
        })
    }

    /// Placeholder `name` is `value` for every record (an option of the flow's).
    pub fn given(mut self, name: &'static str, value: impl ToString) -> Self {
        self.given.push((name, value.to_string()));
        self
    }

    /// The connector's work on the fields before the call.
    pub fn shaped(mut self, shape: Shape) -> Self {
        self.shape = Some(shape);
        self
    }

    /// How the service's answer is judged (default: [`plain_answer`]).
    pub fn answered(mut self, answer: Answer) -> Self {
        self.answer = answer;
        self
    }

    /// The declared action's name.
    pub fn name(&self) -> &'static str {
        self.action.name
    }
}

/// Empty text, or nothing.
fn blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    }
}

/// A placeholder's value out of a field: text or a number, not empty; digits for an
/// integer field.
fn placeholder(
    name: &str,
    kind: Option<FieldKind>,
    value: Option<Value>,
) -> Result<String, SendError> {
    let text = match value {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if text.is_empty() {
        return Err(SendError::permanent(format!(
            "{name} is empty; it goes in the URL path"
        )));
    }
    if kind == Some(FieldKind::Integer) && !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(SendError::permanent(format!(
            "{name} must be a number, not `{text}`"
        )));
    }
    Ok(text)
}

#[async_trait]
impl Receiver for Declared {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let mut notes = Map::new();
        if let Some(shape) = self.shape {
            shape(&mut fields, &mut notes)?;
        }
        if let Some(missing) = self
            .action
            .fields
            .iter()
            .find(|f| f.required && blank(fields.get(f.name)))
        {
            return Err(SendError::permanent(format!(
                "{} is empty, but `{}` requires it",
                missing.name, self.action.name
            )));
        }
        let call = &self.action.calls[0];
        let path = call.path_with(|name| {
            if let Some((_, value)) = self.given.iter().find(|(n, _)| *n == name) {
                return Ok(value.clone());
            }
            let kind = self.action.fields.iter().find(|f| f.name == name);
            placeholder(name, kind.map(|f| f.kind), fields.remove(name))
        })?;
        Ok(Prepared {
            method: call.method.unwrap_or(engine::Method::Post),
            url: self.client.url(&path),
            body: if fields.is_empty() {
                Value::Null
            } else {
                Value::Object(fields)
            },
            notes,
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let response = self.client.prepared(request, self.timeout)?.send().await?;
        (self.answer)(&response)
    }
}

/// A 2xx answer is delivered (the service's `id`, if it gives one); any other is
/// classified by its status, with the service's own code and message.
pub fn plain_answer(response: &http::Response) -> Result<Delivered, SendError> {
    if response.status.is_success() {
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        return Ok(Delivered {
            remote_id: http::id_in(&body, &["id"]),
        });
    }
    let (code, message) = http::error_body(&response.body);
    Err(http::classify(response, code, message))
}
