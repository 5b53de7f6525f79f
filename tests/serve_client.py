"""The official openai client asking `apollo serve` about a video, for tests/cli_serve.rs.

    serve_client.py BASE_URL MODEL VIDEO_URL QUESTION...

Greedy, 8 tokens, with the top 2 log-probabilities: the first question alone, then the same
streamed (usage included), then every question as one conversation, each answer sent back as
the client got it. Prints what the client parsed, as one JSON object.
"""

import json
import sys

from openai import OpenAI


def main():
    base, model, video, *questions = sys.argv[1:]
    client = OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    settings = dict(model=model, temperature=0, max_tokens=8, logprobs=True, top_logprobs=2)
    first = [
        {"type": "video_url", "video_url": {"url": video}},
        {"type": "text", "text": questions[0]},
    ]
    out = {"models": client.models.list().model_dump()}
    out["single"] = client.chat.completions.create(
        messages=[{"role": "user", "content": first}], **settings
    ).model_dump()
    stream = client.chat.completions.create(
        messages=[{"role": "user", "content": first}],
        stream=True,
        stream_options={"include_usage": True},
        **settings,
    )
    out["stream"] = [chunk.model_dump() for chunk in stream]
    messages, turns = [], []
    for n, question in enumerate(questions):
        messages.append({"role": "user", "content": first if n == 0 else question})
        answer = client.chat.completions.create(messages=messages, **settings)
        turns.append(answer.model_dump())
        messages.append({"role": "assistant", "content": answer.choices[0].message.content})
    out["conversation"] = turns
    print(json.dumps(out))


if __name__ == "__main__":
    main()
