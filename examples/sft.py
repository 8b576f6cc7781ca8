"""Supervised fine-tuning with the official Tinker SDK: teach the model to answer a few questions with
fixed replies. Prompt tokens (through the chat template) get weight 0, reply tokens weight 1, so the loss
counts only the replies. Prints the loss per reply token at every step, then samples an answer.

    npm start                    # in another terminal: serves the embedded model on 127.0.0.1:10610
    python examples/sft.py       # STEPS=40 by default; TUFT_BASE_URL / TUFT_API_KEY to point elsewhere
"""

import os

import tinker
from tinker import types

from tuft_tokenizer import API_KEY, BASE_URL, decode, encode

STEPS = int(os.environ.get("STEPS", "40"))
EXAMPLES = [
    ("What is the capital of France?", "Paris."),
    ("What colour is the sky on a clear day?", "Blue."),
    ("How many legs does a spider have?", "Eight."),
]

service = tinker.ServiceClient(base_url=BASE_URL, api_key=API_KEY)
model = service.get_server_capabilities().supported_models[0].model_name
eos = encode(model, "<|im_end|>")

data = []
reply_tokens = 0
for question, answer in EXAMPLES:
    prompt = encode(model, question, chat=True)
    reply = encode(model, answer) + eos
    tokens = prompt + reply
    weights = [0.0] * len(prompt) + [1.0] * len(reply)
    reply_tokens += len(reply)
    data.append(
        types.Datum(
            model_input=types.ModelInput.from_ints(tokens[:-1]),
            loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights[1:]},
        )
    )

training = service.create_lora_training_client(base_model=model, rank=8, seed=0)
print(f"{STEPS} steps over {len(EXAMPLES)} examples on {model}")
for step in range(1, STEPS + 1):
    fb = training.forward_backward(data, "cross_entropy")
    optim = training.optim_step(types.AdamParams(learning_rate=5e-3))
    loss = fb.result().metrics["loss:sum"] / reply_tokens
    optim.result()
    print(f"step {step:3d}  loss {loss:.4f}")

sampler = training.save_weights_and_get_sampling_client()
question = EXAMPLES[0][0]
out = sampler.sample(
    prompt=types.ModelInput.from_ints(encode(model, question, chat=True)),
    num_samples=1,
    sampling_params=types.SamplingParams(max_tokens=8, temperature=0, stop=eos),
).result()
print(f"{question} -> {decode(model, list(out.sequences[0].tokens))!r}")
