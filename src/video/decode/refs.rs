//! Whether a packet's picture is a reference for others, read from its NAL unit headers
//! (H.264's nal_ref_idc, HEVC's sub-layer non-reference unit types): what ffmpeg's decoders
//! skip under `Discard::NonReference`, so what the minimum decode of a plan leaves out. Other
//! codecs, and anything unparsable, count as references.

use video_rs::ffmpeg::codec::{Id, Parameters};

/// How a codec's packets are framed: NAL units behind big-endian lengths of `n` bytes (MP4,
/// MKV: `avcC`/`hvcC` extradata), or behind start codes (MPEG-TS, raw streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Lengths(usize),
    StartCodes,
}

/// The reader of one stream's reference flags; `None` for codecs without one.
#[derive(Debug, Clone, Copy)]
pub(super) struct RefReader {
    hevc: bool,
    framing: Framing,
}

impl RefReader {
    /// The reader for a stream with these parameters.
    pub(super) fn of(params: &Parameters) -> Option<Self> {
        // SAFETY: the parameters are valid while `params` lives; extradata is
        // `extradata_size` bytes when not null.
        let extradata = unsafe {
            let p = params.as_ptr();
            match ((*p).extradata, (*p).extradata_size) {
                (data, size) if !data.is_null() && size > 0 => {
                    std::slice::from_raw_parts(data, size as usize)
                }
                _ => &[],
            }
        };
        Self::new(params.id(), extradata)
    }

    pub(super) fn new(codec: Id, extradata: &[u8]) -> Option<Self> {
        let hevc = match codec {
            Id::H264 => false,
            Id::HEVC => true,
            _ => return None,
        };
        // avcC keeps the length size at byte 4, hvcC at byte 21; both start with version 1.
        let at = if hevc { 21 } else { 4 };
        let framing = match extradata {
            [1, ..] if extradata.len() > at => Framing::Lengths(usize::from(extradata[at] & 3) + 1),
            _ => Framing::StartCodes,
        };
        Some(Self { hevc, framing })
    }

    /// Whether the picture in `data` may be referenced: true unless every slice says not.
    pub(super) fn is_reference(&self, data: &[u8]) -> bool {
        let mut slices = 0;
        for header in nal_headers(data, self.framing) {
            match self.slice_is_reference(header) {
                Some(true) => return true,
                Some(false) => slices += 1,
                None => {}
            }
        }
        slices == 0
    }

    /// For a slice's NAL header: whether it is a reference; `None` for other units.
    fn slice_is_reference(&self, header: &[u8]) -> Option<bool> {
        let &first = header.first()?;
        if self.hevc {
            let kind = (first >> 1) & 0x3f;
            // VCL types 0-14 come in pairs, the even one the sub-layer non-reference.
            (kind <= 31).then_some(kind > 14 || kind % 2 == 1)
        } else {
            let kind = first & 0x1f;
            (1..=5).contains(&kind).then_some(first >> 5 != 0)
        }
    }
}

/// The first two bytes of every NAL unit in `data`.
fn nal_headers(data: &[u8], framing: Framing) -> Vec<&[u8]> {
    let mut out = Vec::new();
    match framing {
        Framing::Lengths(n) => {
            let mut at = 0;
            while at + n <= data.len() {
                let len = data[at..at + n]
                    .iter()
                    .fold(0usize, |l, &b| (l << 8) | usize::from(b));
                let start = at + n;
                let end = start.saturating_add(len).min(data.len());
                out.push(&data[start..end.min(start + 2)]);
                at = end;
                if len == 0 {
                    break;
                }
            }
        }
        Framing::StartCodes => {
            let mut i = 0;
            while i + 3 <= data.len() {
                if data[i..i + 3] == [0, 0, 1] {
                    let start = i + 3;
                    out.push(&data[start..(start + 2).min(data.len())]);
                    i = start;
                } else {
                    i += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_nal_ref_idc_decides() {
        let reader = RefReader::new(Id::H264, &[1, 0x64, 0, 0x1f, 0xff]).unwrap();
        assert_eq!(reader.framing, Framing::Lengths(4));
        // An SEI (type 6) then a non-reference slice (ref_idc 0, type 1).
        let non_ref = [0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 2, 0x01, 0x9a];
        assert!(!reader.is_reference(&non_ref));
        // A reference slice (ref_idc 2, type 1) and an IDR slice (ref_idc 3, type 5).
        assert!(reader.is_reference(&[0, 0, 0, 2, 0x41, 0x9a]));
        assert!(reader.is_reference(&[0, 0, 0, 2, 0x65, 0x88]));
        // No slice at all: nothing says it is not a reference.
        assert!(reader.is_reference(&[0, 0, 0, 2, 0x06, 0x05]));
    }

    #[test]
    fn hevc_unit_types_decide_with_start_codes() {
        let reader = RefReader::new(Id::HEVC, &[]).unwrap();
        assert_eq!(reader.framing, Framing::StartCodes);
        // TRAIL_N (0) is not a reference, TRAIL_R (1) and IDR_W_RADL (19) are.
        assert!(!reader.is_reference(&[0, 0, 0, 1, 0x00, 0x01, 0xaf]));
        assert!(reader.is_reference(&[0, 0, 1, 0x02, 0x01, 0xaf]));
        assert!(reader.is_reference(&[0, 0, 1, 0x26, 0x01, 0xaf]));
        assert!(RefReader::new(Id::VP9, &[]).is_none());
    }
}
