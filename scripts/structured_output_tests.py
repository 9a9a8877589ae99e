#!/usr/bin/env python3
"""Structured output and tools of `gemma serve` through the official `openai` client (issue 19): Pydantic models parsed
by the client's `chat.completions.parse` (sampled at temperature 1, every answer must parse and validate: the
client's Pydantic validation and, independently, `jsonschema` against the schema the client sent), `response_format`
json_object and json_schema streamed and not, llama-server's `grammar` field, a tool-call round trip (call, tool
result, final answer; streamed and not; a named tool_choice), and bad schemas, grammars, tool definitions and tool
messages out of order answered with 400s that name the problem. Reports the grammar's cost per token from /metrics (gemma_constraint_seconds_total
over gemma_constrained_tokens_total) beside the mean decode step.

Usage: structured_output_tests.py --binary .build/release/gemma [--model M] [--samples 100]
Needs: pip install openai pydantic jsonschema (installed by scripts/server-tests.sh when missing).
"""
import argparse
import json
import os
import re
import signal
import sys
from enum import Enum
from typing import Annotated, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_tests as st  # noqa: E402  (start_server, free_port, check, results)

from pydantic import BaseModel, Field  # noqa: E402


class Person(BaseModel):
    """Flat."""
    name: str = Field(max_length=40)
    age: int = Field(ge=0, le=130)
    email: str = Field(max_length=60)
    member: bool


class Color(str, Enum):
    red = "red"
    green = "green"
    blue = "blue"


class Item(BaseModel):
    label: str = Field(max_length=30)
    color: Color
    sizes: List[int] = Field(max_length=4)


class Order(BaseModel):
    """Nested, with lists and enums."""
    order_id: int = Field(ge=1, le=99999)
    items: List[Item] = Field(min_length=1, max_length=3)
    priority: Color


class Contact(BaseModel):
    """Optional fields (the client makes them required and nullable: anyOf [T, null])."""
    name: str = Field(max_length=40)
    phone: Optional[str] = Field(default=None, max_length=20)
    age: Optional[int] = Field(default=None, ge=0, le=130)
    tags: Optional[List[Annotated[str, Field(max_length=20)]]] = Field(default=None, max_length=3)


PROMPTS = {
    Person: "Invent a person. Answer in JSON with name, age, email and member.",
    Order: "Invent a shop order with one to three items. Answer in JSON.",
    Contact: "Invent a contact card. Answer in JSON.",
}


