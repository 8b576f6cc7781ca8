"""Text <-> token ids for the Python examples through the server's own tokenizer (POST /api/v1/tokenize
and /detokenize, see the README), so that they need no tokenizer download and run offline."""

import json
import os
import urllib.request

BASE_URL = os.environ.get("TUFT_BASE_URL", "http://127.0.0.1:10610")
API_KEY = os.environ.get("TUFT_API_KEY", "tml-local-dev-key")


def _call(path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{BASE_URL}/api/v1/{path}",
        data=json.dumps(body).encode(),
        headers={"x-api-key": API_KEY, "content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def encode(model: str, text: str, chat: bool = False) -> list[int]:
    """`chat`: wrap the text as a user message with the model's chat template and generation prompt."""
    return _call("tokenize", {"model": model, "text": text, "chat_template": chat})["tokens"]


def decode(model: str, tokens: list[int]) -> str:
    return _call("detokenize", {"model": model, "tokens": tokens})["text"]
