use std::time::Duration;

use super::config::Account as ArandaAccount;
use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};

use serde_json::{Map, Value};

use super::config::{ATTACHMENT, NEW_CASE, NOTE, UPDATE_CASE};
use crate::card::Call;
use crate::http::{self, AccountClient};

/// What an Aranda receiver does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateCase,
    UpdateCase,
    AddNote,
    AttachFile,
}

/// The ASMS adapter for one integration.
pub struct Aranda {
    client: AccountClient,
    timeout: Duration,
    base: String,
    action: Action,
}

/// Aranda's error code names and what to do about each (from its connector's docs).
const REMEDIES: &[(&str, &str)] = &[
    // More specific names first: `EmptyEnumeration Parameter name: x` before `Parameter name`.
    (
        "CriteriaNeedsSomeArguments",
        "the search parameters must not be empty",
    ),
    (
        "InvalidAdditionalFieldId",
        "check that the additional fields' ids are right",
    ),
    (
        "InvalidItemType",
        "the case type is wrong: change the itemType id",
    ),
    (
        "InvalidProjectId",
        "projectId must be the id of the project the case belongs to",
    ),
    (
        "InvalidStateId",
        "check the stateId given when the ticket is created or updated",
    ),
    (
        "InvalidUploadType",
        "attaching a file failed: ask an ASMS administrator for help",
    ),
    (
        "RequestNeedsSomeArguments",
        "check the ticket's required fields and give each a value in the map",
    ),
    ("SearchListIsRequired", "ask an ASMS administrator for help"),
    (
        "TypesListNeedsSomeArguments",
        "a ticket search needs the case type (itemType); ask an ASMS administrator for help",
    ),
    (
        "ItemTypeIsRequired",
        "add the itemType parameter (the case type), it is required",
    ),
    (
        "ModelIdIsEmpty",
        "add the modelId parameter, it is required",
    ),
    (
        "StateIdIsEmpty",
        "add the stateId parameter, it is required",
    ),
    (
        "ServiceIdIsEmpty",
        "add the serviceId parameter, it is required",
    ),
    (
        "CategoryIdIsEmpty",
        "add the categoryId parameter, it is required",
    ),
    (
        "AdditionalFieldIsRequired",
        "the named additional field is required by the project: add it to additionalFields",
    ),
    (
        "ModelNotActive",
        "the model the case is associated with is not active in ASMS",
    ),
    (
        "FailedToCloseTaskPendingCloseTasksPredecessors",
        "the case cannot be closed while its parent case has activities pending: close those first",
    ),
    (
        "DuplicatedObject",
        "the configuration item already exists in the database",
    ),
    (
        "EmptyEnumeration",
        "the named parameter is a list and it is required: give it at least one value",
    ),
    (
        "EmptyValue",
        "the named parameter is required: give it a value",
    ),
    (
        "Parameter name",
        "check that the properties the error names are not null",
    ),
    (
        "DoNotHavePermissionForThisAction",
        "the integration user lacks the permission: have an ASMS administrator assign it",
    ),
];

/// ASMS's `Failure…` 500 codes: what failed; for each the page's remedy is to ask an
/// ASMS administrator for help.
const FAILURES: &[(&str, &str)] = &[
    ("FailureExportExcel", "exporting to Excel"),
    (
        "FailureGetAdditionalFields",
        "reading the additional fields",
    ),
    (
        "FailureGetCategoriesByService",
        "reading the service's categories",
    ),
    (
        "FailureGetChangeFSC",
        "reading the change's forward schedule",
    ),
    ("FailureGetFieldsList", "reading the list of fields"),
    ("FailureGetFields", "reading the fields"),
    ("FailureGetFiles", "reading the files"),
    ("FailureGetLookupValues", "reading the lookup values"),
    ("FailureGetMailTemplates", "reading the mail templates"),
    ("FailureGetModelByCategory", "reading the category's model"),
    ("FailureGetOperators", "reading the operators"),
    (
        "FailureGetReassignmentReasons",
        "reading the reassignment reasons",
    ),
    ("FailureGetSimilarItems", "reading similar items"),
    (
        "FailureSearchQuickManagement",
        "the quick-management search",
    ),
];

impl Aranda {
    pub fn new(
        name: &str,
        account: &ArandaAccount,
        action: Action,
        timeout: Duration,
    ) -> Result<Self, String> {
        let client = account.client(name);
        Ok(Aranda {
            base: client.url(""),
            client,
            timeout,
            action,
        })
    }
}

