#!/usr/bin/env python3
"""Reference ids from Hugging Face tokenizers for the tokenizer.json loader (Tests/Fixtures/tokenizer-hf-*.json).

tiny: the tiny Gemma-structured BPE of the shared fixtures (a copy in Tests/Fixtures/hf-tiny-tokenizer; merges trained
      by tokenizers, not converted from SentencePiece). Every string of tokenizer_strings.py is encoded with
      tokenizers.Tokenizer.from_file (without and with special tokens) and decoded; with --check-fixtures, the chat
      prompt's ids are checked against the shared fixtures.safetensors (`chat.input_ids`). Also writes
      Tests/Fixtures/hf-tiny-tokenizer-permuted/tokenizer.json, the same file with the merged pieces' ids reversed,
      and its ids: only merge ranks, not ids, can then give the right merge order.
gguf: the real model's vocabulary as a tokenizer.model (built as make_sentencepiece_refs.py builds it), converted to
      tokenizer.json by transformers (GemmaTokenizer.from_pretrained, i.e. its GemmaConverter), saved with
      tokenizer_config.json into --hf-dir (default Tests/Fixtures/generated/gemma-3-270m-hf, not committed: 33 MB),
      and every string encoded with that tokenizer.json. The fixture records the file's length and FNV-1a 64.

Needs: pip install tokenizers transformers==5.23.0 sentencepiece protobuf gguf (+ safetensors numpy for --check-fixtures)
Usage: python3 scripts/reference/make_hf_tokenizer_refs.py tiny [--check-fixtures .../fixtures.safetensors]
       python3 scripts/reference/make_hf_tokenizer_refs.py gguf MODEL.gguf [--hf-dir DIR] [--no-fixture]
"""
import argparse
import importlib.metadata
import json
import os
import sys
import tempfile

from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tokenizer_strings import all_strings, write_fixture  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(REPO, "Tests/Fixtures/tokenizer-llamacpp.json")
CHAT = "<start_of_turn>user\nWhat is in the picture?<end_of_turn>\n<start_of_turn>model\n"


def versions(*names):
    return {n: importlib.metadata.version(n) for n in names}


def write(path, out):
    cases = out.pop("cases")
    write_fixture(path, out, cases)
    print(f"wrote {os.path.relpath(path, REPO)}: {len(cases)} strings", file=sys.stderr)


def permuted(tokenizer_json, out_dir):
    """The same tokenizer with the ids of the merged pieces reversed, so that id order no longer follows merge order
    (as it does in both trained and converted files, where a piece's id and its merge's rank rise together)."""
    with open(tokenizer_json, encoding="utf-8") as f:
        t = json.load(f)
    vocab, merges = t["model"]["vocab"], t["model"]["merges"]
    added = {a["content"] for a in t["added_tokens"]}
    merged = sorted({vocab[a + b] for a, b in merges if a + b not in added})
    relabel = dict(zip(merged, reversed(merged)))
    t["model"]["vocab"] = {p: relabel.get(i, i) for p, i in vocab.items()}
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(t, f, ensure_ascii=False, indent=2)
    return path


