//! The JSON records apollo prints, one serde struct per record so that each schema is in one
//! place (README documents the fields): [`answer`] for `ask --json` and each line of
//! `caption`, [`inspect`] for `inspect --json`, [`bench`](mod@bench) for `apollo bench` and
//! the plan it leaves for the PyTorch baseline, [`compare`] for `apollo bench --compare`.
//! Field order is the order users see.

pub mod answer;
pub mod bench;
pub mod compare;
pub mod identity;
pub mod inspect;

use crate::error::{Error, Result};
use serde::{Serialize, Serializer};
use std::path::Path;

/// A record as one line of JSON.
pub fn to_json(record: &impl Serialize) -> Result<String> {
    serde_json::to_string(record)
        .map_err(|e| Error::runtime(None, format!("cannot write the JSON record: {e}")))
}

/// A path as a record shows it (`#[serde(serialize_with = "lossy_path")]`): records are
/// UTF-8 and Linux names are bytes, so bytes that are not UTF-8 show as U+FFFD.
pub fn lossy_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}
