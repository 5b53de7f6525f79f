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
use serde::Serialize;

/// A record as one line of JSON.
pub fn to_json(record: &impl Serialize) -> Result<String> {
    serde_json::to_string(record)
        .map_err(|e| Error::runtime(None, format!("cannot write the JSON record: {e}")))
}
