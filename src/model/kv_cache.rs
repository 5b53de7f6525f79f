//! One attention layer's key/value cache that can be cut back: `truncate(len)` keeps the
//! positions before `len`, and the next append writes over the rest. A conversation drops an
//! answer's keys this way (they were computed one token at a time, and the next prompt puts
//! the answer back as text), and several questions about one video share the video's keys.
//! candle_nn's `KvCache` can only be reset.

use candle_core::{Result, Tensor};

/// Rows allocated at a time.
const STEP: usize = 512;

/// Keys and values (batch, kv_heads, positions, head_dim), positions along dim 2.
#[derive(Default)]
pub struct KvCache {
    /// Buffers of `capacity` positions; the first `len` are valid.
    buffers: Option<(Tensor, Tensor)>,
    len: usize,
}

const DIM: usize = 2;

impl KvCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Keeps positions `..len` (no-op when fewer are held).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends `k` and `v` at the current length and returns every valid key and value.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let new = k.dim(DIM)?;
        let wanted = self.len + new;
        let capacity = self
            .buffers
            .as_ref()
            .map_or(0, |(b, _)| b.dim(DIM).unwrap_or(0));
        if wanted > capacity {
            let grown = wanted.div_ceil(STEP) * STEP;
            let grow = |src: &Tensor, old: Option<Tensor>| -> Result<Tensor> {
                let mut shape = src.dims().to_vec();
                shape[DIM] = grown - capacity;
                let more = Tensor::zeros(shape, src.dtype(), src.device())?;
                match old {
                    Some(old) => Tensor::cat(&[&old, &more], DIM),
                    None => Ok(more),
                }
            };
            let (k_old, v_old) = self.buffers.take().unzip();
            self.buffers = Some((grow(k, k_old)?, grow(v, v_old)?));
        }
        let (kb, vb) = self.buffers.as_ref().expect("allocated above");
        kb.slice_set(k, DIM, self.len)?;
        vb.slice_set(v, DIM, self.len)?;
        self.len = wanted;
        Ok((kb.narrow(DIM, 0, wanted)?, vb.narrow(DIM, 0, wanted)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::random_tensor;

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn truncated_positions_are_written_over_and_growth_keeps_the_rest() {
        let mut cache = KvCache::default();
        let a = random_tensor(&[1, 2, 3, 4], 1);
        let b = random_tensor(&[1, 2, 600, 4], 2);
        let c = random_tensor(&[1, 2, 5, 4], 3);
        cache.append(&a, &a).unwrap();
        // Past the first allocation: the buffers grow and keep what they held.
        let (k, _) = cache.append(&b, &b).unwrap();
        assert_eq!(cache.len(), 603);
        assert_eq!(values(&k), values(&Tensor::cat(&[&a, &b], 2).unwrap()));
        cache.truncate(3);
        assert_eq!(cache.len(), 3);
        let (k, v) = cache.append(&c, &c).unwrap();
        let want = values(&Tensor::cat(&[&a, &c], 2).unwrap());
        assert_eq!((values(&k), values(&v)), (want.clone(), want));
        cache.truncate(100);
        assert_eq!(cache.len(), 8, "truncating to more keeps all");
        cache.truncate(0);
        assert_eq!(cache.len(), 0);
    }
}
