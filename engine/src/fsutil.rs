//! File writes that never leave half a file behind: write a sibling temporary file, flush it to
//! disk, then rename it over the target (atomic on one filesystem).
//!
//! A rename replaces whatever the target name points at, so the target is checked first: only a
//! regular file (or a name that does not exist yet) is replaced. A device such as `/dev/full` or
//! `/dev/null`, a FIFO, a socket or a folder is refused with an error that names it. A symbolic
//! link is followed: its target is written (through a temporary beside the target, so the rename
//! stays atomic), and the link itself is left as it was, pointing at the new file.

use std::fs::FileType;
use std::io::{Error, ErrorKind, Write};
use std::path::{Path, PathBuf};

/// What a file type is, in words, for messages: "a regular file", "a FIFO (named pipe)", …
pub fn kind_of(file_type: &FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// The file a write to `path` replaces: `path` itself, or where a symbolic link at `path`
/// leads. Errors if that is anything but a regular file or a name not yet taken, or if the
/// folder it would go in is a file.
pub fn write_target(path: &Path) -> std::io::Result<PathBuf> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(resolved) => resolved,
            // A link to nothing yet: write where it points, resolved from the link's folder.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let link = std::fs::read_link(path)?;
                let resolved = path.parent().unwrap_or(Path::new("")).join(link);
                if std::fs::symlink_metadata(&resolved).is_ok() {
                    // A chain of links with a missing end: too far to follow safely.
                    return Err(Error::new(ErrorKind::NotFound, "it is a symbolic link that leads nowhere"));
                }
                resolved
            }
            Err(e) => return Err(e),
        },
        _ => path.to_path_buf(),
    };
    // The nearest folder on the way that exists must be a folder: else creating the folders
    // would fail with a bare "File exists".
    if let Some(parent) = target.parent() {
        for ancestor in parent.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            if let Ok(meta) = std::fs::metadata(ancestor) {
                if !meta.is_dir() {
                    return Err(Error::other(format!(
                        "{} is {}, not a folder",
                        ancestor.display(),
                        kind_of(&meta.file_type())
                    )));
                }
                break;
            }
        }
    }
    match std::fs::symlink_metadata(&target) {
        Ok(meta) if !meta.file_type().is_file() => {
            let followed = if target == path { String::new() } else { format!(" ({})", target.display()) };
            return Err(Error::other(format!(
                "it{followed} is {}, not a regular file; Rebar replaces only regular files",
                kind_of(&meta.file_type())
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(target)
}

/// Writes `bytes` to `path` atomically, creating the parent folder if needed. Only a regular
/// file is replaced, and a symbolic link is written through (see the module doc).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let path = &write_target(path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("rebar-fsutil-{}", std::process::id()));
        let path = dir.join("nested/out.bin");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_replaced_and_a_link_is_written_through() {
        use std::os::unix::fs::FileTypeExt;
        let dir = std::env::temp_dir().join(format!("rebar-fsutil-special-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Devices: /dev/full was replaced by a regular file, /dev/null too. Reached through
        // links here, so that a regression replaces a link in a scratch folder, not a device.
        for device in ["/dev/full", "/dev/null"] {
            let link = dir.join(device.trim_start_matches("/dev/"));
            std::os::unix::fs::symlink(device, &link).unwrap();
            let err = write_atomically(&link, b"MThd").unwrap_err().to_string();
            assert!(err.contains(&format!("it ({device}) is a character device, not a regular file")), "{err}");
            assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        }
        // A private device node, named directly (creating one needs privileges; skipped without).
        let node = dir.join("node.mid");
        let c_node = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mknod only creates a file (here a copy of /dev/null's numbers).
        if unsafe { libc::mknod(c_node.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) } == 0 {
            let err = write_atomically(&node, b"MThd").unwrap_err().to_string();
            assert_eq!(err, "it is a character device, not a regular file; Rebar replaces only regular files");
            assert!(std::fs::symlink_metadata(&node).unwrap().file_type().is_char_device());
        }
        // A FIFO.
        let fifo = dir.join("pipe.mid");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let err = write_atomically(&fifo, b"MThd").unwrap_err().to_string();
        assert!(err.contains("a FIFO (named pipe)"), "{err}");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        // A link to a FIFO is refused as the FIFO is.
        let link_to_fifo = dir.join("pipe-link.mid");
        std::os::unix::fs::symlink(&fifo, &link_to_fifo).unwrap();
        assert!(write_atomically(&link_to_fifo, b"MThd").is_err());
        // A link to a regular file: the target gets the bytes and the link stays a link.
        let target = dir.join("take-3.mid");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.join("current.mid");
        std::os::unix::fs::symlink("take-3.mid", &link).unwrap();
        write_atomically(&link, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        // A folder on the way that is a file is named, not reported as "File exists".
        let err = write_atomically(&target.join("out.mid"), b"x").unwrap_err().to_string();
        assert!(err.contains("take-3.mid is a regular file, not a folder"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
