#!/usr/bin/env python3
"""End-to-end checks of image input in `gemma serve`, driven by the official `openai` Python client, on the tiny
vision fixture (Tests/Fixtures/gemma3-tiny-vision: transformers' Gemma3ForConditionalGeneration with random weights).

Each greedy reply must equal what `gemma run -m MODEL --image ... --temp 0` prints for the same message, and the
prompt must have the processor's token count (fixtures.json: 32 for one image and "Describe this image.", 98 with
Pan & Scan). Images come as data: URLs and as http URLs served by a loopback `python3 -m http.server`, streamed and
not; bad images are 400s with a message (openai.BadRequestError); a text-only model refuses images; the server stays
up and stops cleanly on SIGTERM. Prints one line per check and closes with "server-vision: N passed, N failed".

Usage: server_vision_tests.py --binary .build/release/gemma [--model Tests/Fixtures/gemma3-tiny-vision]
"""
import argparse
import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib

API_KEY = "sk-test-swift-gemma-vision"
QUESTION = "Describe this image."
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name}{('  -- ' + detail) if detail else ''}", flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=60, proc=None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def start_server(binary, model, extra=()):
    port = free_port()
    log = open(f"/tmp/gemma-serve-vision-{port}.log", "w")
    proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--parallel", "2",
                             "--ctx", "512", "--api-key", API_KEY, "--model", model, *extra],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/health", 120, proc)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "timeout"


def cli_reply(binary, model, images, text=QUESTION, pan_and_scan=False, n=8):
    """`gemma run` greedy: its reply is stdout without the newline it ends with."""
    cmd = [binary, "run", "-m", model, "--temp", "0", "-n", str(n)]
    for image in images:
        cmd += ["--image", image]
    if pan_and_scan:
        cmd.append("--pan-and-scan")
    out = subprocess.run(cmd + [text], capture_output=True, text=True, check=True).stdout
    return out[:-1] if out.endswith("\n") else out


def data_url(path, media="image/png"):
    with open(path, "rb") as f:
        return f"data:{media};base64," + base64.b64encode(f.read()).decode()


