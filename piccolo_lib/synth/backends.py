"""Generator backends of the synthetic data pipeline: an OpenAI-compatible HTTP endpoint, or a local
transformers causal LM.

Both answer :meth:`replies` ``(prompts, seeds) -> [Reply | None]``: per prompt the reply's text and why the
model stopped (``finish_reason``: ``stop``, or ``length`` when it was cut off at the token limit), or None where
the request failed after its retries (the pipeline does not log it, so a re-run asks again). :meth:`generate`
gives the texts alone.

* :class:`HTTPBackend` POSTs ``{url}/chat/completions`` (vLLM, llama.cpp's server, SGLang, hosted APIs),
  the batch's requests in parallel threads, each through one shared :class:`RateLimiter`; timeouts,
  connection errors, 408, 429, 5xx and answers that are no chat completion are retried with exponential
  backoff (tenacity); any other status (401 bad key, 404 unknown model) raises :class:`SynthError` at once,
  since retrying cannot fix it.
* :class:`TransformersBackend` runs ``model.generate`` on the batch (left padding, the tokenizer's chat
  template when it has one, sampling seeded by the batch's first seed); a row that reached
  ``max_new_tokens`` without an end-of-sequence token has ``finish_reason == "length"``.
  ``trust_remote_code`` is off unless asked for: it runs code from the model's repository.

A reply that arrives but cannot be used (null or empty, cut off, a brainstorm that is no task list) is the
pipeline's to ask again, with a new seed: :mod:`piccolo_lib.synth.pipeline`.

Introduced in notebooks/10_synthetic_data.ipynb.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class SynthError(RuntimeError):
    """A problem the user must fix (bad endpoint, key, config or file): one line, no traceback needed."""


class TransientError(Exception):
    """A failed attempt worth retrying (timeout, connection refused, 408/429/5xx, not a chat completion)."""


@dataclass(frozen=True)
class Reply:
    """One completion: its text (None: the server sent ``content: null``) and why generation stopped."""

    text: str | None
    finish_reason: str | None = None  # "stop", "length" (cut off at max_tokens), ...; None: not reported


def _error_detail(raw: bytes) -> str:
    """The message of an error response: OpenAI-style ``{"error": {"message": ...}}``, else the body's start."""
    text = raw.decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error")
        text = err.get("message", text) if isinstance(err, dict) else err if isinstance(err, str) else text
    except (json.JSONDecodeError, AttributeError):
        pass
    return str(text)[:200].replace("\n", " ")


