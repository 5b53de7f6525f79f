//! Captioning at dataset scale: the scheduler (a Slurm job array, a Kubernetes Indexed Job,
//! any launcher that sets an index) runs one apollo per task, and each answers its [`shard`]
//! of the video list, exactly once and resumably, leaving a [`manifest`] when it is done.

pub mod manifest;
pub mod shard;
