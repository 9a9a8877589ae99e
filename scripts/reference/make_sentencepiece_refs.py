#!/usr/bin/env python3
"""Reference data for tokenizer.model files written from a GGUF vocabulary (Tests/Fixtures/tokenizer-sentencepiece.json).

1. Builds, with protobuf's own serializer (sentencepiece_model_pb2) and the GGUF vocabulary as gguf-py reads it, the
   tokenizer.model that Vocabulary.sentencePieceModel() must write byte for byte: every piece with its score and type
   (the unknown id's piece as UNKNOWN, which SentencePiece requires; user-defined pieces with U+2581 for spaces, as
   SentencePiece matches them in normalized text), a BPE trainer_spec with byte fallback and the special ids, an
   identity normalizer_spec. Records its length and FNV-1a 64.
2. Loads that file with the sentencepiece library and encodes every string of tokenizer_strings.py (no BOS;
   SentencePiece never parses control tokens in text, like Tokenizer.encode(parseSpecial: false)).

Needs: pip install gguf sentencepiece protobuf
Usage: python3 scripts/reference/make_sentencepiece_refs.py MODEL.gguf [--out FIXTURE.json] [--model-out tokenizer.model]
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import sys

import gguf
import sentencepiece as spm
from google.protobuf import __version__ as protobuf_version
from sentencepiece import sentencepiece_model_pb2 as pb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tokenizer_strings import all_strings, write_fixture  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNKNOWN, USER_DEFINED, BYTE = 2, 4, 6


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def model_proto(reader):
    tokens = field(reader, "tokenizer.ggml.tokens")
    scores = field(reader, "tokenizer.ggml.scores")
    types = field(reader, "tokenizer.ggml.token_type")
    ids = {k: field(reader, f"tokenizer.ggml.{k}_token_id") for k in ("unknown", "bos", "eos", "padding")}
    m = pb.ModelProto()
    for i, (text, score, kind) in enumerate(zip(tokens, scores, types)):
        kind = UNKNOWN if i == ids["unknown"] else kind
        if kind == USER_DEFINED:
            text = text.replace(" ", "\u2581")
        p = m.pieces.add()
        p.piece, p.score, p.type = text, score, kind
    t = m.trainer_spec
    t.model_type = pb.TrainerSpec.BPE
    t.vocab_size = len(tokens)
    t.byte_fallback = BYTE in types
    t.unk_id, t.bos_id, t.eos_id, t.pad_id = (-1 if ids[k] is None else ids[k] for k in ("unknown", "bos", "eos", "padding"))
    for k, name in [("unknown", "unk_piece"), ("bos", "bos_piece"), ("eos", "eos_piece"), ("padding", "pad_piece")]:
        if ids[k] is not None:
            setattr(t, name, tokens[ids[k]])
    n = m.normalizer_spec
    n.name = "identity"
    prefix = field(reader, "tokenizer.ggml.add_space_prefix")
    n.add_dummy_prefix = True if prefix is None else bool(prefix)
    n.remove_extra_whitespaces = False
    n.escape_whitespaces = True
    return m.SerializeToString()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="Gemma 3 GGUF file")
    ap.add_argument("--out", default=os.path.join(REPO, "Tests/Fixtures/tokenizer-sentencepiece.json"))
    ap.add_argument("--model-out", help="also write the tokenizer.model here")
    args = ap.parse_args()

    reader = gguf.GGUFReader(args.model)
    data = model_proto(reader)
    if args.model_out:
        with open(args.model_out, "wb") as f:
            f.write(data)
    sp = spm.SentencePieceProcessor(model_proto=data)

    golden = os.path.join(REPO, "Tests/Fixtures/tokenizer-llamacpp.json")
    with open(golden, encoding="utf-8") as f:
        llama = {c["name"]: c.get("ids_no_bos_no_parse_special", c["ids_no_bos"]) for c in json.load(f)["cases"]}
    cases, disagree = [], []
    for name, text in all_strings(golden):
        ids = sp.encode(text)
        cases.append({"name": name, "text": text, "ids": ids})
        if name in llama and llama[name] != ids:
            disagree.append(name)

    with open(args.model, "rb") as f:
        model_sha = hashlib.sha256(f.read()).hexdigest()
    out = {
        "description": "SentencePiece ids for the tokenizer.model built from the GGUF vocabulary with protobuf's "
                       "serializer (made by scripts/reference/make_sentencepiece_refs.py; see its docstring). ids: "
                       "sp.encode(text), no BOS, control tokens not parsed. tokenizer_model: length and FNV-1a 64 of "
                       "that file, which Vocabulary.sentencePieceModel() must reproduce byte for byte.",
        "model": f"{os.path.basename(args.model)} sha256 {model_sha}",
        "versions": {"sentencepiece": spm.__version__, "protobuf": protobuf_version, "gguf": importlib.metadata.version("gguf")},
        "tokenizer_model": {"bytes": len(data), "fnv1a64": fnv1a64(data)},
        "special_ids": {"unk": sp.unk_id(), "bos": sp.bos_id(), "eos": sp.eos_id(), "pad": sp.pad_id()},
        "llamacpp_disagreements": disagree,
    }
    write_fixture(args.out, out, cases)
    print(f"{len(cases)} strings, tokenizer.model {len(data)} bytes fnv1a64 {fnv1a64(data)}; "
          f"llama.cpp goldens disagreeing with sentencepiece: {disagree or 'none'}", file=sys.stderr)


if __name__ == "__main__":
    main()
