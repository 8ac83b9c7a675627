//! The hub's shape, checked: modules only use modules declared before them in `lib.rs`
//! (layers point down, so there are no import circles), no source file is over 400
//! lines, and no HTML is assembled with `format!` (pages come from templates).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules in the order `lib.rs` declares them: the layers, bottom first.
fn layers(src: &Path) -> Vec<String> {
    std::fs::read_to_string(src.join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_owned())
        .collect()
}

/// The top-level module a file belongs to (`api/users.rs` → `api`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::<module>` a file names.
fn uses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        if text[..i].ends_with("sudohub_") || text[..i].ends_with('$') {
            continue;
        }
        let name: String = text[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            found.push(name);
        }
    }
    found
}

#[test]
fn modules_only_use_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let order = layers(&src);
    assert!(order.len() > 10, "{order:?}");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(mine) = order.iter().position(|m| *m == module) else {
            continue; // lib.rs, main.rs
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in uses(&text) {
            let theirs = order.iter().position(|m| *m == used);
            if theirs.is_some_and(|t| t > mine) {
                upward.push(format!("{} uses crate::{used}", file.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn files_stay_small_and_html_comes_from_templates() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines = text.lines().count();
        assert!(lines <= 400, "{} has {lines} lines", file.display());
        for (n, line) in text.lines().enumerate() {
            let built = line.contains("format!(") || line.contains("push_str(");
            let tag = ["<p", "<a ", "<div", "<form", "<html", "<br", "</"]
                .iter()
                .any(|t| line.contains(t));
            assert!(
                !(built && tag),
                "{}:{}: HTML built from strings: {line}",
                file.display(),
                n + 1
            );
        }
    }
}
