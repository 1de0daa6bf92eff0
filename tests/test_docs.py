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

import ast
import dataclasses
import pathlib
import re

import pytest
import yaml

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


def _sources() -> list[pathlib.Path]:
    return sorted((ROOT / "function").rglob("*.py"))


def _reason_fields() -> dict[str, int]:
    """Classes with a `reason` field, and its position among the fields."""
    out = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                fields = [
                    s.target.id
                    for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                ]
                if "reason" in fields:
                    out[node.name] = fields.index("reason")
    return out


def _text(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _reasons_in(tree: ast.AST, reason_fields: dict[str, int]) -> set[str]:
    """Reason literals, wherever they travel towards `conditions.set(type, ok, reason, …)`.

    Directly as its third argument; in a `reason` field of a dataclass such as `Repo`
    or `ServedTLS` (by keyword or position); or assigned to a variable named `reason`.
    """
    found: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "set" and isinstance(func, ast.Attribute) and len(node.args) >= 3:
                owner = func.value
                if isinstance(owner, ast.Name) and owner.id == "conditions":
                    found.add(_text(node.args[2]))
            if name in reason_fields and len(node.args) > reason_fields[name]:
                found.add(_text(node.args[reason_fields[name]]))
            found.update(_text(k.value) for k in node.keywords if k.arg == "reason")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "reason":
                    found.add(_text(node.value))
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts, strict=False):
                        if isinstance(t, ast.Name) and t.id == "reason":
                            found.add(_text(v))
    return {r for r in found if r}


def condition_reasons() -> set[str]:
    """Every condition reason the function can set."""
    fields = _reason_fields()
    reasons: set[str] = set()
    for path in _sources():
        reasons |= _reasons_in(ast.parse(path.read_text(encoding="utf-8")), fields)
    return reasons


def direct_reasons_by_regex() -> set[str]:
    """The reasons written straight into `conditions.set(...)` calls, found by a regex."""
    call = re.compile(r"conditions\.set\(\s*[^,()]+,\s*[^,()]+,\s*\"(?P<reason>[A-Za-z]+)\"")
    return {
        m["reason"] for path in _sources() for m in call.finditer(path.read_text(encoding="utf-8"))
    }


def condition_types() -> set[str]:
    text = (ROOT / "function" / "status.py").read_text(encoding="utf-8")
    return set(re.findall(r'^[A-Z_]+ = "([A-Za-z]+)"$', text, flags=re.MULTILINE))


def test_every_condition_reason_is_explained_in_troubleshooting() -> None:
    reasons = condition_reasons()
    # The extraction itself: the regex and the AST agree on direct calls, and reasons
    # that travel through variables and dataclasses are found too.
    assert direct_reasons_by_regex() <= reasons
    assert {"Synced", "Initializing", "NotDeployed"} <= direct_reasons_by_regex()
    assert {"NotFound", "RepositoryInUse", "CARegenerated", "Renewed", "Provided"} <= reasons
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    missing = sorted(r for r in reasons if f"`{r}`" not in text)
    assert not missing, f"docs/troubleshooting.md does not explain: {missing}"


def test_every_condition_type_is_explained_in_troubleshooting() -> None:
    types = condition_types()
    assert {"RepositoryReady", "TLSReady", "UsersSynced", "ServerAvailable", "Initialized"} <= types
    text = TROUBLESHOOTING.read_text(encoding="utf-8")
    missing = sorted(t for t in types if f"## {t}" not in text)
    assert not missing, f"docs/troubleshooting.md has no section for: {missing}"
