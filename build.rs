//! Bundles `examples/`: every directory holding an `accounts.yaml` becomes an example
//! `switchboard quickstart` can run, its files embedded in the binary. Its `about` is the
//! first `description:` of its flow files. `quickstart` comes first, the rest by name.

use std::fmt::Write as _;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=examples");
    let mut examples: Vec<(String, String, Vec<String>)> = Vec::new();
    let dirs = std::fs::read_dir("examples")?;
    for dir in dirs.flatten() {
        let path = dir.path();
        if !path.join("accounts.yaml").is_file() {
            continue;
        }
        let name = dir.file_name().to_string_lossy().into_owned();
        let mut files: Vec<String> = std::fs::read_dir(&path)?
            .flatten()
            .filter(|f| f.path().is_file())
            .map(|f| f.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let about = files
            .iter()
            .filter(|f| f.ends_with(".yaml") && *f != "accounts.yaml")
            .find_map(|f| description(&path.join(f)))
            .unwrap_or_default();
        examples.push((name, about, files));
    }
    examples.sort_by_key(|(name, _, _)| (name != "quickstart", name.clone()));
    let root = std::env::var("CARGO_MANIFEST_DIR")?;
    let mut out = String::from("&[\n");
    for (name, about, files) in &examples {
        let _ = writeln!(
            out,
            "    Example {{ name: {name:?}, about: {about:?}, files: &["
        );
        for file in files {
            let full = Path::new(&root).join("examples").join(name).join(file);
            let _ = writeln!(
                out,
                "        ({file:?}, include_str!({:?})),",
                full.display().to_string()
            );
        }
        out.push_str("    ] },\n");
    }
    out.push(']');
    let target = Path::new(&std::env::var("OUT_DIR")?).join("examples.rs");
    std::fs::write(target, out)?;
    Ok(())
}

/// A flow file's top-level `description:`, unquoted.
fn description(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("description:"))
        .map(|d| d.trim().trim_matches('"').to_string())
}
