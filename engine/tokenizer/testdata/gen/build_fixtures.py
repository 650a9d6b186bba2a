#!/usr/bin/env python3
"""Builds the small tokenizer.json fixtures of SmolLM2's and TinyLlama's shape.

No SmolLM2 or TinyLlama file could be brought here, so these take the
vocabulary from a real tokenizer of the same kind in ../shared/fixtures/real
(GPT-NeoX's byte-level BPE for SmolLM2, Mistral's SentencePiece BPE for
TinyLlama / Llama-2) cut down to a few thousand tokens, and put it into each
model's published tokenizer.json layout (normalizer, pre-tokenizer,
post-processor, decoder, added tokens). Rerun from this folder:

    python3 build_fixtures.py ../../../../../shared/fixtures/real

then regenerate the references with refs.mjs (see its header).
"""
import json
import os
import sys

real = sys.argv[1] if len(sys.argv) > 1 else "../../../../../shared/fixtures/real"
out = ".."


def dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def added(id_, content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def smollm2():
    """SmolLM2: Digits(individual) + ByteLevel(use_regex) BPE, ids 0..16 special."""
    neox = json.load(open(os.path.join(real, "gpt-neox-20b", "tokenizer.json")))
    merges = [m.split(" ", 1) if isinstance(m, str) else m for m in neox["model"]["merges"]]
    # The 256 byte characters, then the results of the first merges (NeoX's
    # merges are in training order, so each merge's parts come earlier).
    # SmolLM2 splits every digit, so merges of two digits are left out.
    base = sorted({c for tok in neox["model"]["vocab"] for c in tok if len(tok) == 1})
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>",
                "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>",
                "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>",
                "<jupyter_script>", "<empty_output>"]
    vocab = {s: i for i, s in enumerate(specials)}
    for c in base:
        vocab.setdefault(c, len(vocab))
    kept = []
    for a, b in merges:
        if len(kept) >= 2500:
            break
        if a not in vocab or b not in vocab:
            continue
        if (a + b).isdigit():
            continue
        kept.append([a, b])
        vocab.setdefault(a + b, len(vocab))
    # Two added tokens that are not special, to cover lstrip/rstrip and
    # normalized matching in byte-level files.
    extra = [added(len(vocab), "[MASK]", special=False, normalized=True, lstrip=True),
             added(len(vocab) + 1, "<sep>", special=False, normalized=False, rstrip=True)]
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(i, s) for i, s in enumerate(specials)] + extra,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": kept},
    }
    os.makedirs(os.path.join(out, "smollm2"), exist_ok=True)
    dump(os.path.join(out, "smollm2", "tokenizer.json"), tok)
    dump(os.path.join(out, "smollm2", "tokenizer_config.json"), {
        "add_prefix_space": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>", "model_max_length": 8192,
        "tokenizer_class": "GPT2Tokenizer", "clean_up_tokenization_spaces": False,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})


def sentencepiece(name, metaspace):
    """TinyLlama / Llama-2 (legacy: Prepend+Replace normalizer) or the
    Metaspace(prepend_scheme first) layout of newer conversions, on a cut of
    Mistral's SentencePiece vocabulary: <unk>, <s>, </s>, the 256 <0xNN>
    byte tokens, the first pieces by score and every single character."""
    mis = json.load(open(os.path.join(real, "mistral", "tokenizer.json")))
    mv = mis["model"]["vocab"]
    keep = {s for s, i in mv.items() if i < 3000 or (len(s) == 1 and i < 31000)}
    vocab = {s: i for i, s in enumerate(sorted(keep, key=lambda s: mv[s]))}
    merges = []
    for m in mis["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append([a, b])
    specials = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]
    # Not special: matched with the normalizer's ▁ in front (normalized), and
    # one that takes the spaces before it (lstrip).
    specials.append(added(len(vocab), "<|user|>", special=False, normalized=False, lstrip=True))
    specials.append(added(len(vocab) + 1, "Hello world", special=False, normalized=True))
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": specials,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    if metaspace:
        tok["normalizer"] = None
        tok["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
        tok["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
        tok["added_tokens"] = tok["added_tokens"][:4]
    os.makedirs(os.path.join(out, name), exist_ok=True)
    dump(os.path.join(out, name, "tokenizer.json"), tok)
    dump(os.path.join(out, name, "tokenizer_config.json"), {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "pad_token": "</s>", "legacy": not metaspace, "model_max_length": 2048,
        "tokenizer_class": "LlamaTokenizer", "clean_up_tokenization_spaces": False,
        "sp_model_kwargs": {}, "padding_side": "right"})


smollm2()
sentencepiece("tinyllama", metaspace=False)
sentencepiece("sp_metaspace", metaspace=True)
