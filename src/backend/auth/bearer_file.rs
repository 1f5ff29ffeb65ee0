//! `Authorization: Bearer <token>` with the token read from a file.
//!
//! This is how a pod reaches OpenShift's Prometheus (behind oauth-proxy or
//! kube-rbac-proxy) with its service-account token. Kubernetes rotates that
//! token by swapping the file, so the file's identity (inode, size,
//! modification time) is looked at on every request — one `stat`, no read —
//! and the file is read again only when it changed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What tells us the file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: (u64, u64),
}

fn fingerprint(path: &Path) -> std::io::Result<Fingerprint> {
    let m = std::fs::metadata(path)?;
    Ok(Fingerprint {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        inode: {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        },
    })
}

/// A bearer token kept in sync with its file.
pub struct BearerFile {
    path: PathBuf,
    current: Mutex<Option<(Fingerprint, String)>>,
    reads: std::sync::atomic::AtomicU64,
}

impl BearerFile {
    /// Watches `path`; nothing is read before the first request.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        BearerFile {
            path: path.into(),
            current: Mutex::new(None),
            reads: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The token, read again if the file changed since the last read. The
    /// error names the file and the problem, never the token.
    pub fn token(&self) -> Result<String, String> {
        let shown = self.path.display();
        let fp = fingerprint(&self.path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((held, token)) = current.as_ref() {
            if *held == fp {
                return Ok(token.clone());
            }
        }
        let text =
            std::fs::read_to_string(&self.path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = text.trim().to_owned();
        if token.is_empty() {
            *current = None;
            return Err(format!("{shown} is empty"));
        }
        if token.contains(|c: char| c.is_control() || c == ' ') {
            *current = None;
            return Err(format!(
                "{shown} does not hold a single token (it contains spaces or control characters)"
            ));
        }
        if current.is_some() {
            tracing::info!(file = %shown, "bearer token file changed, using the new token");
        }
        *current = Some((fp, token.clone()));
        Ok(token)
    }

    /// How many times the file was read (for tests and health reports).
    pub fn read_count(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(content: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("aetos-bearer-{}", uuid::Uuid::new_v4()));
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn token_is_read_once_while_the_file_is_unchanged() {
        let p = temp_file("tok-1\n");
        let b = BearerFile::new(&p);
        for _ in 0..10 {
            assert_eq!(b.token().unwrap(), "tok-1");
        }
        assert_eq!(b.read_count(), 1);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_rotated_file_is_read_again() {
        let p = temp_file("tok-1");
        let b = BearerFile::new(&p);
        assert_eq!(b.token().unwrap(), "tok-1");
        // Kubernetes swaps the file: a new inode, as a rename does.
        let next = p.with_extension("new");
        std::fs::write(&next, "tok-2-longer").unwrap();
        std::fs::rename(&next, &p).unwrap();
        assert_eq!(b.token().unwrap(), "tok-2-longer");
        assert_eq!(b.read_count(), 2);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn missing_empty_or_garbled_files_are_errors_without_the_content() {
        let p = temp_file("   \n");
        let b = BearerFile::new(&p);
        assert!(b.token().unwrap_err().ends_with("is empty"));
        std::fs::write(&p, "two words secret").unwrap();
        let e = b.token().unwrap_err();
        assert!(e.contains("single token") && !e.contains("secret"), "{e}");
        std::fs::remove_file(&p).unwrap();
        assert!(b.token().unwrap_err().starts_with("cannot read"));
    }
}
