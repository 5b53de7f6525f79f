//! Errors (filled in with the CLI).
