//! Where `apollo chat` reads its lines: a line editor with history on a terminal, else one
//! line at a time from stdin (bytes that are not UTF-8 read as U+FFFD).

use crate::error::{Error, Result};
use rustyline::error::ReadlineError;
use std::io::BufRead;

pub enum Input {
    Line(String),
    /// Ctrl-C at the prompt: the line is dropped.
    Cancelled,
    /// Ctrl-D, or the end of stdin.
    End,
}

pub enum Lines {
    Terminal(Box<rustyline::DefaultEditor>),
    Piped(std::io::StdinLock<'static>),
}

impl Lines {
    pub fn new(terminal: bool) -> Result<Self> {
        if !terminal {
            return Ok(Lines::Piped(std::io::stdin().lock()));
        }
        let editor = rustyline::DefaultEditor::new()
            .map_err(|e| Error::runtime(None, format!("cannot read the terminal: {e}")))?;
        Ok(Lines::Terminal(Box::new(editor)))
    }

    pub fn next(&mut self) -> Result<Input> {
        match self {
            Lines::Terminal(editor) => match editor.readline("> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Ok(Input::Line(line))
                }
                Err(ReadlineError::Interrupted) => Ok(Input::Cancelled),
                Err(ReadlineError::Eof) => Ok(Input::End),
                Err(e) => Err(Error::runtime(
                    None,
                    format!("cannot read the terminal: {e}"),
                )),
            },
            Lines::Piped(stdin) => {
                let mut bytes = Vec::new();
                let read = stdin
                    .read_until(b'\n', &mut bytes)
                    .map_err(|e| Error::runtime(None, format!("cannot read stdin: {e}")))?;
                if read == 0 {
                    return Ok(Input::End);
                }
                let line = String::from_utf8_lossy(&bytes);
                Ok(Input::Line(line.trim_end_matches(['\n', '\r']).to_string()))
            }
        }
    }
}

/// `text` safe to show on a terminal: control characters other than newline and tab (an
/// answer may hold any bytes, escape sequences too) become U+FFFD.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_not_sent_to_the_terminal() {
        assert_eq!(
            printable("a\u{1b}[2Jb\nc\td\u{7}\u{9b}"),
            "a\u{fffd}[2Jb\nc\td\u{fffd}\u{fffd}"
        );
        assert_eq!(printable("plain é 🎉"), "plain é 🎉");
    }
}
