"""The reference side of bench/e2e.ts: the same work in PyTorch + transformers + PEFT, in fp32 on
TUFT_REF_THREADS threads, on the generated model directory given as the only argument.

A long-lived process: it prints {"ready": true} once the model is loaded, then answers each JSON line
on stdin with one JSON line on stdout, {"tokens": N, "seconds": S} or {"error": "..."}:
  {"op": "train", "steps": K, "batch": B, "seq": T}
      K steps of forward + backward (cross entropy) + AdamW on a rank-32 LoRA of every linear layer,
      B sequences of T tokens; tokens = K * B * T.
  {"op": "generate", "batch": B, "prompt": P, "new_tokens": N}
      model.generate on B prompts of P tokens, sampling at temperature 1 over the whole vocabulary,
      exactly N new tokens each; tokens = B * N.
"""

import json
import os
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

RANK = 32
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def ids(rows, cols, salt):
    # Deterministic ids spread over the vocabulary, as bench/e2e.ts builds its own.
    return torch.tensor(
        [[(i * 7919 + (salt + r) * 104729 + 17) % 150000 for i in range(cols)] for r in range(rows)],
        dtype=torch.long,
    )


def main():
    torch.set_num_threads(int(os.environ.get("TUFT_REF_THREADS", "2")))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
    model = get_peft_model(
        model, LoraConfig(r=RANK, lora_alpha=RANK, lora_dropout=0.0, target_modules=TARGETS, init_lora_weights=False)
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    print(json.dumps({"ready": True}), flush=True)

    for line in sys.stdin:
        op = json.loads(line)
        try:
            t0 = time.perf_counter()
            if op["op"] == "train":
                model.train()
                x = ids(op["batch"], op["seq"] + 1, 0)
                for _ in range(op["steps"]):
                    out = model(input_ids=x[:, :-1], labels=x[:, :-1])
                    out.loss.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                tokens = op["steps"] * op["batch"] * op["seq"]
            elif op["op"] == "generate":
                model.eval()
                x = ids(op["batch"], op["prompt"], 1000)
                with torch.inference_mode():
                    out = model.generate(
                        input_ids=x,
                        attention_mask=torch.ones_like(x),
                        do_sample=True,
                        temperature=1.0,
                        top_k=0,
                        top_p=1.0,
                        max_new_tokens=op["new_tokens"],
                        min_new_tokens=op["new_tokens"],
                        pad_token_id=0,
                    )
                assert out.shape[1] == op["prompt"] + op["new_tokens"], out.shape
                tokens = op["batch"] * op["new_tokens"]
            else:
                raise ValueError(f"unknown op {op['op']!r}")
            print(json.dumps({"tokens": tokens, "seconds": time.perf_counter() - t0}), flush=True)
        except Exception as err:  # reported to bench/e2e.ts, which stops the run
            print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)


if __name__ == "__main__":
    main()
