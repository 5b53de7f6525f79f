//! The tool's one error type and its exit statuses. Every failure is one line,
//! `<file>: <what is wrong>`, and maps to an [`ExitStatus`] (README's table of exit codes is
//! [`ExitStatus::ALL`], checked by a test).

use std::fmt;
use std::path::{Path, PathBuf};

/// How the process ends: the one list of exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    Failure = 1,
    Usage = 2,
    Input = 3,
    Model = 4,
    NonFinite = 5,
}

impl ExitStatus {
    pub const ALL: [ExitStatus; 6] = [
        ExitStatus::Success,
        ExitStatus::Failure,
        ExitStatus::Usage,
        ExitStatus::Input,
        ExitStatus::Model,
        ExitStatus::NonFinite,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as README's table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitStatus::Success => "success, also when the reader of stdout went away early",
            ExitStatus::Failure => "runtime failure (cannot write output, internal error)",
            ExitStatus::Usage => "usage error (bad flags or settings)",
            ExitStatus::Input => {
                "unreadable or unsupported input (missing, empty, not a video, no video stream, \
                 truncated)"
            }
            ExitStatus::Model => {
                "model problem (checkpoint missing, broken or inconsistent; not cached while \
                 offline)"
            }
            ExitStatus::NonFinite => {
                "the model computed NaN or infinite values (broken weights, or an overflow in \
                 bf16/f16); the message names the stage"
            }
        }
    }

    /// The worse of two statuses, for a batch that goes on after a failure: the first
    /// failure's.
    pub fn with_failure(self, other: ExitStatus) -> ExitStatus {
        if self == ExitStatus::Success {
            other
        } else {
            self
        }
    }
}

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Runtime,
    Usage,
    Input,
    Model,
    /// A stage of the model computed NaN or infinite values.
    NonFinite,
    /// The reader of stdout went away (`apollo ... | head`): the command ends quietly.
    OutputClosed,
}

impl Kind {
    pub fn status(self) -> ExitStatus {
        match self {
            Kind::Runtime => ExitStatus::Failure,
            Kind::Usage => ExitStatus::Usage,
            Kind::Input => ExitStatus::Input,
            Kind::Model => ExitStatus::Model,
            Kind::NonFinite => ExitStatus::NonFinite,
            Kind::OutputClosed => ExitStatus::Success,
        }
    }
}

#[derive(Debug, Clone)]
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

    /// The reader of stdout went away.
    pub fn output_closed() -> Self {
        Self::new(Kind::OutputClosed, None, "stdout is closed")
    }

    pub fn status(&self) -> ExitStatus {
        self.kind.status()
    }

    pub fn exit_code(&self) -> u8 {
        self.status().code()
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
            Some(p) => write!(f, "{p:?}: {}", message.trim()),
            None => write!(f, "{}", message.trim()),
        }
    }
}

impl std::error::Error for Error {}

/// A failure inside a forward pass (shapes that do not fit, a device error): a runtime error,
/// so that `?` works on candle's results wherever the model runs.
impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::runtime(None, format!("model: {}", without_backtrace(e)))
    }
}

/// candle attaches a multi-line backtrace to its errors when RUST_BACKTRACE is set; the user
/// gets the error itself, on one line.
pub fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_one_line_with_the_file() {
        let e = Error::input(Path::new("a.mp4"), "bad\nthing ");
        assert_eq!(e.to_string(), r#""a.mp4": bad thing"#);
        let odd = Error::input(Path::new("new\nline \"q\".mp4"), "bad");
        assert_eq!(odd.to_string(), r#""new\nline \"q\".mp4": bad"#);
        assert_eq!(e.exit_code(), 3);
        assert_eq!(Error::usage("no").to_string(), "no");
        assert_eq!(Error::usage("no").exit_code(), 2);
    }
}
