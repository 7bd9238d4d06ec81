//! Google Sheets as a receiver that changes rows: `update_row` reads the range, finds the
//! first row whose `key` column holds the record's `find`, and writes only the cells the
//! record names by header — [`super::config::BATCH_UPDATE`]
//! `{valueInputOption: RAW, data: [{range: "Orders!D7", values: [["paid"]]}, …]}` (`USER_ENTERED`
//! with `input: user_entered`)
//! — so a cell someone else changed in the meantime is left alone. No such row, or a
//! column the header lacks, fails the record with what the sheet has. A service account
//! only (an API key cannot write).

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde_json::{json, Map, Value};

use super::config::{Account, Keyed};
use super::write::Writer;
use super::{append, auth, range};

/// One sheet whose rows are changed by key.
pub struct UpdateRow {
    writer: Writer,
    keyed: Keyed,
    url: String,
}

impl UpdateRow {
    pub fn new(
        name: &str,
        account: &Account,
        keyed: &Keyed,
        timeout: Duration,
    ) -> Result<Self, String> {
        let writer = Writer::new(name, account, timeout, "updating rows")?;
        let url = writer.client.url(&super::config::path(
            super::config::BATCH_UPDATE,
            &keyed.spreadsheet_id,
            "",
            "",
        ));
        Ok(UpdateRow {
            writer,
            keyed: keyed.clone(),
            url,
        })
    }
}

#[async_trait]
impl Receiver for UpdateRow {
    /// The preview's body names the row by its key and the cells by header: which row
    /// number that is, the sheet says when the record is sent.
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let find = match fields.remove("find") {
            Some(Value::String(text)) if !text.trim().is_empty() => text.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(SendError::permanent(format!(
                    "find is empty: it is the `{}` of the row to change",
                    self.keyed.key
                )))
            }
        };
        let cells = match fields.remove("values") {
            Some(Value::Object(cells)) if !cells.is_empty() => cells,
            _ => {
                return Err(SendError::permanent(
                    "values names no cell: give the cells to change by their column's header, e.g. {status: paid}",
                ))
            }
        };
        let cells: Map<String, Value> = cells
            .into_iter()
            .map(|(k, v)| (k, append::cell(v)))
            .collect();
        let mut notes = Map::new();
        notes.insert(
            "row".into(),
            Value::String(format!(
                "the first row of {} whose {} is {find}",
                self.keyed.range, self.keyed.key
            )),
        );
        Ok(Prepared {
            method: engine::Method::Post,
            url: self.url.clone(),
            body: json!({"find": {self.keyed.key.clone(): find}, "values": cells}),
            notes,
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let find = request.body["find"][&self.keyed.key]
            .as_str()
            .unwrap_or_default();
        let Some(cells) = request.body["values"].as_object() else {
            return Err(SendError::permanent("values names no cell"));
        };
        let (table, key) = range::keyed(
            &self.writer.client,
            &self.writer.account,
            &self.keyed,
            auth::WRITE,
            self.writer.timeout,
        )
        .await?;
        let Some((_, row)) = table.find(key, find) else {
            return Err(SendError::Permanent {
                code: Some("not_found".into()),
                message: format!(
                    "no row of {} has {} `{find}`",
                    self.keyed.range, self.keyed.key
                ),
            });
        };
        let mut data = Vec::new();
        for (name, value) in cells {
            let column = table.column(name).map_err(SendError::permanent)?;
            let cell = range::address(&table.origin, table.origin.column + column, row);
            data.push(json!({"range": cell, "majorDimension": "ROWS", "values": [[value]]}));
        }
        let input = self.keyed.input.unwrap_or_default().api();
        let body = json!({"valueInputOption": input, "data": data});
        self.writer.post(&request.url, &body).await?;
        Ok(Delivered {
            remote_id: Some(range::address(&table.origin, table.origin.column, row)),
        })
    }
}