def tiny(args):
    tok = Tokenizer.from_file(os.path.join(args.tiny_dir, "tokenizer.json"))
    perm = Tokenizer.from_file(permuted(os.path.join(args.tiny_dir, "tokenizer.json"), args.tiny_dir + "-permuted"))
    cases = []
    for name, text in all_strings(GOLDEN) + [("chat_fixture", CHAT)]:
        ids = tok.encode(text, add_special_tokens=False).ids
        case = {"name": name, "text": text, "ids": ids, "ids_with_special": tok.encode(text, add_special_tokens=True).ids,
                "ids_permuted": perm.encode(text, add_special_tokens=False).ids}
        decoded = tok.decode(ids, skip_special_tokens=False)
        if decoded != text:
            case["decoded"] = decoded
        cases.append(case)
    chat = tok.encode(CHAT, add_special_tokens=True).ids
    if args.check_fixtures:
        from safetensors.numpy import load_file
        expected = load_file(args.check_fixtures)["chat.input_ids"].tolist()
        assert chat == expected, f"chat ids {chat} differ from fixtures.safetensors {expected}"
        print("chat ids equal fixtures.safetensors chat.input_ids", file=sys.stderr)
    write(os.path.join(REPO, "Tests/Fixtures/tokenizer-hf-tiny.json"), {
        "description": "Hugging Face tokenizers' ids for the tiny Gemma-structured BPE in Tests/Fixtures/hf-tiny-tokenizer "
                       "(made by scripts/reference/make_hf_tokenizer_refs.py tiny). ids: encode(text, "
                       "add_special_tokens=False); ids_with_special: add_special_tokens=True (the post-processor's "
                       "<bos>); decoded: decode(ids, skip_special_tokens=False) where it is not the text; ids_permuted: encode(text, "
                       "add_special_tokens=False) with hf-tiny-tokenizer-permuted (the merged pieces' ids reversed, so "
                       "that id order is not merge order). Special added tokens are always recognized in text. "
                       "chat_fixture's ids_with_special equal the shared fixtures' chat.input_ids.",
        "versions": versions("tokenizers"),
        "chat_ids_with_special": chat,
        "cases": cases,
    })


def gguf_model(args):
    import gguf
    from make_sentencepiece_refs import fnv1a64, model_proto
    from transformers import GemmaTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "tokenizer.model"), "wb") as f:
            f.write(model_proto(gguf.GGUFReader(args.model)))
        converted = GemmaTokenizer.from_pretrained(tmp)
    os.makedirs(args.hf_dir, exist_ok=True)
    converted.save_pretrained(args.hf_dir)
    path = os.path.join(args.hf_dir, "tokenizer.json")
    with open(path, "rb") as f:
        data = f.read()
    if args.no_fixture:
        print(f"wrote {os.path.relpath(path, REPO)} ({len(data)} bytes, FNV-1a 64 {fnv1a64(data)})", file=sys.stderr)
        return
    tok = Tokenizer.from_file(path)
    cases = []
    for name, text in all_strings(GOLDEN):
        ids = tok.encode(text, add_special_tokens=False).ids
        case = {"name": name, "text": text, "ids": ids}
        decoded = tok.decode(ids, skip_special_tokens=False)
        if decoded != text:
            case["decoded"] = decoded
        cases.append(case)
    write(os.path.join(REPO, "Tests/Fixtures/tokenizer-hf-270m.json"), {
        "description": "Hugging Face tokenizers' ids for the tokenizer.json that transformers' GemmaConverter makes of "
                       "the Gemma 3 270M GGUF vocabulary written as a tokenizer.model (made by "
                       "scripts/reference/make_hf_tokenizer_refs.py gguf, which also writes that tokenizer.json to "
                       "Tests/Fixtures/generated/gemma-3-270m-hf). ids: encode(text, add_special_tokens=False); "
                       "special added tokens are always recognized in text. decoded: decode(ids, "
                       "skip_special_tokens=False) where it is not the text. tokenizer_json: the file's length and "
                       "FNV-1a 64.",
        "model": os.path.basename(args.model),
        "versions": versions("tokenizers", "transformers", "sentencepiece", "protobuf", "gguf"),
        "tokenizer_json": {"bytes": len(data), "fnv1a64": fnv1a64(data)},
        "cases": cases,
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tiny")
    t.add_argument("--tiny-dir", default=os.path.join(REPO, "Tests/Fixtures/hf-tiny-tokenizer"))
    t.add_argument("--check-fixtures", help="the shared gemma3-tiny-text/fixtures.safetensors")
    g = sub.add_parser("gguf")
    g.add_argument("model")
    g.add_argument("--hf-dir", default=os.path.join(REPO, "Tests/Fixtures/generated/gemma-3-270m-hf"))
    g.add_argument("--no-fixture", action="store_true",
                   help="only write the converted folder (what scripts/test.sh needs), not the committed fixture")
    args = ap.parse_args()
    tiny(args) if args.what == "tiny" else gguf_model(args)


if __name__ == "__main__":
    main()
