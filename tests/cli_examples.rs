//! The cluster examples run as their scheduler would run them, on the CPU with the tiny
//! checkpoint: `examples/slurm-caption.sh` as the tasks of an sbatch array (with bash, which
//! reads `#SBATCH` lines as comments), then as the rerun of a shard that left no manifest;
//! `examples/k8s-caption-job.yaml`'s container command once per completion index.

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A folder with `apollo` (the binary under test) on a PATH, `n` tiny videos and their list.
struct Cluster {
    dir: tempfile::TempDir,
    path: String,
    list: PathBuf,
    out: PathBuf,
    videos: BTreeSet<String>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(common::binary(), bin.join("apollo")).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let source = dir.path().join("source.mp4");
        common::synthetic(&source, "64x48", "8", "1", &[]);
        let videos: BTreeSet<String> = (0..n)
            .map(|i| {
                let video = dir.path().join(format!("clip{i}.mp4"));
                std::fs::copy(&source, &video).unwrap();
                video.display().to_string()
            })
            .collect();
        let list = dir.path().join("videos.txt");
        let names: Vec<&str> = videos.iter().map(String::as_str).collect();
        std::fs::write(&list, names.join("\n")).unwrap();
        let out = dir.path().join("captions");
        Self {
            dir,
            path,
            list,
            out,
            videos,
        }
    }

    /// The example's flags for the CPU and the tiny checkpoint (instead of `--device cuda`).
    fn apollo_args() -> String {
        format!(
            "--device cpu --model-dir {} --temperature 0 --max-new-tokens 2",
            common::tiny()
        )
    }

    /// `program args...` with `env`, as many at once as there are tasks; each must succeed.
    fn run_all(&self, program: &str, args: &[&str], tasks: &[Vec<(String, String)>]) {
        let children: Vec<_> = tasks
            .iter()
            .map(|env| {
                common::isolated(&mut Command::new(program))
                    .args(args)
                    .current_dir(self.dir.path())
                    .env("PATH", &self.path)
                    .envs(env.iter().cloned())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Which shards of `count` left a manifest; with all there, their videos are the list.
    fn finished(&self, count: u64) -> Vec<u64> {
        let mut union = Vec::new();
        let mut finished = Vec::new();
        for index in 0..count {
            let file = self.out.join(format!("_shard-{index}-of-{count}.json"));
            let Ok(text) = std::fs::read(&file) else {
                continue;
            };
            let m: Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(m["counts"]["failed"], 0, "{m}");
            for key in ["done", "skipped"] {
                let videos = m[key].as_array().unwrap().iter();
                union.extend(videos.map(|v| v.as_str().unwrap().to_string()));
            }
            finished.push(index);
        }
        if finished.len() == count as usize {
            assert_eq!(union.len(), self.videos.len(), "each video once");
            assert_eq!(union.into_iter().collect::<BTreeSet<_>>(), self.videos);
        }
        finished
    }
}

/// Task `id` of an sbatch array with these task IDs, its variables as slurmctld sets them.
fn slurm_task(id: u64, min: u64, max: u64, step: u64, count: u64) -> Vec<(String, String)> {
    [
        ("SLURM_ARRAY_JOB_ID", 77),
        ("SLURM_ARRAY_TASK_ID", id),
        ("SLURM_ARRAY_TASK_MIN", min),
        ("SLURM_ARRAY_TASK_MAX", max),
        ("SLURM_ARRAY_TASK_STEP", step),
        ("SLURM_ARRAY_TASK_COUNT", count),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn the_sbatch_script_runs_as_an_array_and_reruns_a_shard_that_left_no_manifest() {
    let cluster = Cluster::new(8);
    let script = example("slurm-caption.sh");
    let args = [
        script.to_str().unwrap(),
        cluster.list.to_str().unwrap(),
        cluster.out.to_str().unwrap(),
    ];
    let with_flags = |mut env: Vec<(String, String)>| {
        env.push(("APOLLO_ARGS".into(), Cluster::apollo_args()));
        env
    };
    // sbatch --array=1-4, task 3 lost (a node failed).
    let tasks: Vec<_> = [1, 2, 4]
        .into_iter()
        .map(|id| with_flags(slurm_task(id, 1, 4, 1, 4)))
        .collect();
    cluster.run_all("bash", &args, &tasks);
    assert_eq!(cluster.finished(4), [0, 1, 3]);
    // NUM_SHARDS=4 sbatch --array=2: the missing shard's index.
    let mut rerun = with_flags(slurm_task(2, 2, 2, 1, 1));
    rerun.push(("NUM_SHARDS".into(), "4".into()));
    cluster.run_all("bash", &args, &[rerun]);
    assert_eq!(cluster.finished(4), [0, 1, 2, 3]);
}

/// The value after `key: ` on the line of the manifest that has it.
fn yaml_value<'a>(yaml: &'a str, key: &str) -> &'a str {
    yaml.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in the Job"))
}

#[test]
fn the_indexed_job_s_command_runs_once_per_completion_index() {
    let yaml = std::fs::read_to_string(example("k8s-caption-job.yaml")).unwrap();
    assert_eq!(yaml_value(&yaml, "completionMode"), "Indexed");
    let completions: u64 = yaml_value(&yaml, "completions").parse().unwrap();
    // The container's command, a flow sequence (YAML that is also JSON).
    let command: Vec<String> = serde_json::from_str(yaml_value(&yaml, "command")).unwrap();
    assert!(
        command[2].contains(&format!("--num-shards {completions} ")),
        "--num-shards is the Job's completions: {command:?}"
    );
    let cluster = Cluster::new(6);
    let tasks: Vec<_> = (0..completions)
        .map(|index| {
            [
                ("JOB_COMPLETION_INDEX", index.to_string()),
                ("LIST", cluster.list.display().to_string()),
                ("OUT", cluster.out.display().to_string()),
                ("APOLLO_ARGS", Cluster::apollo_args()),
            ]
            .map(|(k, v)| (k.to_string(), v))
            .to_vec()
        })
        .collect();
    let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
    cluster.run_all(&command[0], &args, &tasks);
    assert_eq!(cluster.finished(completions).len(), completions as usize);
}
