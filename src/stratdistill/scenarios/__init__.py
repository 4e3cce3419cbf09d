"""Games, contexts and splits: the scenario library as data."""

from stratdistill.scenarios.contexts import Context
from stratdistill.scenarios.games import ACTIONS, Game, PublicGoodsGame, TwoByTwoGame
from stratdistill.scenarios.library import Library, load_library
from stratdistill.scenarios.splits import Scenario, grid, resolve_split

__all__ = [
    "ACTIONS",
    "Context",
    "Game",
    "Library",
    "PublicGoodsGame",
    "Scenario",
    "TwoByTwoGame",
    "grid",
    "load_library",
    "resolve_split",
]
