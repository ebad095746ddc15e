//! The documentation of the global file agrees with its declarations (`config::settings()`):
//! README.md's table has one row per setting, with its default and whether a reload applies
//! it, and `config/listkeeper.toml` shows every setting, numbers with their defaults.

use std::collections::BTreeMap;
use std::path::Path;

use listkeeper::config::{settings, Config};

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rows of README.md's table of the global file: key -> (default, reload) cells.
fn readme_rows() -> BTreeMap<String, (String, String)> {
    let readme = read("README.md");
    let section = readme
        .split("\n## The global file")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README.md has a section about the global file");
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        assert!(cells.len() >= 4, "a row with too few cells: {line}");
        let key = cells[0].trim_start_matches("| ").trim_matches('`');
        let cell = (cells[1].to_string(), cells[2].to_string());
        assert!(rows.insert(key.to_string(), cell).is_none(), "{key} twice");
    }
    rows
}

#[test]
fn the_readme_table_has_every_setting_with_its_default_and_reload() {
    let rows = readme_rows();
    let mut problems = Vec::new();
    for s in settings() {
        let Some((default, reload)) = rows.get(s.key) else {
            problems.push(format!("{}: no row", s.key));
            continue;
        };
        if let Some(b) = s.bound {
            if *default != b.default.to_string() {
                problems.push(format!(
                    "{}: default {default}, declared {}",
                    s.key, b.default
                ));
            }
        }
        let declared = if s.live { "live" } else { "restart" };
        if reload != declared {
            problems.push(format!("{}: reload {reload}, declared {declared}", s.key));
        }
    }
    for key in rows.keys() {
        if !settings().any(|s| s.key == key) {
            problems.push(format!("{key}: a row for a setting that is not declared"));
        }
    }
    assert!(problems.is_empty(), "README.md:\n{}", problems.join("\n"));
}

#[test]
fn the_example_file_shows_every_setting_and_the_default_of_every_number() {
    let text = read("config/listkeeper.toml");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/listkeeper.toml");
    if let Err(errs) = Config::parse(&path, &text) {
        panic!("the example is invalid: {errs:?}");
    }
    let table: toml::Table = toml::from_str(&text).expect("TOML");
    let mut problems = Vec::new();
    for s in settings() {
        let (section, name) = s.key.split_once('.').expect("section.name");
        let value = table
            .get(section)
            .and_then(|t| t.get(name))
            .and_then(toml::Value::as_integer);
        match (s.bound, value) {
            (Some(b), Some(v)) if u64::try_from(v) == Ok(b.default) => {}
            (Some(b), _) => problems.push(format!("{} = {} is missing", s.key, b.default)),
            (None, _) => {
                // Not a number: set, or shown commented out, in its own table.
                let body = text
                    .split(&format!("\n[{section}]\n"))
                    .nth(1)
                    .and_then(|t| t.split("\n[").next())
                    .unwrap_or_default();
                let shown = body.lines().any(|l| {
                    let l = l.trim_start_matches(['#', ' ']);
                    l.strip_prefix(name)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                });
                if !shown {
                    problems.push(format!("{} is not shown", s.key));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "config/listkeeper.toml:\n{}",
        problems.join("\n")
    );
}
