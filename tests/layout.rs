//! The module graph of `src/` has no loops: what a module names of another (`crate::x::…`,
//! `super::…`) points one way only, at the level of the crate's top modules and at the level
//! of each directory's modules. Test code (`tests.rs`, `mod tests { … }`) is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `src/a/b/c.rs` -> ["a", "b", "c"]; `mod.rs` names its directory; `lib.rs` is the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of `text` without `#[cfg(test)]` items and comments.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_test = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if pending_test && skip_depth.is_none() {
            pending_test = false;
            if opens > closes {
                skip_depth = Some(depth);
            } else {
                // `mod tests;` or a one-line item.
                depth += opens - closes;
                continue;
            }
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The paths a `use`-style path names, from its start: `a::b`, `a::{b, c::d}`, `{x, y}`.
/// Returns the paths (lowercase segments only: modules, functions) and the bytes read.
fn paths(s: &str) -> Vec<Vec<String>> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('{') {
        let mut out = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.extend(paths(&rest[start..i]));
                    return out;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(paths(&rest[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        return out;
    }
    let head: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if head.is_empty() || !head.starts_with(|c: char| c.is_ascii_lowercase()) || head == "self" {
        return vec![Vec::new()];
    }
    match s[head.len()..].strip_prefix("::") {
        Some(rest) => paths(rest)
            .into_iter()
            .map(|mut p| {
                p.insert(0, head.clone());
                p
            })
            .collect(),
        None => vec![vec![head]],
    }
}

/// Every module path `code` (in module `here`) names: `crate::a::b`, `super::x`, groups
/// included.
fn references(here: &[String], code: &str) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        found.extend(paths(&code[i + 7..]));
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("super::") {
            continue;
        }
        // `super::super::x` climbs once per `super`.
        let mut rest = &code[i..];
        let mut base = here.to_vec();
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        for p in paths(rest) {
            let mut path = base.clone();
            path.extend(p);
            found.insert(path);
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_modules_depend_on_each_other_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // One graph per level: the top modules, and the modules of each directory.
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut edges = 0;
    for f in &files {
        if f.file_name()
            .is_some_and(|n| n == "tests.rs" || n == "main.rs")
        {
            continue;
        }
        let here = module_of(&src, f);
        if here.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read");
        for target in references(&here, &code(&text)) {
            // The level where the two paths part: their common prefix is the directory.
            let common = here.iter().zip(&target).take_while(|(a, b)| a == b).count();
            let (Some(from), Some(to)) = (here.get(common), target.get(common)) else {
                continue;
            };
            if from == to {
                continue;
            }
            graphs
                .entry(here[..common].to_vec())
                .or_default()
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
            edges += 1;
        }
    }
    assert!(
        edges > 100,
        "only {edges} references found: the scan is broken"
    );
    for (dir, graph) in &graphs {
        if let Some(cycle) = find_cycle(graph) {
            panic!(
                "a loop between the modules of {}: {}",
                if dir.is_empty() {
                    "the crate".to_string()
                } else {
                    dir.join("::")
                },
                cycle.join(" -> ")
            );
        }
    }
}
