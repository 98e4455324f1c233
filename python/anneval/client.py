"""The HTTP client of ``anneval serve`` (standard library only).

Several replicas spread the load: requests go round robin over the URLs,
starting at this process's rank (so the ranks of a distributed trainer do
not all start at the first replica); a replica that does not answer is
skipped, a full one (429) retried after the delay it asks for, one shutting
down (503) retried elsewhere. Errors of the service itself raise
:class:`AnnevalError`: they are not the model's fault.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "MAX_BATCH",
    "AnnevalClient",
    "AnnevalError",
    "options_from_env",
    "plan_batches",
    "process_rank",
]

#: The most candidates the service takes in one batch.
MAX_BATCH = 64

DEFAULT_URL = "http://127.0.0.1:8080"


class AnnevalError(Exception):
    """The service failed or refused the request."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def _candidate(source, language):
    """A request's candidate: a kernel's text in ``language``, or a dict of
    files (whose kernel file says its language)."""
    if isinstance(source, dict):
        files = {str(path): str(text) for path, text in source.items()}
        return {"files": files} if language == "rust" else {"files": files, "language": language}
    return {"source": source, "language": language}


def process_rank():
    """This process's rank in a distributed job (0 when it is not one):
    torch.distributed's ``RANK``, else ``LOCAL_RANK``, Slurm's
    ``SLURM_PROCID`` or MPI's ``OMPI_COMM_WORLD_RANK``."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def options_from_env(environ=None):
    """Client settings from the environment: ``ANNEVAL_URLS`` (comma-separated),
    ``ANNEVAL_LANGUAGE``, ``ANNEVAL_PENALTY``, ``ANNEVAL_NORMALIZED`` (``1``
    or ``0``), ``ANNEVAL_TIMEOUT`` (seconds per request),
    ``ANNEVAL_MAX_RETRIES`` and ``ANNEVAL_OPTIONS`` (a JSON object of scoring
    options, e.g. ``{"dataset": "...", "max_queries": 1000}``). Returns a dict
    with the keys present: ``urls``, ``language``, ``penalty``,
    ``normalized``, ``timeout``, ``max_retries``, ``options``. A value that
    does not parse raises ``ValueError`` naming the variable."""
    environ = os.environ if environ is None else environ
    found = {}
    if environ.get("ANNEVAL_URLS"):
        found["urls"] = [u.strip() for u in environ["ANNEVAL_URLS"].split(",") if u.strip()]
    if environ.get("ANNEVAL_LANGUAGE"):
        found["language"] = environ["ANNEVAL_LANGUAGE"]
    for name, key, parse, what in (
        ("ANNEVAL_PENALTY", "penalty", float, "a number"),
        ("ANNEVAL_TIMEOUT", "timeout", _positive, "a number of seconds above 0"),
        ("ANNEVAL_MAX_RETRIES", "max_retries", _tries, "a whole number of tries, 1 or more"),
        ("ANNEVAL_NORMALIZED", "normalized", _flag, "1 or 0 (true or false)"),
    ):
        if environ.get(name):
            try:
                found[key] = parse(environ[name])
            except ValueError:
                raise ValueError(f"{name}={environ[name]!r} is not {what}") from None
    if environ.get("ANNEVAL_OPTIONS"):
        try:
            options = json.loads(environ["ANNEVAL_OPTIONS"])
        except ValueError as e:
            raise ValueError(f"ANNEVAL_OPTIONS is not JSON: {e}") from None
        if not isinstance(options, dict):
            raise ValueError("ANNEVAL_OPTIONS must be a JSON object of scoring options")
        found["options"] = options
    return found


def _positive(text):
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(text)
    return value


def _tries(text):
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _flag(text):
    value = text.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ValueError(text)


def plan_batches(group_sizes, limit=MAX_BATCH):
    """Packs consecutive groups into batches of at most ``limit`` candidates,
    never splitting a group that fits in one (a group larger than ``limit``
    is split into as few batches as it needs). Returns the batches as lists
    of candidate indices, in order."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    batches, current, index = [], [], 0
    for size in group_sizes:
        members = list(range(index, index + size))
        index += size
        if len(current) + size > limit and current:
            batches.append(current)
            current = []
        while len(members) > limit:
            batches.append(members[:limit])
            members = members[limit:]
        current.extend(members)
    if current:
        batches.append(current)
    return batches


