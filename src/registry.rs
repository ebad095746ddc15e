//! The live set of lists, loaded from the lists directory and swapped atomically on reload.
//!
//! A [`Registry`] is immutable once built; the server holds it in an `Arc` and replaces the
//! whole `Arc` on reload, so a session sees either the old or the new settings of a list,
//! never a mix. A file that does not validate disables only its own list: if its address can
//! still be read (or was known before), that address answers 451 4.3.5 until the file is fixed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::list::address_hint;
use crate::config::{ConfigError, ListConfig};

/// One configured list: usable, or disabled by a broken file.
#[derive(Debug, Clone)]
pub enum ListState {
    /// Serving.
    Active(Arc<ListConfig>),
    /// Its file is broken; mail to it is deferred with 451 4.3.5.
    Disabled {
        /// The broken file.
        file: PathBuf,
        /// The first problem found, for the log.
        reason: String,
    },
}

/// All lists, keyed by `name@domain` (lowercase).
#[derive(Debug, Default)]
pub struct Registry {
    lists: HashMap<String, ListState>,
    /// Lists whose file is broken and whose domain is unknown: keyed by name only.
    disabled_names: HashMap<String, ListState>,
    errors: Vec<ConfigError>,
    /// Files whose new version is invalid and whose last good version keeps serving.
    kept: Vec<PathBuf>,
    delimiter: char,
}

