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
        let mut owner_of: HashMap<String, PathBuf> = HashMap::new();
        for file in files {
            match ListConfig::load(&file, delimiter) {
                Ok(list) => {
                    let key = list.key();
                    if let Some(other) = owner_of.get(&key) {
                        let msg =
                            format!("the list {key} is already defined in {}", other.display());
                        reg.errors.push(ConfigError::file(&file, msg.clone()));
                        continue;
                    }
                    owner_of.insert(key.clone(), file.clone());
                    reg.lists.insert(key, ListState::Active(Arc::new(list)));
                }
                Err(errs) => reg.disable(&file, errs, previous),
            }
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
            if let std::collections::hash_map::Entry::Vacant(slot) = self.lists.entry(key) {
                slot.insert(ListState::Active(list));
                self.kept.push(file.to_path_buf());
                self.errors.extend(errs);
                return;
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