class AnnevalClient:
    """A client of one or more replicas of ``anneval serve``.

    ``urls``: a URL or a list (default ``$ANNEVAL_URLS``, else
    http://127.0.0.1:8080). ``rank``: where the round robin starts (default
    :func:`process_rank`). ``timeout``: seconds one request may take (a
    batch measures for minutes). ``max_retries``: tries over all replicas
    before giving up. ``max_batch``: the most kernels sent in one batch
    (at most the service's limit, :data:`MAX_BATCH`).
    """

    def __init__(self, urls=None, timeout=3600.0, max_retries=30, rank=None, max_batch=MAX_BATCH):
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be 1 to {MAX_BATCH}")
        self.max_batch = max_batch
        if urls is None:
            urls = options_from_env().get("urls") or [DEFAULT_URL]
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls:
            raise ValueError("at least one URL")
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = timeout
        self.max_retries = max_retries
        rank = process_rank() if rank is None else rank
        self._next = rank % len(self.urls)
        self._lock = threading.Lock()

    def _next_url(self):
        with self._lock:
            url = self.urls[self._next]
            self._next = (self._next + 1) % len(self.urls)
            return url

    def _request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        last = None
        for _ in range(self.max_retries):
            url = self._next_url() + path
            request = urllib.request.Request(
                url, data=data, method=method, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    body = response.read()
                try:
                    return json.loads(body)
                except ValueError:
                    raise AnnevalError(f"{url}: the answer is not JSON: {body[:200]!r}") from None
            except urllib.error.HTTPError as e:
                text = e.read().decode(errors="replace")
                if e.code == 429:
                    last = f"{url}: queue full"
                    time.sleep(min(float(e.headers.get("Retry-After", "1")), 60.0))
                    continue
                if e.code == 503:
                    last = f"{url}: {text}"
                    time.sleep(1.0)
                    continue
                try:
                    text = json.loads(text).get("error", text)
                except (ValueError, AttributeError):
                    pass
                raise AnnevalError(f"{url}: HTTP {e.code}: {text}", status=e.code) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                last = f"{url}: {e}"
                time.sleep(0.5)
        raise AnnevalError(f"no replica answered after {self.max_retries} tries (last: {last})")

    # -- the service's endpoints ------------------------------------------

    def score(self, source, language="rust", **options):
        """Scores one kernel; returns the evaluation (a dict). Raw reward
        only. ``source`` is a kernel's text, or a C/C++ kernel of several
        files as a dict of relative path to text (the kernel in
        ``kernel.cpp`` or ``kernel.c``)."""
        candidate = _candidate(source, language)
        return self._request("POST", "/v1/score", {"candidate": candidate, **options})

    def reward(self, source, language="rust", **options):
        """Scores one kernel together with the reference kernel in the same
        run (the service gathers concurrent requests with equal options into
        one run): the evaluation plus ``normalized_reward``."""
        candidate = _candidate(source, language)
        return self._request("POST", "/v1/reward", {"candidate": candidate, **options})

    def score_batch(self, sources, language="rust", **options):
        """Scores up to ``max_batch`` kernels of one language in one run
        with the reference kernel; each result has ``normalized_reward``."""
        if not 1 <= len(sources) <= self.max_batch:
            raise ValueError(f"a batch holds 1 to {self.max_batch} kernels; use score_groups for more")
        body = {"candidates": [_candidate(s, language) for s in sources], **options}
        return self._request("POST", "/v1/score/batch", body)

    def score_groups(self, groups, language="rust", **options):
        """Scores groups of kernels (lists of sources; a GRPO group each),
        each group measured in one run with the reference when it fits in a
        batch, the batches sent concurrently, one per replica at a time.
        Returns, per group, a list with each source's result (a dict), or an
        :class:`AnnevalError` for the sources whose batch failed."""
        flat = [source for group in groups for source in group]
        batches = plan_batches([len(g) for g in groups], self.max_batch)
        results = [None] * len(flat)

        def run(batch):
            try:
                answer = self.score_batch([flat[i] for i in batch], language=language, **options)
                results = answer.get("results") if isinstance(answer, dict) else None
                if not isinstance(results, list) or len(results) != len(batch):
                    raise AnnevalError(f"a batch answer without one result per kernel: {str(answer)[:200]}")
                return batch, results
            except AnnevalError as e:
                return batch, [e] * len(batch)

        with ThreadPoolExecutor(max_workers=max(1, min(len(self.urls), len(batches)))) as pool:
            for batch, answers in pool.map(run, batches):
                for i, answer in zip(batch, answers):
                    results[i] = answer
        out, at = [], 0
        for group in groups:
            out.append(results[at:at + len(group)])
            at += len(group)
        return out

    def exemplars(self, limit=8, language=None, **options):
        """The best distinct kernels measured with these options (the same
        options as when scoring), best first: source, median normalised
        reward, measurements, and a summary of the curve."""
        pairs = [("limit", str(limit))]
        if language:
            pairs.append(("language", language))
        for key, value in options.items():
            if key == "params":
                pairs.extend((f"param.{k}", str(v)) for k, v in value.items())
            elif isinstance(value, (list, tuple)):
                pairs.append((key, ",".join(str(v) for v in value)))
            elif isinstance(value, bool):
                pairs.append((key, "true" if value else "false"))
            else:
                pairs.append((key, str(value)))
        query = urllib.parse.urlencode(pairs)
        return self._request("GET", f"/v1/exemplars?{query}")["exemplars"]

    def evaluation(self, evaluation_id):
        return self._request("GET", f"/v1/evaluations/{evaluation_id}")

    def health(self):
        return self._request("GET", "/healthz")

    # -- the same, for asyncio callers -----------------------------------

    async def areward(self, source, language="rust", **options):
        return await asyncio.to_thread(self.reward, source, language, **options)

    async def ascore_groups(self, groups, language="rust", **options):
        return await asyncio.to_thread(self.score_groups, groups, language, **options)

    async def aexemplars(self, limit=8, language=None, **options):
        return await asyncio.to_thread(self.exemplars, limit, language, **options)
