//! A flow's file changed from a front-end (the console's editor), the files staying the
//! truth: its text and the version it was read at, the problems an edit would have in
//! the directory as it is (checked as `validate` checks, without saving), and a save
//! that writes atomically — refused with the problems when the edit is invalid, and when
//! the file changed on disk since it was read, rather than overwriting that change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flows::Diagnostic;

use super::Shared;

/// A flow file as read for editing.
pub struct FlowFile {
    pub path: PathBuf,
    pub text: String,
    /// The version read (a digest of the text): a save from it is refused once the file
    /// has changed since.
    pub version: String,
}

/// Why an edit was not saved.
#[derive(Debug)]
pub enum NotSaved {
    /// No flow file of that name.
    Unknown,
    /// The edit has problems, each at its place.
    Invalid(Vec<Diagnostic>),
    /// The file changed on disk since it was read: nothing was written.
    Changed,
    /// The file could not be read or written.
    Failed(String),
}

/// A digest of a file's text, its version.
fn version_of(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..12])
}

/// The file of flow `name`, valid or not.
fn file_of(shared: &Shared, name: &str) -> Option<PathBuf> {
    let served = shared.snapshot();
    if let Some(flow) = served.project.flows.get(name) {
        return Some(flow.file.clone());
    }
    served
        .errors
        .get(name)
        .and_then(|problems| problems.first())
        .map(|d| d.file.clone())
        .filter(|file| file.extension().is_some_and(|e| e == "yaml" || e == "yml"))
}

/// Flow `name`'s file, to edit.
pub fn read(shared: &Shared, name: &str) -> Result<FlowFile, NotSaved> {
    let path = file_of(shared, name).ok_or(NotSaved::Unknown)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| NotSaved::Failed(format!("cannot read {}: {e}", path.display())))?;
    Ok(FlowFile {
        version: version_of(&text),
        path,
        text,
    })
}

/// The problems `text` would have as the file `path`, with the rest of the directory
/// as it is on disk (accounts, other flows' names and `after:` chains, the source's
/// columns).
pub fn problems(shared: &Shared, path: &Path, text: &str) -> Vec<Diagnostic> {
    let global = &shared.global;
    let options = flows::LoadOptions {
        flows_dir: global.flows.clone(),
        accounts_file: global.accounts.clone(),
        env: BTreeMap::new(),
        check_flows: true,
        unset_as: None,
        overlay: Some((path.to_path_buf(), text.to_string())),
    };
    connectors::load_project(&options)
        .diagnostics()
        .into_iter()
        .filter(|d| d.file == path)
        .collect()
}

/// Save `text` as flow `name`'s file, read at `version`; the daemon then runs it.
pub async fn save(
    shared: &Arc<Shared>,
    name: &str,
    text: String,
    version: &str,
) -> Result<(), NotSaved> {
    let current = read(shared, name)?;
    if current.version != version {
        return Err(NotSaved::Changed);
    }
    let path = current.path;
    let checked = {
        let (shared, path, text) = (Arc::clone(shared), path.clone(), text.clone());
        tokio::task::spawn_blocking(move || problems(&shared, &path, &text))
            .await
            .map_err(|e| NotSaved::Failed(e.to_string()))?
    };
    if !checked.is_empty() {
        return Err(NotSaved::Invalid(checked));
    }
    let written = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || super::ops::write_atomically(&path, &text))
            .await
            .map_err(|e| NotSaved::Failed(e.to_string()))?
    };
    written.map_err(NotSaved::Failed)?;
    tracing::info!(flow = %name, file = %path.display(), "flow file saved from the console");
    super::ops::reload_now(shared).await;
    Ok(())
}
