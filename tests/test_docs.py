"""The documentation: the site builds strictly, every `ganinf ...` line in a shell code block of the
README or docs/ names a real command with real options, and the README stays a short front page.

Shell code blocks are fences tagged ```bash, ```console, ```sh or ```shell. A block that needs a
GPU or a server may be marked with `<!-- needs: gpu -->` or `<!-- needs: server -->` on the line
before its fence; it is checked all the same (the marker only tells a reader, and a future runner,
what the block needs).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 200

SHELL_LANGS = {"bash", "console", "sh", "shell"}
NEEDS = {"gpu", "server"}
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
NEEDS_MARK = re.compile(r"<!--\s*needs:\s*(?P<what>[\w-]+)\s*-->")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SEPARATORS = {";", "&&", "||", "|", "&"}
SHELL_KEYWORDS = {"do", "then", "else", "!", "time", "exec"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    needs: str | None
    text: str


@dataclass(frozen=True)
class Command:
    where: str  # "path:line"
    argv: tuple[str, ...]  # the arguments after `ganinf`


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def code_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a Markdown file (indented fences in lists too), dedented."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = len(m["indent"]), m["lang"].lower(), i
        prev = lines[i - 1] if i > 0 else ""
        mark = NEEDS_MARK.search(prev)
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        blocks.append(Block(path, start + 1, lang, mark["what"] if mark else None, "\n".join(body)))
        i += 1
    return blocks


def strip_comment(line: str) -> str:
    """Cut a shell comment: an unquoted `#` at the start of a word."""
    quote: str | None = None
    escaped = False
    for k, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k]
    return line


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(offset of first physical line, joined line): `$ ` prompts dropped, comments cut,
    backslash continuations joined. Console output lines (no prompt in a prompted block) are
    skipped."""
    physical = text.splitlines()
    prompted = any(p.lstrip().startswith("$ ") for p in physical)
    out: list[tuple[int, str]] = []
    pending: str | None = None
    pending_at = 0
    for k, raw in enumerate(physical):
        line = raw.strip()
        if pending is None:
            if prompted:
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            pending_at = k
        line = strip_comment(line).rstrip()
        if line.endswith("\\"):
            pending = (pending or "") + line[:-1] + " "
            continue
        out.append((pending_at, (pending or "") + line))
        pending = None
    if pending is not None:
        out.append((pending_at, pending))
    return out


def split_commands(tokens: list[str]) -> list[list[str]]:
    """Split a token list at `;`, `&&`, `||`, `|` (also a `;` glued to a word)."""
    commands: list[list[str]] = [[]]
    for tok in tokens:
        if tok in SEPARATORS:
            commands.append([])
        elif tok.endswith(";") and len(tok) > 1:
            commands[-1].append(tok[:-1])
            commands.append([])
        else:
            commands[-1].append(tok)
    return [c for c in commands if c]


def ganinf_argv(tokens: list[str]) -> list[str] | None:
    """The arguments after `ganinf` when this simple command runs it (after env assignments
    such as `GANINF_TRACKING=0` and keywords such as `do`), else None."""
    k = 0
    while k < len(tokens) and (ENV_ASSIGNMENT.match(tokens[k]) or tokens[k] in SHELL_KEYWORDS):
        k += 1
    if k < len(tokens) and Path(tokens[k]).name == "ganinf":
        return tokens[k + 1 :]
    return None


def commands_in(text: str, where: str, first_line: int) -> list[Command]:
    found: list[Command] = []
    for offset, line in logical_lines(text):
        if "ganinf" not in line:
            continue
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise AssertionError(
                f"{where}:{first_line + offset}: cannot parse {line!r}: {exc}"
            ) from None
        for simple in split_commands(tokens):
            argv = ganinf_argv(simple)
            if argv is not None:
                found.append(Command(f"{where}:{first_line + offset}", tuple(argv)))
    return found


def documented_commands() -> list[Command]:
    found: list[Command] = []
    for path in markdown_files():
        rel = path.relative_to(ROOT)
        for block in code_blocks(path):
            if block.lang in SHELL_LANGS:
                found += commands_in(block.text, str(rel), block.line + 1)
    return found


def _options(command: click.Command) -> dict[str, click.Option]:
    out: dict[str, click.Option] = {}
    for param in command.get_params(click.Context(command)):
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                out[name] = param
    return out


