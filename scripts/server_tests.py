#!/usr/bin/env python3
"""End-to-end checks of `gemma serve` on 127.0.0.1, driven by the official `openai` Python client (unchanged apart
from base_url and api_key) and by raw HTTP for what a client library would refuse to send.

Checks: the openai client (chat whole and streamed, completions, models, logprobs); a table of malformed requests
with the status each got; a load test of 16 concurrent clients x 8 greedy requests whose outputs must equal the
same requests sent one at a time; a client that disconnects mid-stream freeing its slot within one decode step
(from /metrics); aggregate generation throughput with 4 streams vs 1 (reported, not asserted); the server staying
up throughout; a clean exit on SIGTERM. Prints one line per check and closes with "server: N passed, N failed".

Usage: server_tests.py --binary .build/release/gemma [--model M]     (starts and stops its own server)
       server_tests.py --url http://127.0.0.1:PORT --api-key K       (an already running server; no SIGTERM check)
"""
import argparse
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

API_KEY = "sk-test-swift-gemma"
results = []
LOG_PATH = None  # the server's log, when this script started the server


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name}{('  -- ' + detail) if detail else ''}", flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, host, port, key):
        self.host, self.port, self.key = host, port, key

    @property
    def base(self):
        return f"http://{self.host}:{self.port}"

    def raw(self, method, path, body=None, key="default", headers=None, timeout=120):
        """Sends a request with `body` as bytes/str exactly as given; returns (status, parsed json or text)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(headers or {})
        if key == "default":
            key = self.key
        if key:
            h["Authorization"] = f"Bearer {key}"
        if body is not None:
            h.setdefault("Content-Type", "application/json")
            if isinstance(body, str):
                body = body.encode()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        try:
            return r.status, json.loads(data)
        except Exception:
            return r.status, data.decode(errors="replace")

    def metrics(self):
        _, text = self.raw("GET", "/metrics", key=None)
        values = {}
        for line in text.splitlines():
            m = re.match(r"^([a-z_]+)(\{[^}]*\})?\s+([-0-9.e+]+)$", line)
            if m:
                values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return values


def start_server(binary, model, port, parallel, ctx, extra=()):
    cmd = [binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--parallel", str(parallel),
           "--ctx", str(ctx), "--api-key", API_KEY, *extra]
    if model:
        cmd += ["--model", model]
    global LOG_PATH
    LOG_PATH = f"/tmp/gemma-serve-{port}.log"
    log = open(LOG_PATH, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    s = Server("127.0.0.1", port, API_KEY)
    deadline = time.time() + 180
    saw_loading = False
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see /tmp/gemma-serve-{port}.log")
        try:
            status, _ = s.raw("GET", "/health", key=None, timeout=5)
            if status == 503:
                saw_loading = True
            if status == 200:
                return proc, s, saw_loading
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become healthy in 180 s")


def openai_checks(s):
    from openai import OpenAI
    client = OpenAI(base_url=s.base + "/v1", api_key=s.key, max_retries=0, timeout=120)
    models = client.models.list()
    ids = [m.id for m in models.data]
    check("openai: models.list", len(ids) == 1, f"models {ids}")
    model = ids[0] if ids else "gemma"

    r = client.chat.completions.create(model=model, messages=[{"role": "system", "content": "Answer briefly."},
                                                              {"role": "user", "content": "Name a primary color."}],
                                       max_tokens=12, temperature=0)
    whole = r.choices[0].message.content
    check("openai: chat.completions (stream=false)",
          bool(whole) and r.choices[0].finish_reason in ("stop", "length") and r.usage.completion_tokens <= 12
          and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens,
          f"{whole!r}, finish {r.choices[0].finish_reason}, usage {r.usage.prompt_tokens}+{r.usage.completion_tokens}")

    stream = client.chat.completions.create(model=model, messages=[{"role": "system", "content": "Answer briefly."},
                                                                   {"role": "user", "content": "Name a primary color."}],
                                            max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    pieces, finish, usage, n = [], None, None, 0
    for chunk in stream:
        n += 1
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    check("openai: chat.completions (stream=true)", "".join(pieces) == whole and finish in ("stop", "length")
          and usage is not None, f"{n} chunks, text equal to stream=false: {''.join(pieces) == whole}, finish {finish}")

    r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
    ctext = r.choices[0].text
    check("openai: completions (stream=false)", bool(ctext) and r.object == "text_completion",
          f"{ctext!r}, finish {r.choices[0].finish_reason}")
    st = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0,
                                   stream=True)
    stext = "".join(c.choices[0].text for c in st if c.choices)
    check("openai: completions (stream=true)", stext == ctext, f"{stext!r}")

    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say yes."}], max_tokens=4,
                                       temperature=0, logprobs=True, top_logprobs=3)
    lp = r.choices[0].logprobs
    ok = lp is not None and len(lp.content) >= 1 and all(len(t.top_logprobs) == 3 and t.logprob <= 0 for t in lp.content)
    # Greedy: the chosen token is the most likely one.
    ok = ok and all(abs(t.logprob - t.top_logprobs[0].logprob) < 1e-4 for t in lp.content)
    check("openai: chat logprobs + top_logprobs", ok, f"{len(lp.content) if lp else 0} tokens")

    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Write a long story."}],
                                       max_tokens=40, temperature=0.9, seed=7, stop=["\n", "."])
    r2 = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Write a long story."}],
                                        max_tokens=40, temperature=0.9, seed=7, stop=["\n", "."])
    t = r.choices[0].message.content
    check("openai: seed reproducible, stop strings honoured",
          t == r2.choices[0].message.content and "\n" not in t and "." not in t,
          f"{t!r}, finish {r.choices[0].finish_reason}")

    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Tell me about cats."}],
                                       max_completion_tokens=5, temperature=0.7, top_p=0.9, presence_penalty=0.5,
                                       frequency_penalty=0.5)
    check("openai: max_completion_tokens / length / penalties", r.choices[0].finish_reason == "length"
          and r.usage.completion_tokens == 5, f"finish {r.choices[0].finish_reason}, {r.usage.completion_tokens} tokens")

    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], max_tokens=-1)
        check("openai: bad value raises BadRequestError", False)
    except Exception as e:
        check("openai: bad value raises BadRequestError", type(e).__name__ == "BadRequestError", type(e).__name__)


def echo_check(s, binary, model):
    """/v1/completions with echo, max_tokens 0 and logprobs: the prompt's per-token log-probabilities, as evaluation
    harnesses score log-likelihoods. Checked against `gemma perplexity` on the same tokens: the first 256-token chunk
    of ppl-public.txt (BOS first), whose perplexity is exp(-mean log p) over positions 128..254."""
    if not binary:
        return
    from openai import OpenAI
    client = OpenAI(base_url=s.base + "/v1", api_key=s.key, max_retries=0, timeout=120)
    text_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "ppl-public.txt")
    ctx = 256
    with open(text_path, "rb") as f:
        text = f.read().decode()[:3000]  # well past 256 tokens; both sides tokenize this same text
    mflag = ["-m", model] if model else []
    ids = json.loads(subprocess.run([binary, "tokenize", *mflag, "--json", "--no-special", text], check=True,
                                    capture_output=True, text=True).stdout)["ids"][:ctx]
    tmp = f"/tmp/gemma-echo-{os.getpid()}.txt"
    with open(tmp, "w") as f:
        f.write(text)
    ppl = json.loads(subprocess.run([binary, "perplexity", *mflag, "--file", tmp, "--ctx", str(ctx), "--json"], check=True,
                                    capture_output=True, text=True).stdout)
    os.unlink(tmp)
    r = client.completions.create(model="gemma", prompt=ids, max_tokens=0, echo=True, logprobs=2, temperature=0)
    lp = r.choices[0].logprobs
    ok = lp is not None and len(lp.token_logprobs) == ctx and lp.token_logprobs[0] is None
    scored = lp.token_logprobs[ctx // 2 + 1:ctx] if ok else []
    mine = math.exp(-sum(scored) / len(scored)) if scored else float("nan")
    theirs = ppl["per_chunk"][0]
    check("completions echo + logprobs (max_tokens 0): prompt log-probabilities = gemma perplexity's first chunk",
          ok and abs(mine - theirs) <= 1e-4 * theirs and r.choices[0].text == "".join(lp.tokens),
          f"PPL from echo {mine:.6f}, gemma perplexity {theirs:.6f}, {len(lp.token_logprobs) if lp else 0} tokens")
    st = client.completions.create(model="gemma", prompt="The capital of France is", max_tokens=4, echo=True,
                                   temperature=0, stream=True)
    streamed = "".join(c.choices[0].text for c in st if c.choices)
    whole = client.completions.create(model="gemma", prompt="The capital of France is", max_tokens=4, echo=True,
                                      temperature=0).choices[0].text
    check("completions echo, streamed and not", streamed == whole and whole.startswith("The capital of France is"),
          repr(whole))


def embeddings_check(s):
    """/v1/embeddings through the openai client against Tests/Fixtures/reference-embeddings.json (the NumPy
    reference's mean-pooled, normalized final hidden states of four texts)."""
    from openai import OpenAI
    client = OpenAI(base_url=s.base + "/v1", api_key=s.key, max_retries=0, timeout=120)
    ref_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "reference-embeddings.json")
    with open(ref_path) as f:
        ref = json.load(f)
    items = ref["items"]
    r = client.embeddings.create(model="gemma", input=[it["text"] for it in items])
    cos, maxdiff = [], 0.0
    for it, d in zip(items, r.data):
        a, b = it["embedding"], d.embedding
        cos.append(sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in b)))
        maxdiff = max(maxdiff, max(abs(x - y) for x, y in zip(a, b)))
    by_ids = client.embeddings.create(model="gemma", input=items[0]["ids"]).data[0].embedding
    check("embeddings: equal to the reference's (cosine per text), token ids as the text",
          len(r.data) == len(items) and min(cos) > 0.9999 and r.usage.prompt_tokens == sum(len(it["ids"]) for it in items)
          and max(abs(x - y) for x, y in zip(by_ids, r.data[0].embedding)) < 1e-6,
          f"cosine min {min(cos):.7f}, max |diff| {maxdiff:.2e}, {len(r.data[0].embedding)} dims")