def metrics(s):
    _, text = s.raw("GET", "/metrics", key=None)
    out = {}
    for line in str(text).splitlines():
        m = re.match(r"^([a-z_]+) ([0-9.eE+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/gemma")
    ap.add_argument("--model")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=400)
    args = ap.parse_args()

    import jsonschema
    from openai import OpenAI
    try:
        from openai.lib._pydantic import to_strict_json_schema
    except ImportError:
        to_strict_json_schema = None

    proc = None
    try:
        proc, s, _ = st.start_server(args.binary, args.model, st.free_port(), 1, 2048)
        client = OpenAI(base_url=s.base + "/v1", api_key=s.key, max_retries=0, timeout=300)
        parse = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
        model = client.models.list().data[0].id

        # 1. Pydantic models through parse, sampled at temperature 1.
        before = metrics(s)
        per_model = {m: [0, 0] for m in PROMPTS}
        failures = []
        models = list(PROMPTS)
        for i in range(args.samples):
            m = models[i % len(models)]
            try:
                r = parse(model=model, messages=[{"role": "user", "content": PROMPTS[m]}], response_format=m,
                          temperature=1.0, seed=1000 + i, max_tokens=args.max_tokens)
                msg = r.choices[0].message
                ok = msg.parsed is not None and isinstance(msg.parsed, m)
                if ok and to_strict_json_schema is not None:
                    jsonschema.validate(json.loads(msg.content), to_strict_json_schema(m))
                per_model[m][0 if ok else 1] += 1
                if not ok:
                    failures.append((m.__name__, msg.content))
            except Exception as e:  # a parse or validation failure, or a length cut
                per_model[m][1] += 1
                failures.append((m.__name__, repr(e)[:300]))
        after = metrics(s)
        counts = ", ".join(f"{m.__name__} {ok}/{ok + bad}" for m, (ok, bad) in per_model.items())
        st.check(f"parse: {args.samples} samples at temperature 1, all valid ({counts})", not failures,
                 "; ".join(f"{n}: {c}" for n, c in failures[:3]))
        tokens = after.get("gemma_constrained_tokens_total", 0) - before.get("gemma_constrained_tokens_total", 0)
        secs = after.get("gemma_constraint_seconds_total", 0) - before.get("gemma_constraint_seconds_total", 0)
        steps = after.get("gemma_decode_steps_total", 0) - before.get("gemma_decode_steps_total", 0)
        step_secs = after.get("gemma_decode_step_seconds_sum", 0) - before.get("gemma_decode_step_seconds_sum", 0)
        st.check(f"grammar cost: {1e3 * secs / max(tokens, 1):.3f} ms per token over {int(tokens)} tokens; "
                 f"mean decode step {1e3 * step_secs / max(steps, 1):.2f} ms (reported)", tokens > 0)
        example = parse(model=model, messages=[{"role": "user", "content": PROMPTS[Order]}], response_format=Order,
                        temperature=1.0, seed=5, max_tokens=args.max_tokens)
        print("      example Order:", example.choices[0].message.content.replace("\n", " ")[:300])

        # 2. json_object and json_schema, streamed and not.
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Return a JSON object with the keys city and country for Paris."}],
                                           response_format={"type": "json_object"}, temperature=0,
                                           max_tokens=args.max_tokens)
        text = r.choices[0].message.content
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        st.check("response_format json_object: a JSON object", isinstance(obj, dict),
                 f"{text[:120]!r}, finish {r.choices[0].finish_reason}")
        schema = {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Lima", "Oslo"]},
                                                   "population": {"type": "integer", "minimum": 0}},
                  "required": ["city", "population"], "additionalProperties": False}
        rf = {"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}}
        whole = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "A city, as JSON."}],
                                               response_format=rf, temperature=0, max_tokens=100)
        stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "A city, as JSON."}],
                                                response_format=rf, temperature=0, max_tokens=100, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        ok = True
        try:
            jsonschema.validate(json.loads(whole.choices[0].message.content), schema)
        except Exception:
            ok = False
        st.check("response_format json_schema: valid, streamed text equal", ok and streamed == whole.choices[0].message.content,
                 whole.choices[0].message.content[:120])

        # 3. llama-server's grammar field.
        gbnf = 'root ::= "The answer is " ( "yes" | "no" ) "."'
        r = client.completions.create(model=model, prompt="Is water wet?", max_tokens=20, temperature=1.0, seed=9,
                                      extra_body={"grammar": gbnf})
        st.check("grammar (GBNF) on completions", re.fullmatch(r"The answer is (yes|no)\.", r.choices[0].text) is not None,
                 repr(r.choices[0].text))

        # 4. Tools: a call, its result, the final answer; streamed and not.
        tools = [{"type": "function", "function": {
            "name": "get_weather", "description": "The current weather in a city.",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 40},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                "required": ["city", "unit"], "additionalProperties": False}}},
            {"type": "function", "function": {"name": "get_time", "description": "The local time in a city.",
                                              "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
                                                             "required": ["city"], "additionalProperties": False}}}]
        msgs = [{"role": "user", "content": "What is the weather in Paris? Use celsius."}]
        r = client.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice="required",
                                           temperature=0, max_tokens=100)
        m = r.choices[0].message
        calls = m.tool_calls or []
        ok = r.choices[0].finish_reason == "tool_calls" and len(calls) == 1 and m.content is None
        args = {}
        if ok:
            args = json.loads(calls[0].function.arguments)
            spec = next(t["function"]["parameters"] for t in tools if t["function"]["name"] == calls[0].function.name)
            jsonschema.validate(args, spec)
        st.check("tools: tool_choice required gives a call with valid arguments", ok,
                 f"{calls[0].function.name if calls else None}({args}) finish {r.choices[0].finish_reason}")
        stream = client.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice="required",
                                                temperature=0, max_tokens=100, stream=True)
        got = {}
        finish = None
        for c in stream:
            for ch in c.choices:
                for d in ch.delta.tool_calls or []:
                    e = got.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
                    e["id"] += d.id or ""
                    e["name"] += (d.function.name or "") if d.function else ""
                    e["arguments"] += (d.function.arguments or "") if d.function else ""
                if ch.finish_reason:
                    finish = ch.finish_reason
        st.check("tools: the same call streamed", calls and list(got.values()) and got[0]["name"] == calls[0].function.name
                 and got[0]["arguments"] == calls[0].function.arguments and finish == "tool_calls",
                 f"{got} finish {finish}")
        if calls:
            msgs.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": calls[0].id, "type": "function",
                 "function": {"name": calls[0].function.name, "arguments": calls[0].function.arguments}}]})
            msgs.append({"role": "tool", "tool_call_id": calls[0].id,
                         "content": json.dumps({"city": "Paris", "temperature": 18, "unit": "celsius", "sky": "sunny"})})
            # The 270M asked again with tool_choice "auto" calls again; "none" asks for the answer in words.
            auto = client.chat.completions.create(model=model, messages=msgs, tools=tools, temperature=0, max_tokens=60)
            am = auto.choices[0].message
            print("      with tool_choice auto after the result:",
                  [(c.function.name, c.function.arguments) for c in am.tool_calls] if am.tool_calls else repr(am.content))
            final = client.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice="none",
                                                   temperature=0, max_tokens=60)
            fstream = client.chat.completions.create(model=model, messages=msgs, tools=tools, tool_choice="none",
                                                     temperature=0, max_tokens=60, stream=True)
            ftext = "".join(c.choices[0].delta.content or "" for c in fstream if c.choices)
            fm = final.choices[0].message
            st.check("tools: after the tool result, a final answer (tool_choice none), streamed text equal",
                     (fm.content or "") != "" and fm.tool_calls is None and ftext == fm.content,
                     f"{(fm.content or '')[:100]!r}, finish {final.choices[0].finish_reason}")
        named = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}], tools=tools,
                                               tool_choice={"type": "function", "function": {"name": "get_time"}},
                                               temperature=1.0, seed=4, max_tokens=60)
        nc = named.choices[0].message.tool_calls or []
        st.check("tools: a named tool_choice calls that function", len(nc) == 1 and nc[0].function.name == "get_time",
                 f"{[(c.function.name, c.function.arguments) for c in nc]}")

        # A tool whose parameters use $defs (nested Pydantic models give such schemas): its $refs resolve.
        ref_tool = [{"type": "function", "function": {"name": "add_item", "parameters": {
            "$defs": {"Item": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                                                "qty": {"type": "integer", "minimum": 1, "maximum": 9}},
                               "required": ["name", "qty"], "additionalProperties": False}},
            "type": "object", "properties": {"item": {"$ref": "#/$defs/Item"}}, "required": ["item"],
            "additionalProperties": False}}}]
        rr = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Add two apples."}],
                                            tools=ref_tool, tool_choice="required", temperature=0, max_tokens=60)
        rc = rr.choices[0].message.tool_calls or []
        ok = len(rc) == 1
        if ok:
            try:
                jsonschema.validate(json.loads(rc[0].function.arguments), ref_tool[0]["function"]["parameters"])
            except Exception:
                ok = False
        st.check("tools: parameters with $defs/$ref", ok, rc[0].function.arguments if rc else "no call")

        # 5. Bad schemas, grammars and tools: 400s that name the problem; the server stays healthy.
        bad = [
            ("unsupported keyword", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "^a$"}}}}, "pattern"),
            ("unsatisfiable bounds", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer", "minimum": 5, "maximum": 1}}}}, "no integer"),
            ("bad $ref", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/missing"}}}}, "points nowhere"),
            ("schema not an object", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": 5}}}, "must be an object"),
            ("missing json_schema", {"response_format": {"type": "json_schema"}}, "json_schema"),
            ("unknown response_format type", {"response_format": {"type": "xml"}}, "xml"),
            ("oversized maxItems", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array", "maxItems": 10000000}}}}, "maxItems"),
            ("grammar syntax error", {"grammar": "root ::= \"a"}, "unterminated"),
            ("left-recursive grammar", {"grammar": "root ::= root \"a\" | \"b\""}, "left-recursive"),
            ("grammar without root", {"grammar": "start ::= \"a\""}, "root"),
            ("two constraints", {"grammar": "root ::= \"a\"", "response_format": {"type": "json_object"}}, "Only one"),
            ("tool without a name", {"tools": [{"type": "function", "function": {"parameters": {}}}]}, "function.name"),
            ("tool with a bad schema", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}}}}]}, "pattern"),
            ("tool_choice naming an unknown tool", {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}, "not among the tools"),
            ("tools defined twice", {"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]}, "defined twice"),
        ]
        order_cases = [
            ("tool message without a call", [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c1", "content": "1"}], "must answer a tool call"),
            ("tool message with an unknown id", [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c2", "content": "1"}], "not an unanswered call"),
            ("call left unanswered", [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "user", "content": "y"}], "need their 'tool' messages"),
            ("call arguments not JSON", [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "1"}], "not valid JSON"),
        ]
        for name, msgs_, needle in order_cases:
            bad.append((name, {"messages": msgs_, "tools": [{"type": "function", "function": {"name": "f"}}]}, needle))
        for name, extra, needle in bad:
            body = {"model": model, "messages": [{"role": "user", "content": "x"}], "max_tokens": 4}
            body.update(extra)
            status, resp = s.raw("POST", "/v1/chat/completions", json.dumps(body))
            text = resp if isinstance(resp, str) else json.dumps(resp)
            st.check(f"400 for {name}", status == 400 and needle in text, f"{status} {text[:160]}")
        status, _ = s.raw("GET", "/health", key=None)
        st.check("server healthy after the bad requests", status == 200)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc = None
    except Exception as e:
        st.check("unexpected exception", False, repr(e))
    finally:
        if proc and proc.poll() is None:
            proc.kill()
    passed, failed = sum(st.results), len(st.results) - sum(st.results)
    print(f"structured output: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
