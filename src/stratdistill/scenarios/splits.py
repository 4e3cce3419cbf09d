"""Scenarios (context x game) and splits: which scenarios train the student and which test it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratdistill.errors import ConfigError
from stratdistill.scenarios.contexts import Context
from stratdistill.scenarios.games import Game, PublicGoodsGame
from stratdistill.scenarios.library import Library


@dataclass(frozen=True)
class Scenario:
    """One game in one context. A public goods game carries its own framing and has no context."""

    game: Game
    context: Context | None

    @property
    def key(self) -> str:
        return self.game.key if self.context is None else f"{self.context.key}_{self.game.key}"

    @property
    def context_key(self) -> str:
        return "" if self.context is None else self.context.key


def grid(library: Library, contexts: list[str], games: list[str], where: str) -> list[Scenario]:
    """Every context x game; a public goods game appears once, without a context."""
    if not games:
        raise ConfigError(f"{where}.games", games, "a non-empty list of game keys")
    out: list[Scenario] = []
    seen: set[str] = set()
    ctxs = [library.context(c, f"{where}.contexts") for c in contexts]
    for g in games:
        game = library.game(g, f"{where}.games")
        pairs = [None] if isinstance(game, PublicGoodsGame) else ctxs
        if not pairs:
            raise ConfigError(
                f"{where}.contexts", contexts, f"a non-empty list of context keys for 2x2 game {g!r}"
            )
        for ctx in pairs:
            sc = Scenario(game, ctx)
            if sc.key not in seen:
                seen.add(sc.key)
                out.append(sc)
    return out


def resolve_split(library: Library, split_cfg: Any) -> tuple[list[Scenario], dict[str, list[Scenario]]]:
    """(training scenarios, {eval split name: scenarios}) from the ``split`` config node."""
    train = grid(library, list(split_cfg.train.contexts), list(split_cfg.train.games), "split.train")
    if any(isinstance(s.game, PublicGoodsGame) for s in train):
        raise ConfigError(
            "split.train.games",
            list(split_cfg.train.games),
            "2x2 games only (public goods games are evaluation-only)",
        )
    evals = {
        name: grid(library, list(node.contexts), list(node.games), f"split.eval.{name}")
        for name, node in split_cfg.eval.items()
    }
    if not evals:
        raise ConfigError("split.eval", {}, "at least one evaluation split")
    return train, evals
