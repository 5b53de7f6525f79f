//! The hybrid tower's common token grid: each encoder's features (clips, T, H, W, C) are
//! resized to `token_output_shape` with torch's trilinear interpolation (align_corners=False,
//! computed in f32), concatenated along channels in `vision_towers` order and flattened to
//! (clips, T*H*W, C_total).

use candle_core::{DType, Result, Tensor};

/// Where output index `d` of an axis resized from `input` to `output` reads, as torch's
/// `compute_source_index_and_lambda` does in f32: `(i0, i1, lambda0, lambda1)`.
fn taps(input: usize, output: usize) -> Vec<(u32, u32, f32, f32)> {
    if input == output {
        return (0..output as u32).map(|d| (d, d, 1.0, 0.0)).collect();
    }
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|d| {
            let source = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (source.floor() as usize).min(input - 1);
            let lambda1 = (source - i0 as f32).clamp(0.0, 1.0);
            let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
            (i0 as u32, i1 as u32, 1.0 - lambda1, lambda1)
        })
        .collect()
}

/// Linear interpolation of one axis of an f32 tensor.
fn resize_axis(x: &Tensor, axis: usize, output: usize) -> Result<Tensor> {
    let input = x.dim(axis)?;
    if input == output {
        return Ok(x.clone());
    }
    let taps = taps(input, output);
    let device = x.device();
    let column = |values: Vec<f32>| -> Result<Tensor> {
        let mut shape = vec![output];
        shape.resize(x.rank() - axis, 1);
        Tensor::from_vec(values, shape, device)
    };
    let i0: Vec<u32> = taps.iter().map(|t| t.0).collect();
    let i1: Vec<u32> = taps.iter().map(|t| t.1).collect();
    let w0 = column(taps.iter().map(|t| t.2).collect())?;
    let w1 = column(taps.iter().map(|t| t.3).collect())?;
    let x0 = x.index_select(&Tensor::new(i0.as_slice(), device)?, axis)?;
    let x1 = x.index_select(&Tensor::new(i1.as_slice(), device)?, axis)?;
    x0.broadcast_mul(&w0)? + x1.broadcast_mul(&w1)?
}

/// `F.interpolate(x.float(), size, mode="trilinear", align_corners=False).to(x.dtype)` for
/// features laid out (clips, T, H, W, C). The axes are interpolated innermost first (W, H,
/// then T), which is how torch's kernel nests the three weighted sums.
pub fn resize_trilinear(x: &Tensor, size: [usize; 3]) -> Result<Tensor> {
    let (_, t, h, w, _) = x.dims5()?;
    if [t, h, w] == size {
        return Ok(x.clone());
    }
    let y = x.to_dtype(DType::F32)?;
    let y = resize_axis(&y, 3, size[2])?;
    let y = resize_axis(&y, 2, size[1])?;
    let y = resize_axis(&y, 1, size[0])?;
    y.to_dtype(x.dtype())
}

/// Every encoder's features on the common grid, concatenated along channels and flattened:
/// (clips, T*H*W, sum of channels).
pub fn token_grid(features: &[Tensor], size: [usize; 3]) -> Result<Tensor> {
    let resized = features
        .iter()
        .map(|f| resize_trilinear(f, size))
        .collect::<Result<Vec<_>>>()?;
    let x = Tensor::cat(&resized, 4)?;
    let (clips, t, h, w, c) = x.dims5()?;
    x.reshape((clips, t * h * w, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn taps_follow_align_corners_false() {
        // 2 -> 3: sources (d + 0.5) * 2/3 - 0.5 = -1/6 (clamped to 0), 0.5 and 7/6.
        let t = taps(2, 3);
        assert_eq!((t[0].0, t[0].1, t[0].3), (0, 1, 0.0));
        assert_eq!((t[1].0, t[1].1), (0, 1));
        assert!((t[1].3 - 0.5).abs() < 1e-7);
        assert_eq!((t[2].0, t[2].1), (1, 1));
        assert!((t[2].3 - 1.0 / 6.0).abs() < 1e-6);
        // Shrinking 4 -> 2: sources 0.5 and 2.5.
        let t = taps(4, 2);
        assert_eq!((t[0].0, t[0].1, t[1].0, t[1].1), (0, 1, 2, 3));
        assert!((t[0].3 - 0.5).abs() < 1e-7 && (t[1].3 - 0.5).abs() < 1e-7);
    }

    #[test]
    fn resizes_a_2x2_plane_to_3x3_by_hand() {
        // One clip, T = 1, one channel: [[0, 1], [2, 3]].
        let x = Tensor::new(&[0f32, 1.0, 2.0, 3.0], &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 2, 1))
            .unwrap();
        let y = resize_trilinear(&x, [1, 3, 3]).unwrap();
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Per axis the sources are 0, 0.5 and 7/6, which reads the last sample only: samples
        // (a, b) become (a, (a + b) / 2, b). Rows step by 2, columns by 1.
        let along = [0.0f32, 0.5, 1.0];
        for r in 0..3 {
            for c in 0..3 {
                let want = 2.0 * along[r] + along[c];
                assert!(
                    (y[r * 3 + c] - want).abs() < 1e-6,
                    "{r},{c}: {}",
                    y[r * 3 + c]
                );
            }
        }
    }

    #[test]
    fn resizes_time_and_keeps_channels_apart() {
        // T 2 -> 4 over values 0 and 8 in channel 0, 0 and -8 in channel 1.
        let x = Tensor::new(&[0f32, 0.0, 8.0, -8.0], &Device::Cpu)
            .unwrap()
            .reshape((1, 2, 1, 1, 2))
            .unwrap();
        let y = resize_trilinear(&x, [4, 1, 1]).unwrap();
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Sources -0.25 -> 0, 0.25, 0.75, 1.25 -> clamp to sample 1.
        assert_eq!(y, vec![0.0, 0.0, 2.0, -2.0, 6.0, -6.0, 8.0, -8.0]);
    }

    #[test]
    fn concatenates_channels_in_order_and_flattens() {
        let a = Tensor::ones((2, 1, 2, 2, 3), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros((2, 1, 1, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let g = token_grid(&[a, b], [1, 2, 2]).unwrap();
        assert_eq!(g.dims(), &[2, 4, 4]);
        let row = g.get(0).unwrap().get(3).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(row, vec![1.0, 1.0, 1.0, 0.0]);
    }
}
