"""The test strings of the tokenizer reference fixtures: the llama.cpp golden texts, then hand-picked edge cases
(whitespace runs, periodic strings, scripts, combining marks, control characters, special-token spellings, HTML
tags Gemma keeps whole), then seeded random mixtures of all of these. Deterministic: the same list on every run.
"""
import json
import random

SPECIALS = ["<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
            "<end_of_image>", "<image_soft_token>", "<unused0>", "<unused17>", "[multimodal]"]
TAGS = ["<table>", "</table>", "<td>", "</td>", "<b>", "</b>", "<s>", "</s>", "<sub>", "<code>", "</code>", "<a>"]


def golden_texts(golden_path):
    with open(golden_path, encoding="utf-8") as f:
        return [(c["name"], c["text"]) for c in json.load(f)["cases"]]


def edge_cases():
    out = []
    for n in [1, 2, 3, 4, 5, 8, 15, 16, 30, 31, 32, 33, 40, 64]:
        out += [(f"spaces_{n}", " " * n), (f"tabs_{n}", "\t" * n), (f"newlines_{n}", "\n" * n),
                (f"word_spaces_{n}", "a" + " " * n + "b")]
    out += [("crlf", "one\r\ntwo\r\n"), ("mixed_ws", " \t\n \n\t  \n\n\t\t x"), ("nbsp", "a\u00a0b\u2009c\u3000d"),
            ("space_then_word", "  the  cat   sat    on"), ("trailing_ws", "end   \n\n  ")]
    for ch in "-=.!*#0a1_~":
        for n in [2, 3, 4, 5, 7, 12, 33]:
            out.append((f"run_{ord(ch)}_{n}", ch * n))
    out += [("ab_x5", "ab" * 5), ("aba_x4", "aba" * 4), ("abab_a", "ababa"), ("the_x6", "thethethethethethe")]
    out += [
        ("hindi", "नमस्ते दुनिया, आप कैसे हैं?"), ("korean", "안녕하세요 세계! 한국어 문장입니다."),
        ("thai", "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง"), ("greek", "Γειά σου Κόσμε· αλφάβητο"),
        ("hebrew", "שלום עולם, מה שלומך?"), ("georgian", "გამარჯობა მსოფლიო"),
        ("nfc", "caf\u00e9 \u00f1 \u00c5"), ("nfd", "cafe\u0301 n\u0303 A\u030a"), ("stacked_marks", "a\u0301\u0302\u0303\u0304"),
        ("zwj_family", "👩\u200d👩\u200d👦\u200d👦"), ("flags", "🇫🇷🇯🇵🇧🇷"), ("skin_tones", "👋🏻👋🏼👋🏽👋🏾👋🏿"),
        ("math", "∀x∈ℝ: x² ≥ 0 ⇒ √(x²) = |x|"), ("cjk_ext_b", "𠀀𠀁𪚥𫝀"), ("private_use", "\ue000\uf8ff\U000f0000"),
        ("replacement", "\ufffd"), ("max_scalar", "\U0010ffff"), ("bidi", "abc\u202edef\u202c\u200e\u200f"),
        ("bom_zwsp", "\ufeffstart\u200bmiddle\u2060end"), ("fullwidth", "ＡＢＣ１２３！"),
        ("c0_controls", "".join(chr(c) for c in range(0, 32))), ("c1_controls", "".join(chr(c) for c in range(0x80, 0xA0))),
        ("del", "\x7f\x7f"), ("u2581", "\u2581literal\u2581\u2581bars"), ("u2581_space", " \u2581 \u2581"),
    ]
    out += [(f"special_{i}", s) for i, s in enumerate(SPECIALS)]
    out += [
        ("special_glued", "<start_of_turn><end_of_turn><bos><eos>"), ("special_partial", "<start_of_tur <end_of_turn"),
        ("special_nested", "<<start_of_turn>>"), ("special_spaced", " <bos> x <eos> "),
        ("chat_two_turns", "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nHi there.<end_of_turn>\n"),
        ("image_block", "look: <start_of_image><image_soft_token><image_soft_token><end_of_image> done"),
        ("tags", "".join(TAGS)), ("tags_text", "<table><tr><td>1</td><td>two</td></tr></table>"),
        ("html_doc", "<html><body><div><span>hi</span></div></body></html>"),
        ("url", "https://example.com/path?q=a+b&x=%20#frag"), ("email", "first.last+tag@sub.example.org"),
        ("numbers", "3.14159 2,718 1e-10 0x1F -42 +7 1_000_000 ½ ⅓ ٣"),
        ("code_c", "int main(void) {\n\treturn printf(\"%d\\n\", 42);\n}\n"),
        ("yaml", "key:\n  - item: 1\n    other: 'x'\n"), ("latex", "\\frac{a}{b} + \\sum_{i=0}^{n} x_i"),
    ]
    return out


def random_strings(count=150, seed=20261206):
    rng = random.Random(seed)
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            + list(" " * 12 + "\n" * 4 + "\t" * 2) + list(".,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`|")
            + list("éèêëàâäôöûüçñßøåÆŒ") + list("的一是不了人我在有他这中") + list("ひらがなカタカナ")
            + list("абвгдежзий") + list("αβγδε") + ["🦙", "🚀", "👍🏽", "❤️", "🇫🇷"] + ["\u2581", "\x00", "\x1b", "\u0301"]
            + SPECIALS + TAGS)
    out = []
    for i in range(count):
        n = rng.randint(1, 40)
        out.append((f"random_{i}", "".join(rng.choice(pool) for _ in range(n))))
    return out


def all_strings(golden_path):
    cases = golden_texts(golden_path) + edge_cases() + random_strings()
    names = [n for n, _ in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def write_fixture(path, header, cases):
    """Writes {header..., "cases": [...]} as JSON with one case per line, so that the fixture stays small and diffs
    stay readable."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for key, value in header.items():
            f.write(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
        f.write(' "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n ]\n}\n")
