//! Shards of a video list: the videos one task of an array answers. A video's shard is a
//! function of its path alone, so the shards of a list are disjoint, cover it, and do not
//! depend on its order: a rerun or a reordered list gives every video the same shard.
//!
//! The function, to reproduce elsewhere: the 64-bit FNV-1a hash of the path's bytes as given
//! (no normalisation: `./a.mp4` and `a.mp4` are two paths), scaled to the count by its high
//! bits, `shard = (hash * COUNT) >> 64` in 128-bit arithmetic. In Python:
//!
//! ```text
//! h = 0xcbf29ce484222325
//! for b in path_bytes: h = ((h ^ b) * 0x100000001b3) % 2**64
//! shard = (h * count) >> 64
//! ```

use crate::error::{Error, Result};
use crate::fnv::Fnv1a;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::str::FromStr;

/// The most shards a list may be split into (more than any scheduler's array holds).
pub const MAX_COUNT: u64 = 1 << 32;

/// Shard `index` (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole list, as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`, if `index` is below `count` and `count` is 1 to MAX_COUNT.
    pub fn new(index: u64, count: u64) -> Option<Self> {
        ((1..=MAX_COUNT).contains(&count) && index < count).then_some(Self { index, count })
    }

    /// Which of `count` shards `path` belongs to.
    pub fn of(path: &Path, count: u64) -> u64 {
        let hash = Fnv1a::of(path.as_os_str().as_bytes());
        // The high bits: FNV's low bits mix poorly, and this needs no division.
        ((u128::from(hash) * u128::from(count)) >> 64) as u64
    }

    pub fn holds(&self, path: &Path) -> bool {
        Self::of(path, self.count) == self.index
    }

    /// The name of the shard's manifest in the output folder.
    pub fn manifest_name(&self) -> String {
        format!("_shard-{}-of-{}.json", self.index, self.count)
    }

    /// Whether `name` is some shard's manifest name (no record may take it).
    pub fn is_manifest_name(name: &str) -> bool {
        let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        name.strip_prefix("_shard-")
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(|rest| rest.split_once("-of-"))
            .is_some_and(|(i, n)| number(i) && number(n))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--shard INDEX/COUNT`.
impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "expected INDEX/COUNT, INDEX from 0 to COUNT-1 and COUNT from 1 to {MAX_COUNT}, \
                 e.g. 3/10"
            )
        };
        let (index, count) = text.trim().split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            index.parse().map_err(|_| bad())?,
            count.parse().map_err(|_| bad())?,
        );
        Self::new(index, count).ok_or_else(bad)
    }
}

/// The variables Slurm sets in each task of a job array (sbatch's man page, and slurmctld's
/// `_create_job_array`: STEP is the number after `:` in `--array`, else 1).
const SLURM: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "SLURM_ARRAY_TASK_COUNT",
];
/// The index a Kubernetes Indexed Job gives each pod (it exports no count).
const KUBERNETES: &str = "JOB_COMPLETION_INDEX";

/// The shard to answer and where it came from (for -v and the manifest): `--shard`, else the
/// scheduler's environment as `env` reads it, else the whole list.
pub fn resolve(
    flag: Option<Shard>,
    num_shards: Option<u64>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Shard, String)> {
    if let Some(shard) = flag {
        return Ok((shard, "--shard".into()));
    }
    let read = |name: &str| -> Result<Option<u64>> {
        env(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| Error::usage(format!("{name}={v:?} is not a whole number")))
            })
            .transpose()
    };
    let (slurm, kubernetes) = (read(SLURM[0])?, read(KUBERNETES)?);
    match (slurm, kubernetes, num_shards) {
        (Some(_), Some(_), _) => Err(Error::usage(format!(
            "both {} and {KUBERNETES} are set: give --shard INDEX/COUNT",
            SLURM[0]
        ))),
        (Some(id), None, Some(count)) => indexed(SLURM[0], id, count),
        (None, Some(index), Some(count)) => indexed(KUBERNETES, index, count),
        (None, Some(index), None) => Err(Error::usage(format!(
            "{KUBERNETES}={index} is set (a Kubernetes Indexed Job) but not the shard count: give \
             --num-shards (the Job's completions)"
        ))),
        (Some(id), None, None) => slurm_array(id, &read),
        (None, None, Some(_)) => Err(Error::usage(format!(
            "--num-shards needs a task index from the scheduler ({KUBERNETES} or {}); without \
             one, give --shard INDEX/COUNT",
            SLURM[0]
        ))),
        (None, None, None) => Ok((Shard::ALL, "none (no --shard, no scheduler's index)".into())),
    }
}

/// `name`'s value is the shard index, of `--num-shards count`.
fn indexed(name: &str, index: u64, count: u64) -> Result<(Shard, String)> {
    let shard = Shard::new(index, count).ok_or_else(|| {
        Error::usage(format!(
            "{name}={index} is not below --num-shards {count}: the shard indices are 0 to {}",
            count.saturating_sub(1)
        ))
    })?;
    Ok((shard, format!("{name}={index} and --num-shards {count}")))
}

/// The shard of Slurm array task `id`: its place among the array's task IDs, MIN, MIN + STEP,
/// ... up to MAX, of COUNT tasks. An array that is not evenly spaced (`--array=3,7`) has no
/// such place.
fn slurm_array(id: u64, read: &dyn Fn(&str) -> Result<Option<u64>>) -> Result<(Shard, String)> {
    let values: Vec<Option<u64>> = SLURM.iter().map(|name| read(name)).collect::<Result<_>>()?;
    let shown = SLURM
        .iter()
        .zip(&values)
        .filter_map(|(name, v)| v.map(|v| format!("{name}={v}")))
        .collect::<Vec<_>>()
        .join(", ");
    let (min, max, step) = (values[1].unwrap_or(0), values[2], values[3].unwrap_or(1));
    let Some(count) = values[4] else {
        return Err(Error::usage(format!(
            "{shown}: SLURM_ARRAY_TASK_COUNT is not set; give --num-shards or --shard"
        )));
    };
    let even = step > 0
        && id >= min
        && (id - min).is_multiple_of(step)
        && max.is_none_or(|max| Some(max) == count.checked_sub(1).map(|c| min + c * step));
    match Shard::new((id.saturating_sub(min)) / step.max(1), count).filter(|_| even) {
        Some(shard) => Ok((shard, shown)),
        None => Err(Error::usage(format!(
            "{shown} is not one task of an evenly spaced array (--array=A-B or A-B:STEP); for an \
             array of some shards only (a rerun), give --num-shards COUNT: the task IDs are then \
             the shard indices"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    #[test]
    fn a_path_s_shard_is_the_documented_function() {
        // Computed with the Python lines of the module's documentation.
        for (path, shards) in [
            ("videos/a.mp4", [0, 0, 0, 83]),
            ("videos/b.mp4", [1, 1, 5, 579]),
            ("clips/0001.mp4", [0, 0, 1, 172]),
            ("/data/x.mkv", [0, 0, 2, 226]),
        ] {
            for (count, want) in [2, 3, 10, 1000].into_iter().zip(shards) {
                assert_eq!(Shard::of(Path::new(path), count), want, "{path} of {count}");
            }
        }
    }

    #[test]
    fn shards_cover_a_list_once_and_evenly() {
        let paths: Vec<PathBuf> = (0..10_000)
            .map(|i| PathBuf::from(format!("data/video_{i:05}.mp4")))
            .collect();
        for count in [1, 2, 7, 16] {
            let mut sizes = vec![0usize; count as usize];
            for path in &paths {
                let holders: Vec<u64> = (0..count)
                    .filter(|&index| Shard::new(index, count).unwrap().holds(path))
                    .collect();
                assert_eq!(holders.len(), 1, "{path:?}");
                sizes[holders[0] as usize] += 1;
            }
            let mean = paths.len() / count as usize;
            assert!(
                sizes.iter().all(|&s| s.abs_diff(mean) * 10 < mean),
                "{count}: {sizes:?}"
            );
        }
    }

    #[test]
    fn shard_flags_and_manifest_names() {
        assert_eq!(
            "3/10".parse(),
            Ok(Shard {
                index: 3,
                count: 10
            })
        );
        for bad in ["10/10", "1/0", "-1/3", "3", "a/b", "1/4294967297"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let shard = Shard::new(3, 10).unwrap();
        assert_eq!(shard.manifest_name(), "_shard-3-of-10.json");
        assert!(Shard::is_manifest_name(&shard.manifest_name()));
        for not in [
            "_shard-3-of-.json",
            "_shard-a-of-2.json",
            "shard-1-of-2.json",
            "x.json",
        ] {
            assert!(!Shard::is_manifest_name(not), "{not}");
        }
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    /// The variables of task `id` of `sbatch --array=MIN-MAX:STEP`, as slurmctld sets them.
    fn slurm(id: u64, min: u64, max: u64, step: u64) -> Vec<(&'static str, String)> {
        let count = (max - min) / step + 1;
        SLURM
            .into_iter()
            .zip([id, min, max, step, count].map(|v| v.to_string()))
            .collect()
    }

    fn shard_of(vars: &[(&str, String)], num_shards: Option<u64>) -> Result<Shard> {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        resolve(None, num_shards, env_of(&vars)).map(|(shard, _)| shard)
    }

    #[test]
    fn slurm_arrays_from_zero_from_one_and_with_steps() {
        for (min, max, step) in [(0, 3, 1), (1, 10, 1), (0, 20, 2), (5, 17, 4)] {
            let ids: Vec<u64> = (min..=max).step_by(step as usize).collect();
            let shards: Vec<Shard> = ids
                .iter()
                .map(|&id| shard_of(&slurm(id, min, max, step), None).unwrap())
                .collect();
            let count = ids.len() as u64;
            assert_eq!(
                shards,
                (0..count)
                    .map(|i| Shard::new(i, count).unwrap())
                    .collect::<Vec<_>>(),
                "--array={min}-{max}:{step}"
            );
        }
    }

    #[test]
    fn a_flag_wins_and_no_index_is_the_whole_list() {
        let shard = Shard::new(1, 2).unwrap();
        let env = env_of(&[("SLURM_ARRAY_TASK_ID", "7"), (KUBERNETES, "3")]);
        assert_eq!(resolve(Some(shard), None, &env).unwrap().0, shard);
        assert_eq!(resolve(None, None, env_of(&[])).unwrap().0, Shard::ALL);
    }

    #[test]
    fn kubernetes_takes_the_count_from_num_shards_and_so_may_slurm() {
        let k8s = |index: &str, n| resolve(None, n, env_of(&[(KUBERNETES, index)]));
        assert_eq!(k8s("2", Some(4)).unwrap().0, Shard::new(2, 4).unwrap());
        // A rerun of some shards: the task IDs are the indices.
        let rerun = shard_of(&slurm(7, 3, 7, 1)[..1], Some(10)).unwrap();
        assert_eq!(rerun, Shard::new(7, 10).unwrap());
        for (e, names) in [
            (k8s("2", None), &[KUBERNETES, "--num-shards"][..]),
            (k8s("4", Some(4)), &[KUBERNETES, "--num-shards 4"]),
            (k8s("x", Some(4)), &[KUBERNETES]),
            (
                resolve(None, Some(4), env_of(&[])),
                &["--num-shards", "--shard"],
            ),
        ] {
            let e = e.unwrap_err();
            assert_eq!(e.exit_code(), 2);
            for name in names {
                assert!(e.to_string().contains(name), "{name}: {e}");
            }
        }
    }

    #[test]
    fn inconsistent_slurm_variables_are_usage_errors_naming_them() {
        let mut uneven = slurm(7, 3, 7, 1); // --array=3,7: COUNT 2
        uneven[4].1 = "2".into();
        let mut off_step = slurm(3, 0, 20, 2);
        off_step[0].1 = "3".into();
        let mut no_count = slurm(1, 0, 3, 1);
        no_count.pop();
        let both = [slurm(0, 0, 1, 1), vec![(KUBERNETES, "0".to_string())]].concat();
        for (vars, says) in [
            (uneven, "SLURM_ARRAY_TASK_COUNT=2"),
            (off_step, "SLURM_ARRAY_TASK_STEP=2"),
            (no_count, "SLURM_ARRAY_TASK_COUNT is not set"),
            (both, "JOB_COMPLETION_INDEX"),
        ] {
            let e = shard_of(&vars, None).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(says), "{says}: {e}");
        }
    }
}