def _takes_value(option: click.Option, name: str) -> bool:
    return not (option.is_flag or option.count or name in option.secondary_opts)


def _looks_like_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def check_argv(root: click.Group, argv: tuple[str, ...]) -> list[str]:
    """Problems of one `ganinf` argument list against the click tree (empty: it parses)."""
    problems: list[str] = []
    command: click.Command = root
    path = ["ganinf"]
    options = _options(root)
    expect_value = False
    for tok in argv:
        if expect_value:
            expect_value = False
            continue
        if tok == "--":
            break
        if tok.startswith("-") and tok != "-" and not _looks_like_number(tok):
            name = tok.split("=", 1)[0]
            if name not in options:
                problems.append(f"{' '.join(path)}: no option {name}")
                continue
            expect_value = "=" not in tok and _takes_value(options[name], name)
            continue
        if isinstance(command, click.Group):
            sub = command.commands.get(tok)
            if sub is None:
                problems.append(f"{' '.join(path)}: no command {tok!r}")
                return problems
            command, options = sub, _options(sub)
            path.append(tok)
    if isinstance(command, click.Group) and not any(a in ("--help", "--version") for a in argv):
        problems.append(f"{' '.join(path)}: no command given")
    return problems


@pytest.fixture(scope="module")
def cli_root() -> click.Group:
    from ganinf_mlops.cli import cli

    return cli


def test_every_documented_ganinf_command_parses(cli_root):
    commands = documented_commands()
    # The extractor must keep finding the pages' commands: a silent 0 would pass anything.
    assert len(commands) >= 60, f"only {len(commands)} ganinf commands found in the docs"
    seen = {c.argv[0] for c in commands if c.argv}
    assert {"prepare", "train", "influence", "cleanse", "run", "gate"} <= seen
    problems = [f"{c.where}: {p}" for c in commands for p in check_argv(cli_root, c.argv)]
    assert not problems, "documented commands that do not parse:\n" + "\n".join(problems)


def test_needs_markers_name_known_requirements():
    bad = []
    for path in markdown_files():
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in NEEDS_MARK.finditer(line):
                if m["what"] not in NEEDS:
                    bad.append(f"{path.relative_to(ROOT)}:{k}: needs: {m['what']}")
    assert not bad, f"unknown needs markers (use one of {sorted(NEEDS)}):\n" + "\n".join(bad)


def test_the_checker_finds_bogus_commands_and_options(cli_root):
    text = (
        "$ GANINF_TRACKING=0 ganinf train --data d --out r --bogus-option 3\n"
        "$ ganinf influence --run r \\\n    --method fd --out s.csv   # fine\n"
        "$ ganinf frobnicate --out x && ganinf cleanse --data d --scores s.csv --out v1\n"
        "$ ganinf cleanse --data d --scores s.csv --threshold -0.5 --out v1 --nope\n"
        "this output line mentions ganinf --not-a-command-line\n"
    )
    commands = commands_in(text, "snippet", 1)
    assert [c.argv[0] for c in commands] == [
        "train",
        "influence",
        "frobnicate",
        "cleanse",
        "cleanse",
    ]
    problems = [p for c in commands for p in check_argv(cli_root, c.argv)]
    assert problems == [
        "ganinf train: no option --bogus-option",
        "ganinf: no command 'frobnicate'",
        "ganinf cleanse: no option --nope",
    ]


def test_readme_is_a_short_front_page_linking_to_existing_docs():
    text = README.read_text(encoding="utf-8")
    n_lines = len(text.splitlines())
    assert n_lines <= README_MAX_LINES, (
        f"README.md has {n_lines} lines (at most {README_MAX_LINES})"
    )
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links, "the README links to no docs page"
    bad = []
    for target in links:
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        rel = target.split("#", 1)[0]
        path = (ROOT / rel).resolve()
        if not path.exists():
            bad.append(f"{target}: no such file")
        elif path.suffix == ".md" and DOCS.resolve() not in path.parents:
            bad.append(f"{target}: not a docs page")
    assert not bad, "README links:\n" + "\n".join(bad)


@pytest.mark.integration
def test_the_site_builds_strictly(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "load_version" in api  # mkdocstrings rendered the modules
