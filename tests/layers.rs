//! The layers of `src/`: every `crate::<module>` reference in code (a `use` line or a path
//! inline, and `super::` climbing to the crate's root) goes from a top-level module to one of
//! a lower layer, as the table under "## Layers" in `docs/architecture.md` states. The table
//! is read from the page, so the page and this test cannot disagree; a module missing from it
//! fails too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One reference from a file to another top-level module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edge {
    from: String,
    to: String,
    file: String,
    line: usize,
}

/// The layer of each module, from the table under "## Layers": `| <layer> | `a`, `b` | ... |`.
fn layers(page: &str) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let section = page
        .split("\n## Layers\n")
        .nth(1)
        .expect("docs/architecture.md has a \"## Layers\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(layer) = cells.get(1).and_then(|c| c.parse::<u32>().ok()) else {
            continue;
        };
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                !module.is_empty(),
                "an empty module in layer {layer}: {row}"
            );
            assert!(
                out.insert(module.to_string(), layer).is_none(),
                "{module} is in two layers"
            );
        }
    }
    assert!(!out.is_empty(), "no layer rows under \"## Layers\"");
    out
}

/// `text` with comments, strings and character literals blanked out; lines stay where they
/// were.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && (i == 0
                || !ident(chars[i - 1])
                || (chars[i - 1] == 'b' && (i < 2 || !ident(chars[i - 2]))))
            && matches!(next, Some('"') | Some('#'))
            && {
                let mut j = i + 1;
                while chars.get(j) == Some(&'#') {
                    j += 1;
                }
                chars.get(j) == Some(&'"')
            }
        {
            // A raw string: r"..." or r#"..."#.
            let mut hashes = 0;
            out.push(' ');
            i += 1;
            while chars[i] == '#' {
                hashes += 1;
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|h| chars.get(i + h) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal.
            out.push_str("  ");
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                blank(&mut out, chars[i]);
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Token::Ident(chars[start..i].iter().collect()), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push((Token::PathSep, line));
            i += 2;
        } else {
            out.push((
                match c {
                    '{' => Token::Open,
                    '}' => Token::Close,
                    ',' => Token::Comma,
                    _ => Token::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// The first segments of the paths a `{ ... }` group opened at `open` lists.
fn group_heads(tokens: &[(Token, usize)], open: usize) -> Vec<(String, usize)> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for (token, line) in &tokens[open..] {
        match token {
            Token::Open => {
                depth += 1;
                expect_head = depth == 1;
            }
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Token::Comma if depth == 1 => expect_head = true,
            Token::Ident(name) if expect_head => {
                heads.push((name.clone(), *line));
                expect_head = false;
            }
            _ => expect_head = false,
        }
    }
    heads
}

/// The references to other top-level modules in one file, whose module path (from the crate's
/// root) is `module`.
fn edges_of(file: &str, module: &[String], text: &str, tops: &[String]) -> Vec<Edge> {
    let tokens = tokens(&code_only(text));
    let mut out = Vec::new();
    let mut push = |to: &str, line: usize| {
        if tops.iter().any(|t| t == to) && to != module[0] {
            out.push(Edge {
                from: module[0].clone(),
                to: to.to_string(),
                file: file.to_string(),
                line,
            });
        }
    };
    // Inline modules (`mod tests { ... }`) and the brace depth they close at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let ident = |i: usize| match tokens.get(i) {
        Some((Token::Ident(name), _)) => Some(name.as_str()),
        _ => None,
    };
    let sep = |i: usize| matches!(tokens.get(i), Some((Token::PathSep, _)));
    for i in 0..tokens.len() {
        match &tokens[i].0 {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                while inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some(name), Some((Token::Open, _))) = (ident(i + 1), tokens.get(i + 2)) {
                    inline.push((name.to_string(), depth + 1));
                }
            }
            Token::Ident(word) if word == "crate" && sep(i + 1) && !sep(i.wrapping_sub(1)) => {
                match tokens.get(i + 2) {
                    Some((Token::Ident(to), line)) => push(to, *line),
                    Some((Token::Open, _)) => {
                        for (to, line) in group_heads(&tokens, i + 2) {
                            push(&to, line);
                        }
                    }
                    _ => {}
                }
            }
            Token::Ident(word) if word == "super" && sep(i + 1) && !sep(i.wrapping_sub(1)) => {
                let mut climbs = 0;
                let mut j = i;
                while ident(j) == Some("super") && sep(j + 1) {
                    climbs += 1;
                    j += 2;
                }
                // Only a climb to the crate's root leaves the top-level module.
                if climbs == module.len() + inline.len() {
                    match tokens.get(j) {
                        Some((Token::Ident(to), line)) => push(to, *line),
                        Some((Token::Open, _)) => {
                            for (to, line) in group_heads(&tokens, j) {
                                push(&to, line);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `plan/render/mod.rs` is `plan::render`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// Every reference between top-level modules in `src/`, and the top-level modules.
fn crate_edges(root: &Path) -> (Vec<Edge>, Vec<String>) {
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut tops: Vec<String> = files
        .iter()
        .map(|f| module_path(f.strip_prefix(&src).expect("under src"))[0].clone())
        .filter(|m| m != "lib" && m != "main")
        .collect();
    tops.sort();
    tops.dedup();
    let mut edges = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = module_path(relative);
        if module[0] == "lib" || module[0] == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        let name = format!("src/{}", relative.display());
        edges.extend(edges_of(&name, &module, &text, &tops));
    }
    (edges, tops)
}

/// The edges against the layers: each names its file and line.
fn violations(edges: &[Edge], layers: &BTreeMap<String, u32>) -> Vec<String> {
    edges
        .iter()
        .filter(|e| layers[&e.from] <= layers[&e.to])
        .map(|e| {
            format!(
                "{}:{}: {} (layer {}) uses {} (layer {})",
                e.file, e.line, e.from, layers[&e.from], e.to, layers[&e.to]
            )
        })
        .collect()
}

#[test]
fn every_reference_goes_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/architecture.md")).expect("the page");
    let layers = layers(&page);
    let (edges, tops) = crate_edges(root);
    let unplaced: Vec<&String> = tops.iter().filter(|t| !layers.contains_key(*t)).collect();
    assert!(
        unplaced.is_empty(),
        "top-level modules without a layer in docs/architecture.md: {unplaced:?}"
    );
    assert!(edges.len() > 50, "too few references found: {edges:?}");
    let wrong = violations(&edges, &layers);
    assert!(
        wrong.is_empty(),
        "references against the layers of docs/architecture.md:\n{}",
        wrong.join("\n")
    );
}

/// The module graph, as `from -> to (count)`: run with `--nocapture` to see it.
#[test]
fn the_module_graph_is_printed() {
    let (edges, _) = crate_edges(Path::new(env!("CARGO_MANIFEST_DIR")));
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in edges {
        *counts.entry((e.from, e.to)).or_default() += 1;
    }
    for ((from, to), n) in counts {
        println!("{from} -> {to} ({n})");
    }
}

#[test]
fn references_are_found_in_code_and_not_in_comments_or_strings() {
    let tops: Vec<String> = ["cli", "graph", "ops", "spec", "state"]
        .map(String::from)
        .to_vec();
    let text = r##"
//! Docs may name [`crate::cli`] freely.
use crate::spec::Spec;
use crate::{ops::init, state::State};
/* crate::cli in a block comment */
fn f() {
    let s = "crate::cli in a string";
    let r = r#"crate::cli in a raw string"#;
    let c = '"';
    crate::ops::run(); // crate::cli after code
}
mod tests {
    use super::super::cli::Command;
    use super::*;
}
"##;
    let module = vec!["graph".to_string()];
    let found: Vec<(String, usize)> = edges_of("src/graph.rs", &module, text, &tops)
        .into_iter()
        .map(|e| (e.to, e.line))
        .collect();
    assert_eq!(
        found,
        [
            ("spec".to_string(), 3),
            ("ops".to_string(), 4),
            ("state".to_string(), 4),
            ("ops".to_string(), 10),
            ("cli".to_string(), 13),
        ]
    );
    let layers: BTreeMap<String, u32> = [("cli", 3), ("ops", 2), ("graph", 1), ("spec", 0)]
        .map(|(m, l)| (m.to_string(), l))
        .into();
    let edges = edges_of("src/graph.rs", &module, "use crate::ops::x;\n", &tops);
    assert_eq!(
        violations(&edges, &layers),
        ["src/graph.rs:1: graph (layer 1) uses ops (layer 2)"]
    );
    let edges = edges_of("src/graph.rs", &module, "use crate::spec::x;\n", &tops);
    assert!(violations(&edges, &layers).is_empty());
}