def n_choices_check(s):
    """n > 1: one prefill, n continuations; choice i equals a single request with seed + i; streamed the same."""
    from openai import OpenAI
    client = OpenAI(base_url=s.base + "/v1", api_key=s.key, max_retries=0, timeout=120)

    def prefilled():
        _, text = s.raw("GET", "/metrics", key=None)
        return int(float(re.search(r"^gemma_prompt_tokens_prefilled_total (\S+)$", str(text), re.M).group(1)))
    msgs = [{"role": "user", "content": "Name a color and say why you like it."}]
    before = prefilled()
    r = client.chat.completions.create(model="gemma", messages=msgs, n=3, temperature=1.0, seed=5, max_tokens=12)
    one_prefill = prefilled() - before == r.usage.prompt_tokens
    texts = [c.message.content for c in sorted(r.choices, key=lambda c: c.index)]
    single = [client.chat.completions.create(model="gemma", messages=msgs, temperature=1.0, seed=5 + i, max_tokens=12)
              for i in range(3)]
    singles = [x.choices[0].message.content for x in single]
    stream = client.chat.completions.create(model="gemma", messages=msgs, n=3, temperature=1.0, seed=5, max_tokens=12,
                                            stream=True)
    acc = {}
    for chunk in stream:
        for c in chunk.choices:
            acc[c.index] = acc.get(c.index, "") + (c.delta.content or "")
    check("n = 3: one prefill, choice i = a single request with seed + i, streamed the same",
          one_prefill and texts == singles and [acc.get(i) for i in range(3)] == texts
          and r.usage.completion_tokens == sum(x.usage.completion_tokens for x in single),
          f"prefilled once: {one_prefill}, {len(set(texts))} distinct texts")


