//! Model cost on the CPU in f32: `cargo bench --bench model`. For the tiny fixture checkpoint
//! and for random checkpoints at Apollo-3B-t32's widths with 1 and 3 layers per stack
//! (checkpoint::synthetic): one clip through each encoder and the grid + connector, the prefill of
//! a one-clip prompt, and greedy decoding with the KV cache. Medians over a few runs after a
//! warm-up.
//!
//! Half the difference between the 3- and 1-layer checkpoints is the cost of one layer of each
//! stack (two layers apart, so that the difference stands above the timing noise); the
//! full-depth estimate is the 1-layer cost plus that per-layer cost for every further layer the
//! published model runs.

use apollo::checkpoint::synthetic::{random_clip, write_checkpoint, Layers, Preset};
use apollo::checkpoint::Checkpoint;
use apollo::model::input::positions;
use apollo::model::{ApolloModel, PromptChunk};
use apollo::video::preprocess::ClipTensor;
use candle_core::{DType, Device, Tensor};
use std::path::Path;
use std::time::Instant;

/// Text tokens before and after the clip's rows: about what the chat template, the video
/// prompt's header and a short question take with Qwen2's tokenizer.
const TEXT_BEFORE: usize = 56;
const TEXT_AFTER: usize = 16;
const NEW_TOKENS: usize = 16;
/// Layers per stack of the deeper checkpoint, against which per-layer costs are measured.
const DEEPER: usize = 3;

/// Median milliseconds of each measured stage.
struct Costs {
    siglip: f64,
    internvideo2: f64,
    connector: f64,
    clip: f64,
    prompt_len: usize,
    prefill: f64,
    decode: f64,
}

fn millis<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A batch of one clip.
fn batch(clip: &ClipTensor) -> Tensor {
    let [a, b, c, d] = clip.shape;
    Tensor::from_vec(clip.data.clone(), (1, a, b, c, d), &Device::Cpu).unwrap()
}

/// Milliseconds of SigLIP, InternVideo2 and grid + connector for one clip.
fn encode_once(model: &ApolloModel, siglip: &Tensor, internvideo2: &Tensor) -> [f64; 3] {
    let (s, t_s) = millis(|| model.siglip_features(siglip).unwrap());
    let (i, t_i) = millis(|| model.internvideo2_features(internvideo2).unwrap());
    let (_, t_c) = millis(|| model.connect(&model.token_grid(&s, &i).unwrap()).unwrap());
    [t_s, t_i, t_c]
}

/// The prompt: text (arbitrary ids, valid in every vocabulary here) around one clip.
fn prompt(tokens_per_clip: usize) -> Vec<PromptChunk> {
    let text = |n: usize| PromptChunk::Text((0..n as u32).map(|i| 1 + i % 200).collect());
    vec![
        text(TEXT_BEFORE),
        PromptChunk::Video(tokens_per_clip),
        text(TEXT_AFTER),
    ]
}

/// Milliseconds of the prefill and per generated token (greedy, one position per step).
fn generate_once(model: &mut ApolloModel, embeds: &Tensor) -> (f64, f64) {
    let (mut logits, prefill) = millis(|| model.forward(embeds, 0).unwrap());
    let mut offset = embeds.dim(0).unwrap();
    let (_, decode) = millis(|| {
        for _ in 0..NEW_TOKENS {
            let next: u32 = logits.argmax(0).unwrap().to_scalar().unwrap();
            let row = model.embed_tokens(&[next]).unwrap();
            logits = model.forward(&row, offset).unwrap();
            offset += 1;
        }
    });
    (prefill, decode / NEW_TOKENS as f64)
}

