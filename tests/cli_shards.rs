//! `caption` as the tasks of a job array: every index run with the environment set as Slurm
//! and Kubernetes set it, shards disjoint, complete and independent of the list's order, a
//! killed shard resumed, and shards run side by side with `xargs -P` as on a machine with
//! several GPUs.

mod common;

use common::{apollo, run, tiny};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `n` tiny videos under `dir` (copies of one: only their names matter to the shards), and
/// their list file.
fn videos(dir: &Path, n: usize) -> (Vec<String>, PathBuf) {
    let source = dir.join("source.mp4");
    common::synthetic(&source, "64x48", "8", "1", &[]);
    let videos: Vec<String> = (0..n)
        .map(|i| {
            let video = dir.join(format!("video_{i:02}.mp4"));
            std::fs::copy(&source, &video).unwrap();
            video.display().to_string()
        })
        .collect();
    let list = dir.join("list.txt");
    std::fs::write(&list, videos.join("\n")).unwrap();
    (videos, list)
}

/// `apollo caption --from LIST --output-dir OUT` with the tiny model, greedy and short.
fn caption(list: &Path, out: &Path) -> Command {
    let mut cmd = common::apollo_process();
    cmd.args(["caption", "--model-dir", &tiny(), "--max-new-tokens", "2"])
        .args(["--temperature", "0", "--skip-existing", "--from"])
        .arg(list)
        .arg("--output-dir")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// One task of an array: the environment its scheduler gives it, and its own flags.
struct Task {
    env: Vec<(&'static str, String)>,
    flags: Vec<String>,
}

impl Task {
    fn env(env: Vec<(&'static str, String)>) -> Self {
        Self {
            env,
            flags: Vec::new(),
        }
    }
}

/// Runs the tasks side by side, as a scheduler does.
fn run_tasks(list: &Path, out: &Path, tasks: &[Task]) {
    let children: Vec<_> = tasks
        .iter()
        .map(|task| {
            caption(list, out)
                .envs(task.env.iter().cloned())
                .args(&task.flags)
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.starts_with("apollo caption: shard "), "{stderr}");
    }
}

/// The records in `out` by file name (not the manifests, nor a temporary file a killed run
/// left), read as bytes.
fn records(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let bytes = std::fs::read(&p).ok()?;
            (!name.starts_with(['_', '.'])).then_some((name, bytes))
        })
        .collect()
}

fn manifest(out: &Path, index: u64, count: u64) -> Option<Value> {
    let file = out.join(format!("_shard-{index}-of-{count}.json"));
    let text = std::fs::read(file).ok()?;
    Some(serde_json::from_slice(&text).unwrap())
}

/// The videos of each shard's manifest (all of them there), answered or reused.
fn shards_of(out: &Path, count: u64) -> Vec<BTreeSet<String>> {
    (0..count)
        .map(|index| {
            let m = manifest(out, index, count).unwrap_or_else(|| panic!("no manifest {index}"));
            assert_eq!(m["failed"], Value::Array(vec![]));
            ["done", "skipped"]
                .iter()
                .flat_map(|key| m[key].as_array().unwrap().iter())
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// Task `id` of `sbatch --array=MIN-MAX:STEP`, its variables as slurmctld sets them.
fn slurm_task(id: u64, min: u64, max: u64, step: u64) -> Vec<(&'static str, String)> {
    let count = (max - min) / step + 1;
    [
        ("SLURM_ARRAY_JOB_ID", "4242".to_string()),
        ("SLURM_JOB_ID", (4242 + id + 1).to_string()),
        ("SLURM_ARRAY_TASK_ID", id.to_string()),
        ("SLURM_ARRAY_TASK_MIN", min.to_string()),
        ("SLURM_ARRAY_TASK_MAX", max.to_string()),
        ("SLURM_ARRAY_TASK_STEP", step.to_string()),
        ("SLURM_ARRAY_TASK_COUNT", count.to_string()),
    ]
    .into()
}

#[test]
fn every_array_task_answers_its_shard_and_the_shards_are_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let (videos, list) = videos(dir.path(), 9);
    let all: BTreeSet<String> = videos.iter().cloned().collect();
    let slurm = |min: u64, max: u64, step: u64| -> Vec<Task> {
        (min..=max)
            .step_by(step as usize)
            .map(|id| Task::env(slurm_task(id, min, max, step)))
            .collect()
    };
    let kubernetes = (0..3)
        .map(|i| Task {
            env: vec![("JOB_COMPLETION_INDEX", i.to_string())],
            flags: vec!["--num-shards".into(), "3".into()],
        })
        .collect();
    let arrays = [
        ("--array=0-2", slurm(0, 2, 1)),
        ("--array=1-3", slurm(1, 3, 1)),
        ("--array=0-4:2", slurm(0, 4, 2)),
        ("Indexed Job, completions 3", kubernetes),
    ];
    let mut assignments = Vec::new();
    for (name, tasks) in &arrays {
        let out = dir.path().join(name.replace(['=', ':', ' ', ','], "_"));
        run_tasks(&list, &out, tasks);
        let shards = shards_of(&out, 3);
        let union: BTreeSet<String> = shards.iter().flatten().cloned().collect();
        let sizes: usize = shards.iter().map(BTreeSet::len).sum();
        assert_eq!(
            (union, sizes),
            (all.clone(), all.len()),
            "{name}: {shards:?}"
        );
        for video in &videos {
            let stem = Path::new(video).file_stem().unwrap().to_str().unwrap();
            assert!(
                out.join(format!("{stem}.json")).is_file(),
                "{name}: {video}"
            );
        }
        assignments.push(shards);
    }
    assert!(
        assignments.windows(2).all(|w| w[0] == w[1]),
        "every scheduler gives a video the same shard: {assignments:?}"
    );
    assert!(
        assignments[0].iter().filter(|s| !s.is_empty()).count() > 1,
        "the videos are spread"
    );

    // The list reversed: the same shards.
    let reversed = dir.path().join("reversed.txt");
    let mut backwards = videos.clone();
    backwards.reverse();
    std::fs::write(&reversed, backwards.join("\n")).unwrap();
    let out = dir.path().join("reversed");
    let tasks: Vec<Task> = (0..3)
        .map(|i| Task {
            env: Vec::new(),
            flags: vec!["--shard".into(), format!("{i}/3")],
        })
        .collect();
    run_tasks(&reversed, &out, &tasks);
    assert_eq!(shards_of(&out, 3), assignments[0]);
}

#[test]
fn the_scheduler_s_variables_are_checked_and_a_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    let video = common::real_video("bikes.mp4");
    let mut uneven = slurm_task(7, 3, 7, 1); // --array=3,7
    uneven[6].1 = "2".into();
    let r = run(apollo()
        .args(["caption", "--model-dir", &tiny()])
        .arg(&video)
        .envs(uneven.iter().map(|(k, v)| (k, v))));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    for var in [
        "SLURM_ARRAY_TASK_ID=7",
        "SLURM_ARRAY_TASK_COUNT=2",
        "--num-shards",
    ] {
        assert!(r.stderr.contains(var), "{var}: {}", r.stderr);
    }
    let r = run(apollo()
        .args(["caption", "--model-dir", &tiny()])
        .arg(&video)
        .env("JOB_COMPLETION_INDEX", "1"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--num-shards"), "{}", r.stderr);

    // --shard wins over the environment, and -v says which was used.
    let out = dir.path().join("out");
    let r = run(apollo()
        .args([
            "-v",
            "caption",
            "--model-dir",
            &tiny(),
            "--max-new-tokens",
            "1",
        ])
        .args(["--shard", "0/1", "--output-dir"])
        .arg(&out)
        .arg(&video)
        .envs(uneven.iter().map(|(k, v)| (k, v))));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("shard 0/1, from --shard"), "{}", r.stderr);
    let m = manifest(&out, 0, 1).unwrap();
    assert_eq!(m["shard"]["from"], "--shard");
    assert_eq!(m["apollo_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["counts"]["done"], 1);
    assert_eq!(m["settings"]["question"], "Describe this video in detail");
    assert!(m["settings"].get("video").is_none());
    assert!(m["started"].as_str().unwrap() <= m["finished"].as_str().unwrap());
}

#[test]
fn a_killed_shard_leaves_its_finished_records_and_no_manifest_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, list) = videos(dir.path(), 24);
    let out = dir.path().join("out");
    let task = |id| slurm_task(id, 1, 2, 1);
    // Task 2 (shard 1) runs through; task 1 (shard 0) is killed once it has written a record.
    run_tasks(&list, &out, &[Task::env(task(2))]);
    let others = records(&out).len();
    let mut killed = caption(&list, &out).envs(task(1)).spawn().unwrap();
    while records(&out).len() == others {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(
        manifest(&out, 0, 2).is_none(),
        "a killed shard has no manifest"
    );
    let kept = records(&out);
    for (file, bytes) in &kept {
        let record: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(record["answer"].is_string(), "{file}");
    }

    run_tasks(&list, &out, &[Task::env(task(1))]);
    let m = manifest(&out, 0, 2).unwrap();
    let (done, skipped) = (
        m["counts"]["done"].as_u64(),
        m["counts"]["skipped"].as_u64(),
    );
    assert_eq!(
        skipped,
        Some((kept.len() - others) as u64),
        "the finished videos are not redone"
    );
    assert!(done.unwrap() >= 1, "the killed shard had videos left: {m}");
    let now = records(&out);
    for (file, bytes) in &kept {
        assert_eq!(&now[file], bytes, "{file} kept as it was");
    }
    let union: usize = shards_of(&out, 2).iter().map(BTreeSet::len).sum();
    assert_eq!(union, 24);
}

#[test]
fn shards_side_by_side_with_xargs_give_what_one_run_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (_, list) = videos(dir.path(), 6);
    let (together, apart) = (dir.path().join("one"), dir.path().join("xargs"));
    // README's recipe for one process per GPU, on the CPU.
    let status = common::isolated(&mut Command::new("sh"))
        .arg("-c")
        .arg(
            r#"seq 0 2 | xargs -P 3 -I{} "$0" caption --from "$1" --output-dir "$2" \
                 --skip-existing --shard {}/3 --device cpu -q --model-dir "$3" \
                 --temperature 0 --max-new-tokens 2 > /dev/null"#,
        )
        .arg(common::binary())
        .args([&list, &apart])
        .arg(tiny())
        .status()
        .unwrap();
    assert!(status.success());
    let status = caption(&list, &together).status().unwrap();
    assert!(status.success());
    // Everything but the timings.
    let answers = |out: &Path| -> BTreeMap<String, Value> {
        records(out)
            .into_iter()
            .map(|(name, bytes)| {
                let r: Value = serde_json::from_slice(&bytes).unwrap();
                let kept = [&r["answer"], &r["tokens"], &r["clips"], &r["inputs"]];
                (name, kept.into_iter().cloned().collect())
            })
            .collect()
    };
    assert_eq!(answers(&apart).len(), 6);
    assert_eq!(answers(&apart), answers(&together));
}
