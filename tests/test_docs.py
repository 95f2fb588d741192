"""The manual and the code's own prose name only commands and options that exist (after datasette's
test_docs): a `hearken` subcommand or option in the README, MODEL.md, RESULTS.md, a docstring or a comment
must be one the CLI has, and every subcommand is in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from desk.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = [ROOT / "README.md", ROOT / "classifier" / "MODEL.md", ROOT / "benchmarks" / "RESULTS.md"]
CODE_DIRS = ["collectors", "classifier", "desk", "dashboard", "benchmarks", "scripts", "config"]
_END = re.compile(r"\s(#|\||;|&&|>)\s.*$|\s{2,}.*$")  # a shell comment, pipe or redirect; two spaces start prose


def commands() -> dict[str, set[str]]:
    """Each subcommand with the options it accepts (its own and the global ones)."""
    parser = build_parser()
    top = set(parser._option_string_actions)
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return {name: top | set(p._option_string_actions) for name, p in sub.choices.items()}


def invocations(text: str, *, code_only: bool) -> list[str]:
    """`hearken ...` command lines in text: in code spans and code blocks (Markdown, docstrings) or, with
    code_only False, also on lines of their own (usage lines in docstrings)."""
    pieces = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    pieces = [line for block in pieces for line in block.splitlines()]
    pieces += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    if not code_only:
        pieces += [line.strip().lstrip("#").strip() for line in text.splitlines()]
    found = []
    for piece in pieces:
        for m in re.finditer(r"(?:^|[\s(/$])hearken((?: +[^\s`]+)+)", piece):
            if m.group(0).lstrip().startswith(("hearken/", "hearken.")):
                continue
            found.append("hearken" + _END.sub("", m.group(1)))
    return found


def unknown(invocation: str, known: dict[str, set[str]]) -> str | None:
    """Why `invocation` names something the CLI lacks, or None."""
    words = [w.strip("[]()'\",.") for w in invocation.split()[1:]]
    if not words or words[0].startswith("-"):
        return None
    sub = words[0]
    if not re.fullmatch(r"[a-z][a-z-]*", sub):  # a placeholder such as COMMAND
        return None
    if sub not in known:
        return f"no subcommand {sub!r}"
    bad = [w.split("=")[0] for w in words[1:] if w.startswith("--") and w.split("=")[0] not in known[sub]]
    return f"`hearken {sub}` has no option {bad[0]}" if bad else None


def sources() -> list[tuple[Path, str, bool]]:
    out = [(p, p.read_text(encoding="utf-8"), True) for p in MARKDOWN if p.is_file()]
    for d in CODE_DIRS:
        for p in sorted((ROOT / d).rglob("*")):
            if p.suffix in (".py", ".sh", ".yaml", ".md") and p.is_file() and p not in MARKDOWN:
                out.append((p, p.read_text(encoding="utf-8"), p.suffix == ".md"))
    return out


def test_the_checker_catches_a_command_or_option_that_does_not_exist():
    known = commands()
    assert unknown("hearken train --with-labels", known) == "`hearken train` has no option --with-labels"
    assert unknown("hearken retrain", known) == "no subcommand 'retrain'"
    assert unknown("hearken train --extra-labels staff.jsonl --out /tmp/m", known) is None
    assert invocations("see `hearken train --with-labels`) and hearken.example.com", code_only=True) == [
        "hearken train --with-labels"]
    assert invocations("```sh\nhearken report --week 2026-W47   # the week\n```", code_only=True) == [
        "hearken report --week 2026-W47"]


@pytest.mark.parametrize("path,text,code_only", sources(), ids=lambda v: str(v.relative_to(ROOT))
                         if isinstance(v, Path) else "")
def test_docs_name_only_commands_and_options_the_cli_has(path, text, code_only):
    known = commands()
    wrong = [f"{inv!r}: {why}" for inv in invocations(text, code_only=code_only)
             if (why := unknown(inv, known))]
    assert not wrong, f"{path.relative_to(ROOT)} names what `hearken` does not have:\n" + "\n".join(wrong)


def test_readme_names_every_subcommand_and_only_scripts_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = {inv.split()[1] for inv in invocations(readme, code_only=True) if len(inv.split()) > 1}
    assert set(commands()) - named == set(), "subcommands the README never names"
    for script in set(re.findall(r"scripts/[\w.-]+\.(?:sh|py)", readme)):
        assert (ROOT / script).is_file(), f"README names {script}, which does not exist"
