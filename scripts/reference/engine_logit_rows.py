#!/usr/bin/env python3
"""Runs `gemma dump-logits` on a long sequence and keeps only the logit rows at the given positions.

dump-logits writes every position's row (positions x vocab float32: 32,768 x 262,144 is 34 GB). This script follows
the file as it grows, copies the wanted rows and punches holes (fallocate PUNCH_HOLE) behind what it has read, so the
file never occupies more than --window-gb of disk. (A FIFO does not work: the CLI creates its output atomically,
which replaces a FIFO by a regular file.)

Usage:
  python3 scripts/reference/engine_logit_rows.py --positions 511,4096,... --vocab 262144 --out ROWS.npy \
      --tmp /big/tmp/dump.f32 -- GEMMA_BIN dump-logits -m MODEL --ids-file IDS.json --kv f16 [--batch 64]
(--out and --tmp are filled in: do not pass dump-logits its own --out.) Prints the engine's wall time and writes
ROWS.npy ([len(positions) x vocab] float32) with ROWS.json beside it (positions, wall time, command, peak RSS
if /usr/bin/time is on the command line).
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

import numpy as np

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 0x01, 0x02
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def punch(fd, offset, length):
    if length > 0 and libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        raise OSError(ctypes.get_errno(), "fallocate(PUNCH_HOLE) failed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positions", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tmp", required=True, help="the file dump-logits writes (holes punched as it is read)")
    ap.add_argument("--window-gb", type=float, default=2.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    positions = sorted({int(p) for p in args.positions.split(",")})
    row = args.vocab * 4
    rows = np.zeros((len(positions), args.vocab), dtype=np.float32)
    if os.path.exists(args.tmp):
        os.unlink(args.tmp)
    t0 = time.time()
    proc = subprocess.Popen(cmd + ["--out", args.tmp], stderr=subprocess.PIPE, text=True)
    fd, punched, nxt = None, 0, 0
    window = int(args.window_gb * 2**30)

    def drain(final):
        nonlocal fd, punched, nxt
        if fd is None:
            if not os.path.exists(args.tmp):
                return
            fd = os.open(args.tmp, os.O_RDWR)
        size = os.fstat(fd).st_size
        while nxt < len(positions) and size >= (positions[nxt] + 1) * row:
            buf = os.pread(fd, row, positions[nxt] * row)
            rows[nxt] = np.frombuffer(buf, dtype=np.float32)
            nxt += 1
        done = min(size, positions[nxt] * row if nxt < len(positions) else size)
        done -= done % row
        if done - punched >= window or (final and done > punched):
            punch(fd, punched, done - punched)
            punched = done

    while proc.poll() is None:
        drain(False)
        time.sleep(0.2)
    drain(True)
    wall = time.time() - t0
    err = proc.stderr.read()
    sys.stderr.write(err)
    if fd is not None:
        os.close(fd)
        os.unlink(args.tmp)
    if proc.returncode != 0 or nxt < len(positions):
        raise SystemExit(f"dump-logits failed (exit {proc.returncode}) or stopped early ({nxt}/{len(positions)} rows)")
    np.save(args.out, rows)
    meta = {"positions": positions, "wall_seconds": round(wall, 1), "command": [os.path.basename(cmd[0])] + cmd[1:],
            "stderr": err[-4000:]}
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    print(f"engine: {len(positions)} rows kept, wall {wall:.1f}s -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
