//! The tool's one error type. Every failure is one line, `<file>: <what is wrong>`, and maps
//! to an exit code (documented in README.md):
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | runtime failure (I/O while writing output, an internal error) |
//! | 2 | usage error (bad flags or arguments) |
//! | 3 | unreadable or unsupported input (a video that cannot be used) |
//! | 4 | model problem (a checkpoint that is missing, broken or inconsistent) |

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Runtime,
    Usage,
    Input,
    Model,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Runtime => 1,
            Kind::Usage => 2,
            Kind::Input => 3,
            Kind::Model => 4,
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    /// The file the problem is about, when there is one.
    pub path: Option<PathBuf>,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, path: Option<&Path>, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.map(Path::to_path_buf),
            message: message.into(),
        }
    }

    pub fn input(path: &Path, message: impl Into<String>) -> Self {
        Self::new(Kind::Input, Some(path), message)
    }

    pub fn runtime(path: Option<&Path>, message: impl Into<String>) -> Self {
        Self::new(Kind::Runtime, path, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, None, message)
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The error with its message dropped: for failures already reported one by one (a batch),
    /// whose exit code still has to come out. `main` prints nothing for an empty message.
    pub fn reported(self) -> Self {
        Self {
            message: String::new(),
            path: None,
            ..self
        }
    }

    /// Names `path` as the file the problem is about, unless one is named already.
    pub fn or_path(mut self, path: &Path) -> Self {
        self.path.get_or_insert_with(|| path.to_path_buf());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, always: messages from libraries may carry newlines.
        let message = self.message.replace(['\n', '\r'], " ");
        match &self.path {
            Some(p) => write!(f, "{}: {}", p.display(), message.trim()),
            None => write!(f, "{}", message.trim()),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_one_line_with_the_file() {
        let e = Error::input(Path::new("a.mp4"), "bad\nthing ");
        assert_eq!(e.to_string(), "a.mp4: bad thing");
        assert_eq!(e.exit_code(), 3);
        assert_eq!(Error::usage("no").to_string(), "no");
        assert_eq!(Error::usage("no").exit_code(), 2);
    }
}
