#!/usr/bin/env python3
"""Scale-out behind an existing router (issue 19): two `gemma serve` replicas on loopback behind LiteLLM's Router
(PyPI `litellm`), N chat requests through it (8 at a time), both replicas used; one replica is killed (SIGKILL)
once a third of the requests are answered, and every request must still succeed: the router retries the failed
attempts on the survivor. Prints the requests each replica answered (from its /metrics), the failed attempts the
router saw (a LiteLLM callback) and the failures the clients saw (must be 0).

Usage: litellm_scaleout.py --binary .build/release/gemma [--model M] [--requests 64]
Needs: pip install litellm
"""
import argparse
import asyncio
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_tests as st  # noqa: E402


def answered(s):
    """Chat requests a replica answered with 200 (its /metrics)."""
    try:
        _, text = s.raw("GET", "/metrics", key=None, timeout=5)
    except OSError:
        return None
    m = re.search(r'gemma_requests_total\{path="/v1/chat/completions",status="200"\} (\d+)', str(text))
    return int(m.group(1)) if m else 0


async def run(args):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of LiteLLM's price list
    import litellm
    from litellm import Router
    from litellm.integrations.custom_logger import CustomLogger

    class Failures(CustomLogger):
        def __init__(self):
            super().__init__()
            self.count = 0
            self.bases = []

        async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
            self.count += 1
            self.bases.append((kwargs.get("litellm_params") or {}).get("api_base"))

    failures = Failures()
    litellm.callbacks = [failures]
    litellm.suppress_debug_info = True

    procs, servers = [], []
    try:
        for _ in range(2):
            p, s, _ = st.start_server(args.binary, args.model, st.free_port(), 2, 1024)
            procs.append(p)
            servers.append(s)
        router = Router(
            model_list=[{"model_name": "gemma",
                         "litellm_params": {"model": "openai/gemma", "api_base": s.base + "/v1", "api_key": s.key,
                                            "timeout": 120}} for s in servers],
            routing_strategy="simple-shuffle", num_retries=3, retry_after=0, allowed_fails=1, cooldown_time=60)
        done = 0
        client_failures = []
        killed_at = None
        first_count = None
        sem = asyncio.Semaphore(8)

        async def one(i):
            nonlocal done, killed_at, first_count
            async with sem:
                try:
                    r = await router.acompletion(model="gemma", max_tokens=24, temperature=0.7, seed=i,
                                                 messages=[{"role": "user", "content": f"Tell me fact number {i} about the sea."}])
                    if not r.choices[0].message.content and r.choices[0].finish_reason != "length":
                        client_failures.append((i, "empty"))
                except Exception as e:  # a request the router could not serve
                    client_failures.append((i, repr(e)[:200]))
                done += 1
                if killed_at is None and done >= args.requests // 3:
                    killed_at = done
                    first_count = answered(servers[0])
                    procs[0].send_signal(signal.SIGKILL)

        started = time.time()
        await asyncio.gather(*(one(i) for i in range(args.requests)))
        secs = time.time() - started
        survivor = answered(servers[1])
        st.check(f"litellm: {args.requests} requests through the router in {secs:.1f} s, replica 1 killed after {killed_at}: "
                 f"client failures {len(client_failures)}", not client_failures, str(client_failures[:3]))
        st.check(f"litellm: both replicas used (replica 1 answered {first_count} before it was killed, replica 2 {survivor}); "
                 f"failed attempts the router retried: {failures.count}", (survivor or 0) > 0 and (first_count or 0) > 0,
                 f"failed attempts at {sorted(set(b for b in failures.bases if b))}")
        st.check("litellm: the survivor is healthy", servers[1].raw("GET", "/health", key=None)[0] == 200)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except Exception:
                    p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/gemma")
    ap.add_argument("--model")
    ap.add_argument("--requests", type=int, default=64)
    args = ap.parse_args()
    try:
        asyncio.run(run(args))
    except Exception as e:
        st.check("unexpected exception", False, repr(e))
    passed, failed = sum(st.results), len(st.results) - sum(st.results)
    print(f"litellm scale-out: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
