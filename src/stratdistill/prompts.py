"""Prompt texts and their rendering through a model's own chat template.

The study's prompt has two parts: a system part (act as a participant, then the context) and a user
part (the game's payoffs, the instruction, and an invitation to think step by step). Two instructions
exist: ``action_only`` (one letter, used to evaluate every model) and ``action_motivation`` (the letter,
then the reasoning; used to collect the teacher's training data). All texts here are our own wording of
the published design. The original run used hand-made Llama-2 markers; we always go through
``tokenizer.apply_chat_template`` and record which template was used.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from stratdistill.errors import ConfigError
from stratdistill.scenarios import Library, PublicGoodsGame, Scenario, TwoByTwoGame
from stratdistill.scenarios.games import format_game_number

# A label for this set of prompt texts (tests/test_prompts.py pins their digest). Artifact keys do not
# need it: every stage's key holds the exact messages of its scenarios and the code that renders them.
PROMPT_VERSION = "1"

Instruction = Literal["action_only", "action_motivation"]
INSTRUCTIONS: tuple[str, ...] = ("action_only", "action_motivation")

ROLE_PLAY = (
    "Take part in the situation described below as if you were really in it, and answer exactly as "
    "that participant would."
)
STEP_BY_STEP = "Think it through step by step."

_TWO_BY_TWO_INSTRUCTION = {
    "action_only": "Which option do you choose? Reply with exactly one letter, C or D, and nothing else.",
    "action_motivation": (
        "Which option do you choose? Begin your reply by stating your choice, C or D, and then explain "
        "the reasoning behind it."
    ),
}
_DONATION_INSTRUCTION = {
    "action_only": (
        "How many dollars do you donate? Reply with one whole number from 0 to {e} and nothing else."
    ),
    "action_motivation": (
        "How many dollars do you donate? Begin your reply by stating the amount, a whole number from 0 "
        "to {e}, "
        "and then explain the reasoning behind it."
    ),
}


def describe_two_by_two(game: TwoByTwoGame) -> str:
    lines = ["You and your coplayer each choose C or D. What you both get depends on the two choices:"]
    for mine, theirs in (("C", "C"), ("C", "D"), ("D", "C"), ("D", "D")):
        lines.append(
            f"- If you choose {mine} and your coplayer chooses {theirs}, you get "
            f"{format_game_number(game.payoff(mine, theirs))} points and your coplayer gets "
            f"{format_game_number(game.payoff(theirs, mine))} points."
        )
    return "\n".join(lines)


def describe_public_goods(game: PublicGoodsGame) -> str:
    others = list(game.others)
    names = ", ".join(others[:-1]) + f" and {others[-1]}" if len(others) > 1 else others[0]
    n_others = len(others)
    return (
        f"You are {game.player_name}. You and your {n_others} {game.group}, {names}, have "
        f"${game.endowment} each. Each of you decides privately how many whole dollars, from 0 to "
        f"{game.endowment}, to put into {game.setting}; you keep whatever you do not put in. The university "
        f"multiplies the money in the fund by {format_game_number(game.multiplier)} and the result is split "
        f"equally among all {game.players} of you. Nobody talks about it beforehand, it happens only once, "
        "and your relations with the others are neutral."
    )


def system_text(scenario: Scenario) -> str:
    if scenario.context is None:
        return ROLE_PLAY
    return f"{ROLE_PLAY}\n\n{scenario.context.text}"


def user_text(scenario: Scenario, instruction: str, library: Library | None = None) -> str:
    if instruction not in INSTRUCTIONS:
        raise ConfigError("instruction", instruction, f"one of {list(INSTRUCTIONS)}")
    game = scenario.game
    if library is not None:
        verbatim = (
            library.verbatim.games_action_only
            if instruction == "action_only"
            else library.verbatim.games_with_reasoning
        )
        if game.key in verbatim:
            return verbatim[game.key]
    if game.description:
        body = game.description.strip()
    elif isinstance(game, TwoByTwoGame):
        body = describe_two_by_two(game)
    else:
        body = describe_public_goods(game)
    if isinstance(game, TwoByTwoGame):
        ask = _TWO_BY_TWO_INSTRUCTION[instruction]
    else:
        ask = _DONATION_INSTRUCTION[instruction].format(e=game.endowment)
    return f"{body}\n\n{ask} {STEP_BY_STEP}"


def messages_for(
    scenario: Scenario, instruction: str, library: Library | None = None
) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_text(scenario)},
        {"role": "user", "content": user_text(scenario, instruction, library)},
    ]


def render_plain(messages: list[dict[str, str]], *, brackets: Literal["[]", "<>"] = "[]") -> str:
    """The messages as one readable text without any chat template: each role on a line of its own, then
    its content, messages separated by a blank line.

    It is what a row stores as its prompt when no tokenizer of ours renders the messages: the stand-in
    teacher has none, and an OpenAI-compatible server applies the model's template itself. The role is
    written ``[user]`` by default and ``<user>`` with ``brackets="<>"`` (the served teacher's rows), so that
    prompts stored before both teachers shared this function read exactly as they did.
    """
    if brackets not in ("[]", "<>"):
        raise ValueError(f"brackets must be '[]' or '<>', got {brackets!r}")
    left, right = brackets
    return "\n\n".join(f"{left}{m['role']}{right}\n{m['content']}" for m in messages)


def render_chat(messages: list[dict[str, str]], tokenizer) -> str:
    """The model's own chat template, ending with the assistant turn's opening."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            "student.model_id",
            getattr(tokenizer, "name_or_path", "?"),
            "a model whose tokenizer has a chat template (an instruct/chat model)",
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def template_id(tokenizer) -> str:
    """Short hash of the chat template, recorded with every rendered prompt."""
    tpl = getattr(tokenizer, "chat_template", None) or ""
    return hashlib.sha256(tpl.encode()).hexdigest()[:12]