class RateLimiter:
    """At most ``rate`` calls of :meth:`wait` per second across threads: call ``i`` returns no earlier than
    ``first + i / rate``. ``rate=None`` or 0: no limit."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        time.sleep(max(0.0, slot - now))


class HTTPBackend:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Args:
        url: the API base, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended unless present).
        model: the ``model`` field of each request (what the server serves, e.g. ``Qwen/Qwen2.5-7B-Instruct``).
        api_key: sent as ``Authorization: Bearer ...`` when given.
        timeout: seconds per request; a slower answer counts as a failed attempt and is retried.
        max_retries: retries after the first attempt; the wait before retry ``r`` (0-based) is ``backoff * 2**r``.
        rate: requests per second over all threads (retries included); None: no limit.
        concurrency: parallel requests (the pipeline sends batches of this size).
    """

    def __init__(self, url: str, model: str, api_key: str | None = None, *, timeout: float = 120.0,
                 max_retries: int = 4, backoff: float = 1.0, rate: float | None = None, concurrency: int = 8,
                 temperature: float = 1.0, top_p: float = 1.0, max_tokens: int = 1024) -> None:
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.max_retries, self.backoff, self.concurrency = max_retries, backoff, max(1, concurrency)
        self.limiter = RateLimiter(rate)
        self.sampling = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        self.last_error: str | None = None

    def _post(self, prompt: str, seed: int) -> Reply:
        """One attempt: a :class:`Reply`, :class:`TransientError` to retry, or :class:`SynthError` to stop."""
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "seed": seed, **self.sampling}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.endpoint, data=json.dumps(body).encode("utf-8"), headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = json.loads(resp.read().decode("utf-8"))
            choice = payload["choices"][0]
            content = choice["message"]["content"]
        except urllib.error.HTTPError as e:
            detail = _error_detail(e.read())
            if e.code not in RETRY_STATUS:
                raise SynthError(f"{self.endpoint}: HTTP {e.code} {e.reason}: {detail} "
                                 "(check the URL, the model name and the API key)") from None
            raise TransientError(f"HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, TimeoutError,
                ConnectionError) as e:
            raise TransientError(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as e:
            raise TransientError(f"not an OpenAI-style chat completion ({type(e).__name__}: {e})") from None
        return Reply(content if isinstance(content, str) else None, choice.get("finish_reason"))

    def _one(self, prompt: str, seed: int) -> Reply | None:
        """One prompt with retries; None when every attempt failed (``last_error`` then says why).

        tenacity runs the attempts for us: at most ``max_retries`` retries (``stop_after_attempt``), waiting
        ``backoff * 2**r`` before retry ``r`` (``wait_exponential``), only for :class:`TransientError`
        (``retry_if_exception_type``: a :class:`SynthError` stops at once), each attempt first through the shared
        rate limiter (``before``: tenacity has no rate limit, and urllib, unlike the openai client, none either).
        A retry sends the same seed: the request failed, not its sample.
        """
        attempts = Retrying(stop=stop_after_attempt(self.max_retries + 1),
                            wait=wait_exponential(multiplier=self.backoff, exp_base=2),
                            retry=retry_if_exception_type(TransientError),
                            before=lambda _: self.limiter.wait(), reraise=True)
        try:
            return attempts(self._post, prompt, seed)
        except TransientError as e:
            self.last_error = str(e)  # of the last request that failed every attempt
            return None

    def replies(self, prompts: list[str], seeds: list[int]) -> list[Reply | None]:
        """One :class:`Reply` (or None) per prompt, in order; requests run ``concurrency`` at a time."""
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self._one, prompts, seeds))

    def generate(self, prompts: list[str], seeds: list[int]) -> list[str | None]:
        """The texts of :meth:`replies` (None for a failed request or a null reply)."""
        return [r.text if r is not None else None for r in self.replies(prompts, seeds)]


class TransformersBackend:
    """A local causal LM: a hub name or a folder, e.g. ``Qwen/Qwen2.5-7B-Instruct`` on a GPU.

    Sampling is seeded per batch (``torch.manual_seed(seeds[0])``), so the same batch gives the same replies
    on the same machine. Replies are the decoded new tokens only.
    """

    def __init__(self, model: str, *, device: str | None = None, trust_remote_code: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 1024, seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..model.backbones import resolve_backbone

        path = resolve_backbone(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, padding_side="left")
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        torch.manual_seed(seed)  # weights a checkpoint lacks (a bare decoder's lm_head) are initialised alike
        self.model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code, dtype=dtype)
        self.model.to(self.device).eval()
        self.gen = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0, "pad_token_id": self.tok.pad_token_id}
        if temperature > 0:
            self.gen.update(temperature=temperature, top_p=top_p)

    def _text(self, prompt: str) -> str:
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                add_generation_prompt=True)
        return prompt

    def replies(self, prompts: list[str], seeds: list[int]) -> list[Reply]:
        """One :class:`Reply` per prompt; ``finish_reason`` is ``length`` for a row that used up ``max_new_tokens``
        without an end-of-sequence token (the reply is cut off), else ``stop``."""
        import torch

        chat = bool(getattr(self.tok, "chat_template", None))  # the template already holds the special tokens
        enc = self.tok([self._text(p) for p in prompts], return_tensors="pt", padding=True,
                       add_special_tokens=not chat).to(self.device)  # (batch, prompt_len), left-padded
        torch.manual_seed(seeds[0] if seeds else 0)
        with torch.inference_mode():
            out = self.model.generate(**enc, **self.gen)  # (batch, prompt_len + new)
        new = out[:, enc["input_ids"].shape[1]:]  # (batch, new)
        eos = self.model.generation_config.eos_token_id
        eos = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=new.device)
        ended = torch.isin(new, eos).any(dim=1).tolist() if len(eos) else [True] * len(new)
        texts = self.tok.batch_decode(new, skip_special_tokens=True)
        return [Reply(t, "stop" if done or new.shape[1] < self.gen["max_new_tokens"] else "length")
                for t, done in zip(texts, ended)]

    def generate(self, prompts: list[str], seeds: list[int]) -> list[str | None]:
        """The texts of :meth:`replies`."""
        return [r.text for r in self.replies(prompts, seeds)]
