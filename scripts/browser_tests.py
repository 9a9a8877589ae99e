#!/usr/bin/env python3
"""The chat page of `gemma serve` (GET /) in a real browser: Debian's Chromium, headless, driven by Playwright for
Python (its own browser download is never used: `executable_path` is the system's chromium).

Three servers, each started here on 127.0.0.1 and stopped with SIGTERM:
- the text model, no key: the page and its headers (HTML, a hash-based Content-Security-Policy), labels, contrast
  and keyboard use; a reply streamed token by token with its tokens/s and prompt-reuse figures (reuse > 0 on a
  second turn behind a long system prompt); Stop mid-reply frees the slot (/metrics: gemma_slots_busy back to 0, one
  more cancelled request); New chat, several conversations, everything back after a reload; export as JSON; model
  and user text shown as text, never markup (a user message and a streamed reply holding <img onerror> and <script>,
  the renderer on crafted strings; no handler ever runs); phone width; the page behind a path prefix;
- the text model with --api-key: GET / without the key, the page asks for it on 401 (a wrong key is refused), keeps
  it in sessionStorage and works;
- the tiny vision fixture: the image controls appear; an image attached by the file picker, by paste and by drop,
  sent as a data: URL and shown; the prompt has the processor's token count, with Pan & Scan too.
Prints one line per check and closes with "browser: N passed, N failed"; exits non-zero on failure.

Usage: browser_tests.py --binary .build/release/gemma [--model M] [--port P] [--screenshots DIR]
  --port P uses P, P+1, P+2 (default: free ports); --screenshots DIR saves chat-page-desktop.png and
  chat-page-phone.png of a conversation there (docs/ holds the committed ones).
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

API_KEY = "sk-test-swift-gemma-browser"
INJECTION = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2;alert(2)</script>'
STATS = re.compile(r"^(\d+) tokens · ([\d.]+) tok/s · prompt (\d+) tokens, (\d+) reused · first token ([\d.]+) s"
                   r"( · max tokens reached)?$")
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name}{('  -- ' + detail) if detail else ''}", flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, key=None):
    """(status, headers, body text) of a GET."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


class Server:
    """`gemma serve` on 127.0.0.1:port, ready once /health answers 200."""

    def __init__(self, binary, port, model=None, extra=()):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = f"/tmp/gemma-browser-{self.port}.log"
        cmd = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), *extra]
        if model:
            cmd += ["--model", model]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gemma serve exited with {self.proc.returncode}; see {self.log}")
            try:
                if get(self.base + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gemma serve did not become healthy in 180 s; see {self.log}")

    def metrics(self):
        values = {}
        for line in get(self.base + "/metrics")[2].splitlines():
            m = re.match(r"^([a-z_]+)(\{[^}]*\})?\s+([-0-9.e+]+)$", line)
            if m:
                values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return values

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Watch:
    """What a page did that it must not: page errors, Content-Security-Policy refusals, alert() and other dialogs."""

    def __init__(self):
        self.errors, self.csp, self.dialogs = [], [], []

    def attach(self, page):
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.csp.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.set_default_timeout(120_000)
        return page


# ---- Page helpers ----

def wait_for(page, expression, seconds=120):
    """Polls a JavaScript expression until it is true (page.wait_for_function evaluates its predicate with eval,
    which the page's Content-Security-Policy refuses)."""
    deadline = time.time() + seconds
    while not page.evaluate(expression):
        if time.time() > deadline:
            raise TimeoutError(f"not true after {seconds} s: {expression}")
        time.sleep(0.05)


def wait_model(page):
    wait_for(page, "document.getElementById('model').textContent.length > 0")


def replies(page):
    return page.locator("#log .msg.assistant").count()


def send(page, text, wait=True):
    """Types `text` and presses Enter; with `wait`, returns the finished reply: {text, stats, error}."""
    before = replies(page)
    page.fill("#input", text)
    page.press("#input", "Enter")
    wait_for(page, f"document.querySelectorAll('#log .msg.assistant').length > {before}")
    if wait:
        return wait_done(page)


def wait_done(page):
    wait_for(page, "!document.querySelector('#log > .msg:last-child').hasAttribute('aria-busy')"
                           " && document.getElementById('stop').disabled")
    return last_reply(page)


def last_reply(page):
    return page.evaluate("""() => {
        const m = document.querySelector('#log > .msg.assistant:last-child');
        return { text: m.querySelector('.body').textContent, stats: m.querySelector('.stats').textContent,
                 error: (m.querySelector('.error') || {}).textContent || null };
    }""")


def log_texts(page):
    return page.eval_on_selector_all("#log .msg .body", "els => els.map(e => e.textContent)")


def settings(page, max_tokens, temperature=""):
    page.fill("#max-tokens", str(max_tokens))
    page.fill("#temperature", str(temperature))


def new_chat(page):
    page.click("#new")
    wait_for(page, "document.querySelectorAll('#log .msg').length === 0")


def no_markup(page, where="#log"):
    """Elements and handlers that model or user text would have made if it were inserted as HTML."""
    return page.evaluate("""w => {
        const root = document.querySelector(w);
        return { imgs: [...root.querySelectorAll('img')].filter(i => !i.src.startsWith('data:image/')).length,
                 scripts: root.querySelectorAll('script, iframe, svg, object').length,
                 handlers: root.querySelectorAll('[onerror], [onload], [onclick]').length,
                 pwned: window.__pwned === undefined ? null : window.__pwned };
    }""", where)


def markup_free(found):
    return found["imgs"] == 0 and found["scripts"] == 0 and found["handlers"] == 0 and found["pwned"] is None


def sse(text, prompt_tokens=10):
    """A streamed chat reply as the server sends it: `text` in small deltas, the usage chunk, [DONE]."""
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    events += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
               {"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                                          "total_tokens": prompt_tokens + len(pieces),
                                          "prompt_tokens_details": {"cached_tokens": 0}}}]
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


