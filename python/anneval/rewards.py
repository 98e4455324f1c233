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
from collections.abc import Mapping
from dataclasses import dataclass, field

from .client import AnnevalClient, AnnevalError
from .extract import LANGUAGES, extract_kernel

__all__ = ["SCORING_OPTIONS", "ConfigurationError", "Outcome", "Scorer"]

#: The dataset column (TRL) or ``extra_info`` key (verl) whose value, a dict
#: of scoring options, overrides the function's options for that row.
OPTIONS_COLUMN = "anneval"

#: The scoring options the service takes (``openapi.yaml``, ``Options``);
#: ``language`` picks the candidates' language.
SCORING_OPTIONS = (
    "dataset", "k", "ef", "sweep", "runs", "params", "band", "max_base", "max_queries", "queries",
    "engine", "fuel", "template", "language",
)

#: Settings of the client, not scoring options: where they belong.
_CLIENT_SETTINGS = {
    "timeout": "timeout=", "max_retries": "max_retries=", "retries": "max_retries=",
    "urls": "urls=", "url": "urls=", "penalty": "penalty=", "normalized": "normalized=",
}


class ConfigurationError(ValueError):
    """The reward function is configured wrongly (an option the service does
    not know, a value of the wrong type, a dataset it cannot serve): raised
    when the function is made or on its first call, never turned into a
    missing reward, so that training stops at once instead of going on
    without rewards."""


def plain(value):
    """``value`` as plain JSON data: mappings (OmegaConf's ``DictConfig``
    among them) become dicts, sequences (``ListConfig``, tuples) lists, and
    numpy's arrays and scalars (rows read from parquet hold them) lists and
    numbers."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return plain(value.tolist())
    if isinstance(value, Mapping) or (hasattr(value, "keys") and hasattr(value, "__getitem__")):
        return {str(k): plain(value[k]) for k in value.keys()}
    if hasattr(value, "__iter__"):
        return [plain(v) for v in value]
    return value


def check_options(options, where):
    """Refuses an option the service does not know, naming it and what is
    known (and where a client setting goes instead)."""
    for key in options:
        if key in SCORING_OPTIONS:
            continue
        if key in _CLIENT_SETTINGS:
            raise ConfigurationError(
                f"{where}: {key!r} is a setting of the client, not a scoring option: "
                f"pass it as {_CLIENT_SETTINGS[key]}... to the reward function"
            )
        raise ConfigurationError(
            f"{where}: {key!r} is not a scoring option of anneval serve (known: {', '.join(SCORING_OPTIONS)})"
        )


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


def _empty(source):
    """No kernel: nothing found, blank code, or files all blank."""
    if isinstance(source, dict):
        return not any(code.strip() for code in source.values())
    return source is None or not source.strip()


def _row_options(base, override):
    if override is None:
        return dict(base)
    if isinstance(override, str):
        try:
            override = json.loads(override)
        except ValueError:
            raise ConfigurationError(
                f"the {OPTIONS_COLUMN!r} column must hold a dict of options or its JSON"
            ) from None
    override = plain(override)
    if not isinstance(override, dict):
        raise ConfigurationError(f"the {OPTIONS_COLUMN!r} column must hold a dict of options")
    # A column loaded through `datasets` holds every key any row has, None
    # where a row has none: None means "not set here".
    override = {k: v for k, v in override.items() if v is not None}
    check_options(override, f"the {OPTIONS_COLUMN!r} column")
    merged = dict(base)
    merged.update(override)
    return merged


def _no_code(language, options):
    if options.get("template") is not None:
        return f"no named C or C++ block (a file of template {options['template']}) in the completion"
    return f"no {language} kernel in the completion"


def _refused(error):
    """Whether the service refused the request itself (a 4xx but a full
    queue): the configuration's fault, raised rather than scored."""
    return isinstance(error, AnnevalError) and error.status is not None and 400 <= error.status < 500 and error.status != 429


def _raise_refused(error):
    raise ConfigurationError(
        f"anneval serve refused the request, so every reward would be missing: {error}"
    ) from error


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
        options = plain(options)
        check_options(options, "the reward function's options")
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
            source = extract_kernel(completion, language, template=options.get("template") is not None)
            if _empty(source):
                outcomes[i] = Outcome(self.penalty, "no_code", _no_code(language, options))
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
                    if _refused(answer):
                        _raise_refused(answer)
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
        source = extract_kernel(text, language, template=options.get("template") is not None)
        if _empty(source):
            return Outcome(self.penalty, "no_code", _no_code(language, options))
        try:
            answer = self.client.reward(source, language=language, **options)
        except AnnevalError as e:
            if _refused(e):
                _raise_refused(e)
            return Outcome(None, "service_error", str(e))
        if not isinstance(answer, dict):
            return Outcome(None, "service_error", f"an answer that is not an evaluation: {str(answer)[:200]}")
        return self._credit(answer)
