//! The one way output reaches the user, as ripgrep and uv do it: answers and records go to
//! stdout through a [`Printer`], flushed as they are made; errors go to stderr as one line
//! each through [`report`], and so do the steps of a long run ([`note`]). When the reader of
//! stdout goes away (`apollo ... | head`), the write fails with
//! [`Kind::OutputClosed`] and the command ends quietly with
//! success; any other write failure is one error line and exit 1.

use crate::error::{Error, Kind, Result};
use crate::records::to_json;
use serde::Serialize;
use std::fmt::Display;
use std::io::Write;

pub struct Printer {
    out: Box<dyn Write>,
}

impl Printer {
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }

    pub fn new(out: impl Write + 'static) -> Self {
        Self { out: Box::new(out) }
    }

    /// A piece of streamed text, shown at once.
    pub fn text(&mut self, text: &str) -> Result<()> {
        self.write(text.as_bytes())
    }

    /// One line.
    pub fn line(&mut self, line: impl Display) -> Result<()> {
        self.write(format!("{line}\n").as_bytes())
    }

    /// One JSON record as one line, so that `| jq` sees it now.
    pub fn record(&mut self, record: &impl Serialize) -> Result<()> {
        self.line(to_json(record)?)
    }

    /// Bytes as they are (a generated script or page).
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .and_then(|()| self.out.flush())
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe => Error::output_closed(),
                _ => Error::runtime(None, format!("cannot write to stdout: {e}")),
            })
    }
}

/// An error as one line on stderr, `apollo: <error>`; a closed stdout is no error to report.
pub fn report(e: &Error) {
    if e.kind != Kind::OutputClosed {
        note(format!("apollo: {e}"));
    }
}

/// One line on stderr (an error, or a step of a long run).
pub fn note(line: impl Display) {
    // Nowhere is left to report a failure to write to stderr itself.
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitStatus;

    /// A writer whose reader is gone, or whose disk is full.
    struct Failing(std::io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_quietly_and_other_failures_are_errors() {
        let mut closed = Printer::new(Failing(std::io::ErrorKind::BrokenPipe));
        let e = closed.line("x").unwrap_err();
        assert_eq!(
            (e.kind, e.status()),
            (Kind::OutputClosed, ExitStatus::Success)
        );
        let mut full = Printer::new(Failing(std::io::ErrorKind::StorageFull));
        let e = full.record(&serde_json::json!({"a": 1})).unwrap_err();
        assert_eq!(e.status(), ExitStatus::Failure);
        assert!(e.to_string().starts_with("cannot write to stdout: "), "{e}");
    }
}
