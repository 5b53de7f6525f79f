//! The command line's reference material must match its clap definitions: the completion
//! scripts and manual pages committed under completions/ and man/ are what the binary
//! generates now, and README names only flags that exist, lists the exit codes of
//! `ExitStatus`, and links to reference docs that are there.

use apollo::cli::completions::script;
use apollo::cli::man::pages;
use apollo::cli::Cli;
use apollo::error::ExitStatus;
use clap::CommandFactory;
use clap_complete::Shell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

#[test]
fn committed_completions_are_current() {
    let dir = root().join("completions");
    for (shell, file) in [
        (Shell::Bash, "apollo.bash"),
        (Shell::Zsh, "_apollo"),
        (Shell::Fish, "apollo.fish"),
    ] {
        let committed = std::fs::read(dir.join(file)).unwrap_or_default();
        assert!(
            committed == script(shell),
            "completions/{file} is stale: run `cargo run -- completions {shell} > completions/{file}`"
        );
    }
}

#[test]
fn committed_man_pages_are_current() {
    let dir = root().join("man");
    let pages = pages();
    for (file, roff) in &pages {
        let committed = std::fs::read(dir.join(file)).unwrap_or_default();
        let command = file.trim_end_matches(".1").replacen('-', " ", 1);
        assert!(
            committed == *roff,
            "man/{file} is stale: run `cargo run -- man{} > man/{file}`",
            command.strip_prefix("apollo").unwrap_or_default()
        );
    }
    let committed: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let generated: BTreeSet<String> = pages.into_iter().map(|(file, _)| file).collect();
    assert_eq!(committed, generated, "man/ holds a page of no command");
}

/// Every long flag of every command.
fn flags() -> BTreeSet<String> {
    fn walk(command: &clap::Command, out: &mut BTreeSet<String>) {
        out.extend(
            command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .map(String::from),
        );
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::from(["help".to_string(), "version".to_string()]);
    walk(&Cli::command(), &mut out);
    out
}

#[test]
fn readme_names_only_flags_apollo_has() {
    // Flags of the other programs README shows: cargo, the PyTorch baseline (which takes
    // apollo bench's --work-dir and apollo's --device and --dtype), the decode baseline
    // (--video and --threads as apollo bench's, and its alternating runs), the scripts
    // (build-portable.sh, gpu-check.sh), and sbatch's job array.
    let others = [
        "release",
        "features",
        "bench",
        "check",
        "all-targets",
        "cuda",
        "cpu",
        "out",
        "make-videos",
        "array",
        "repeat",
    ];
    let known = flags();
    let text = readme();
    let mut unknown = BTreeSet::new();
    for (at, _) in text.match_indices("--") {
        let name: String = text[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        let name = name.trim_end_matches('-');
        if !name.is_empty() && !known.contains(name) && !others.contains(&name) {
            unknown.insert(name.to_string());
        }
    }
    assert!(
        unknown.is_empty(),
        "README names flags apollo lacks: {unknown:?}"
    );
}

#[test]
fn readme_lists_the_exit_codes_of_exit_status() {
    let text = readme();
    let section = text
        .split("## Exit codes")
        .nth(1)
        .expect("README has an Exit codes section");
    let rows: Vec<(u8, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            Some((cells[0].parse().ok()?, cells[1].to_string()))
        })
        .collect();
    let want: Vec<(u8, String)> = ExitStatus::ALL
        .iter()
        .map(|s| (s.code(), s.meaning().to_string()))
        .collect();
    assert_eq!(rows, want);
}

#[test]
fn readme_links_to_shared_files_that_exist() {
    let text = readme();
    let links: Vec<&str> = text
        .match_indices("](../shared/")
        .map(|(at, _)| {
            let rest = &text[at + 2..];
            &rest[..rest.find(')').unwrap()]
        })
        .collect();
    assert!(!links.is_empty(), "README links to the reference docs");
    for link in links {
        let file = link.split('#').next().unwrap();
        assert!(Path::new(&root()).join(file).is_file(), "{link}");
    }
}
