"""The scenario library: every game and context known to a run, loaded from data files.

Built-in games and contexts ship as YAML inside the package (``scenarios/data``). A user adds their own
by dropping YAML files into a folder and listing it in ``games.library_dirs``; a later folder overrides
an earlier one by key, so a user can also replace a built-in. ``games.prompt_dir`` points at a folder of
verbatim prompt ``.txt`` files laid out like the authors' replication repository (``context/``,
``new contexts/``, ``game/``, ``game-no-reasoning/``, optionally under ``data/``): those texts replace the
rendered ones for the keys they name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from stratdistill.errors import ConfigError
from stratdistill.scenarios.contexts import Context, context_from_dict
from stratdistill.scenarios.games import Game, game_from_dict

BUILTIN_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class VerbatimPrompts:
    """Prompt texts taken as they are from a folder of .txt files (keys are file stems)."""

    contexts: dict[str, str] = field(default_factory=dict)
    games_with_reasoning: dict[str, str] = field(default_factory=dict)
    games_action_only: dict[str, str] = field(default_factory=dict)
    root: str | None = None


@dataclass(frozen=True)
class Library:
    games: dict[str, Game]
    contexts: dict[str, Context]
    verbatim: VerbatimPrompts = field(default_factory=VerbatimPrompts)

    def game(self, key: str, where: str = "game") -> Game:
        if key not in self.games:
            raise ConfigError(where, key, f"one of {sorted(self.games)} (or add a YAML file, see README)")
        return self.games[key]

    def context(self, key: str, where: str = "context") -> Context:
        if key not in self.contexts:
            raise ConfigError(where, key, f"one of {sorted(self.contexts)} (or add a YAML file, see README)")
        return self.contexts[key]


def _load_yaml(path: Path) -> dict:
    try:
        with path.open() as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "<unreadable YAML>", f"valid YAML ({exc.__class__.__name__})") from exc


def _load_folder(root: Path, games: dict[str, Game], contexts: dict[str, Context]) -> None:
    for path in sorted((root / "games").glob("*.yaml")):
        game = game_from_dict(_load_yaml(path), where=str(path))
        games[game.key] = game
    for path in sorted((root / "contexts").glob("*.yaml")):
        ctx = context_from_dict(_load_yaml(path), where=str(path))
        contexts[ctx.key] = ctx


def _read_txt_folder(folder: Path) -> dict[str, str]:
    return {p.stem: p.read_text().strip() for p in sorted(folder.glob("*.txt"))} if folder.is_dir() else {}


def load_verbatim(prompt_dir: str | Path) -> VerbatimPrompts:
    root = Path(prompt_dir)
    if not root.is_dir():
        raise ConfigError("games.prompt_dir", str(prompt_dir), "an existing folder of prompt .txt files")
    base = root / "data" if (root / "data").is_dir() and not (root / "context").is_dir() else root
    contexts = _read_txt_folder(base / "context") | _read_txt_folder(root / "new contexts")
    contexts |= _read_txt_folder(base / "new contexts")
    found = VerbatimPrompts(
        contexts=contexts,
        games_with_reasoning=_read_txt_folder(base / "game"),
        games_action_only=_read_txt_folder(base / "game-no-reasoning"),
        root=str(root),
    )
    if not (found.contexts or found.games_with_reasoning or found.games_action_only):
        raise ConfigError(
            "games.prompt_dir",
            str(prompt_dir),
            "a folder holding context/*.txt, 'new contexts'/*.txt, game/*.txt or game-no-reasoning/*.txt",
        )
    return found


def load_library(library_dirs: list[str] | tuple[str, ...] = (), prompt_dir: str | None = None) -> Library:
    """Built-ins first, then each user folder in order (later wins), then verbatim prompt texts."""
    games: dict[str, Game] = {}
    contexts: dict[str, Context] = {}
    _load_folder(BUILTIN_DIR, games, contexts)
    for d in library_dirs:
        root = Path(d)
        if not root.is_dir():
            raise ConfigError(
                "games.library_dirs", str(d), "existing folders holding games/*.yaml and/or contexts/*.yaml"
            )
        _load_folder(root, games, contexts)
    verbatim = load_verbatim(prompt_dir) if prompt_dir else VerbatimPrompts()
    for key, text in verbatim.contexts.items():
        if key in contexts:
            contexts[key] = replace(contexts[key], text=text, source=f"{verbatim.root}:{key}.txt")
        else:
            contexts[key] = Context(key=key, name=key, text=text, source=f"{verbatim.root}:{key}.txt")
    return Library(games=games, contexts=contexts, verbatim=verbatim)