def error_table(s, ctx):
    chat = "/v1/chat/completions"
    msg = '"messages":[{"role":"user","content":"hi"}]'
    long_prompt = json.dumps({"prompt": "hello " * (ctx + 50), "max_tokens": 4})
    cases = [
        ("malformed JSON", "POST", chat, "{not json", "default", {400}),
        ("empty body", "POST", chat, "", "default", {400}),
        ("body is an array", "POST", chat, "[1,2]", "default", {400}),
        ("body is a string", "POST", chat, '"hello"', "default", {400}),
        ("missing messages", "POST", chat, "{}", "default", {400}),
        ("messages not an array", "POST", chat, '{"messages":"hi"}', "default", {400}),
        ("messages empty", "POST", chat, '{"messages":[]}', "default", {400}),
        ("unknown role", "POST", chat, '{"messages":[{"role":"robot","content":"x"}]}', "default", {400}),
        ("user message without content", "POST", chat, '{"messages":[{"role":"user"}]}', "default", {400}),
        ("content is a number", "POST", chat, '{"messages":[{"role":"user","content":5}]}', "default", {400}),
        ("n above 16", "POST", chat, '{"messages":[{"role":"user","content":"hi"}],"n":17}', "default", {400}),
        ("embeddings without input", "POST", "/v1/embeddings", '{"model":"x"}', "default", {400}),
        ("embeddings with a bad encoding_format", "POST", "/v1/embeddings", '{"input":"a","encoding_format":"int8"}', "default", {400}),
        ("embeddings with token ids out of range", "POST", "/v1/embeddings", '{"input":[1,2,99999999]}', "default", {400}),
        ("image part to a text-only model", "POST", chat, '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}', "default", {400}),
        ("image URL that is a file path", "POST", chat, '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"/etc/hostname"}}]}]}', "default", {400}),
        ("temperature is a string", "POST", chat, '{%s,"temperature":"hot"}' % msg, "default", {400}),
        ("temperature out of range", "POST", chat, '{%s,"temperature":5}' % msg, "default", {400}),
        ("max_tokens 0", "POST", chat, '{%s,"max_tokens":0}' % msg, "default", {400}),
        ("max_tokens negative", "POST", chat, '{%s,"max_tokens":-5}' % msg, "default", {400}),
        ("max_tokens fractional", "POST", chat, '{%s,"max_tokens":1.5}' % msg, "default", {400}),
        ("max_tokens is a string", "POST", chat, '{%s,"max_tokens":"10"}' % msg, "default", {400}),
        ("top_p out of range", "POST", chat, '{%s,"top_p":1.5}' % msg, "default", {400}),
        ("stream is a string", "POST", chat, '{%s,"stream":"yes"}' % msg, "default", {400}),
        ("stop is a number", "POST", chat, '{%s,"stop":5}' % msg, "default", {400}),
        ("presence_penalty out of range", "POST", chat, '{%s,"presence_penalty":3}' % msg, "default", {400}),
        ("logprobs is a string", "POST", chat, '{%s,"logprobs":"true"}' % msg, "default", {400}),
        ("top_logprobs 50", "POST", chat, '{%s,"logprobs":true,"top_logprobs":50}' % msg, "default", {400}),
        ("seed is a string", "POST", chat, '{%s,"seed":"x"}' % msg, "default", {400}),
        ("logit_bias key not a token", "POST", chat, '{%s,"logit_bias":{"abc":1}}' % msg, "default", {400}),
        ("invalid UTF-8 in a string", "POST", chat, b'{"messages":[{"role":"user","content":"\xff\xfe"}]}', "default", {400}),
        ("JSON nested 1000 deep", "POST", chat, "[" * 1000 + "]" * 1000, "default", {400}),
        ("completions: prompt is a number", "POST", "/v1/completions", '{"prompt":5}', "default", {400}),
        ("completions: token id out of range", "POST", "/v1/completions", '{"prompt":[999999999]}', "default", {400}),
        ("completions: missing prompt", "POST", "/v1/completions", '{"max_tokens":3}', "default", {400}),
        ("completions: prompt longer than the context", "POST", "/v1/completions", long_prompt, "default", {400}),
        ("body larger than the limit (2 MiB)", "POST", chat, '{"x":"' + "a" * (2 << 20) + '"}', "default", {413}),
        ("missing API key", "POST", chat, '{%s}' % msg, None, {401}),
        ("wrong API key", "GET", "/v1/models", None, "wrong-key", {401}),
        ("unknown route", "GET", "/v1/unknown", None, "default", {404}),
        ("unknown POST route", "POST", "/v2/chat", "{}", "default", {404}),
        ("GET on a POST route", "GET", chat, None, "default", {404, 405}),
        ("detokenize: negative id", "POST", "/detokenize", '{"tokens":[-1]}', "default", {400}),
        ("tokenize: content is a number", "POST", "/tokenize", '{"content":5}', "default", {400}),
    ]
    print(f"{'#':>3}  {'request':<46} {'expected':<9} {'got':<4} error.type / code")
    bad = 0
    for i, (name, method, path, body, key, expected) in enumerate(cases, 1):
        try:
            status, data = s.raw(method, path, body, key=key)
        except Exception as e:
            status, data = -1, str(e)
        shaped = isinstance(data, dict) and isinstance(data.get("error"), dict) and "message" in data["error"]
        err = data.get("error", {}) if isinstance(data, dict) else {}
        ok = status in expected and shaped
        bad += not ok
        print(f"{i:>3}  {name:<46} {'/'.join(map(str, sorted(expected))):<9} {status:<4} "
              f"{err.get('type', '-')} / {err.get('code', '-')}{'' if ok else '   <-- MISMATCH'}")
    # A request line that is not HTTP at all: the server answers 400 or closes, and stays up.
    try:
        with socket.create_connection((s.host, s.port), timeout=10) as sock:
            sock.sendall(b"GARBAGE \x00\x01\x02 NOT-HTTP\r\n\r\n")
            reply = sock.recv(100)
        garbage = reply[:12].decode(errors="replace") or "(closed)"
    except OSError as e:
        garbage = f"(closed: {type(e).__name__})"
    print(f"{len(cases) + 1:>3}  {'not HTTP at all':<46} {'400/close':<9} {garbage}")
    check(f"malformed requests: {len(cases) + 1} cases, statuses as expected in OpenAI's error shape", bad == 0,
          f"{bad} mismatches")
    status, _ = s.raw("GET", "/health", key=None)
    check("server still healthy after the malformed requests", status == 200)


