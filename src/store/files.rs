//! The store's place on disk and who may read it: creates the data directory (0700) and the
//! store file (0600) whatever the umask, and refuses ones that already exist and let other
//! users in.
//!
//! SECURITY: the store holds confirmation and approval tokens (a moderator's token approves a
//! held post) and the secret behind per-member unsubscribe addresses, so no other local user
//! may read it. Only the bits for "others" are refused on what exists: group bits are an
//! operator's choice (a service group, as the systemd unit's `StateDirectoryMode=0750` gives;
//! a file an earlier version created under `UMask=0007`), and we never create any.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::StoreError;

/// The mode of a data directory we create.
pub(super) const DIR_MODE: u32 = 0o700;
/// The mode of a store file we create.
pub(super) const FILE_MODE: u32 = 0o600;
/// The permission bits of "others".
const OTHERS: u32 = 0o007;

/// Make sure `dir` and `file` (inside it) exist, and that neither lets other users in.
pub(super) fn prepare(dir: &Path, file: &Path) -> Result<(), StoreError> {
    prepare_dir(dir)?;
    prepare_file(file)
}

fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    let io =
        |e: std::io::Error| StoreError::Backend(format!("cannot set up {}: {e}", dir.display()));
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        // The parents are ordinary directories (the umask decides); only the last one is ours.
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            // The umask can only take bits away; set exactly ours.
            return std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map_err(io);
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let meta = std::fs::metadata(dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(StoreError::Backend(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    refuse_exposed(dir, meta.permissions().mode(), DIR_MODE)
}

fn prepare_file(file: &Path) -> Result<(), StoreError> {
    let io =
        |e: std::io::Error| StoreError::Backend(format!("cannot set up {}: {e}", file.display()));
    // Created empty here with our mode (redb initializes an empty file), so the file never
    // exists with the umask's mode, not even for a moment.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(file)
    {
        Ok(f) => {
            return f
                .set_permissions(Permissions::from_mode(FILE_MODE))
                .map_err(io)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let mode = std::fs::metadata(file).map_err(io)?.permissions().mode();
    refuse_exposed(file, mode, FILE_MODE)?;
    if mode & 0o070 != 0 {
        tracing::warn!(
            store = %file.display(),
            mode = format_args!("{:04o}", mode & 0o7777),
            "the store file is readable by its group; `chmod {:o} {}` keeps it to the server's user",
            FILE_MODE,
            shell_word(file)
        );
    }
    Ok(())
}

/// Refuse `path` if its `mode` gives other users any access; `fix` is the mode to suggest.
fn refuse_exposed(path: &Path, mode: u32, fix: u32) -> Result<(), StoreError> {
    if mode & OTHERS == 0 {
        return Ok(());
    }
    Err(StoreError::Exposed {
        path: path.to_path_buf(),
        mode: mode & 0o7777,
        fix: format!("chmod {fix:o} {}", shell_word(path)),
    })
}

/// `path` as one shell word: as it is when that is safe, else in single quotes.
fn shell_word(path: &Path) -> String {
    let s = path.to_string_lossy();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
    }

    #[test]
    fn fresh_directory_and_file_get_our_modes_and_exposed_ones_are_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join("a/b/data");
        let file = dir.join("x.redb");
        prepare(&dir, &file).expect("fresh");
        assert_eq!((mode(&dir), mode(&file)), (DIR_MODE, FILE_MODE));
        assert_eq!(std::fs::metadata(&file).expect("stat").len(), 0);
        // Again, on what now exists: fine.
        prepare(&dir, &file).expect("existing");

        std::fs::set_permissions(&file, Permissions::from_mode(0o604)).expect("chmod");
        let e = prepare(&dir, &file).expect_err("others may read the file");
        let text = e.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", file.display())),
            "{text}"
        );
        assert!(text.contains("0604"), "{text}");
        std::fs::set_permissions(&file, Permissions::from_mode(0o640)).expect("chmod");
        prepare(&dir, &file).expect("group bits on an existing file are tolerated");

        std::fs::set_permissions(&dir, Permissions::from_mode(0o711)).expect("chmod");
        let e = prepare(&dir, &file).expect_err("others may enter the directory");
        assert!(
            e.to_string()
                .contains(&format!("chmod 700 {}", dir.display())),
            "{e}"
        );
        std::fs::set_permissions(&dir, Permissions::from_mode(0o750)).expect("chmod");
        prepare(&dir, &file).expect("a service group may read the directory");
    }

    #[test]
    fn the_suggested_command_quotes_odd_paths() {
        assert_eq!(
            shell_word(Path::new("/var/lib/listkeeper/listkeeper.redb")),
            "/var/lib/listkeeper/listkeeper.redb"
        );
        assert_eq!(shell_word(Path::new("/srv/my lists")), "'/srv/my lists'");
        assert_eq!(shell_word(Path::new("/srv/it's")), r"'/srv/it'\''s'");
    }
}
