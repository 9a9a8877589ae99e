"""Reference loss and gradients for the training tests: transformers' Gemma3ForCausalLM (eager attention, f32,
one thread) on Tests/Fixtures/gemma3-tiny-text, one sequence of 20 tokens (longer than its sliding window of 6, so
local and global layers differ), the next-token cross-entropy averaged over positions 5..18 (the first five masked,
as a prompt is), then loss.backward(). Writes Tests/Fixtures/training-reference.safetensors: every parameter's
gradient under its Hugging Face name, with the tokens, targets and loss in the metadata.

    python3 -m venv .venv-ref && .venv-ref/bin/pip install /opt/wheels/torch-*.whl transformers==5.23.0 safetensors
    .venv-ref/bin/python scripts/reference/make_training_refs.py
"""
import json, os, sys
import torch
from safetensors.torch import save_file
from transformers import Gemma3ForCausalLM

root = os.path.join(os.path.dirname(__file__), "..", "..")
fixture = os.path.join(root, "Tests", "Fixtures", "gemma3-tiny-text")
out = os.path.join(root, "Tests", "Fixtures", "training-reference.safetensors")
torch.set_num_threads(1)
torch.manual_seed(0)
model = Gemma3ForCausalLM.from_pretrained(fixture, torch_dtype=torch.float32, attn_implementation="eager")
model.train(False)
tokens = [2, 17, 301, 45, 999, 12, 640, 640, 88, 7, 512, 3, 250, 71, 900, 33, 5, 128, 64, 1000]
targets = [None] * 5 + tokens[6:] + [None]  # targets[t] follows tokens[0..t]; the first five and the last have none
ids = torch.tensor([tokens])
logits = model(input_ids=ids).logits[0].float()
picked = [(t, y) for t, y in enumerate(targets) if y is not None]
logp = torch.log_softmax(logits, dim=-1)
loss = -torch.stack([logp[t, y] for t, y in picked]).mean()
loss.backward()
grads = {name: p.grad.detach().contiguous().clone() for name, p in model.named_parameters()}
meta = {"tokens": json.dumps(tokens), "targets": json.dumps(targets), "loss": repr(loss.item()),
        "made_with": f"torch {torch.__version__}, transformers {__import__('transformers').__version__}",
        "model": "Tests/Fixtures/gemma3-tiny-text (f32)"}
save_file(grads, out, metadata=meta)
print(f"loss {loss.item():.8f}; {len(grads)} gradients -> {out}")
