//! The record file: written atomically (temp file in the same folder, fsync, rename), and only
//! after the token verified. Its format is `entitle_verify::Record`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub use entitle_verify::Record;

/// Writes `contents` to `path` so readers see the old file or the whole new one, never a part.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    // A crash between create and rename leaves this temp file behind, and as PID 1 of the
    // next container this process has the same pid: remove it, or create_new fails forever.
    let _ = std::fs::remove_file(&temp);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        write_atomically(&path, b"one", 0o644).unwrap();
        write_atomically(&path, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_temp_file_left_by_a_crash_under_the_same_pid_does_not_block_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        let stale = dir
            .path()
            .join(format!(".record.json.{}.tmp", std::process::id()));
        std::fs::write(&stale, b"half").unwrap();
        write_atomically(&path, b"whole", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "whole");
        assert!(!stale.exists());
    }
}
