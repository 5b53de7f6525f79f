//! One seeded pseudo-random generator for everything that wants reproducible variety rather
//! than statistics: the weights of synthetic checkpoints, random pixels, test inputs.

use candle_core::{Device, Tensor};

/// xorshift64, seeded through splitmix64 so that nearby seeds give unrelated streams.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        // Never zero: xorshift would stay at zero.
        Self((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-1, 1).
    pub fn signed(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }

    /// `n` uniform bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

/// A CPU f32 tensor of `shape` with values uniform in [-1, 1).
pub fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = SeededRng::new(seed);
    let values: Vec<f32> = (0..shape.iter().product()).map(|_| rng.signed()).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).expect("the shape holds the values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_repeat_by_seed_and_stay_in_range() {
        let draw = |seed| {
            let mut rng = SeededRng::new(seed);
            (0..1000).map(|_| rng.signed()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!(draw(3).iter().all(|v| (-1.0..1.0).contains(v)));
        let mean = draw(4).iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.1, "{mean}");
    }
}
