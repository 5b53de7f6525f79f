"""Makes tests/fixtures/tokenizer/: a tiny byte-level BPE tokenizer laid out like Qwen2's
tokenizer.json (NFC normaliser, Qwen2's split regex, byte-level pre-tokenizer and decoder,
its special tokens), and the ids the reference's `tokenizer_mm_token` (apollo/mm_utils.py)
gives for a few prompts with video placeholders, computed with Hugging Face tokenizers.

Run by hand, not in CI:  pip install tokenizers==0.23.3 && python3 tests/reference/make_tokenizer_fixtures.py
Deterministic: a rerun writes identical files.
"""
import json
import os
import re

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "tokenizer")
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VIDEO = "<|video_token|>"


def build():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    corpus = [
        "You are provided the following series of five, 2 second clips from a 0:00:10 [H:MM:SS] video.",
        "0.0-1.5 seconds: 2.0-3.5 seconds: 4.0-5.5 seconds: 6.0-7.5 seconds:",
        "What happens after the dog jumps? Describe this video in detail.",
        "You are a helpful vision-language assistant.",
    ] * 50
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return tok


def tokenizer_mm_token(prompt, encode):
    """The reference's algorithm, restated: text pieces between placeholders are tokenised on
    their own; each placeholder is -200. (Its start_id quirk drops the first token of the last
    piece when the prompt starts with a placeholder.)"""
    ids, last, start_id = [], 0, 0
    for m in re.finditer(re.escape(VIDEO), prompt):
        if m.start() > last:
            ids.extend(encode(prompt[last:m.start()]))
        elif m.start() == 0:
            ids = encode("")
            start_id = 1
        ids.append(-200)
        last = m.end()
    if last < len(prompt):
        ids.extend(encode(prompt[last:])[start_id:])
    return ids


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = build()
    tok.save(os.path.join(OUT, "tokenizer.json"))
    tok = Tokenizer.from_file(os.path.join(OUT, "tokenizer.json"))
    encode = lambda s: tok.encode(s).ids  # add_special_tokens=True, as transformers calls it
    tokens = VIDEO * 4
    prompts = [
        "You are provided the following series of two, 2 second clips from a 0:00:04.004000 [H:MM:SS] video.\n"
        f"0.0-1.4 seconds: {tokens},\n1.1-2.5 seconds: {tokens}",
        f"<|im_start|>user\n{tokens}\n\nWhat happens after the dog jumps? 狗跳了 🐕<|im_end|>\n",
        f"{tokens} trailing text",
        f"text then two placeholders back to back {VIDEO}{VIDEO}",
    ]
    cases = [{"prompt": p, "ids": tokenizer_mm_token(p, encode)} for p in prompts]
    with open(os.path.join(OUT, "mm_prompts.json"), "w") as f:
        json.dump({"source": "tokenizer_mm_token with tokenizers " + __import__("tokenizers").__version__,
                   "cases": cases}, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
