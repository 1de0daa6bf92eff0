"""The docs say only what the code does: their YAML parses, their commands exist.

Checks every Markdown file a user reads (README.md, docs/*.md, examples/README.md):

- every ```yaml block parses;
- every command in a shell block (```sh, ```bash, ```shell, ```console, ```powershell)
  is a Makefile target (`make X`), an existing path (`hack/...`, `./...`) or a known
  external tool;
- docs/troubleshooting.md names every condition type and every condition reason the
  function sets.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest
import yaml

from function.conditions import REASONS

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "examples" / "README.md", *(ROOT / "docs").glob("*.md")])
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"

SHELL_LANGUAGES = {"sh", "bash", "shell", "console", "powershell"}
# Programs the docs may tell a reader to run, besides make targets and repo paths.
KNOWN_TOOLS = {
    # Kubernetes, Crossplane, containers, the repository.
    "kubectl",
    "crossplane",
    "docker",
    "git",
    # Kopia and the VM owners' schedulers.
    "kopia",
    "kopia.exe",
    "systemctl",
    "loginctl",
    "journalctl",
    "crontab",
    "schtasks",
    # Windows: PowerShell cmdlets, and the credentials bundle's own script.
    "Set-ExecutionPolicy",
    "Unblock-File",
    "certutil",
    ".\\connect-windows.ps1",
    # Shell basics.
    "base64",
    "cat",
    "cd",
    "echo",
    "export",
    "kill",
    "ls",
    "mkdir",
    "python",
    "python3",
    "sh",
    "sudo",
}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w.+-]*)\s*$")
HEREDOC = re.compile(r"<<-?\s*['\"]?(?P<word>\w+)['\"]?")
SH_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PS_ASSIGNMENT = re.compile(r"^\$[\w:]+\s*=")
TRAILING_COMMENT = re.compile(r"\s+#.*$")
MAKE_TARGET = re.compile(r"^(?P<targets>[A-Za-z0-9][\w.-]*(?:\s+[A-Za-z0-9][\w.-]*)*)\s*:(?!=)")


@dataclasses.dataclass(frozen=True)
class Block:
    """A fenced code block: its language, first line number and text lines."""

    path: pathlib.Path
    lang: str
    line: int
    lines: tuple[str, ...]

    def where(self, offset: int = 0) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line + offset}"


def blocks(path: pathlib.Path) -> list[Block]:
    """Every fenced code block of a Markdown file."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith("```"):
            body.append(lines[j][len(opening["indent"]) :])
            j += 1
        assert j < len(lines), f"{path.relative_to(ROOT)}:{i + 1}: unclosed code block"
        out.append(Block(path, opening["lang"].lower(), i + 2, tuple(body)))
        i = j + 1
    return out


def all_blocks(*langs: str) -> list[Block]:
    return [b for doc in DOCS for b in blocks(doc) if b.lang in langs]


def makefile_targets() -> set[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        found = MAKE_TARGET.match(line)
        if found and not line.startswith((".", "\t")):
            targets.update(found["targets"].split())
    return targets


def commands(block: Block) -> list[tuple[int, str]]:
    """(offset, command line) for each command in a shell block.

    Skips comments, blank lines, continuation lines, here-document bodies and, in
    console blocks, output lines (commands there start with `$ `).
    """
    out = []
    continued = False
    heredoc: str | None = None
    for offset, raw in enumerate(block.lines):
        line = raw.strip()
        if heredoc is not None:
            if line == heredoc:
                heredoc = None
            continue
        if continued:
            continued = line.endswith(("\\", "`"))
            continue
        if block.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:].strip()
        else:
            line = line.removeprefix("$ ")
        line = TRAILING_COMMENT.sub("", line)
        if not line or line.startswith("#"):
            continue
        continued = line.endswith(("\\", "`"))
        if found := HEREDOC.search(line):
            heredoc = found["word"]
        out.append((offset, line))
    return out


def program(line: str) -> str | None:
    """The program a command line runs; None for an assignment only."""
    if PS_ASSIGNMENT.match(line):
        return None
    words = line.split()
    while words and SH_ASSIGNMENT.match(words[0]):
        words = words[1:]  # VAR=value prefixes
    return words[0] if words else None


