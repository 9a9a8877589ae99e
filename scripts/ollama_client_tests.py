#!/usr/bin/env python3
"""Ollama's API on `gemma serve`, driven by the official `ollama` Python client unchanged (issue 19): list, show,
generate and chat, streamed and not (streamed text equal to the whole answer at temperature 0), options (num_predict,
seed, temperature) honoured, `format` with a JSON schema giving valid JSON, chat with tools giving a call, and bad
bodies (malformed or cut short, wrong types) answered with 400 and Ollama's {"error": ...}; the server stays up.

Usage: ollama_client_tests.py --binary .build/release/gemma [--model M]
Needs: pip install ollama jsonschema (installed by scripts/server-tests.sh when missing).
"""
import argparse
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_tests as st  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/gemma")
    ap.add_argument("--model")
    args = ap.parse_args()
    import jsonschema
    from ollama import Client

    proc = None
    try:
        proc, s, _ = st.start_server(args.binary, args.model, st.free_port(), 2, 2048)
        c = Client(host=s.base, headers={"Authorization": f"Bearer {s.key}"})
        models = c.list().models
        name = models[0].model if models else None
        st.check("ollama: list", len(models) == 1 and models[0].details.family == "gemma3",
                 f"{name}, {models[0].details.parameter_size if models else ''} {models[0].details.quantization_level if models else ''}")
        info = c.show(name)
        st.check("ollama: show", info.modelinfo.get("general.architecture") == "gemma3" and "completion" in (info.capabilities or []),
                 f"context {info.modelinfo.get('gemma3.context_length')}, capabilities {info.capabilities}")

        g = c.generate(model=name, prompt="The capital of France is", options={"temperature": 0, "num_predict": 16})
        gs = "".join(part.response for part in c.generate(model=name, prompt="The capital of France is", stream=True,
                                                          options={"temperature": 0, "num_predict": 16}))
        st.check("ollama: generate (whole and streamed, equal)", g.done and g.response != "" and gs == g.response
                 and g.eval_count <= 16, f"{g.response!r}, done_reason {g.done_reason}, eval_count {g.eval_count}")
        raw = c.generate(model=name, prompt="1, 2, 3, 4,", raw=True, options={"temperature": 0, "num_predict": 6})
        st.check("ollama: generate raw (no chat template)", raw.response.strip() != "", repr(raw.response))
        a = c.generate(model=name, prompt="Write a word.", options={"temperature": 1.0, "seed": 11, "num_predict": 12})
        b = c.generate(model=name, prompt="Write a word.", options={"temperature": 1.0, "seed": 11, "num_predict": 12})
        st.check("ollama: options seed + temperature reproducible", a.response == b.response, repr(a.response))

        msgs = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a primary color."}]
        r = c.chat(model=name, messages=msgs, options={"temperature": 0, "num_predict": 20})
        rs = "".join(part.message.content for part in c.chat(model=name, messages=msgs, stream=True,
                                                            options={"temperature": 0, "num_predict": 20}))
        st.check("ollama: chat (whole and streamed, equal)", r.done and r.message.role == "assistant" and r.message.content != ""
                 and rs == r.message.content, f"{r.message.content!r}, done_reason {r.done_reason}")

        schema = {"type": "object", "properties": {"color": {"type": "string", "enum": ["red", "yellow", "blue"]},
                                                   "hex": {"type": "string", "maxLength": 7}},
                  "required": ["color", "hex"], "additionalProperties": False}
        f = c.chat(model=name, messages=[{"role": "user", "content": "A primary color as JSON."}], format=schema,
                   options={"temperature": 1.0, "seed": 3})
        ok = True
        try:
            jsonschema.validate(json.loads(f.message.content), schema)
        except Exception:
            ok = False
        st.check("ollama: chat with format (a JSON schema) gives valid JSON", ok, f.message.content)
        j = c.generate(model=name, prompt="Return a JSON object with the keys city and country for Paris.", format="json",
                       options={"temperature": 0})
        try:
            ok = isinstance(json.loads(j.response), dict)
        except ValueError:
            ok = False
        st.check("ollama: generate with format json", ok, j.response[:100])

        tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
                                                   "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                                                                  "required": ["city"], "additionalProperties": False}}}]
        t = c.chat(model=name, messages=[{"role": "user", "content": "What is the weather in Oslo? Call the tool."}],
                   tools=tools, options={"temperature": 0})
        calls = t.message.tool_calls or []
        st.check("ollama: chat with tools", len(calls) in (0, 1) and all(x.function.name == "get_weather" for x in calls),
                 f"calls {[(x.function.name, x.function.arguments) for x in calls]}, content {t.message.content[:60]!r}")
        if calls:
            follow = c.chat(model=name, messages=[{"role": "user", "content": "What is the weather in Oslo? Call the tool."},
                                                  t.message, {"role": "tool", "content": '{"temperature": 3}'}],
                            tools=tools, options={"temperature": 0, "num_predict": 30})
            st.check("ollama: tool result accepted", follow.done, f"{follow.message.content[:80]!r}")

        bad = [("malformed JSON", "{not json"), ("body cut short", '{"model": "x", "messages": [{"role": "user", "cont'),
               ("messages not an array", '{"model": "x", "messages": "hi"}'), ("options not an object", '{"model": "x", "prompt": "a", "options": 5}'),
               ("format neither json nor a schema", '{"model": "x", "prompt": "a", "format": 7}'),
               ("unsupported schema keyword", '{"model": "x", "prompt": "a", "format": {"type": "string", "pattern": "a"}}'),
               ("tool message without a call", '{"model": "x", "messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "1"}]}')]
        for label, body in bad:
            path = "/api/chat" if "messages" in body or body.startswith("{not") else "/api/generate"
            status, resp = s.raw("POST", path, body)
            st.check(f"ollama: 400 for {label}", status == 400 and isinstance(resp, dict) and isinstance(resp.get("error"), str),
                     f"{status} {str(resp)[:140]}")
        status, _ = s.raw("GET", "/health", key=None)
        st.check("ollama: server healthy after the bad requests", status == 200)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc = None
    except Exception as e:
        st.check("unexpected exception", False, repr(e))
    finally:
        if proc and proc.poll() is None:
            proc.kill()
    passed, failed = sum(st.results), len(st.results) - sum(st.results)
    print(f"ollama client: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
