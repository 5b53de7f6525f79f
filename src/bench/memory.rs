//! Peak memory during a benchmark. GPU memory is sampled with `nvidia-smi` every 20 ms, as the
//! PyTorch baseline script samples it, so both count the same thing (the whole process's use,
//! CUDA context included). Host memory is the kernel's high-water mark of the process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Samples a GPU's used memory until dropped.
pub struct GpuSampler {
    child: Child,
    peak: Arc<AtomicU64>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl GpuSampler {
    /// Starts sampling GPU `index`; `None` when nvidia-smi cannot be run.
    pub fn start(index: usize) -> Option<Self> {
        let mut child = Command::new("nvidia-smi")
            .args([
                "--query-gpu=memory.used",
                "--format=csv,noheader,nounits",
                "-lms",
                "20",
                "-i",
                &index.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let peak = Arc::new(AtomicU64::new(0));
        let seen = peak.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mib) = line.trim().parse::<u64>() {
                    seen.fetch_max(mib, Ordering::Relaxed);
                }
            }
        });
        Some(Self {
            child,
            peak,
            reader: Some(reader),
        })
    }

    /// The highest use seen so far, MiB.
    pub fn peak_mib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for GpuSampler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The process's peak resident memory (VmHWM), MiB; `None` off Linux.
pub fn host_peak_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_peak_grows_with_use() {
        let before = host_peak_mib().unwrap();
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        assert!(host_peak_mib().unwrap() >= before.max(64));
    }
}
