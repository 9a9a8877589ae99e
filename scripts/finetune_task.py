#!/usr/bin/env python3
"""A fixed-format extraction task for fine-tuning (issue 21): free-text sentences about a person, to one line of
JSON with the name, age, city and job. The base 270M cannot do it; a fine-tuned one should.

  finetune_task.py data OUTDIR [--train 1000] [--test 200] [--seed 7]
      writes OUTDIR/train.jsonl and OUTDIR/test.jsonl (prompt/completion pairs; disjoint sentences)
  finetune_task.py eval --url http://127.0.0.1:PORT --data test.jsonl [--parallel 4] [--show 3]
      asks a `gemma serve` (or any OpenAI-compatible server) for each prompt's reply, greedily, and prints the
      exact-match count: the reply, stripped of surrounding white space, equal to the completion.
"""
import argparse
import json
import random
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

FIRST = """Maria James Aiko Olu Priya Lars Fatima Chen Sofia Mateo Amara Jonas Leila Diego Ingrid Kofi Hana Pavel Nadia
Tomas Yuki Omar Elena Ravi Greta Kwame Lucia Ibrahim Anna Felix Mei Santiago Zara Hugo Noor Emil Chloe Arjun Rosa
Viktor Amelie Tariq Ines Bruno Sara Kenji Layla Marco Freya Dmitri""".split()
LAST = """Lopez Smith Tanaka Adeyemi Sharma Berg Haddad Wei Rossi Garcia Okafor Schmidt Nasser Fernandez Larsen Mensah
Sato Novak Karimi Silva Kim Farouk Petrova Patel Muller Asante Romero Khan Kowalski Weber Lin Torres Malik Dubois
Rahman Jensen Martin Gupta Costa Ivanov Moreau Aziz Ortega Conti Lindqvist Nakamura Hassan Ricci Olsen Volkov""".split()
CITIES = """Porto Lyon Osaka Lagos Pune Bergen Beirut Chengdu Turin Seville Accra Leipzig Tehran Cordoba Aarhus Kumasi
Sapporo Brno Shiraz Recife Busan Alexandria Varna Jaipur Graz Kisumu Valencia Karachi Krakow Hamburg Tainan
Medellin Lahore Nantes Dhaka Odense Toulouse Chennai Braga Kazan Marseille Fez Bilbao Bologna Uppsala Kyoto
Cairo Genoa Trondheim Novosibirsk""".split()
JOBS = ["nurse", "teacher", "plumber", "architect", "baker", "pilot", "software engineer", "librarian", "chef",
        "dentist", "electrician", "journalist", "farmer", "lawyer", "photographer", "pharmacist", "carpenter",
        "translator", "accountant", "firefighter", "mechanic", "veterinarian", "designer", "physicist", "tailor",
        "florist", "barista", "surgeon", "geologist", "musician"]
TEMPLATES = [
    "{name}, {age}, moved to {city} last spring and works as a {job}.",
    "Meet {name}: a {job} from {city}, {age} years old.",
    "At {age}, {name} is still working as a {job} in {city}.",
    "{name} ({age}) lives in {city}, where they have been a {job} for years.",
    "The new {job} in {city} is {name}, who turned {age} this year.",
    "Our {job} {name} is {age} and commutes every day in {city}.",
    "{city} welcomed {name}, a {age}-year-old {job}, to its council.",
    "Born {age} years ago, {name} now works in {city} as a {job}.",
    "Profile: {name}. Occupation: {job}. Age {age}. Based in {city}.",
    "I met {name} in {city}; the {job} told me they are {age}.",
    "{name} is a {job}. They are {age} and grew up in {city}.",
    "Last week a {job} named {name}, aged {age}, gave a talk in {city}.",
]
INSTRUCTION = "Extract the person's name, age, city and job as JSON.\nText: "


def example(rng):
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    age, city, job = rng.randint(18, 90), rng.choice(CITIES), rng.choice(JOBS)
    text = rng.choice(TEMPLATES).format(name=name, age=age, city=city, job=job)
    answer = json.dumps({"name": name, "age": age, "city": city, "job": job})
    return {"prompt": INSTRUCTION + text, "completion": answer}


def make_data(args):
    import os
    rng = random.Random(args.seed)
    seen, rows = set(), []
    while len(rows) < args.train + args.test:
        e = example(rng)
        if e["prompt"] in seen:
            continue
        seen.add(e["prompt"])
        rows.append(e)
    os.makedirs(args.outdir, exist_ok=True)
    for name, part in (("train", rows[:args.train]), ("test", rows[args.train:])):
        with open(os.path.join(args.outdir, name + ".jsonl"), "w") as f:
            for e in part:
                f.write(json.dumps(e) + "\n")
    print(f"{args.outdir}: {args.train} training and {args.test} held-out examples")


def ask(url, prompt, max_tokens):
    body = json.dumps({"messages": [{"role": "user", "content": prompt}], "temperature": 0,
                       "max_tokens": max_tokens}).encode()
    req = urllib.request.Request(url.rstrip("/") + "/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)["choices"][0]["message"]["content"]


def evaluate(args):
    rows = [json.loads(l) for l in open(args.data) if l.strip()]
    with ThreadPoolExecutor(args.parallel) as pool:
        replies = list(pool.map(lambda e: ask(args.url, e["prompt"], args.max_tokens), rows))
    right = 0
    for e, reply in zip(rows, replies):
        if reply.strip() == e["completion"]:
            right += 1
    wrong = [(e, r) for e, r in zip(rows, replies) if r.strip() != e["completion"]]
    for e, r in wrong[:args.show]:
        print(f"  expected {e['completion']}\n  got      {r.strip()[:200]!r}")
    print(f"exact match: {right} of {len(rows)} ({100 * right / len(rows):.1f}%)")
    if args.json:
        json.dump({"right": right, "total": len(rows)}, open(args.json, "w"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("outdir")
    d.add_argument("--train", type=int, default=1000)
    d.add_argument("--test", type=int, default=200)
    d.add_argument("--seed", type=int, default=7)
    e = sub.add_parser("eval")
    e.add_argument("--url", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--parallel", type=int, default=4)
    e.add_argument("--max-tokens", type=int, default=64)
    e.add_argument("--show", type=int, default=3)
    e.add_argument("--json")
    args = p.parse_args()
    make_data(args) if args.cmd == "data" else evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
