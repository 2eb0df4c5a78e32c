//! Small file helpers: bounded reads, and writes that set permissions and never
//! leave a half-written file behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Why a bounded read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    NotFound,
    TooLarge { bytes: u64 },
    Io(io::Error),
}

/// Reads a whole file of at most `bytes_max` bytes.
pub(crate) fn read_bounded(path: &Path, bytes_max: usize) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => ReadError::NotFound,
        _ => ReadError::Io(error),
    })?;
    let limit = u64::try_from(bytes_max).unwrap_or(u64::MAX);
    let length = file.metadata().map_err(ReadError::Io)?.len();
    if length > limit {
        return Err(ReadError::TooLarge { bytes: length });
    }
    let mut bytes = Vec::new();
    // The file may grow between the metadata call and the read: read one byte
    // past the limit to notice.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() > bytes_max {
        return Err(ReadError::TooLarge {
            bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        });
    }
    Ok(bytes)
}

/// Who may read a file that is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Mode 0644 on unix: certificates.
    Public,
    /// Mode 0600 on unix: private keys and key stores.
    Private,
}

/// Writes `bytes` to `path`.
///
/// Without `overwrite`, fails with `AlreadyExists` if the path exists (checked
/// atomically by the operating system). With `overwrite`, writes a temporary
/// sibling and renames it over the target, so that a reader sees the old or the
/// new file, never a mix. The file is synced before this returns.
pub(crate) fn write_file(
    path: &Path,
    bytes: &[u8],
    access: Access,
    overwrite: bool,
) -> io::Result<()> {
    if !overwrite {
        let mut file = create_new(path, access)?;
        file.write_all(bytes)?;
        return file.sync_all();
    }
    let temporary = temporary_sibling(path)?;
    match std::fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let written = (|| {
        let mut file = create_new(&temporary, access)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    sync_parent(path);
    Ok(())
}

fn temporary_sibling(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".tmp-{}", std::process::id()));
    Ok(path.with_file_name(temporary))
}

fn create_new(path: &Path, access: Access) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(match access {
            Access::Public => 0o644,
            Access::Private => 0o600,
        });
    }
    #[cfg(not(unix))]
    let _ = access;
    options.open(path)
}

/// Makes a rename durable (unix); failures are ignored because the data itself
/// is already synced and not every file system supports syncing a directory.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(directory) = File::open(parent) {
            let _ = directory.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Creates a directory (and its parents) that only its owner can enter on unix.
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Decodes lower-case hexadecimal into exactly `N` bytes.
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let value = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (value(pair[0])? << 4) | value(pair[1])?;
    }
    Some(out)
}

pub(crate) fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes = [0x00, 0x7f, 0x80, 0xff, 0x12];
        assert_eq!(hex(&bytes), "007f80ff12");
        assert_eq!(unhex::<5>("007f80ff12"), Some(bytes));
        assert_eq!(unhex::<5>("007F80ff12"), None);
        assert_eq!(unhex::<5>("007f80ff1"), None);
        assert_eq!(unhex::<2>("zz00"), None);
    }

    #[test]
    fn bounded_read_and_private_write() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        write_file(&path, b"hello", Access::Private, false)?;
        let again = write_file(&path, b"bye", Access::Private, false);
        assert_eq!(
            again.map_err(|e| e.kind()),
            Err(io::ErrorKind::AlreadyExists)
        );
        write_file(&path, b"bye", Access::Private, true)?;
        assert!(matches!(read_bounded(&path, 3), Ok(bytes) if bytes == b"bye"));
        assert!(matches!(
            read_bounded(&path, 2),
            Err(ReadError::TooLarge { bytes: 3 })
        ));
        assert!(matches!(
            read_bounded(&dir.path().join("absent"), 2),
            Err(ReadError::NotFound)
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path)?.permissions().mode() & 0o777,
                0o600
            );
        }
        Ok(())
    }
}
