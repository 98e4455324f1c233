"""A client for `anneval serve`, the reward service (Python standard library only).

The shape RL trainers expect of a reward function (TRL's GRPOTrainer, for
one): completions in, one float per completion out.

    from anneval_client import make_reward_fn
    reward = make_reward_fn("http://127.0.0.1:8080", dataset="random-s-100-euclidean",
                            max_base=30000, max_queries=1000)
    rewards = reward(completions)   # floats, in order

Each completion's last ```rust block is the candidate `kernel.rs` (with
language="cpp", its last ```cpp block is a `kernel.cpp`; with language="c",
its last ```c block a `kernel.c`). One call
scores the whole group in one batch, measured in one run together with the
reference kernel; a completion's reward is its reward divided by the
reference's (1.0 = as fast as the reference), or the raw reward with
normalized=False. A completion without code, or whose verdict is not `ok`,
gets `penalty`. Errors of the service itself (unreachable, refusing the
request) raise `AnnevalError`: they are not the model's fault.

Several replicas spread the load: pass a list of URLs, and requests go round
robin; a replica that does not answer is skipped, and a full one (429) is
retried after the delay it asks for.
"""

import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.request

__all__ = ["AnnevalClient", "AnnevalError", "extract_kernel", "extract_rust", "make_reward_fn"]

_FENCE = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.S)


class AnnevalError(Exception):
    """The service failed or refused the request."""


def _text(completion):
    """The text of a completion: a string, a chat message, or a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)) and completion:
        return _text(completion[-1])
    return ""


# Per language: the fence tags of its blocks, and what an untagged kernel in
# it contains.
_LANGUAGES = {
    "rust": (("rust", "rs"), "impl Kernel for Index"),
    "cpp": (("cpp", "c++", "cc", "cxx"), "struct Index"),
    "c": (("c",), "kernel_build("),
}


def extract_kernel(completion, language="rust"):
    """The last block of `language` ("rust", "cpp" or "c") in a completion;
    failing that, the last fenced block that looks like such a kernel; else
    None."""
    tags, marker = _LANGUAGES[language]
    blocks = _FENCE.findall(_text(completion))
    for lang, code in reversed(blocks):
        if lang.lower() in tags:
            return code
    for lang, code in reversed(blocks):
        if marker in code:
            return code
    return None


def extract_rust(completion):
    """The last ```rust (or ```rs) block of a completion; failing that, the
    last fenced block that implements the kernel trait; else None."""
    return extract_kernel(completion, "rust")


class AnnevalClient:
    def __init__(self, urls="http://127.0.0.1:8080", timeout=3600.0, max_retries=30):
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls:
            raise ValueError("at least one URL")
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = timeout
        self.max_retries = max_retries
        self._cycle = itertools.cycle(range(len(self.urls)))
        self._lock = threading.Lock()

    def _next_url(self):
        with self._lock:
            return self.urls[next(self._cycle)]

    def _request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        last = None
        for _ in range(self.max_retries):
            url = self._next_url() + path
            req = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as e:
                text = e.read().decode(errors="replace")
                if e.code == 429:
                    last = f"{url}: queue full"
                    time.sleep(float(e.headers.get("Retry-After", "1")))
                    continue
                if e.code == 503:
                    last = f"{url}: {text}"
                    time.sleep(1.0)
                    continue
                try:
                    text = json.loads(text).get("error", text)
                except ValueError:
                    pass
                raise AnnevalError(f"{url}: HTTP {e.code}: {text}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                last = f"{url}: {e}"
                time.sleep(0.5)
        raise AnnevalError(f"no replica answered after {self.max_retries} tries (last: {last})")

    def score(self, source, language="rust", **options):
        """Scores one kernel (Rust, "cpp" or "c"); returns the evaluation (a dict)."""
        candidate = {"source": source, "language": language}
        return self._request("POST", "/v1/score", {"candidate": candidate, **options})

    def score_batch(self, sources, language="rust", **options):
        """Scores a group of kernels of one language together with the reference."""
        body = {"candidates": [{"source": s, "language": language} for s in sources], **options}
        return self._request("POST", "/v1/score/batch", body)

    def evaluation(self, evaluation_id):
        return self._request("GET", f"/v1/evaluations/{evaluation_id}")

    def health(self):
        return self._request("GET", "/healthz")


def make_reward_fn(
    urls="http://127.0.0.1:8080", penalty=-1.0, normalized=True, client=None, language="rust", **options
):
    """A reward function: completions -> one float each (see the module doc)."""
    client = client or AnnevalClient(urls)
    if language not in _LANGUAGES:
        raise ValueError(f"language {language!r}: one of {', '.join(_LANGUAGES)}")

    def reward(completions, **_trainer_kwargs):
        rewards = [float(penalty)] * len(completions)
        sources = [extract_kernel(c, language) for c in completions]
        present = [(i, s) for i, s in enumerate(sources) if s and s.strip()]
        if not present:
            return rewards
        answer = client.score_batch([s for _, s in present], language=language, **options)
        for (i, _), result in zip(present, answer["results"]):
            if result.get("verdict") != "ok":
                continue
            value = result.get("normalized_reward") if normalized else result.get("reward")
            if value is not None:
                rewards[i] = float(value)
        return rewards

    return reward


if __name__ == "__main__":
    import sys

    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    print(json.dumps(AnnevalClient(url).health()))
