"""A reward function for Axolotl's GRPO (``rl: grpo``), which names reward
functions by import path and calls them as TRL does::

    trl:
      reward_funcs:
        - anneval.axolotl.reward

It is configured from the environment of the training processes:
``ANNEVAL_URLS`` (comma-separated), ``ANNEVAL_OPTIONS`` (a JSON object of
scoring options, e.g. ``{"dataset": "random-s-100-euclidean",
"max_queries": 1000}``), ``ANNEVAL_LANGUAGE``, ``ANNEVAL_PENALTY``,
``ANNEVAL_NORMALIZED``, and the client's ``ANNEVAL_TIMEOUT`` (seconds per
request, 900 by default) and ``ANNEVAL_MAX_RETRIES`` (30); see
:mod:`anneval.trl` for what it returns and logs.
"""

from __future__ import annotations

import threading

from .client import options_from_env
from .trl import TRAINER_TIMEOUT, reward_function

__all__ = ["reward"]

_built = None
_lock = threading.Lock()


def _function():
    global _built
    with _lock:
        if _built is None:
            settings = options_from_env()
            _built = reward_function(
                settings.get("urls"),
                language=settings.get("language", "rust"),
                penalty=settings.get("penalty", -1.0),
                normalized=settings.get("normalized", True),
                timeout=settings.get("timeout", TRAINER_TIMEOUT),
                max_retries=settings.get("max_retries", 30),
                name="anneval",
                **settings.get("options", {}),
            )
        return _built


def reward(prompts, completions, **kwargs):
    """TRL's reward function shape; configured from the environment."""
    return _function()(prompts=prompts, completions=completions, **kwargs)


# What TRL names its metrics after (rewards/anneval/mean), as the metrics
# the function logs itself (anneval/ok...); Axolotl imports it as `reward`.
reward.__name__ = reward.__qualname__ = "anneval"
