"""Serve a local causal LM as an OpenAI-compatible chat endpoint on 127.0.0.1, for the llm-http benchmark.

It handles ``POST /v1/chat/completions``: the reply is the model's continuation of the chat, formatted
with the tokenizer's chat template. ``GET /stats`` returns the number of requests served. Temperature 0
decodes greedily, so replies repeat. The default model is the SmolLM2-135M-Instruct copy that the local-LM infiller converts
into the cache directory; run a local-LM attack once first, or pass ``--model DIR``.

NOTE: SmolLM2-135M does not follow the infill prompt: asked for a JSON array of five words, it
repeats "JSON: [" or writes unrelated text, so the attack gets no candidates. Serve a larger
instruction-tuned model for a meaningful llm-http benchmark.

    python benchmarks/llm_server.py --port 8765 &
    python benchmarks/attack_conll.py ... --infill llm-http --llm-url http://127.0.0.1:8765/v1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MODEL = Path(__file__).resolve().parent / "out" / "cache-bench" / "models" / "smollm2-135m-instruct"


class ChatModel:
    """A causal LM with a chat template; one generation at a time."""

    def __init__(self, directory: Path, threads: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.name = directory.name
        self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True).eval()
        self.lock = threading.Lock()

    def reply(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> tuple[str, int, int]:
        """Return the reply text and the prompt and completion token counts."""
        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with self.lock, self.torch.inference_mode():
            output = self.model.generate(**prompt, max_new_tokens=max_tokens,
                                         pad_token_id=self.tokenizer.eos_token_id, **sampling)
        prompt_length = prompt["input_ids"].shape[1]
        completion = output[0, prompt_length:]
        return self.tokenizer.decode(completion, skip_special_tokens=True), prompt_length, len(completion)


def make_handler(chat: ChatModel, stats: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/stats":
                self._send(200, stats)
            else:
                self._reject(404, f"route {self.path} not found")

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._reject(404, f"route {self.path} not found")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                messages = body["messages"]
            except (ValueError, KeyError, TypeError) as error:
                self._reject(400, f"invalid request body ({error!r}); send JSON with a messages list")
                return
            started = time.perf_counter()
            try:
                text, prompt_tokens, completion_tokens = chat.reply(
                    messages, int(body.get("max_tokens") or 64), float(body.get("temperature") or 0.0)
                )
            except (ValueError, TypeError, KeyError) as error:
                self._reject(400, f"generation failed for the request ({error!r}); check messages, max_tokens "
                                  "and temperature")
                return
            stats["requests"] += 1
            stats["seconds"] += time.perf_counter() - started
            self._send(200, {
                "id": f"chatcmpl-{stats['requests']}",
                "object": "chat.completion",
                "model": body.get("model") or chat.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            })

        def _reject(self, status: int, message: str) -> None:
            print(f"llm_server: {self.command} {self.path}: {status} {message}", file=sys.stderr, flush=True)
            self._send(status, {"error": {"message": message}})

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="local causal LM directory")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        parser.error(f"--model {str(args.model)!r} is not a model directory (no config.json); run a local-LM "
                     "attack once so the SmolLM2 copy exists, or pass a causal LM directory")
    chat = ChatModel(args.model, args.threads)
    stats: dict[str, Any] = {"requests": 0, "seconds": 0.0}
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(chat, stats))
    print(f"serving {args.model} on http://127.0.0.1:{args.port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
