"""Per-user access modes, as the kopia access rules (ACL entries) the sync Job installs.

kopia evaluates ACL entries once any exist (`internal/auth/authz_acl.go`): a user gets
the highest level of every entry whose `user` pattern and target labels match, and
nothing without one. `kopia server acl enable` would install kopia's defaults, which
grant every user FULL on its own *user account* (a VM could change its own password;
the built-in rules used without ACLs deny that) and APPEND on content to `*@*`. So the
function never runs it: it installs exactly the entries below, and the sync Job makes
the repository's entries exactly these (adding before deleting, so there is never a
moment with none, which would bring back the built-in rules).

Every identity in the repository gets, through `*@*`, only reading: the global policy,
its host's policy, its own policies and its own snapshots. Per identity, by mode:

- `full` (the built-in rules' behaviour): content APPEND (write and read; no content
  operation needs more), its own snapshots and policies FULL.
- `append`: content APPEND, its own snapshots APPEND (add, never update or delete), its
  policies read only. Its retention is the server's, never the client's (retention.sh).
- `restore`: content READ. It lists and restores its own snapshots and writes nothing.

Nothing matches manifests of type `user` or `acl`, so no user reads or changes an
account, a password or an access rule. The control API has its own user and is not
governed by ACLs.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Mode = Literal["full", "append", "restore"]
Level = Literal["READ", "APPEND", "FULL"]
MODES: tuple[Mode, ...] = ("full", "append", "restore")
# The freshness reader's folder among the sync Job's users (it is no tenant).
READER = "reader"

OWN = {"username": "OWN_USER", "hostname": "OWN_HOST"}


class Rule(NamedTuple):
    """One ACL entry as a template.

    `who` is `*` (every identity: `*@*`) or the mode (or READER) whose identities each
    get it; OWN_USER and OWN_HOST are kopia's own placeholders for the matched identity.
    """

    who: str
    access: Level
    target: tuple[tuple[str, str], ...]  # label -> value, sorted by label

    def line(self) -> str:
        """`who access key=value,...`, the form the sync script reads and compares.

        kopia lists an entry's target as JSON with its keys sorted (Go sorts map keys),
        so the script turns what kopia lists into exactly this form.
        """
        return f"{self.who} {self.access} " + ",".join(f"{k}={v}" for k, v in self.target)


def rule(who: str, access: Level, **labels: str) -> Rule:
    """A rule with its target labels in kopia's listing order."""
    return Rule(who, access, tuple(sorted(labels.items())))


RULES = (
    # What every identity may read: its own records and the policies it inherits.
    rule("*", "READ", type="policy", policyType="global"),
    rule("*", "READ", type="policy", policyType="host", hostname="OWN_HOST"),
    rule("*", "READ", type="policy", **OWN),
    rule("*", "READ", type="snapshot", **OWN),
    # full: what kopia's built-in rules allow (content APPEND is write and read: no
    # content operation needs more).
    rule("full", "APPEND", type="content"),
    rule("full", "FULL", type="snapshot", **OWN),
    rule("full", "FULL", type="policy", **OWN),
    # append: add snapshots, never update or delete one; policies read only.
    rule("append", "APPEND", type="content"),
    rule("append", "APPEND", type="snapshot", **OWN),
    # restore: read content; no snapshot or policy is written.
    rule("restore", "READ", type="content"),
    # The freshness reader: every snapshot record, and no content, so no file data.
    rule(READER, "READ", type="snapshot"),
)


def rules_text() -> str:
    """The rule templates the sync Job expands, one line each."""
    return "".join(r.line() + "\n" for r in RULES)