CONTRAST = """sel => {
    // WCAG contrast of an element's text against the first opaque background behind it.
    const rgb = s => s.match(/[\\d.]+/g).map(Number);
    const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                       return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
    const e = document.querySelector(sel);
    if (!e) return null;
    let bg = e;
    while (bg && (getComputedStyle(bg).backgroundColor === 'rgba(0, 0, 0, 0)' || getComputedStyle(bg).backgroundColor === 'transparent')) bg = bg.parentElement;
    const a = lum(rgb(getComputedStyle(e).color)), b = lum(rgb(bg ? getComputedStyle(bg).backgroundColor : 'rgb(255,255,255)'));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


# ---- The text model, no key ----

def text_model_checks(browser, server, screenshots):
    status, headers, body = get(server.base + "/")
    csp = headers.get("Content-Security-Policy", "")
    check("GET / is the page: 200, text/html; charset=utf-8, one document",
          status == 200 and headers.get("Content-Type") == "text/html; charset=utf-8" and body.startswith("<!doctype html>"),
          f"{status} {headers.get('Content-Type')}")
    check("the page's Content-Security-Policy: scripts and styles by hash only, fetches to its own origin",
          "script-src 'sha256-" in csp and "style-src 'sha256-" in csp and "unsafe-inline" not in csp
          and "connect-src 'self'" in csp and "default-src 'none'" in csp, csp)
    check("GET /index.html is the same page", get(server.base + "/index.html")[2] == body)

    context = browser.new_context(viewport={"width": 1100, "height": 760}, accept_downloads=True)
    watch = Watch()
    page = watch.attach(context.new_page())
    page.goto(server.base + "/")
    wait_model(page)
    model = page.text_content("#model")
    check("the page loads and names the model (v1/models)", bool(model), model)
    check("no image controls for a text-only model",
          page.locator("#attach").is_hidden() and page.locator("label.vision").is_hidden())

    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, input, textarea')]
        .filter(e => e.type !== 'file' && e.offsetParent !== null)
        .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.textContent.trim()))
        .map(e => e.id || e.outerHTML.slice(0, 60))""")
    check("every visible control has a label or a name", unnamed == [], str(unnamed))
    ratios = {sel: page.evaluate(CONTRAST, sel) for sel in ["body", "#send", "#new", "aside label", "#chats-title"]}
    check("text contrast at least 4.5:1 (WCAG AA)", all(r is not None and r >= 4.5 for r in ratios.values()),
          ", ".join(f"{k} {v:.1f}" for k, v in ratios.items() if v))

    # Keyboard: the message box has focus; Shift+Enter is a new line, not a send; Tab reaches Send.
    focused = page.evaluate("document.activeElement.id")
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    value = page.input_value("#input")
    page.keyboard.press("Tab")
    check("keyboard: focus starts in the message box, Shift+Enter adds a line without sending, Tab reaches Send",
          focused == "input" and value == "first line\nsecond line" and replies(page) == 0
          and page.evaluate("document.activeElement.id") == "send", f"{focused!r}, {value!r}")
    page.fill("#input", "")

    # A streamed reply: the reply's text grows in steps while it arrives.
    page.fill("#system", "You are a helpful assistant. " + "Answer briefly, accurately and in plain words. " * 40)
    settings(page, 48, 0)
    page.evaluate("""() => {
        window.__lengths = [];
        new MutationObserver(() => {
            const b = document.querySelector('#log > .msg.assistant:last-child .body');
            if (b && b.textContent.length !== window.__lengths[window.__lengths.length - 1]) window.__lengths.push(b.textContent.length);
        }).observe(document.getElementById('log'), { childList: true, subtree: true, characterData: true });
    }""")
    first = send(page, "What is the capital of France?")
    lengths = page.evaluate("window.__lengths")
    steps = sorted(set(x for x in lengths if x > 0))
    check("the reply streams in: its text grows over several updates", len(steps) >= 3 and first["text"].strip(),
          f"{len(steps)} distinct lengths, reply {first['text'][:60]!r}")
    m = STATS.match(first["stats"])
    check("the reply shows its tokens, tok/s, prompt tokens and reused tokens (and when max tokens cut it)",
          m is not None and (int(m.group(1)) < 48) == (m.group(6) is None), first["stats"])
    second = send(page, "And of Germany?")
    m2 = STATS.match(second["stats"])
    check("a second turn reuses the first's prompt positions (shown as reused > 0)",
          m2 is not None and int(m2.group(4)) > 0, second["stats"])
    first_chat = log_texts(page)

    # Stop mid-reply: the request is aborted and the server frees the slot. The test bans <eos> and <end_of_turn>
    # (logit_bias on the page's request) so that the reply is still running when Stop is pressed.
    new_chat(page)
    check("New chat: an empty conversation, both listed", page.locator("#chats li").count() == 2)
    page.fill("#system", "")
    settings(page, 2000, 0.8)

    def ban_stops(route):
        body = json.loads(route.request.post_data)
        body["logit_bias"] = {"1": -100, "106": -100}
        route.continue_(post_data=json.dumps(body))

    page.route("**/v1/chat/completions", ban_stops)
    before = server.metrics()
    send(page, "Tell me a long story about a lighthouse keeper.", wait=False)
    wait_for(page, "document.querySelector('#log > .msg.assistant:last-child .body').textContent.length > 40")
    busy_during = server.metrics().get("gemma_slots_busy", -1)
    page.click("#stop")
    stopped = wait_done(page)
    freed = None
    deadline = time.time() + 30
    while time.time() < deadline and freed is None:
        m = server.metrics()
        if m.get("gemma_slots_busy", 1) == 0 and \
                m.get("gemma_requests_cancelled_total", 0) > before.get("gemma_requests_cancelled_total", 0):
            freed = m
        time.sleep(0.05)
    check("Stop mid-reply aborts the request and the server frees the slot (gemma_slots_busy 1 -> 0, one more cancelled)",
          busy_during == 1 and freed is not None and stopped["stats"].startswith("stopped after"),
          f"slots busy while streaming {busy_during:.0f}, page says {stopped['stats']!r}, "
          f"cancel-to-free steps {freed.get('gemma_cancel_to_free_steps_last') if freed else '?'}")
    page.unroute("**/v1/chat/completions")
    stop_chat = log_texts(page)

    # Everything back after a reload: both conversations, the current one first.
    page.reload()
    wait_model(page)
    titles = page.eval_on_selector_all("#chats li button.open", "els => els.map(e => e.textContent)")
    same_stop = log_texts(page) == stop_chat and page.text_content("#log > .msg:last-child .stats").startswith("stopped")
    page.click("#chats li:nth-child(2) button.open")
    check("after a reload: the conversations listed, each with its messages and figures (localStorage)",
          len(titles) == 2 and same_stop and log_texts(page) == first_chat
          and STATS.match(page.text_content("#log > .msg:last-child .stats")) is not None, str(titles))

    with page.expect_download() as download:
        page.click("#export")
    exported = json.load(open(download.value.path()))
    counts = sorted(len(c["messages"]) for c in exported.get("conversations", []))
    check("export: a JSON file of every conversation and its messages", counts == [2, 4], f"messages per chat {counts}")

    # Model and user text is text: a user message and a streamed reply with markup, the renderer on crafted strings.
    new_chat(page)
    settings(page, 24, 0)
    send(page, "Repeat exactly: " + INJECTION)
    user_text = page.locator("#log .msg.user .body").last.text_content()
    found = no_markup(page)
    check("a user message with <img onerror> and <script> is shown as text, and nothing runs",
          INJECTION in user_text and markup_free(found) and not watch.dialogs, f"{found}, dialogs {watch.dialogs}")
    reply_md = ("Sure: " + INJECTION + "\n\n- **bold item** and *emphasis*\n- `inline <b>code</b>`\n\n"
                "```html\n" + INJECTION + "\n```\n[a link](javascript:alert(3)) <svg onload=alert(4)>")
    page.route("**/v1/chat/completions", lambda route: route.fulfill(
        status=200, headers={"Content-Type": "text/event-stream"}, body=sse(reply_md)))
    reply = send(page, "Show me some markup.")
    page.unroute("**/v1/chat/completions")
    shape = page.evaluate("""() => {
        const b = document.querySelector('#log > .msg.assistant:last-child .body');
        return { strong: (b.querySelector('strong') || {}).textContent, em: (b.querySelector('em') || {}).textContent,
                 items: b.querySelectorAll('ul > li').length, code: (b.querySelector('pre > code') || {}).textContent,
                 inline: (b.querySelector('li code') || {}).textContent, links: b.querySelectorAll('a').length };
    }""")
    found = no_markup(page)
    check("a streamed reply with <img onerror>, <script>, <svg onload> and a javascript: link is shown as text",
          INJECTION in reply["text"] and "<svg onload=alert(4)>" in reply["text"] and markup_free(found)
          and shape["links"] == 0 and not watch.dialogs, f"{found}, dialogs {watch.dialogs}")
    check("Markdown in replies: list, bold, emphasis, inline code and a code block (its markup as text)",
          shape["strong"] == "bold item" and shape["em"] == "emphasis" and shape["items"] == 2
          and shape["inline"] == "inline <b>code</b>" and shape["code"] == INJECTION, json.dumps(shape))
    crafted = [INJECTION, "**<img src=x onerror=alert(5)>**", "*<iframe src=javascript:alert(6)>*",
               "> <svg><script>alert(7)</script></svg>", "[x](javascript:alert(8))", "`</code><img src=x onerror=alert(9)>`",
               "# <style>body{display:none}</style>", "1. <a href='javascript:alert(10)'>y</a>"]
    rendered = page.evaluate("""texts => texts.map(t => {
        const d = document.createElement('div');
        d.append(window.gemmaChat.renderMarkdown(t));
        return { text: d.textContent,
                 elements: [...d.querySelectorAll('*')].map(e => e.tagName.toLowerCase()),
                 attributes: [...d.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name)) };
    })""", crafted)
    allowed = {"p", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "h3", "a"}
    bad = [(t, r) for t, r in zip(crafted, rendered)
           if not set(r["elements"]) <= allowed or set(r["attributes"]) - {"start", "data-lang"}]
    check("the Markdown renderer on crafted strings makes only its own elements, no attributes from the text",
          not bad, str(bad[:2]))
    page.reload()
    wait_model(page)
    found = no_markup(page)
    check("the stored conversation with markup is still text after a reload",
          INJECTION in "".join(log_texts(page)) and markup_free(found) and not watch.dialogs, str(found))

    # A conversation for the screenshots, at desktop and phone widths.
    new_chat(page)
    settings(page, 100, 0)
    send(page, "Give three short tips for writing clear Python code, as a list.")
    if screenshots:
        page.evaluate("document.activeElement.blur()")
        page.screenshot(path=os.path.join(screenshots, "chat-page-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 760})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    side_hidden = page.locator("#side").is_hidden()
    if screenshots:
        page.screenshot(path=os.path.join(screenshots, "chat-page-phone.png"))
    page.click("#menu")
    opened = page.locator("#side").is_visible() and page.get_attribute("#menu", "aria-expanded") == "true"
    page.click("#menu")
    check("phone width (390 px): no sideways scrolling, conversations and settings behind a menu button",
          overflow <= 0 and side_hidden and opened and page.locator("#side").is_hidden(), f"overflow {overflow} px")
    check("no script errors and no Content-Security-Policy refusals", not watch.errors and not watch.csp,
          str((watch.errors + watch.csp)[:3]))
    context.close()

    # Behind a path prefix: the page at /gemma/ (a proxy here strips the prefix); every request stays under it.
    context = browser.new_context()
    page = watch.attach(context.new_page())
    origin = server.base

    def proxy(route):
        response = route.fetch(url=origin + route.request.url[len(origin) + len("/gemma"):])
        route.fulfill(response=response)

    page.route(origin + "/gemma/**", proxy)
    paths = []
    page.on("request", lambda r: paths.append(r.url[len(origin):]) if r.url.startswith(origin) else None)
    page.goto(origin + "/gemma/")
    wait_model(page)
    settings(page, 8, 0)
    reply = send(page, "Hello!")
    check("behind a path prefix (/gemma/): the page loads, answers, and requests only under the prefix",
          reply["text"].strip() and not reply["error"] and all(p.startswith("/gemma/") for p in paths),
          f"requests {sorted(set(paths))}")
    context.close()


# ---- The text model with --api-key ----

def api_key_checks(browser, server):
    status, _, _ = get(server.base + "/")
    check("--api-key: GET / is served without the key, the API is not", status == 200 and get(server.base + "/v1/models")[0] == 401)
    context = browser.new_context()
    watch = Watch()
    page = watch.attach(context.new_page())
    page.goto(server.base + "/")
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key", "not-the-key")
    page.press("#key", "Enter")
    wait_for(page, "document.getElementById('key-dialog').open && /refused/.test(document.getElementById('key-note').textContent)")
    page.fill("#key", API_KEY)
    page.press("#key", "Enter")
    wait_model(page)
    settings(page, 8, 0)
    reply = send(page, "Hello!")
    stored = page.evaluate("sessionStorage.getItem('gemma-chat-key')")
    check("--api-key: the page asks for the key on 401, refuses a wrong one, then answers with the right one",
          reply["text"].strip() and not reply["error"] and stored == API_KEY, f"reply {reply['text'][:40]!r}")
    page.reload()
    wait_model(page)
    check("--api-key: after a reload the key comes from sessionStorage (no question)",
          not page.locator("#key-dialog").is_visible() and page.text_content("#model"))
    context.close()


# ---- The tiny vision fixture ----

def vision_checks(browser, server, fixture):
    with open(os.path.join(fixture, "fixtures.json")) as f:
        processor = json.load(f)["processor"]
    single, pas = len(processor["single"]["input_ids"]), len(processor["pas"]["input_ids"])
    wide = os.path.join(fixture, "images", "wide.png")
    wide_b64 = base64.b64encode(open(wide, "rb").read()).decode()
    context = browser.new_context()
    watch = Watch()
    page = watch.attach(context.new_page())
    bodies = []
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/v1/chat/completions") else None)
    page.goto(server.base + "/")
    wait_model(page)
    check("vision model: the image controls (attach, Pan & Scan) are shown",
          page.locator("#attach").is_visible() and page.locator("label.vision").is_visible())
    settings(page, 8, 0)

    # The file picker (the Image… button opens it).
    with page.expect_file_chooser() as chooser:
        page.click("#attach")
    chooser.value.set_files(wide)
    page.wait_for_selector("#attachments img")
    reply = send(page, "Describe this image.")
    sent = bodies[-1]["messages"][-1]["content"] if bodies else []
    shown = page.eval_on_selector_all("#log .msg.user img", "els => els.map(e => e.src.slice(0, 22))")
    prompt = re.search(r"prompt (\d+) tokens", reply["stats"])
    check(f"an image by the file picker: sent as a data: URL before the text, shown, {single} prompt tokens",
          isinstance(sent, list) and sent[0]["type"] == "image_url" and sent[0]["image_url"]["url"] == "data:image/png;base64," + wide_b64
          and sent[-1] == {"type": "text", "text": "Describe this image."} and "pan_and_scan" not in bodies[-1]
          and shown == ["data:image/png;base64,"] and prompt is not None and int(prompt.group(1)) == single,
          f"stats {reply['stats']!r}, error {reply['error']!r}")

    # Paste, with Pan & Scan on.
    new_chat(page)
    page.check("#pan-scan")
    paste = """b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0)), dt = new DataTransfer();
        dt.items.add(new File([bytes], 'wide.png', { type: 'image/png' }));
        document.getElementById('input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
    }"""
    page.evaluate(paste, wide_b64)
    page.wait_for_selector("#attachments img")
    reply = send(page, "Describe this image.")
    prompt = re.search(r"prompt (\d+) tokens", reply["stats"])
    check(f"an image by paste with Pan & Scan: pan_and_scan sent, {pas} prompt tokens (the image and its crops)",
          bodies[-1].get("pan_and_scan") is True and prompt is not None and int(prompt.group(1)) == pas,
          f"stats {reply['stats']!r}, error {reply['error']!r}")

    # Drop, then remove it again.
    page.evaluate("""b64 => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0)), dt = new DataTransfer();
        dt.items.add(new File([bytes], 'wide.png', { type: 'image/png' }));
        document.getElementById('main').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }""", wide_b64)
    page.wait_for_selector("#attachments img")
    dropped = page.locator("#attachments img").count()
    page.click("#attachments button")
    check("an image by drop appears among the attachments and its button removes it",
          dropped == 1 and page.locator("#attachments img").count() == 0)
    check("vision page: no script errors and no Content-Security-Policy refusals", not watch.errors and not watch.csp,
          str((watch.errors + watch.csp)[:3]))
    context.close()


def main():
    ap = argparse.ArgumentParser(description="The chat page of gemma serve in headless Chromium.")
    ap.add_argument("--binary", default=".build/release/gemma")
    ap.add_argument("--model", default=None, help="the text model (default: gemma's default model)")
    ap.add_argument("--vision-model", default="Tests/Fixtures/gemma3-tiny-vision")
    ap.add_argument("--port", type=int, default=0, help="first of three ports (default: free ports)")
    ap.add_argument("--screenshots", default=None, help="folder for chat-page-desktop.png and chat-page-phone.png")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        check("Debian's chromium is installed (scripts/setup-system.sh chromium)", False)
        sys.exit(1)
    port = lambda k: args.port + k if args.port else 0
    servers = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            servers.append(Server(args.binary, port(0), args.model, ["--parallel", "2", "--ctx", "2048"]))
            text_model_checks(browser, servers[-1], args.screenshots)
            servers.append(Server(args.binary, port(1), args.model, ["--parallel", "1", "--ctx", "1024", "--api-key", API_KEY]))
            api_key_checks(browser, servers[-1])
            servers.append(Server(args.binary, port(2), args.vision_model, ["--parallel", "1", "--ctx", "512"]))
            vision_checks(browser, servers[-1], args.vision_model)
            browser.close()
    except Exception as e:
        check("unexpected exception", False, repr(e))
    finally:
        for s in servers:
            s.stop()
    passed, failed = sum(results), len(results) - sum(results)
    print(f"browser: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
