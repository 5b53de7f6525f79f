//! Files apollo writes go where the user pointed, as the user's other programs would write
//! them: through symbolic links (which stay links), in place into pipes and devices, "-" for
//! stdout where one file is written, with the umask's mode, and never over the input.

mod common;

use common::{apollo, run, tiny};
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::path::Path;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn sheet_to(target: &Path) -> common::Run {
    run(apollo()
        .args(["inspect", "--contact-sheet"])
        .arg(target)
        .arg(common::real_video("bikes.mp4")))
}

#[test]
fn a_contact_sheet_of_dash_goes_to_stdout_instead_of_the_report() {
    let out = apollo()
        .args(["inspect", "--contact-sheet", "-"])
        .arg(common::real_video("bikes.mp4"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.starts_with(PNG_SIGNATURE),
        "only the PNG on stdout"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sheet.png");
    assert_eq!(sheet_to(&file).code, 0);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        out.stdout,
        "the same picture"
    );

    let r = run(apollo()
        .args(["inspect", "--json", "--contact-sheet", "-"])
        .arg(common::real_video("bikes.mp4")));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn links_are_written_through_and_special_files_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.png");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("link.png");
    symlink(&real, &link).unwrap();
    assert_eq!(sheet_to(&link).code, 0);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read(&real).unwrap().starts_with(PNG_SIGNATURE));

    let r = sheet_to(Path::new("/dev/null"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());

    let fifo = dir.path().join("pipe.png");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    assert_eq!(sheet_to(&fifo).code, 0);
    assert!(reader.join().unwrap().starts_with(PNG_SIGNATURE));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    let r = sheet_to(dir.path());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
}

#[test]
fn the_input_is_never_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v.mp4");
    std::fs::copy(common::real_video("bikes.mp4"), &video).unwrap();
    let link = dir.path().join("sheet.png");
    symlink(&video, &link).unwrap();
    for target in [&video, &link] {
        let r = run(apollo()
            .args(["inspect", "--contact-sheet"])
            .arg(target)
            .arg(&video));
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("is the video being inspected"));
    }
    assert_eq!(
        std::fs::read(&video).unwrap(),
        std::fs::read(common::real_video("bikes.mp4")).unwrap()
    );
}

#[test]
fn folders_are_not_stdout() {
    let video = common::real_video("bikes.mp4");
    let video = video.to_str().unwrap();
    for args in [
        vec!["inspect", "--frames", "-", video],
        vec![
            "caption",
            "--output-dir",
            "-",
            "--model-dir",
            &tiny(),
            video,
        ],
        vec!["bench", "--work-dir", "-", "--video", video],
    ] {
        let r = run(apollo().args(&args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("takes a folder"), "{}", r.stderr);
        assert!(!Path::new("-").exists());
    }
}

#[test]
fn files_follow_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let apollo_bin = common::binary();
    let video = common::real_video("bikes.mp4");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 027 && exec "$0" "$@""#)
        .arg(&apollo_bin)
        .args(["inspect", "--frames"])
        .arg(dir.path().join("frames"))
        .arg("--contact-sheet")
        .arg(dir.path().join("sheet.png"))
        .arg(&video)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("sheet.png")), 0o640);
    for frame in std::fs::read_dir(dir.path().join("frames")).unwrap() {
        assert_eq!(mode(&frame.unwrap().path()), 0o640);
    }
}
