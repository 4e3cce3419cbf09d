"""Users extend the scenario library with YAML files and verbatim prompt folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratdistill.errors import ConfigError
from stratdistill.prompts import messages_for
from stratdistill.scenarios import grid, load_library


def test_builtin_library_has_the_papers_scenarios() -> None:
    lib = load_library()
    assert {"IR", "biz", "environment", "friendsharing", "team", "sports", "roomsharing", "ventcap"} <= set(
        lib.contexts
    )
    assert {"prison", "snowdrift", "staghunt", "delight", "donation"} <= set(lib.games)


def test_user_folder_adds_a_game_and_a_context(tmp_path: Path) -> None:
    (tmp_path / "games").mkdir()
    (tmp_path / "contexts").mkdir()
    (tmp_path / "games" / "bos.yaml").write_text(
        "key: bos\nname: Battle of the Sexes\nkind: 2x2\npayoffs: {R: 2, S: 0, T: 3, P: 1}\n"
    )
    (tmp_path / "contexts" / "lab.yaml").write_text(
        "key: lab\nname: Lab\nstake: citations\ntext: You run a lab and meet another lab's head.\n"
    )
    lib = load_library([str(tmp_path)])
    (scenario,) = grid(lib, ["lab"], ["bos"], "split.train")
    assert scenario.key == "lab_bos"
    system, user = messages_for(scenario, "action_only", lib)
    assert "another lab's head" in system["content"]
    assert "you get 3 points and your coplayer gets 0 points" in user["content"]


def test_user_folder_overrides_a_builtin_by_key(tmp_path: Path) -> None:
    (tmp_path / "games").mkdir()
    (tmp_path / "games" / "prison.yaml").write_text(
        "key: prison\nkind: 2x2\npayoffs: {R: 3, S: 0, T: 5, P: 1}\n"
    )
    assert load_library([str(tmp_path)]).games["prison"].payoffs == {"R": 3, "S": 0, "T": 5, "P": 1}


def test_verbatim_prompt_folder_in_the_authors_layout(tmp_path: Path) -> None:
    (tmp_path / "data" / "context").mkdir(parents=True)
    (tmp_path / "data" / "game").mkdir()
    (tmp_path / "data" / "game-no-reasoning").mkdir()
    (tmp_path / "new contexts").mkdir()
    (tmp_path / "data" / "context" / "biz.txt").write_text("VERBATIM BIZ CONTEXT")
    (tmp_path / "data" / "game" / "prison.txt").write_text("VERBATIM PRISON WITH REASONING")
    (tmp_path / "data" / "game-no-reasoning" / "prison.txt").write_text("VERBATIM PRISON ONE LETTER")
    (tmp_path / "new contexts" / "ventcap.txt").write_text("VERBATIM VENTCAP")
    lib = load_library(prompt_dir=str(tmp_path))
    (biz,) = grid(lib, ["biz"], ["prison"], "x")
    assert messages_for(biz, "action_motivation", lib)[1]["content"] == "VERBATIM PRISON WITH REASONING"
    assert messages_for(biz, "action_only", lib)[1]["content"] == "VERBATIM PRISON ONE LETTER"
    assert messages_for(biz, "action_only", lib)[0]["content"].endswith("VERBATIM BIZ CONTEXT")
    assert lib.contexts["ventcap"].text == "VERBATIM VENTCAP"
    (ir,) = grid(lib, ["IR"], ["staghunt"], "x")  # keys without a verbatim file keep our text
    assert "delegate" in messages_for(ir, "action_only", lib)[0]["content"]


def test_missing_folders_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"games\.library_dirs"):
        load_library([str(tmp_path / "nope")])
    with pytest.raises(ConfigError, match=r"games\.prompt_dir"):
        load_library(prompt_dir=str(tmp_path))  # exists but holds no prompt files


def test_unknown_names_list_what_exists() -> None:
    lib = load_library()
    with pytest.raises(ConfigError) as info:
        grid(lib, ["IR"], ["chess"], "split.train")
    assert "split.train.games='chess'" in str(info.value) and "prison" in str(info.value)
