//! What one run of a shard did: the tally of its videos as they go, the summary line at its
//! end, and the manifest it leaves in the output folder when it has gone through every video,
//! so that a driver script can tell finished shards from the rest.

use super::shard::Shard;
use crate::error::Error;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The videos of a run so far, and when it started.
pub struct Tally {
    started: SystemTime,
    clock: Instant,
    videos: usize,
    done: Vec<PathBuf>,
    skipped: Vec<PathBuf>,
    failed: Vec<Failure>,
}

/// A video that failed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    #[serde(serialize_with = "crate::records::lossy_path")]
    pub video: PathBuf,
    pub error: String,
}

/// `_shard-INDEX-of-COUNT.json`: one finished run of a shard.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub shard: ShardRecord,
    pub apollo_version: &'static str,
    /// UTC, RFC 3339 to the millisecond.
    pub started: String,
    pub finished: String,
    pub elapsed_s: f64,
    pub counts: Counts,
    /// Videos answered per hour of the run (reused records take no time).
    pub videos_per_hour: f64,
    /// What every record of the run answers besides its video (a record's `inputs`).
    pub settings: serde_json::Value,
    /// Videos answered by this run, videos whose record was reused (`--skip-existing`),
    /// videos that failed: together the shard's videos, in list order within each.
    #[serde(serialize_with = "lossy_paths")]
    pub done: Vec<PathBuf>,
    #[serde(serialize_with = "lossy_paths")]
    pub skipped: Vec<PathBuf>,
    pub failed: Vec<Failure>,
}

#[derive(Debug, Serialize)]
pub struct ShardRecord {
    pub index: u64,
    pub count: u64,
    /// Where the shard came from: --shard, the scheduler's variables, or none.
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub videos: usize,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Tally {
    /// A run over `videos` videos, starting now.
    pub fn start(videos: usize) -> Self {
        Self {
            started: SystemTime::now(),
            clock: Instant::now(),
            videos,
            done: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
        }
    }

    pub fn done(&mut self, video: &Path) {
        self.done.push(video.to_path_buf());
    }

    pub fn skipped(&mut self, video: &Path) {
        self.skipped.push(video.to_path_buf());
    }

    pub fn failed(&mut self, video: &Path, error: &Error) {
        self.failed.push(Failure {
            video: video.to_path_buf(),
            error: error.to_string(),
        });
    }

    pub fn counts(&self) -> Counts {
        Counts {
            videos: self.videos,
            done: self.done.len(),
            skipped: self.skipped.len(),
            failed: self.failed.len(),
        }
    }

    fn per_hour(&self, elapsed: Duration) -> f64 {
        let hours = elapsed.as_secs_f64() / 3600.0;
        if hours > 0.0 {
            self.done.len() as f64 / hours
        } else {
            0.0
        }
    }

    /// The line on stderr at the end of a run.
    pub fn summary(&self, shard: Shard) -> String {
        let elapsed = self.clock.elapsed();
        let c = self.counts();
        let of_shard = if shard == Shard::ALL {
            String::new()
        } else {
            format!("shard {shard}, ")
        };
        let videos = if c.videos == 1 { "video" } else { "videos" };
        format!(
            "apollo caption: {of_shard}{} {videos}: {} done, {} skipped, {} failed in {} ({:.1} \
             videos/hour)",
            c.videos,
            c.done,
            c.skipped,
            c.failed,
            clock_time(elapsed),
            self.per_hour(elapsed)
        )
    }

    /// The manifest of the finished run.
    pub fn manifest(self, shard: Shard, from: String, settings: serde_json::Value) -> Manifest {
        let elapsed = self.clock.elapsed();
        Manifest {
            shard: ShardRecord {
                index: shard.index,
                count: shard.count,
                from,
            },
            apollo_version: env!("CARGO_PKG_VERSION"),
            started: rfc3339(self.started),
            finished: rfc3339(self.started + elapsed),
            elapsed_s: (elapsed.as_secs_f64() * 1e3).round() / 1e3,
            counts: self.counts(),
            videos_per_hour: (self.per_hour(elapsed) * 10.0).round() / 10.0,
            settings,
            done: self.done,
            skipped: self.skipped,
            failed: self.failed,
        }
    }
}

fn lossy_paths<S: serde::Serializer>(paths: &[PathBuf], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

/// `4.2 s` under a minute, else `H:MM:SS`.
fn clock_time(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

/// `2026-11-30T12:52:51.123Z`.
fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339_and_clock_times() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_795_999_971, 123)), "2026-11-30T00:52:51.123Z");
        assert_eq!(clock_time(Duration::from_millis(4_240)), "4.2 s");
        assert_eq!(clock_time(Duration::from_secs(3723)), "1:02:03");
    }

    #[test]
    fn the_tally_counts_and_the_manifest_lists_every_video() {
        let mut tally = Tally::start(4);
        tally.done(Path::new("a.mp4"));
        tally.skipped(Path::new("b.mp4"));
        tally.done(Path::new("c.mp4"));
        tally.failed(
            Path::new("d.mp4"),
            &Error::input(Path::new("d.mp4"), "broken"),
        );
        let counts = Counts {
            videos: 4,
            done: 2,
            skipped: 1,
            failed: 1,
        };
        assert_eq!(tally.counts(), counts);
        let shard = Shard::new(1, 3).unwrap();
        let line = tally.summary(shard);
        assert!(
            line.starts_with(
                "apollo caption: shard 1/3, 4 videos: 2 done, 1 skipped, 1 failed in "
            ),
            "{line}"
        );
        assert!(!Tally::start(0).summary(Shard::ALL).contains("shard"));
        let m = tally.manifest(
            shard,
            "--shard".into(),
            serde_json::json!({"question": "q"}),
        );
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json["shard"],
            serde_json::json!({"index": 1, "count": 3, "from": "--shard"})
        );
        assert_eq!(json["done"], serde_json::json!(["a.mp4", "c.mp4"]));
        assert_eq!(json["skipped"], serde_json::json!(["b.mp4"]));
        assert_eq!(json["failed"][0]["error"], "\"d.mp4\": broken");
        assert_eq!(json["counts"]["videos"], 4);
        assert!(m.finished >= m.started);
    }
}