def png_header(width, height):
    """A PNG that says width x height and holds no pixels: decoders read the size first."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def image_part(url, shorthand=False):
    return {"type": "image_url", "image_url": url if shorthand else {"url": url}}


def ask(client, parts, stream=False, **extra):
    """(reply text, usage) of one greedy chat completion with `parts` as the user message."""
    kwargs = dict(model="gemma", messages=[{"role": "user", "content": parts}], max_tokens=8, temperature=0, **extra)
    if not stream:
        r = client.chat.completions.create(**kwargs)
        return r.choices[0].message.content, r.usage
    pieces, usage = [], None
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs):
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
    return "".join(pieces), usage


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/gemma")
    ap.add_argument("--model", default="Tests/Fixtures/gemma3-tiny-vision")
    ap.add_argument("--text-model", default="Tests/Fixtures/gemma3-tiny-text")
    args = ap.parse_args()
    from openai import OpenAI, BadRequestError

    images = os.path.join(args.model, "images")
    wide, tall = os.path.join(images, "wide.png"), os.path.join(images, "tall.png")
    with open(os.path.join(args.model, "fixtures.json")) as f:
        processor = json.load(f)["processor"]
    single, pas = len(processor["single"]["input_ids"]), len(processor["pas"]["input_ids"])

    web_port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "http.server", str(web_port), "--bind", "127.0.0.1", "--directory", images],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [web]
    try:
        wait_http(f"http://127.0.0.1:{web_port}/wide.png", 30, web)
        web_url = f"http://127.0.0.1:{web_port}"
        # A 100 KB size limit: the fixture images (21-31 KB) pass, a padded one does not.
        proc, base = start_server(args.binary, args.model, ["--image-max-bytes", "100000", "--image-timeout", "5"])
        procs.append(proc)
        client = OpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0, timeout=120)
        card = client.models.list().data[0].model_dump()
        check("models.list: the card says the model takes images", (card.get("meta") or {}).get("modalities") == {"vision": True},
              json.dumps(card.get("meta")))

        expected = cli_reply(args.binary, args.model, [wide])
        text_part = {"type": "text", "text": QUESTION}
        for name, part, stream in [
            ("data: URL", image_part(data_url(wide)), False),
            ("data: URL, streamed", image_part(data_url(wide)), True),
            ("data: URL as the bare-string shorthand", image_part(data_url(wide), shorthand=True), False),
            ("http URL (loopback http.server)", image_part(f"{web_url}/wide.png"), False),
            ("http URL (loopback http.server), streamed", image_part(f"{web_url}/wide.png"), True),
        ]:
            reply, usage = ask(client, [part, text_part], stream=stream)
            check(f"image as a {name}: reply equals `gemma run --image --temp 0`, {single} prompt tokens",
                  reply == expected and usage is not None and usage.prompt_tokens == single,
                  f"{reply!r} vs {expected!r}, prompt_tokens {usage.prompt_tokens if usage else None} (processor: {single})")

        reply, usage = ask(client, [image_part(data_url(wide)), text_part], extra_body={"pan_and_scan": True})
        expected_pas = cli_reply(args.binary, args.model, [wide], pan_and_scan=True)
        check(f"pan_and_scan: the whole image and 3 crops, {pas} prompt tokens, reply equals `gemma run --pan-and-scan`",
              reply == expected_pas and usage.prompt_tokens == pas, f"{reply!r}, prompt_tokens {usage.prompt_tokens}")

        reply, usage = ask(client, [image_part(f"{web_url}/wide.png"), image_part(data_url(tall)),
                                    {"type": "text", "text": "Compare them."}])
        expected_two = cli_reply(args.binary, args.model, [wide, tall], text="Compare them.")
        check("two images in one message (http and data:) equal `gemma run --image A --image B`",
              reply == expected_two, f"{reply!r} vs {expected_two!r}, prompt_tokens {usage.prompt_tokens}")

        padded = open(wide, "rb").read() + b"\0" * 120_000
        bad = [
            ("a data: URL that is no base64", image_part("data:image/png;base64,%%%%"), "data: URL"),
            ("a text file as a data: URL", image_part("data:text/plain;base64," + base64.b64encode(b"hello").decode()),
             "not a JPEG, PNG or WebP"),
            ("an image over --image-max-bytes", image_part("data:image/png;base64," + base64.b64encode(padded).decode()), "limit"),
            ("60 Mpixels (under PIL's limit, over --image-max-pixels 50M)",
             image_part("data:image/png;base64," + base64.b64encode(png_header(10_000, 6_000)).decode()), "pixels"),
            ("an http URL answering 404", image_part(f"{web_url}/absent.png"), "404"),
            ("an unreachable http URL", image_part(f"http://127.0.0.1:{free_port()}/x.png"), "cannot fetch"),
            ("a server file path", image_part("/etc/hostname"), "data: URL"),
        ]
        for name, part, says in bad:
            try:
                ask(client, [part, text_part])
                check(f"400 for {name}", False, "accepted")
            except BadRequestError as e:
                message = (e.body or {}).get("message", "") if isinstance(e.body, dict) else str(e)
                check(f"400 for {name}", e.status_code == 400 and says in message, message)

        reply, _ = ask(client, [image_part(data_url(wide)), text_part])
        check("the server still answers images after the refusals", reply == expected)
        code = stop(proc)
        procs.remove(proc)
        check("SIGTERM: graceful shutdown, exit code 0", code == 0, f"exit {code}")

        proc, base = start_server(args.binary, args.text_model)
        procs.append(proc)
        client = OpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0, timeout=60)
        try:
            ask(client, [image_part(data_url(wide)), text_part])
            check("a text-only model refuses images with a 400", False, "accepted")
        except BadRequestError as e:
            message = (e.body or {}).get("message", "") if isinstance(e.body, dict) else str(e)
            check("a text-only model refuses images with a 400", e.status_code == 400 and "reads no images" in message, message)
    except Exception as e:
        check("unexpected exception", False, repr(e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    passed, failed = sum(results), len(results) - sum(results)
    print(f"server-vision: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