fn measure(dir: &Path, runs: usize) -> Costs {
    let checkpoint = Checkpoint::open(dir).unwrap();
    let mut model = ApolloModel::load(&checkpoint, &Device::Cpu, DType::F32).unwrap();
    let (siglip, internvideo2) = random_clip(model.config(), 1);
    let (siglip, internvideo2) = (batch(&siglip), batch(&internvideo2));
    // The first run of each warms caches and allocations; it is not counted.
    let encodes: Vec<[f64; 3]> = (0..=runs)
        .map(|_| encode_once(&model, &siglip, &internvideo2))
        .skip(1)
        .collect();
    let rows = model.encode_batch(&siglip, &internvideo2).unwrap();
    let chunks = prompt(model.tokens_per_clip());
    let embeds = model.embed_prompt(&chunks, &rows).unwrap();
    let generations: Vec<(f64, f64)> = (0..=runs)
        .map(|_| generate_once(&mut model, &embeds))
        .skip(1)
        .collect();
    let stage = |i: usize| median(encodes.iter().map(|e| e[i]).collect());
    Costs {
        siglip: stage(0),
        internvideo2: stage(1),
        connector: stage(2),
        clip: median(encodes.iter().map(|e| e.iter().sum()).collect()),
        prompt_len: positions(&chunks),
        prefill: median(generations.iter().map(|g| g.0).collect()),
        decode: median(generations.iter().map(|g| g.1).collect()),
    }
}

fn measure_synthetic(layers: usize, runs: usize) -> Costs {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), Preset::Apollo3B, Layers::Run(layers)).unwrap();
    measure(dir.path(), runs)
}

fn print_row(name: &str, c: &Costs) {
    println!(
        "{name:<22} {:>9.1} {:>13.1} {:>10.1} {:>10.1} {:>8.1} ({:>3}) {:>13.2}",
        c.siglip, c.internvideo2, c.connector, c.clip, c.prefill, c.prompt_len, c.decode
    );
}

/// Per-layer costs (from the 1-layer and the deeper checkpoint) and the full-depth estimate
/// from them.
fn print_extrapolation(one: &Costs, deeper: &Costs) {
    let full = Layers::Published.running(Preset::Apollo3B).unwrap();
    let per_layer = |stage: fn(&Costs) -> f64| (stage(deeper) - stage(one)) / (DEEPER - 1) as f64;
    let siglip = per_layer(|c| c.siglip);
    let internvideo2 = per_layer(|c| c.internvideo2);
    let prefill = per_layer(|c| c.prefill);
    let decode = per_layer(|c| c.decode);
    println!(
        "\nper layer at 3B widths (({DEEPER} layers - 1 layer) / {}):",
        DEEPER - 1
    );
    println!("  SigLIP layer, 4 frames        {siglip:>9.1} ms per clip");
    println!("  InternVideo2 block            {internvideo2:>9.1} ms per clip");
    println!(
        "  Qwen2 layer, prefill ({:>3})    {prefill:>9.1} ms",
        one.prompt_len
    );
    println!("  Qwen2 layer, decode            {decode:>9.2} ms per token");
    let more = |n: usize| (n - 1) as f64;
    let clip = one.clip + more(full.siglip) * siglip + more(full.internvideo2) * internvideo2;
    println!(
        "\nfull-depth Apollo-3B-t32 estimate ({} SigLIP layers, {} InternVideo2 blocks, {} Qwen2 \
         layers run; 1-layer cost + (n - 1) x per layer):",
        full.siglip, full.internvideo2, full.llm
    );
    println!("  clip (encoders + connector)   {:>9.0} ms", clip);
    println!(
        "  prefill ({:>3} positions)      {:>9.0} ms",
        one.prompt_len,
        one.prefill + more(full.llm) * prefill
    );
    println!(
        "  decode                        {:>9.0} ms per token",
        one.decode + more(full.llm) * decode
    );
}

fn main() {
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-apollo");
    println!("CPU, f32, one clip; medians in ms; decode is greedy with the KV cache, {NEW_TOKENS} tokens\n");
    println!(
        "{:<22} {:>9} {:>13} {:>10} {:>10} {:>14} {:>13}",
        "checkpoint",
        "siglip",
        "internvideo2",
        "grid+conn",
        "clip",
        "prefill (len)",
        "decode/token"
    );
    print_row("tiny fixture", &measure(&tiny, 5));
    let one = measure_synthetic(1, 5);
    print_row("3B widths, 1 layer", &one);
    let deeper = measure_synthetic(DEEPER, 5);
    print_row(&format!("3B widths, {DEEPER} layers"), &deeper);
    print_extrapolation(&one, &deeper);
}