impl Registry {
    /// Load every `*.toml` in `dir`. Never fails as a whole: problems disable single lists and
    /// are returned by [`Registry::errors`]. `previous` lets a list that breaks on reload keep
    /// answering 451 under the address it had.
    pub fn load(dir: &Path, delimiter: char, previous: Option<&Registry>) -> Registry {
        let mut reg = Registry {
            delimiter,
            ..Registry::default()
        };
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) => {
                reg.errors.push(ConfigError::file(
                    dir,
                    format!("cannot read the lists directory: {e}"),
                ));
                return reg;
            }
        };
        files.sort();
        let mut claims: std::collections::BTreeMap<String, Vec<(PathBuf, ListConfig)>> =
            std::collections::BTreeMap::new();
        let mut broken = Vec::new();
        for file in files {
            match ListConfig::load(&file, delimiter) {
                Ok(list) => claims.entry(list.key()).or_default().push((file, list)),
                Err(errs) => broken.push((file, errs)),
            }
        }
        for (key, mut claimants) in claims {
            let served_by = previous.and_then(|p| match p.lists.get(&key) {
                Some(ListState::Active(l)) => Some(l.file.clone()),
                _ => None,
            });
            if claimants.len() == 1 {
                // A file that appears with the address of a list another file served, whose
                // new version is broken: the last good version keeps serving, not the newcomer.
                let (file, list) = claimants.remove(0);
                if served_by
                    .as_ref()
                    .is_some_and(|f| *f != file && broken.iter().any(|(b, _)| b == f))
                {
                    reg.errors.push(ConfigError::file(&file, format!("the list {key} is served from {} (its last good version); this file defines it again and is ignored", served_by.as_ref().map(|f| f.display().to_string()).unwrap_or_default())));
                } else {
                    reg.lists.insert(key, ListState::Active(Arc::new(list)));
                }
                continue;
            }
            // Several files define the same list. A live list is never taken over by another
            // file: the one that served it keeps it; otherwise the file named after the list;
            // otherwise none of them serves (which one would be a guess) until one is removed.
            let stem = |f: &Path| {
                f.file_stem()
                    .map(|s| s.to_string_lossy().to_lowercase())
                    .unwrap_or_default()
            };
            let winner = claimants
                .iter()
                .position(|(f, _)| served_by.as_ref() == Some(f))
                .or_else(|| {
                    if served_by.is_some() {
                        return None;
                    }
                    let named: Vec<usize> = claimants
                        .iter()
                        .enumerate()
                        .filter(|(_, (f, l))| stem(f) == l.name || stem(f) == key)
                        .map(|(i, _)| i)
                        .collect();
                    (named.len() == 1).then(|| named[0])
                });
            let files: Vec<String> = claimants
                .iter()
                .map(|(f, _)| f.display().to_string())
                .collect();
            match winner {
                Some(w) => {
                    let (file, list) = claimants.swap_remove(w);
                    for (other, _) in &claimants {
                        reg.errors.push(ConfigError::file(
                            other,
                            format!(
                                "the list {key} is served from {}; this file defines it again and is ignored (remove or rename it)",
                                file.display()
                            ),
                        ));
                    }
                    reg.lists.insert(key, ListState::Active(Arc::new(list)));
                }
                None if served_by.is_some() => {
                    // The file that served it is broken or gone: its last good version (if
                    // any) is kept below; none of these takes over.
                    for (other, _) in &claimants {
                        reg.errors.push(ConfigError::file(
                            other,
                            format!("the list {key} is defined in several files ({}); none takes over the list that was serving", files.join(", ")),
                        ));
                    }
                }
                None => {
                    let reason = format!(
                        "the list {key} is defined in several files ({}): remove all but one",
                        files.join(", ")
                    );
                    for (other, _) in &claimants {
                        reg.errors.push(ConfigError::file(other, reason.clone()));
                    }
                    let file = claimants.swap_remove(0).0;
                    reg.lists.insert(key, ListState::Disabled { file, reason });
                }
            }
        }
        for (file, errs) in broken {
            reg.disable(&file, errs, previous);
        }
        reg
    }

    fn disable(&mut self, file: &Path, errs: Vec<ConfigError>, previous: Option<&Registry>) {
        // An invalid edit of a list that was serving keeps its last good version serving.
        let last_good = previous.and_then(|p| {
            p.lists.iter().find_map(|(k, s)| match s {
                ListState::Active(l) if l.file == file => Some((k.clone(), l.clone())),
                _ => None,
            })
        });
        if let Some((key, list)) = last_good {
            // Vacant unless another file took the address over, which `load` only lets a
            // file do when this one no longer serves the list.
            match self.lists.entry(key) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(ListState::Active(list));
                    self.kept.push(file.to_path_buf());
                    self.errors.extend(errs);
                    return;
                }
                std::collections::hash_map::Entry::Occupied(mut slot) => {
                    if matches!(slot.get(), ListState::Disabled { .. }) {
                        slot.insert(ListState::Active(list));
                        self.kept.push(file.to_path_buf());
                        self.errors.extend(errs);
                        return;
                    }
                }
            }
        }
        let reason = errs.first().map(|e| e.to_string()).unwrap_or_default();
        let state = ListState::Disabled {
            file: file.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let known = address_hint(&text).map(|a| a.key()).or_else(|| {
            previous.and_then(|p| {
                p.lists.iter().find_map(|(k, s)| match s {
                    ListState::Active(l) if l.file == file => Some(k.clone()),
                    ListState::Disabled { file: f, .. } if f == file => Some(k.clone()),
                    _ => None,
                })
            })
        });
        match known {
            Some(key) if !self.lists.contains_key(&key) => {
                self.lists.insert(key, state);
            }
            Some(_) => {}
            None => {
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                self.disabled_names.insert(stem, state);
            }
        }
        self.errors.extend(errs);
    }

    /// The state of the list `name@domain` (lowercase key), if configured.
    pub fn get(&self, key: &str) -> Option<&ListState> {
        self.lists.get(key).or_else(|| {
            let name = key.split('@').next()?;
            self.disabled_names.get(name)
        })
    }

    /// Active lists, sorted by address.
    pub fn active(&self) -> Vec<Arc<ListConfig>> {
        let mut v: Vec<_> = self
            .lists
            .values()
            .filter_map(|s| match s {
                ListState::Active(l) => Some(l.clone()),
                ListState::Disabled { .. } => None,
            })
            .collect();
        v.sort_by_key(|l| l.key());
        v
    }

    /// Every list with its state, sorted by address (disabled ones without a known address
    /// are listed by file name).
    pub fn all(&self) -> Vec<(String, ListState)> {
        let mut v: Vec<_> = self
            .lists
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        v.extend(
            self.disabled_names
                .iter()
                .map(|(k, s)| (format!("{k}@?"), s.clone())),
        );
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Files whose edit was invalid and whose previous version still serves.
    pub fn kept(&self) -> &[PathBuf] {
        &self.kept
    }

    /// Problems found while loading (every file, every error).
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// The recipient delimiter these lists were loaded with.
    pub fn delimiter(&self) -> char {
        self.delimiter
    }

    /// Find an active list by `name@domain` or, when unambiguous, by bare name (CLI use).
    pub fn find(&self, wanted: &str) -> Option<Arc<ListConfig>> {
        let wanted = wanted.trim().to_lowercase();
        if let Some(ListState::Active(l)) = self.lists.get(&wanted) {
            return Some(l.clone());
        }
        let mut by_name = self.active().into_iter().filter(|l| l.name == wanted);
        match (by_name.next(), by_name.next()) {
            (Some(l), None) => Some(l),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(prefix: &str) -> String {
        format!("address = \"dev@example.org\"\nowners = [\"o@example.org\"]\n[decoration]\nsubject_prefix = \"{prefix}\"\n")
    }

    fn prefix_of(reg: &Registry) -> Option<String> {
        match reg.get("dev@example.org") {
            Some(ListState::Active(l)) => l.decoration.subject_prefix.clone(),
            _ => None,
        }
    }

    #[test]
    fn a_second_file_with_the_same_address_never_takes_a_list_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("dev.toml"), list("[dev]")).expect("write");
        // A stray copy that sorts first: the file named after the list serves, the copy is
        // reported as the one ignored.
        std::fs::write(d.join("aaa-copy.toml"), list("[copy]")).expect("write");
        let reg = Registry::load(d, '+', None);
        assert_eq!(prefix_of(&reg).as_deref(), Some("[dev]"));
        assert_eq!(reg.errors().len(), 1, "{:?}", reg.errors());
        let e = reg.errors()[0].to_string();
        assert!(
            e.contains("aaa-copy.toml") && e.contains("is ignored"),
            "{e}"
        );

        // A list served from a file not named after it keeps that file when a copy appears.
        std::fs::remove_file(d.join("aaa-copy.toml")).expect("rm");
        std::fs::rename(d.join("dev.toml"), d.join("zzz-developers.toml")).expect("mv");
        let serving = Registry::load(d, '+', None);
        assert_eq!(prefix_of(&serving).as_deref(), Some("[dev]"));
        std::fs::write(d.join("aaa-copy.toml"), list("[copy]")).expect("write");
        let reg = Registry::load(d, '+', Some(&serving));
        assert_eq!(prefix_of(&reg).as_deref(), Some("[dev]"));

        // Its file broken by an edit, the copy still does not take over: the last good
        // version serves.
        std::fs::write(d.join("zzz-developers.toml"), "][").expect("write");
        let reg2 = Registry::load(d, '+', Some(&reg));
        assert_eq!(prefix_of(&reg2).as_deref(), Some("[dev]"));

        // On a fresh start with two files, neither named after the list, neither serves.
        let fresh = Registry::load(d, '+', None);
        std::fs::write(d.join("zzz-developers.toml"), list("[dev]")).expect("write");
        let fresh2 = Registry::load(d, '+', None);
        assert!(matches!(
            fresh2.get("dev@example.org"),
            Some(ListState::Disabled { .. })
        ));
        assert!(fresh2
            .errors()
            .iter()
            .any(|e| e.to_string().contains("several files")));
        // (With the broken file and the copy, the copy is the only valid one: it serves.)
        assert_eq!(prefix_of(&fresh).as_deref(), Some("[copy]"));
    }

    #[test]
    fn a_broken_file_disables_only_its_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = "address = \"dev@example.org\"\nowners = [\"o@example.org\"]\n";
        std::fs::write(dir.path().join("dev.toml"), good).expect("write");
        std::fs::write(
            dir.path().join("ops.toml"),
            "address = \"ops@example.org\"\nowners = []\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("junk.toml"), "address = [").expect("write");
        let reg = Registry::load(dir.path(), '+', None);
        assert!(matches!(
            reg.get("dev@example.org"),
            Some(ListState::Active(_))
        ));
        assert!(matches!(
            reg.get("ops@example.org"),
            Some(ListState::Disabled { .. })
        ));
        assert!(matches!(
            reg.get("junk@anything.org"),
            Some(ListState::Disabled { .. })
        ));
        assert_eq!(reg.errors().len(), 2);
        assert!(reg.get("nosuch@example.org").is_none());

        // An invalid edit keeps the last good version serving (and reports the error).
        std::fs::write(dir.path().join("dev.toml"), "][").expect("write");
        let reg2 = Registry::load(dir.path(), '+', Some(&reg));
        assert!(matches!(
            reg2.get("dev@example.org"),
            Some(ListState::Active(_))
        ));
        assert_eq!(reg2.kept().len(), 1);
        assert_eq!(reg2.errors().len(), 3);
        // Removing the file removes the list.
        std::fs::remove_file(dir.path().join("dev.toml")).expect("rm");
        let reg3 = Registry::load(dir.path(), '+', Some(&reg2));
        assert!(reg3.get("dev@example.org").is_none());
    }
}
