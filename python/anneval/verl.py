"""Reward functions for verl (``custom_reward_function``).

verl (0.9) loads a reward function by module and name from
``reward.custom_reward_function`` and binds its ``reward_kwargs``; load this
module as a package module (``pkg://``), so it is imported as part of
``anneval``::

    reward:
      custom_reward_function:
        path: pkg://anneval.verl
        name: compute_score            # or compute_score_async
        reward_kwargs:
          urls: "http://box-1:8080,http://box-2:8080"
          dataset: random-s-100-euclidean
          max_queries: 1000

(On the command line, keys verl's config does not declare need Hydra's
``+``: ``+reward.custom_reward_function.reward_kwargs.dataset=...``.) A file
path to this module works as well: its imports are absolute. Options that
arrive as OmegaConf lists or dicts are turned into plain ones; the keyword
arguments verl adds itself (``reward_router_address``,
``reward_model_tokenizer``) are not options and are dropped; any other key
anneval serve does not know raises
:class:`anneval.rewards.ConfigurationError` on the first call, as does a
request the service refuses, instead of scoring every response with the
penalty.

- ``compute_score(data_source, solution_str, ground_truth, extra_info=None,
  **kwargs)``: one response at a time (verl's naive manager and its Reward
  Loop, inside Ray actors). It asks ``POST /v1/reward``, which measures the
  kernel in one run with the reference kernel together with whatever other
  responses with the same options are waiting: a normalised reward as
  trustworthy as a batch's. ``compute_score_async`` is the same as an
  ``async def``.
- ``compute_score_batch(data_sources, solution_strs, ground_truths,
  extra_infos, **kwargs)``: the whole batch, for a reward manager that hands
  one over (verl 0.9's Reward Loop registry has none: naive, dapo, gdpo,
  limited and remote call one response at a time); consecutive responses to
  one prompt are measured in one run.

Each returns a dict per response: ``score`` (the normalised reward, or the
penalty for a response without a working kernel) and numbers verl logs:
``anneval_ok``, ``anneval_qps_reward``, ``anneval_no_code`` and
``anneval_service_error``. verl needs a number, so when the service fails the
score is the penalty with ``anneval_service_error`` 1: watch that metric.
Options come from the environment (``ANNEVAL_URLS``, ``ANNEVAL_OPTIONS``...,
see :func:`anneval.client.options_from_env`), then ``reward_kwargs``, then a
row's ``extra_info["anneval"]``.
"""

from __future__ import annotations

import asyncio
import json
import threading

# Absolute imports: verl may load this file by path, as a module of its own.
from anneval.client import AnnevalClient, options_from_env
from anneval.rewards import OPTIONS_COLUMN, Outcome, Scorer, plain

__all__ = ["compute_score", "compute_score_async", "compute_score_batch"]

_SETTINGS = ("urls", "language", "penalty", "normalized", "timeout", "max_retries")
#: Keyword arguments verl itself adds to a reward function's call (with a
#: reward model enabled): not options for anneval.
_VERL_OWN = ("reward_router_address", "reward_model_tokenizer")
_scorers = {}
_lock = threading.Lock()


def _scorer(kwargs):
    """One scorer per configuration, made on first use in each process."""
    settings = options_from_env()
    options = dict(settings.pop("options", {}))
    for key, value in kwargs.items():
        if key in _VERL_OWN:
            continue
        if key in _SETTINGS:
            settings[key] = plain(value)
        else:
            options[key] = plain(value)
    urls = settings.get("urls")
    if isinstance(urls, str):
        urls = [u.strip() for u in urls.split(",") if u.strip()]
    key = json.dumps([urls, settings, options], sort_keys=True, default=str)
    with _lock:
        if key not in _scorers:
            client = AnnevalClient(
                urls,
                timeout=float(settings.get("timeout", 900.0)),
                max_retries=int(settings.get("max_retries", 30)),
            )
            _scorers[key] = Scorer(
                client,
                language=settings.get("language", "rust"),
                penalty=float(settings.get("penalty", -1.0)),
                normalized=bool(settings.get("normalized", True)),
                **options,
            )
        return _scorers[key]


def _row(extra_info):
    return extra_info.get(OPTIONS_COLUMN) if isinstance(extra_info, dict) else None


def _result(outcome: Outcome, penalty):
    failed = outcome.verdict == "service_error"
    return {
        "score": float(penalty if outcome.reward is None else outcome.reward),
        "anneval_ok": float(outcome.verdict == "ok"),
        "anneval_qps_reward": float(outcome.qps_reward),
        "anneval_no_code": float(outcome.verdict == "no_code"),
        "anneval_service_error": float(failed),
    }


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """One response's reward (see the module doc)."""
    scorer = _scorer(kwargs)
    return _result(scorer.score_one(solution_str, _row(extra_info)), scorer.penalty)


async def compute_score_async(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """:func:`compute_score` as an ``async def``."""
    return await asyncio.to_thread(compute_score, data_source, solution_str, ground_truth, extra_info, **kwargs)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs):
    """A batch's rewards, in order (see the module doc)."""
    scorer = _scorer(kwargs)
    n = len(solution_strs)
    extra_infos = list(extra_infos) if extra_infos is not None else [None] * n
    # Consecutive responses with the same source, answer and prompt index
    # are one prompt's group.
    prompts = [
        json.dumps([data_sources[i], ground_truths[i], (extra_infos[i] or {}).get("index")], default=str)
        for i in range(n)
    ]
    outcomes = scorer.score_completions(list(solution_strs), prompts, [_row(e) for e in extra_infos])
    return [_result(o, scorer.penalty) for o in outcomes]
