"""Reward functions for TRL's ``GRPOTrainer`` (and trainers that call reward
functions the same way: Axolotl, verifiers' GRPO trainer).

TRL calls ``reward_func(prompts=..., completions=..., completion_ids=...,
trainer_state=..., log_extra=..., log_metric=..., **columns)`` on each
process's slice of the batch, and gathers ``async def`` functions
concurrently::

    from anneval.trl import reward_function
    reward = reward_function(["http://box-1:8080", "http://box-2:8080"],
                             dataset="random-s-100-euclidean", max_queries=1000)
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], ...)

Each completion's kernel is found in the assistant's text (see
:mod:`anneval.extract`); each prompt's completions are measured in one run
with the reference kernel; the reward is the normalised reward, the penalty
for a completion without a working kernel, or ``None`` when the service
failed (TRL then leaves that completion out; the run goes on). A dataset
column ``anneval`` (a dict of options per row) overrides the options for
its rows. With ``log_extra`` the verdict and message of each completion go
to TRL's completions table; with ``log_metric``, the fraction of ``ok``
kernels, of completions without one, and of service failures.
"""

from __future__ import annotations

import asyncio
import re

from .rewards import OPTIONS_COLUMN, Scorer

__all__ = ["async_reward_function", "reward_function"]


def _name(options, given):
    if given:
        return given
    dataset = options.get("dataset", "default")
    return "anneval_" + re.sub(r"[^A-Za-z0-9_]", "_", str(dataset))


def _report(outcomes, log_extra, log_metric, name):
    present = [o for o in outcomes if o.verdict != "skipped"]
    if log_extra is not None:
        log_extra(f"{name}_verdict", [o.verdict for o in outcomes])
        log_extra(f"{name}_message", [o.message[:500] for o in outcomes])
    if log_metric is not None and present:
        total = len(present)
        log_metric(f"{name}/ok", sum(o.verdict == "ok" for o in present) / total)
        log_metric(f"{name}/no_code", sum(o.verdict == "no_code" for o in present) / total)
        log_metric(f"{name}/service_error", sum(o.verdict == "service_error" for o in present) / total)


def _make(scorer, name):
    def score(prompts, completions, kwargs):
        if completions is None:
            raise TypeError(f"{name}: called without completions")
        outcomes = scorer.score_completions(completions, prompts, kwargs.get(OPTIONS_COLUMN))
        _report(outcomes, kwargs.get("log_extra"), kwargs.get("log_metric"), name)
        return [o.reward for o in outcomes]

    return score


#: Seconds one request may take by default in a trainer: long enough for a
#: batch of 64 kernels, short enough that a lost service stalls a step for
#: minutes, not an hour.
TRAINER_TIMEOUT = 900.0


def _build(urls, client, language, penalty, normalized, name, timeout, max_retries, options):
    from .client import AnnevalClient

    if client is None:
        client = AnnevalClient(urls, timeout=float(timeout), max_retries=int(max_retries))
    name = _name(options, name)
    return name, _make(Scorer(client, language, penalty, normalized, **options), name)


def reward_function(
    urls=None, *, client=None, language="rust", penalty=-1.0, normalized=True, name=None,
    timeout=TRAINER_TIMEOUT, max_retries=30, **options,
):
    """A TRL reward function (synchronous). ``options`` are the service's
    scoring options (``dataset``, ``max_base``, ``max_queries``, ``ef``,
    ``runs``...); an option the service does not know raises
    :class:`anneval.rewards.ConfigurationError` here, and a request the
    service refuses raises it on the first call (instead of missing rewards
    for the rest of the run). ``timeout`` (seconds per request) and
    ``max_retries`` are the client's. Its ``__name__``
    (``anneval_<dataset>`` unless ``name``) is what TRL shows in its
    metrics."""
    name, score = _build(urls, client, language, penalty, normalized, name, timeout, max_retries, options)

    def reward(prompts=None, completions=None, completion_ids=None, **kwargs):
        return score(prompts, completions, kwargs)

    reward.__name__ = reward.__qualname__ = name
    return reward


def async_reward_function(
    urls=None, *, client=None, language="rust", penalty=-1.0, normalized=True, name=None,
    timeout=TRAINER_TIMEOUT, max_retries=30, **options,
):
    """The same as :func:`reward_function`, as an ``async def``: TRL runs it
    concurrently with its other async reward functions."""
    name, score = _build(urls, client, language, penalty, normalized, name, timeout, max_retries, options)

    async def reward(prompts=None, completions=None, completion_ids=None, **kwargs):
        return await asyncio.to_thread(score, prompts, completions, kwargs)

    reward.__name__ = reward.__qualname__ = name
    return reward
