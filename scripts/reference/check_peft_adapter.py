"""Checks what `gemma finetune --lora-rank R --out MERGED --adapter-out ADAPTER` wrote, with PyTorch: PEFT loads the
adapter onto the base model, and its logits equal transformers' logits of the merged folder; transformers' greedy
reply to each prompt is the expected completion.

    .venv-ref/bin/pip install /opt/wheels/torch-*.whl transformers==5.23.0 safetensors peft
    .venv-ref/bin/python scripts/reference/check_peft_adapter.py BASE ADAPTER MERGED prompt=completion ...
"""
import sys
import torch
from peft import PeftModel
from transformers import AutoTokenizer, Gemma3ForCausalLM

base_dir, adapter_dir, merged_dir, pairs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
torch.set_num_threads(1)
tok = AutoTokenizer.from_pretrained(base_dir)
base = Gemma3ForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32, attn_implementation="eager")
peft = PeftModel.from_pretrained(base, adapter_dir).eval()
merged = Gemma3ForCausalLM.from_pretrained(merged_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
worst, right = 0.0, 0
for pair in pairs:
    q, a = pair.split("=", 1)
    # Gemma 3's chat format, written out (the tiny fixture's tokenizer carries no chat template).
    text = f"<bos><start_of_turn>user\n{q}<end_of_turn>\n<start_of_turn>model\n"
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        lp, lm = peft(input_ids=ids).logits, merged(input_ids=ids).logits
        worst = max(worst, (lp - lm).abs().max().item())
        out = merged.generate(ids, max_new_tokens=8, do_sample=False)
    reply = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    right += reply == a
    print(f"{q!r}: {reply!r} (expected {a!r})")
print(f"PEFT adapter vs merged folder: max |logit difference| {worst:.3g}; {right}/{len(pairs)} greedy replies right")
sys.exit(0 if worst < 1e-3 and right == len(pairs) else 1)
