"""Reinforcement learning with the official Tinker SDK: sample groups of completions from the current
weights, score them locally, and train on them with the `importance_sampling` loss (advantage = reward
minus the group's mean, the sampler's logprobs as the behaviour policy). The reward asks for variety:
the share of completion tokens that differ from the token before them. Prints the mean reward and the
loss per step (near 0 on-policy: the ratios are 1 and the centred advantages sum to 0).

    npm start                    # in another terminal
    python examples/rl.py        # STEPS=12 by default; TUFT_BASE_URL / TUFT_API_KEY to point elsewhere
"""

import os

import tinker
from tinker import types

from tuft_tokenizer import API_KEY, BASE_URL, encode

STEPS = int(os.environ.get("STEPS", "12"))
GROUP = 8
MAX_TOKENS = 12
PROMPTS = ["Tell me a story.", "Describe the sea."]


def reward(tokens: list[int]) -> float:
    """The share of tokens unlike the one before them: 0 for one token repeated, 1 for no repeats."""
    if len(tokens) < 2:
        return 0.0
    return sum(a != b for a, b in zip(tokens, tokens[1:])) / (len(tokens) - 1)


service = tinker.ServiceClient(base_url=BASE_URL, api_key=API_KEY)
model = service.get_server_capabilities().supported_models[0].model_name
prompts = [encode(model, p, chat=True) for p in PROMPTS]
training = service.create_lora_training_client(base_model=model, rank=8, seed=0)
print(f"{STEPS} steps, {len(PROMPTS)} prompts x {GROUP} samples on {model}")

for step in range(1, STEPS + 1):
    sampler = training.save_weights_and_get_sampling_client()
    futures = [
        sampler.sample(
            prompt=types.ModelInput.from_ints(prompt),
            num_samples=GROUP,
            sampling_params=types.SamplingParams(max_tokens=MAX_TOKENS, temperature=1.0),
        )
        for prompt in prompts
    ]
    data = []
    total = 0.0
    for prompt, future in zip(prompts, futures):
        sequences = future.result().sequences
        rewards = [reward(list(s.tokens)) for s in sequences]
        mean = sum(rewards) / len(rewards)
        total += mean
        for s, r in zip(sequences, rewards):
            if not s.tokens:
                continue
            # Targets are the sequence shifted by one: the completion's tokens sit at len(prompt) - 1 onwards.
            tokens = prompt + list(s.tokens)
            pad = [0.0] * (len(prompt) - 1)
            data.append(
                types.Datum(
                    model_input=types.ModelInput.from_ints(tokens[:-1]),
                    loss_fn_inputs={
                        "target_tokens": tokens[1:],
                        "logprobs": pad + list(s.logprobs),
                        "advantages": pad + [r - mean] * len(s.tokens),
                    },
                )
            )
    fb = training.forward_backward(data, "importance_sampling")
    training.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    print(f"step {step:3d}  reward {total / len(prompts):.3f}  loss {fb.result().metrics['loss:sum']:.4f}")
