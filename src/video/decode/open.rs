//! Opening a local file with ffmpeg, whatever its name holds.
//!
//! ffmpeg reads a URL, not a file name: `12:30 meeting.mp4` would name a protocol `12`,
//! `concat:a.mp4|b.mp4` would read two other files, `frame%03d.png` a numbered sequence; and
//! ffmpeg-next only takes names that are UTF-8 (it panics on others), while Linux names are
//! bytes. So the name goes to ffmpeg as its raw bytes behind `file:`, with the file protocol
//! the only one allowed and image-sequence patterns off.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::ptr;
use video_rs::ffmpeg::{self, format::context::Input, Dictionary};

/// Opens `path` as a local file and reads its stream information.
pub(super) fn open_input(path: &Path) -> Result<Input> {
    check_file(path)?;
    let mut url = b"file:".to_vec();
    url.extend_from_slice(path.as_os_str().as_bytes());
    let url = CString::new(url).map_err(|_| Error::input(path, "the name holds a NUL byte"))?;
    let options: Dictionary = [("protocol_whitelist", "file"), ("pattern_type", "none")]
        .into_iter()
        .collect();
    let unreadable = |code: i32| {
        let e = ffmpeg::Error::from(code);
        Error::input(path, format!("not a video ffmpeg can read ({e})"))
    };
    // SAFETY: as ffmpeg-next's own `format::input`: the context is closed on failure and
    // owned by the returned `Input` on success; the options left unused are freed here.
    unsafe {
        let mut context = ptr::null_mut();
        let mut options = options.disown();
        let opened =
            ffmpeg::ffi::avformat_open_input(&mut context, url.as_ptr(), ptr::null(), &mut options);
        drop(Dictionary::own(options));
        if opened < 0 {
            return Err(unreadable(opened));
        }
        let found = ffmpeg::ffi::avformat_find_stream_info(context, ptr::null_mut());
        if found < 0 {
            ffmpeg::ffi::avformat_close_input(&mut context);
            return Err(unreadable(found));
        }
        Ok(Input::wrap(context))
    }
}

/// Rejects what ffmpeg would report obscurely or not at all: a missing or unreadable path, a
/// directory, an empty file, and files that are not regular. A pipe (`apollo ask <(cat
/// v.mp4)`) is refused rather than read: apollo reads a video twice (an index of its
/// packets, then decoding from the keyframes it needs), and an MP4's index may sit at its
/// end, so it must seek, which a pipe cannot.
fn check_file(path: &Path) -> Result<()> {
    let io_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(path, "no such file"),
        std::io::ErrorKind::PermissionDenied => Error::input(path, "permission denied"),
        _ => Error::input(path, e.to_string()),
    };
    let meta = std::fs::metadata(path).map_err(io_error)?;
    let kind = meta.file_type();
    let not_regular = if kind.is_dir() {
        Some("is a directory, not a video file")
    } else if kind.is_fifo() {
        Some(
            "is a pipe, not a regular file: apollo seeks in a video, which a pipe cannot \
             do; save it to a file first",
        )
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("is a device, not a regular file")
    } else if kind.is_socket() {
        Some("is a socket, not a regular file")
    } else {
        None
    };
    if let Some(what) = not_regular {
        return Err(Error::input(path, what));
    }
    // Only now, as opening a pipe would wait for a writer.
    std::fs::File::open(path).map_err(io_error)?;
    if meta.len() == 0 {
        return Err(Error::input(path, "the file is empty"));
    }
    Ok(())
}
