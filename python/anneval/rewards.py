"""Completions in, rewards out: what every trainer adapter shares.

A completion's reward is its kernel's normalised reward (its reward divided
by the reference kernel's, measured in the same run: 1.0 = as fast as the
reference), or the raw reward with ``normalized=False``. A completion
without a kernel, or whose verdict is not ``ok``, gets ``penalty``: that is
the model's doing. When the service fails, the completion gets ``None``
(the trainer decides; TRL skips it): that is not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .client import AnnevalClient, AnnevalError
from .extract import LANGUAGES, extract_kernel

__all__ = ["Outcome", "Scorer"]

#: The dataset column (TRL) or ``extra_info`` key (verl) whose value, a dict
#: of scoring options, overrides the function's options for that row.
OPTIONS_COLUMN = "anneval"


@dataclass
class Outcome:
    """One completion's result."""

    reward: float | None
    #: ``ok``, another verdict, ``no_code``, or ``service_error``.
    verdict: str
    message: str = ""
    #: The raw reward (queries per second over the band), 0 unless ``ok``.
    qps_reward: float = 0.0
    normalized_reward: float | None = None
    extra: dict = field(default_factory=dict)


def _row_options(base, override):
    if override is None:
        return dict(base)
    if isinstance(override, str):
        try:
            override = json.loads(override)
        except ValueError:
            raise ValueError(f"the {OPTIONS_COLUMN!r} column must hold a dict of options or its JSON") from None
    if not isinstance(override, dict):
        raise ValueError(f"the {OPTIONS_COLUMN!r} column must hold a dict of options")
    merged = dict(base)
    merged.update(override)
    return merged


def _key(language, options):
    return json.dumps([language, options], sort_keys=True)


class Scorer:
    """Scores completions through a client (see the module doc)."""

    def __init__(self, client=None, language="rust", penalty=-1.0, normalized=True, **options):
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
        self.client = client if client is not None else AnnevalClient()
        self.language = language
        self.penalty = float(penalty)
        self.normalized = normalized
        self.options = options

    def _credit(self, result):
        """The outcome of one evaluation the service answered."""
        verdict = result.get("verdict", "internal_error")
        message = result.get("message", "")
        if verdict == "internal_error":
            return Outcome(None, "service_error", message)
        if verdict != "ok":
            return Outcome(self.penalty, verdict, message)
        normalized = result.get("normalized_reward")
        qps = float(result.get("reward") or 0.0)
        if self.normalized:
            if normalized is None:
                # The reference failed or scored 0: not the model's fault.
                return Outcome(None, "service_error", "no reference reward to normalise by", qps)
            return Outcome(float(normalized), "ok", "", qps, float(normalized))
        return Outcome(qps, "ok", "", qps, normalized)

    def score_completions(self, completions, prompts=None, row_options=None):
        """Outcomes for ``completions`` (``None`` entries give ``None``),
        in order. Consecutive completions with equal ``prompts`` form a group,
        kept in one batch; rows with different options are measured apart.
        (The prompts only group: a trainer's completions do not contain
        them.)"""
        n = len(completions)
        prompts = list(prompts) if prompts is not None else [None] * n
        row_options = list(row_options) if row_options is not None else [None] * n
        outcomes = [None] * n
        # (language, options) -> groups of (row, source), in order.
        plans = {}
        previous = None
        for i, completion in enumerate(completions):
            if completion is None:
                outcomes[i] = Outcome(None, "skipped")
                continue
            options = _row_options(self.options, row_options[i])
            language = options.pop("language", self.language)
            source = extract_kernel(completion, language)
            if source is None or not source.strip():
                outcomes[i] = Outcome(self.penalty, "no_code", f"no {language} kernel in the completion")
                continue
            key = _key(language, options)
            prompt_key = json.dumps(prompts[i], sort_keys=True, default=str)
            entry = plans.setdefault(key, (language, options, []))
            groups = entry[2]
            if previous == (key, prompt_key) and groups:
                groups[-1].append((i, source))
            else:
                groups.append([(i, source)])
            previous = (key, prompt_key)
        for language, options, groups in plans.values():
            answers = self.client.score_groups(
                [[source for _, source in group] for group in groups], language=language, **options
            )
            for group, group_answers in zip(groups, answers):
                for (i, _), answer in zip(group, group_answers):
                    if isinstance(answer, AnnevalError) or not isinstance(answer, dict):
                        outcomes[i] = Outcome(None, "service_error", str(answer))
                    else:
                        outcomes[i] = self._credit(answer)
        return outcomes

    def score_one(self, text, options=None):
        """One completion's outcome, alone: the service gathers it with
        concurrent ones into a run with the reference (``POST /v1/reward``)."""
        options = _row_options(self.options, options)
        language = options.pop("language", self.language)
        source = extract_kernel(text, language)
        if source is None or not source.strip():
            return Outcome(self.penalty, "no_code", f"no {language} kernel in the completion")
        try:
            answer = self.client.reward(source, language=language, **options)
        except AnnevalError as e:
            return Outcome(None, "service_error", str(e))
        if not isinstance(answer, dict):
            return Outcome(None, "service_error", f"an answer that is not an evaluation: {str(answer)[:200]}")
        return self._credit(answer)