PROMPTS = [f"{a} {b}" for a in ("Name a", "Describe a", "List one", "Spell a")
           for b in ("fruit.", "color.", "planet.", "city.", "animal.", "tree.", "river.", "metal.")]


def greedy_request(s, prompt):
    status, data = s.raw("POST", "/v1/chat/completions", json.dumps({
        "model": "gemma", "messages": [{"role": "user", "content": prompt}], "max_tokens": 8, "temperature": 0}))
    if status != 200:
        raise RuntimeError(f"status {status}: {data}")
    return data["choices"][0]["message"]["content"]


def load_test(s):
    baseline = {p: greedy_request(s, p) for p in PROMPTS}
    clients, per_client = 16, 8
    outcomes, errors = {}, []

    def client(i):
        for j in range(per_client):
            p = PROMPTS[(i * per_client + j * 5) % len(PROMPTS)]
            try:
                outcomes[(i, j)] = (p, greedy_request(s, p))
            except Exception as e:
                errors.append(f"client {i} request {j}: {e}")

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    check(f"load: {clients} concurrent clients x {per_client} requests all succeed",
          not errors and len(outcomes) == clients * per_client, f"{len(outcomes)} ok in {elapsed:.1f} s; {errors[:2]}")
    mismatched = [(p, out, baseline[p]) for p, out in outcomes.values() if out != baseline[p]]
    check("load: greedy outputs equal the same requests sent one at a time", not mismatched,
          f"{len(outcomes) - len(mismatched)}/{len(outcomes)} equal{'; e.g. ' + repr(mismatched[0]) if mismatched else ''}")
    m = s.metrics()
    rows, steps = m.get("gemma_decode_rows_total", 0), m.get("gemma_decode_steps_total", 1)
    print(f"      mean batch over all decode steps so far: {rows / max(steps, 1):.2f} sequences per step")


