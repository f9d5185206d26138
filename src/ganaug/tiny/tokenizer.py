"""A CLIP tokenizer built offline: byte-level characters (so any text tokenizes) plus one merge chain per word of
the given texts (so each prompt word is one token). Stands in for CLIP's 49k-token vocabulary."""

from __future__ import annotations

import re


def tiny_tokenizer(texts: list[str]):
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)])}
    merges = []
    # the words CLIP's pre-tokenizer splits lowercased text into (letters, single digits, other symbols)
    words = {w for t in texts for w in re.findall(r"[^\W\d_]+|\d|[^\s\w]+", t.lower())}
    for word in sorted(words):
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            merged = parts[0] + parts[1]
            if merged not in vocab:
                merges.append((parts[0], parts[1]))
                vocab[merged] = len(vocab)
            parts = [merged, *parts[2:]]
    return CLIPTokenizer(vocab=vocab, merges=merges)
