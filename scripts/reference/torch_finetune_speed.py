#!/usr/bin/env python3
"""PyTorch's training speed on the examples `gemma finetune` trains on, for scripts/bench-finetune.sh (issue 21).

    torch_finetune_speed.py HF_FOLDER TOKENS.json --steps N --batch B --threads T (--lora-rank R [--lora-alpha A] | --full)

TOKENS.json is a list of {"tokens": [...], "targets": [...]} (targets -1 where no loss), the examples exactly as
`gemma finetune --dump-tokens` tokenized them. Each step takes the next B examples (the same order as gemma's
first steps without shuffling is not needed: only speed is measured), pads them to the longest (attention mask,
labels -100), runs forward, backward and AdamW, in f32 with eager attention. transformers computes the logits of
every position (the head on prompt positions too): that is what a PyTorch user gets. Prints one JSON line with the
tokens (real, not padding) and the seconds of the steps after the first (warm-up).
"""
import argparse
import json
import time

import torch
from transformers import Gemma3ForCausalLM


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("examples")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lora-rank", type=int)
    p.add_argument("--lora-alpha", type=float)
    p.add_argument("--full", action="store_true")
    p.add_argument("--lr", type=float, default=1e-4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="eager")
    if a.lora_rank:
        from peft import LoraConfig, get_peft_model
        cfg = LoraConfig(r=a.lora_rank, lora_alpha=a.lora_alpha or 2 * a.lora_rank, lora_dropout=0.0,
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        model = get_peft_model(model, cfg)
    model.train()
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=a.lr, weight_decay=0.0)
    examples = json.load(open(a.examples))
    tokens, seconds, losses = 0, 0.0, []
    for step in range(a.steps + 1):
        batch = [examples[(step * a.batch + i) % len(examples)] for i in range(a.batch)]
        n = max(len(e["tokens"]) for e in batch)
        ids = torch.zeros((len(batch), n), dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        labels = torch.full((len(batch), n), -100, dtype=torch.long)
        for i, e in enumerate(batch):
            t = len(e["tokens"])
            ids[i, :t] = torch.tensor(e["tokens"])
            mask[i, :t] = 1
            # transformers shifts labels itself: label[t] is the token at t, predicted from position t - 1.
            for j, y in enumerate(e["targets"]):
                if y >= 0 and j + 1 < n:
                    labels[i, j + 1] = y
        start = time.perf_counter()
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - start
        losses.append(float(out.loss))
        if step > 0:  # the first step warms up
            tokens += sum(len(e["tokens"]) for e in batch)
            seconds += dt
    print(json.dumps({"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds, "losses": losses}))


if __name__ == "__main__":
    main()
