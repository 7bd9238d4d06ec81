//! A flow's file changed from a front-end (the console's editor), the files staying the
//! truth: its text and the version it was read at, the problems an edit would have in
//! the directory as it is (checked as `validate` checks, without saving), and a save
//! that writes atomically — refused with the problems when the edit is invalid, and when
//! the file changed on disk since it was read, rather than overwriting that change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flows::{Diagnostic, Project};

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
pub fn file(shared: &Shared, name: &str) -> Option<PathBuf> {
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
    let path = file(shared, name).ok_or(NotSaved::Unknown)?;
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
    checked(shared, path, text).1
}

/// The directory as it would be with `text` as the file `path`, and that file's problems.
pub fn checked(shared: &Shared, path: &Path, text: &str) -> (Project, Vec<Diagnostic>) {
    let project = connectors::load_project(&flows::LoadOptions {
        overlay: Some((path.to_path_buf(), text.to_string())),
        ..shared.global.load_options()
    });
    let problems = project
        .diagnostics()
        .into_iter()
        .filter(|d| d.file == path)
        .collect();
    (project, problems)
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
    // Checked and written together: the project checked is the one the file makes, and
    // the daemon takes it as it is (not loaded again).
    let saved = {
        let (shared, path) = (Arc::clone(shared), path.clone());
        tokio::task::spawn_blocking(move || {
            let (project, problems) = checked(&shared, &path, &text);
            if !problems.is_empty() {
                return Err(NotSaved::Invalid(problems));
            }
            super::ops::write_atomically(&path, &text).map_err(NotSaved::Failed)?;
            Ok(project)
        })
        .await
        .map_err(|e| NotSaved::Failed(e.to_string()))??
    };
    tracing::info!(flow = %name, file = %path.display(), "flow file saved from the console");
    super::ops::serve_now(shared, saved).await;
    Ok(())
}
