//! f32 to bf16, rounded to nearest even as candle (the `half` crate) and torch round, in a
//! form that vectorises: `half`'s slice conversion runs four values at a time with SSE2 and
//! its scalar one branches, which made rounding a visible part of a bf16 prefill.

use half::bf16;

/// `v` rounded to the nearest bf16, ties to even; NaNs stay NaNs (quiet, sign kept), as
/// `bf16::from_f32` gives.
#[inline(always)]
pub fn round(v: f32) -> bf16 {
    let x = v.to_bits();
    // Adding 0x7fff plus the lowest kept bit carries into the kept bits exactly when the
    // dropped half is over a tie, or a tie next to an odd value.
    let nearest = x.wrapping_add(0x7fff + ((x >> 16) & 1)) >> 16;
    let nan = (x >> 16) | 0x40;
    let bits = if x & 0x7fff_ffff > 0x7f80_0000 {
        nan
    } else {
        nearest
    };
    bf16::from_bits(bits as u16)
}

/// `dst[i] = round(src[i])`, 16 or 8 lanes at a time where the CPU has them.
///
/// The dispatch here (and in `bf16_ops`) is written out rather than taken from the
/// `multiversion` crate: that crate picks its AVX-512 build only on CPUs with Ice Lake's whole
/// AVX-512 set, so Skylake servers would get AVX2, and its builds measured no faster.
pub fn round_into(src: &[f32], dst: &mut [bf16]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { round_into_avx512(src, dst) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { round_into_avx2(src, dst) };
        }
    }
    round_into_portable(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn round_into_avx512(src: &[f32], dst: &mut [bf16]) {
    round_into_portable(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn round_into_avx2(src: &[f32], dst: &mut [bf16]) {
    round_into_portable(src, dst)
}

#[inline(always)]
fn round_into_portable(src: &[f32], dst: &mut [bf16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = round(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn rounds_every_kind_of_value_as_half_does() {
        let mut values: Vec<f32> = vec![
            0.0,
            -0.0,
            1.0,
            f32::MIN_POSITIVE,
            f32::MIN_POSITIVE / 3.0,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7f80_0001),
            f32::from_bits(0xffff_ffff),
            f32::from_bits(0x7f7f_ffff),
        ];
        // Ties to even both ways, just under and over a tie.
        for base in [0x3f80_0000u32, 0x3f81_0000, 0xbf80_0000, 0x0001_0000] {
            for low in [0x7fff, 0x8000, 0x8001, 0xffff] {
                values.push(f32::from_bits(base | low));
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        values.extend((0..100_000).map(|_| f32::from_bits(rng.random())));
        let want: Vec<u16> = values
            .iter()
            .map(|&v| bf16::from_f32(v).to_bits())
            .collect();
        let scalar: Vec<u16> = values.iter().map(|&v| round(v).to_bits()).collect();
        assert_eq!(scalar, want);
        // Every length of tail past the vectors.
        for len in [values.len(), 1, 15, 17, 33] {
            let mut got = vec![bf16::ZERO; len];
            round_into(&values[..len], &mut got);
            let got: Vec<u16> = got.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want[..len]);
        }
    }
}
