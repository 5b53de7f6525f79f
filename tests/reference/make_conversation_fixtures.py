"""Makes tests/fixtures/tokenizer/conversations.json: multi-turn prompts about a video as the
reference builds them (apollo/conversation.py: conv_templates["qwen_2"], which is conv_qwen,
SeparatorStyle.CHATML; the first user message is the video prompt, a blank line and the
question; each earlier answer is appended as the assistant's message, the new question as
the user's, then an empty assistant message), and their ids as the reference's
tokenizer_mm_token computes them with transformers' tokenizer on
tests/fixtures/tokenizer/tokenizer.json.

Run by hand, not in CI:
  pip install transformers==5.24.0 tokenizers==0.23.3 && python3 tests/reference/make_conversation_fixtures.py
Deterministic: a rerun writes an identical file.
"""
import json
import os
import re

import transformers
from transformers import PreTrainedTokenizerFast

HERE = os.path.dirname(__file__)
FIXTURES = os.path.join(HERE, "..", "fixtures", "tokenizer")
VIDEO = "<|video_token|>"


class ConvQwen:
    """conv_qwen of the reference's conversation.py, its CHATML branch of get_prompt."""

    system = "<|im_start|>system\n\nYou are a helpful vision-language assistant."
    roles = ("<|im_start|>user", "<|im_start|>assistant")
    sep = "<|im_end|>"

    def __init__(self):
        self.messages = []

    def append_message(self, role, message):
        self.messages.append([role, message])

    def get_prompt(self):
        ret = "" if self.system == "" else self.system + self.sep + "\n"
        for role, message in self.messages:
            if message:
                ret += role + "\n" + message + self.sep + "\n"
            else:
                ret += role + "\n"
        return ret


def tokenizer_mm_token(prompt, tokenizer):
    """The reference's tokenizer_mm_token (apollo/mm_utils.py), restated."""
    ids, last, start_id = [], 0, 0
    for m in re.finditer(re.escape(VIDEO), prompt):
        if m.start() > last:
            ids.extend(tokenizer(prompt[last:m.start()]).input_ids)
        elif m.start() == 0:
            ids = tokenizer("").input_ids
            start_id = 1
        ids.append(-200)
        last = m.end()
    if last < len(prompt):
        ids.extend(tokenizer(prompt[last:]).input_ids[start_id:])
    return ids


def conversation(video_prompt, exchanges, question):
    conv = ConvQwen()
    questions = [e["question"] for e in exchanges] + [question]
    answers = [e["answer"] for e in exchanges] + [None]
    for n, (q, a) in enumerate(zip(questions, answers)):
        conv.append_message(conv.roles[0], video_prompt + "\n\n" + q if n == 0 else q)
        conv.append_message(conv.roles[1], a)
    return conv.get_prompt()


def main():
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=os.path.join(FIXTURES, "tokenizer.json"))
    tokens = VIDEO * 4
    video_prompt = (
        "You are provided the following series of two, 2 second clips from a 0:00:04 [H:MM:SS] "
        f"video.\n0.0-1.5 seconds: {tokens},\n2.0-3.5 seconds: {tokens}"
    )
    cases = [
        ([{"question": "What happens after the dog jumps?", "answer": "It lands on the grass."}],
         "Describe this video in detail"),
        ([{"question": "What is this?", "answer": "A dog, 狗 🐕, jumps.\nThen it runs."},
          {"question": "Where?", "answer": "In a park"}],
         "What colour is it?"),
        # An empty answer: the reference writes its role alone, without a separator.
        ([{"question": "Why?", "answer": ""}], "And then?"),
    ]
    out = []
    for exchanges, question in cases:
        prompt = conversation(video_prompt, exchanges, question)
        out.append({
            "video_prompt": video_prompt,
            "exchanges": exchanges,
            "question": question,
            "prompt": prompt,
            "ids": tokenizer_mm_token(prompt, tokenizer),
        })
    source = f"conv_qwen (CHATML) and tokenizer_mm_token with transformers {transformers.__version__}"
    with open(os.path.join(FIXTURES, "conversations.json"), "w") as f:
        json.dump({"source": source, "cases": out}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