/// The text of Aranda's error body with its code name and remedy, when it names one.
pub fn explain(body: &[u8]) -> (Option<String>, String) {
    let (_, message) = http::error_body(body);
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(s)) => s,
        _ => message,
    };
    // Case aside: ASMS writes `Parameter name`, `Null parameter name`, `EmptyValue …`.
    let lower = text.to_lowercase();
    let has = |code: &str| lower.contains(&code.to_lowercase());
    if let Some((code, remedy)) = REMEDIES.iter().find(|(code, _)| has(code)) {
        return (Some(code.to_string()), format!("{text} — {remedy}"));
    }
    if let Some((code, what)) = FAILURES.iter().find(|(code, _)| has(code)) {
        return (
            Some(code.to_string()),
            format!("{text} — ASMS failed {what}: ask an ASMS administrator for help"),
        );
    }
    if text.contains("Failure") {
        return (
            Some("Failure".into()),
            format!(
                "{text} — ASMS failed to process the request: ask an ASMS administrator for help"
            ),
        );
    }
    (None, text)
}

/// The largest file `attach_file` sends (ASMS's connector documents no limit; a row
/// should not carry more than this).
const MAX_FILE: u64 = 25 * 1024 * 1024;

/// `attach_file`'s body, `{file: <base64>, fileName}`, from `content` (base64 already)
/// or the file at `path`.
fn attachment(fields: &mut Map<String, Value>) -> Result<Value, SendError> {
    use base64::Engine as _;
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
        _ => None,
    };
    let name =
        text(fields.remove("fileName")).ok_or_else(|| SendError::permanent("fileName is empty"))?;
    let file = match (text(fields.remove("content")), text(fields.remove("path"))) {
        (Some(content), _) => {
            base64::engine::general_purpose::STANDARD
                .decode(content.trim())
                .map_err(|e| SendError::permanent(format!("content is not base64: {e}")))?;
            content.trim().to_string()
        }
        (None, Some(path)) => {
            let size = std::fs::metadata(&path)
                .map_err(|e| SendError::permanent(format!("cannot read `{path}`: {e}")))?
                .len();
            if size > MAX_FILE {
                return Err(SendError::permanent(format!(
                    "`{path}` is {size} bytes; attach_file sends at most {MAX_FILE}"
                )));
            }
            let bytes = std::fs::read(&path)
                .map_err(|e| SendError::permanent(format!("cannot read `{path}`: {e}")))?;
            base64::engine::general_purpose::STANDARD.encode(bytes)
        }
        (None, None) => {
            return Err(SendError::permanent(
                "attach_file needs the file: give `path` or `content` (base64)",
            ))
        }
    };
    Ok(serde_json::json!({"file": file, "fileName": name}))
}

impl Aranda {
    /// The URL of `call` for case `ticket` (and a note's `message`).
    fn url(&self, call: Call, ticket: &str, message: &str) -> String {
        format!(
            "{}{}",
            self.base,
            super::config::path(call, ticket, message)
        )
    }
}

#[async_trait]
impl Receiver for Aranda {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let mut ticket = || -> Result<String, SendError> {
            match fields.remove("ticketId") {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(SendError::permanent("ticketId is empty")),
            }
        };
        let (call, url, body) = match self.action {
            Action::CreateCase => (NEW_CASE, self.url(NEW_CASE, "", ""), Value::Object(fields)),
            Action::UpdateCase => {
                let id = ticket()?;
                (
                    UPDATE_CASE,
                    self.url(UPDATE_CASE, &id, ""),
                    Value::Object(fields),
                )
            }
            Action::AddNote => {
                let id = ticket()?;
                let message = fields
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if message.trim().is_empty() {
                    return Err(SendError::permanent("message is empty"));
                }
                (NOTE, self.url(NOTE, &id, message), Value::Null)
            }
            Action::AttachFile => {
                let id = ticket()?;
                let body = attachment(&mut fields)?;
                let mut notes = Map::new();
                // Sent as the `ticketId` header, as ASMS's swagger has it.
                notes.insert("ticketId".into(), Value::String(id));
                return Ok(Prepared {
                    method: engine::Method::Post,
                    url: self.url(ATTACHMENT, "", ""),
                    body,
                    notes,
                });
            }
        };
        Ok(Prepared {
            method: call.method.unwrap_or(engine::Method::Post),
            url,
            body,
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let mut call = self.client.prepared(request, self.timeout)?;
        if let Some(Value::String(ticket)) = request.notes.get("ticketId") {
            call = call.header("ticketId", ticket);
        }
        let response = call.send().await?;
        if response.status.is_success() {
            let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            if body.get("result") == Some(&Value::Bool(false)) {
                return Err(SendError::permanent("ASMS answered result: false"));
            }
            return Ok(Delivered {
                remote_id: http::id_in(&body, &["idByProject", "id"]),
            });
        }
        let (code, message) = explain(&response.body);
        Err(http::classify(&response, code, message))
    }
}
