//! One cache entry: a video's rows as the connector produced them, in a file that says what it
//! is and proves it is whole.
//!
//! Layout (little-endian): the magic `APOLLOVR`, the format version (u32), the key (32
//! bytes), the dtype (u8: 0 f32, 1 bf16, 2 f16), rows and width (u64 each), the payload's
//! length (u64) and its SHA-256 (32 bytes); then the payload, the rows' values as stored in
//! memory. A file that is short, long, of another format or key, of another shape or dtype
//! than asked for, or whose payload does not hash to its checksum is no entry.

use super::hash::{sha256, Digest};
use candle_core::{DType, Device, Tensor};
use half::{bf16, f16};

const MAGIC: &[u8; 8] = b"APOLLOVR";
pub const FORMAT: u32 = 1;
const HEADER: usize = 8 + 4 + 32 + 1 + 8 + 8 + 8 + 32;

/// What the reader expects of an entry.
pub struct Expected<'a> {
    pub key: &'a Digest,
    pub dtype: DType,
    pub rows: usize,
    pub width: usize,
}

fn dtype_code(dtype: DType) -> Option<u8> {
    match dtype {
        DType::F32 => Some(0),
        DType::BF16 => Some(1),
        DType::F16 => Some(2),
        _ => None,
    }
}

/// The entry's bytes for `rows` (rows, width), or `None` for a dtype entries do not hold.
pub fn encode(key: &Digest, rows: &Tensor) -> candle_core::Result<Option<Vec<u8>>> {
    let Some(code) = dtype_code(rows.dtype()) else {
        return Ok(None);
    };
    let (n, width) = rows.dims2()?;
    let flat = rows.to_device(&Device::Cpu)?.flatten_all()?;
    let payload: Vec<u8> = match rows.dtype() {
        DType::F32 => flat
            .to_vec1::<f32>()?
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        DType::BF16 => flat
            .to_vec1::<bf16>()?
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        _ => flat
            .to_vec1::<f16>()?
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
    };
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(key);
    out.push(code);
    for v in [n, width, payload.len()] {
        out.extend_from_slice(&(v as u64).to_le_bytes());
    }
    out.extend_from_slice(&sha256(&payload));
    out.extend_from_slice(&payload);
    Ok(Some(out))
}

/// The rows an entry holds, on `device`, if `bytes` is a whole entry of what is expected;
/// otherwise why not.
pub fn decode(bytes: &[u8], expected: &Expected, device: &Device) -> Result<Tensor, String> {
    if bytes.len() < HEADER {
        return Err(format!("{} bytes, shorter than a header", bytes.len()));
    }
    let (header, payload) = bytes.split_at(HEADER);
    let u64_at =
        |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes")) as usize;
    if &header[..8] != MAGIC {
        return Err("not an apollo cache entry".into());
    }
    let format = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if format != FORMAT {
        return Err(format!("format {format}, not {FORMAT}"));
    }
    if &header[12..44] != expected.key {
        return Err("the entry of another key".into());
    }
    if Some(header[44]) != dtype_code(expected.dtype) {
        return Err(format!(
            "dtype code {}, not {:?}",
            header[44], expected.dtype
        ));
    }
    let (rows, width, length) = (u64_at(45), u64_at(53), u64_at(61));
    if (rows, width) != (expected.rows, expected.width) {
        return Err(format!(
            "{rows}x{width} rows, not {}x{}",
            expected.rows, expected.width
        ));
    }
    let size = expected.dtype.size_in_bytes();
    if length != payload.len() || length != rows * width * size {
        return Err(format!(
            "payload of {} bytes, expected {length}",
            payload.len()
        ));
    }
    if header[69..101] != sha256(payload) {
        return Err("checksum mismatch".into());
    }
    let shape = (rows, width);
    let tensor = match expected.dtype {
        DType::F32 => Tensor::from_vec(values(payload, f32::from_le_bytes), shape, device),
        DType::BF16 => Tensor::from_vec(values(payload, bf16::from_le_bytes), shape, device),
        _ => Tensor::from_vec(values(payload, f16::from_le_bytes), shape, device),
    };
    tensor.map_err(|e| format!("cannot make the rows: {e}"))
}

/// Values of `N` little-endian bytes each.
fn values<T, const N: usize>(bytes: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| from(c.try_into().expect("N bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::random_tensor;

    fn bits(t: &Tensor) -> Vec<u8> {
        encode(&[0; 32], t).unwrap().unwrap()[HEADER..].to_vec()
    }

    #[test]
    fn rows_come_back_bit_for_bit_and_damage_is_detected() {
        let key = sha256(b"key");
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            let rows = random_tensor(&[6, 5], 3).to_dtype(dtype).unwrap();
            let bytes = encode(&key, &rows).unwrap().unwrap();
            let expected = Expected {
                key: &key,
                dtype,
                rows: 6,
                width: 5,
            };
            let back = decode(&bytes, &expected, &Device::Cpu).unwrap();
            assert_eq!((back.dtype(), back.dims()), (dtype, rows.dims()));
            assert_eq!(bits(&back), bits(&rows), "{dtype:?}");

            let fails = |bytes: &[u8], expected: &Expected, why: &str| {
                let e = decode(bytes, expected, &Device::Cpu).unwrap_err();
                assert!(e.contains(why), "{why}: {e}");
            };
            let mut flipped = bytes.clone();
            *flipped.last_mut().unwrap() ^= 1;
            fails(&flipped, &expected, "checksum");
            fails(&bytes[..bytes.len() - 1], &expected, "payload of");
            fails(&bytes[..50], &expected, "shorter than a header");
            fails(&[bytes.clone(), vec![0]].concat(), &expected, "payload of");
            let other = sha256(b"other");
            let foreign = Expected {
                key: &other,
                ..expected
            };
            fails(&bytes, &foreign, "another key");
            let wide = Expected {
                width: 4,
                ..expected
            };
            fails(&bytes, &wide, "6x5 rows, not 6x4");
            let mut old = bytes.clone();
            old[8] = 9;
            fails(&old, &expected, "format 9");
            fails(b"GARBAGE!........................................................................................................", &expected, "not an apollo");
        }
        assert!(encode(&key, &Tensor::new(&[[1u32]], &Device::Cpu).unwrap())
            .unwrap()
            .is_none());
    }
}