def disconnect_test(s):
    before = s.metrics()
    body = json.dumps({"model": "gemma", "prompt": "Once upon a time", "max_tokens": 400, "temperature": 0,
                       "stream": True, "logit_bias": {"1": -100, "106": -100}})
    sock = socket.create_connection((s.host, s.port), timeout=30)
    req = (f"POST /v1/completions HTTP/1.1\r\nHost: {s.host}\r\nAuthorization: Bearer {s.key}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}")
    sock.sendall(req.encode())
    got = b""
    while got.count(b"data: ") < 4:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    busy_during = s.metrics().get("gemma_slots_busy", -1)
    sock.close()
    t0 = time.time()
    freed = None
    while time.time() - t0 < 10:
        m = s.metrics()
        if m.get("gemma_requests_cancelled_total", 0) > before.get("gemma_requests_cancelled_total", 0) \
                and m.get("gemma_slots_busy", 1) == 0:
            freed = m
            break
        time.sleep(0.01)
    ok = freed is not None and freed.get("gemma_cancel_to_free_steps_last", 99) <= 1
    if LOG_PATH:
        time.sleep(0.2)
        for line in open(LOG_PATH, errors="replace"):
            if "client gone" in line:
                print("      server log: " + line.strip())
    check("disconnect mid-stream frees the slot within one decode step", ok,
          f"slots busy while streaming {busy_during:.0f}, after close 0 within {time.time() - t0:.3f} s, "
          f"decode steps from disconnect to free: {freed.get('gemma_cancel_to_free_steps_last') if freed else '?'}")


