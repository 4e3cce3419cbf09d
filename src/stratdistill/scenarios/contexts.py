"""Social contexts: the framing text that turns a bare payoff table into a situation.

A context is prose (the system part of the prompt) plus ``stake``, a short phrase for what the points
measure that the stand-in teacher weaves into its motivations. ``prosociality`` optionally pins the
stand-in teacher's per-context term for a context that has no published figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from stratdistill.errors import ConfigError


@dataclass(frozen=True)
class Context:
    key: str
    name: str
    text: str
    stake: str = "points"
    prosociality: float | None = None
    source: str = "builtin"  # 'builtin', a YAML path, or a verbatim .txt path


def context_from_dict(data: dict, where: str) -> Context:
    if not isinstance(data, dict):
        raise ConfigError(where, data, "a mapping with keys key, name, text, stake")
    allowed = {"key", "name", "text", "stake", "prosociality"}
    extra = set(data) - allowed
    if extra:
        raise ConfigError(where, sorted(extra), f"context keys are {sorted(allowed)}")
    key = data.get("key")
    if not isinstance(key, str) or not key.isidentifier():
        raise ConfigError(f"{where}.key", key, "an identifier-like name such as 'biz' or 'my_context'")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}.text", text, "a non-empty prompt text")
    pro = data.get("prosociality")
    if pro is not None and (isinstance(pro, bool) or not isinstance(pro, int | float)):
        raise ConfigError(f"{where}.prosociality", pro, "a number (logit offset) or null")
    return Context(
        key=key,
        name=str(data.get("name", key)),
        text=" ".join(text.split()),
        stake=str(data.get("stake", "points")),
        prosociality=None if pro is None else float(pro),
        source=where,
    )
