//! The committed completion scripts must be what the binary generates now.

use apollo::cli::completions::script;
use clap_complete::Shell;
use std::path::Path;

#[test]
fn committed_completions_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
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
