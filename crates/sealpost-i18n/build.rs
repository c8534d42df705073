//! Generates the table of message catalogues from `locales/<lang>/<name>.messages`.
//!
//! Scanning the directory at build time (instead of a hand-written list) means
//! adding a language is adding one folder; `include_str!` keeps the texts in the
//! binary so a deployed node needs no files next to it.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let locales = manifest_dir.join("locales");
    println!("cargo:rerun-if-changed={}", locales.display());

    let mut langs: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(&locales)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only plain language codes: the folder name becomes a Rust string
        // literal and a lookup key, so refuse anything odd instead of escaping.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(
                format!("locale folder name must be a lowercase language code: {name:?}").into(),
            );
        }
        langs.push((name, entry.path()));
    }
    langs.sort();

    let mut code = String::new();
    code.push_str("/// Language codes, sorted.\n");
    code.push_str("pub(crate) static LANGS: &[&str] = &[");
    for (lang, _) in &langs {
        write!(code, "{lang:?}, ")?;
    }
    code.push_str("];\n\n");
    code.push_str("/// (language, file stem, contents) for every catalogue file.\n");
    code.push_str("pub(crate) static FILES: &[(&str, &str, &str)] = &[\n");
    for (lang, dir) in &langs {
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "messages"))
            .collect();
        files.sort();
        for file in files {
            println!("cargo:rerun-if-changed={}", file.display());
            let stem = stem(&file)?;
            let path = file.to_str().ok_or("non-UTF-8 path to a catalogue file")?;
            writeln!(code, "    ({lang:?}, {stem:?}, include_str!({path:?})),")?;
        }
    }
    code.push_str("];\n");

    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("catalogues.rs");
    fs::write(out, code)?;
    Ok(())
}

fn stem(file: &Path) -> Result<String, Box<dyn Error>> {
    Ok(file
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("catalogue file without a UTF-8 name")?
        .to_string())
}