def problem(line: str, targets: set[str]) -> str | None:
    """Why a command line names something that does not exist, or None."""
    prog = program(line)
    if prog is None:
        return None
    if prog == "make":
        wanted = [w for w in line.split()[1:] if not w.startswith("-") and "=" not in w]
        missing = [t for t in wanted if t not in targets]
        return f"make target(s) {missing} not in Makefile" if missing else None
    if prog.startswith(("hack/", "./")):
        return None if (ROOT / prog).exists() else f"{prog} does not exist"
    if prog in KNOWN_TOOLS:
        return None
    return f"{prog!r} is neither a make target, a path in the repository nor a known tool"


# ---------------------------------------------------------------------------- tests


def test_the_docs_exist() -> None:
    for name in (
        "architecture.md",
        "vm-user-guide.md",
        "platform-guide.md",
        "troubleshooting.md",
        "security.md",
    ):
        assert (ROOT / "docs" / name).is_file(), name
    assert (ROOT / "examples" / "README.md").is_file()


@pytest.mark.parametrize("block", all_blocks("yaml", "yml"), ids=lambda b: b.where())
def test_yaml_blocks_parse(block: Block) -> None:
    try:
        docs = list(yaml.safe_load_all("\n".join(block.lines)))
    except yaml.YAMLError as e:
        pytest.fail(f"{block.where()}: the YAML block does not parse: {e}")
    assert any(d is not None for d in docs), f"{block.where()}: empty YAML block"


def test_shell_commands_exist() -> None:
    targets = makefile_targets()
    assert {"render", "test"} <= targets  # the parser found the Makefile's targets
    failures = []
    checked = 0
    for block in all_blocks(*SHELL_LANGUAGES):
        for offset, line in commands(block):
            checked += 1
            why = problem(line, targets)
            if why is not None:
                failures.append(f"{block.where(offset)}: {line!r}: {why}")
    assert checked > 0
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("make render", True),
        ("make no-such-target", False),
        ("hack/render.sh examples/bslr-s3.yaml apis/bslr/composition.yaml", True),
        ("hack/missing.sh", False),
        ("./hack/render.sh", True),
        ("KOPIA_PASSWORD=x kopia snapshot create /home/alice", True),
        ("$env:KOPIA_PASSWORD = 'x'", True),
        ("frobnicate --now", False),
    ],
)
def test_the_command_checker_itself(line: str, ok: bool) -> None:
    assert (problem(line, makefile_targets()) is None) == ok


def test_the_block_parser_skips_output_heredocs_and_continuations() -> None:
    block = Block(
        ROOT / "README.md",
        "sh",
        1,
        (
            "# a comment",
            "kubectl apply -f - <<'YAML'",
            "apiVersion: v1",
            "YAML",
            "kopia repository connect server \\",
            "  --url=https://example.com:51515",
            "$ make render   # with a comment",
        ),
    )
    assert [line for _, line in commands(block)] == [
        "kubectl apply -f - <<'YAML'",
        "kopia repository connect server \\",
        "make render",
    ]
    console = dataclasses.replace(block, lang="console", lines=("$ kopia snapshot list", "out"))
    assert [line for _, line in commands(console)] == ["kopia snapshot list"]


# ---------------------------------------------------------------------------- conditions


def test_every_condition_reason_is_explained_in_troubleshooting() -> None:
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    missing = sorted(
        f"{typ}/{reason}"
        for typ, reasons in REASONS.items()
        for reason in reasons
        if f"`{reason}`" not in text
    )
    assert not missing, f"docs/troubleshooting.md does not explain: {missing}"


def test_every_condition_type_is_explained_in_troubleshooting() -> None:
    expected = {"RepositoryReady", "TLSReady", "UsersSynced", "ServerAvailable", "Initialized"}
    assert expected <= set(REASONS)
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    missing = sorted(t for t in REASONS if f"## {t}" not in text)
    assert not missing, f"docs/troubleshooting.md has no section for: {missing}"


def test_each_condition_section_lists_exactly_the_reasons_it_can_have() -> None:
    """The other way round too: no section documents a reason its condition cannot have."""
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    for typ, reasons in REASONS.items():
        section = re.search(rf"^## {typ}\b.*?(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
        assert section is not None, typ
        rows = re.findall(r"^\| `([A-Za-z]+)` \|", section.group(0), flags=re.MULTILINE)
        assert set(rows) == {str(r) for r in reasons}, (typ, sorted(rows))