def throughput(s, streams, tokens=48):
    body = {"model": "gemma", "max_tokens": tokens, "temperature": 0, "logit_bias": {"1": -100, "106": -100}}
    counts = []

    def one(i):
        status, data = s.raw("POST", "/v1/completions", json.dumps({**body, "prompt": f"Story number {i}: once"}))
        counts.append(data["usage"]["completion_tokens"] if status == 200 else 0)

    before = s.metrics()
    t0 = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = sum(counts) / (time.time() - t0)
    after = s.metrics()
    rows = after["gemma_decode_rows_total"] - before["gemma_decode_rows_total"]
    steps = after["gemma_decode_steps_total"] - before["gemma_decode_steps_total"]
    secs = after["gemma_decode_step_seconds_sum"] - before["gemma_decode_step_seconds_sum"]
    print(f"      {streams} stream(s) x {tokens} tokens: {wall:.1f} tok/s end to end; decode steps: {steps:.0f}, "
          f"{rows / max(steps, 1):.2f} rows/step, {1000 * secs / max(steps, 1):.1f} ms/step, "
          f"{rows / max(secs, 1e-9):.1f} tok/s in decode steps", flush=True)
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--model")
    ap.add_argument("--url")
    ap.add_argument("--api-key", default=API_KEY)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--throughput-only", action="store_true", help="only the 1 vs 4 streams throughput measurement")
    ap.add_argument("--throughput-tokens", type=lambda v: [int(x) for x in v.split(",")], default=[128, 48],
                    help="completion lengths of the throughput runs (comma-separated)")
    args = ap.parse_args()

    proc = None
    try:
        if args.url:
            m = re.match(r"http://([^:/]+):(\d+)", args.url)
            s = Server(m.group(1), int(m.group(2)), args.api_key)
        else:
            proc, s, saw_loading = start_server(args.binary, args.model, free_port(), 4, args.ctx)
            check("server starts; /health 503 while loading, then 200", True,
                  f"saw 503 while loading: {saw_loading}")
        if not args.throughput_only:
            openai_checks(s)
            echo_check(s, args.binary, args.model)
            embeddings_check(s)
            n_choices_check(s)
            error_table(s, args.ctx)
            load_test(s)
            disconnect_test(s)
        # Requests of 128 tokens (as tg128) and of 48; each figure the best of two runs. With short requests the
        # prompts' prefill (4 prompts per 4-stream run, not batched with anything) weighs more.
        for tokens in args.throughput_tokens:
            single = max(throughput(s, 1, tokens), throughput(s, 1, tokens))
            four = max(throughput(s, 4, tokens), throughput(s, 4, tokens))
            check(f"throughput, {tokens}-token requests: 4 streams {four:.1f} tok/s vs 1 stream {single:.1f} tok/s = "
                  f"{four / single:.2f}x (reported; target >= 2.5x)", True)
        status, _ = s.raw("GET", "/health", key=None)
        check("server stayed up throughout", status == 200 and (proc is None or proc.poll() is None))
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = "timeout"
            check("SIGTERM: graceful shutdown, exit code 0", code == 0, f"exit {code}")
            proc = None
    except Exception as e:
        check("unexpected exception", False, repr(e))
    finally:
        if proc and proc.poll() is None:
            proc.kill()
    passed, failed = sum(results), len(results) - sum(results)
    print(f"server: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
