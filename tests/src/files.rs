//! Temporary files the tests write, each removed on drop (also when a
//! test fails).

use std::path::{Path, PathBuf};

use crate::unique;

/// A file in the temporary directory, removed on drop (also when a test
/// fails).
pub struct TempFile(PathBuf);

impl TempFile {
    /// A unique path named after `tag`, ending in `ext` (nothing there yet).
    pub fn new(tag: &str, ext: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!("{}{ext}", unique(tag))))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path, as an argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A configuration file for `vtep up --config` / `vtep daemon --config`
/// in a directory of its own, removed on drop.
pub struct ConfigFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfigFile {
    /// A file holding `text`.
    pub fn new(text: &str) -> Self {
        let dir = std::env::temp_dir().join(unique("cfg"));
        std::fs::create_dir_all(&dir).expect("config directory");
        let f = ConfigFile {
            path: dir.join("vtep.toml"),
            dir,
        };
        f.write(text);
        f
    }

    /// Replaces what the file holds.
    pub fn write(&self, text: &str) {
        std::fs::write(&self.path, text).expect("config file");
    }

    /// The file's path, as an argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
