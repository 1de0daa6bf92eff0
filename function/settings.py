"""The repository's settings as the Job scripts apply them, and as the status shows them.

A BSLR's settings reach `repository-init.sh` and `repository-check.sh` as environment
variables (`repository-lib.sh` reads them): the format `kopia repository create` gets
and the status fragments that prove an existing repository has it, the global policy,
object lock, and the maintenance schedule. None of them is secret. Everything here is
pure: the same spec gives the same variables, in the same order.
"""

from __future__ import annotations

import hashlib
import json

from function.models import BSLRSpec, GlobalPolicy, RepositoryFormat


def format_checks(fmt: RepositoryFormat) -> list[str]:
    """What `kopia repository status --json` must show for a repository of this format.

    `field|fragment` lines: the spec field to name, and a fragment the status must
    contain (or, after `!`, must not).

    kopia 0.23.1 prints the content format as `"hash":"…","encryption":"…"`, the
    splitter as `"splitter":"…"`, and `"ecc":"…","eccOverheadPercent":N` only when
    error correction is on (checked with the real binary).
    """
    want = fmt.effective()
    lines = [
        f'spec.format.encryption|"encryption":"{want["encryption"]}"',
        f'spec.format.hash|"hash":"{want["hash"]}"',
        f'spec.format.splitter|"splitter":"{want["splitter"]}"',
    ]
    ecc = fmt.errorCorrection
    if ecc is None:
        lines.append('spec.format.errorCorrection|!"eccOverheadPercent"')
    else:
        lines.append(
            f'spec.format.errorCorrection|"ecc":"{ecc.algorithm}",'
            f'"eccOverheadPercent":{ecc.overheadPercent}'
        )
    return lines


def policy_flags(policy: GlobalPolicy) -> list[str]:
    """The flags of `kopia policy set --global` for everything but the ignore rules."""
    keep = policy.retention
    return [
        f"--compression={policy.compression}",
        f"--keep-latest={keep.keepLatest}",
        f"--keep-hourly={keep.keepHourly}",
        f"--keep-daily={keep.keepDaily}",
        f"--keep-weekly={keep.keepWeekly}",
        f"--keep-monthly={keep.keepMonthly}",
        f"--keep-annual={keep.keepAnnual}",
    ]


def env(spec: BSLRSpec) -> list[dict]:
    """What the init and check Jobs apply, as their environment."""
    out = [
        {"name": "BSLS_FORMAT_FLAGS", "value": " ".join(spec.format.create_flags())},
        {"name": "BSLS_FORMAT_CHECKS", "value": "\n".join(format_checks(spec.format))},
        {"name": "BSLS_POLICY_FLAGS", "value": " ".join(policy_flags(spec.policy))},
        {"name": "BSLS_POLICY_IGNORE", "value": "\n".join(spec.policy.ignore)},
        {"name": "BSLS_QUICK_INTERVAL", "value": f"{spec.maintenance.quickIntervalMinutes}m"},
        {"name": "BSLS_FULL_INTERVAL", "value": f"{spec.maintenance.fullIntervalHours}h"},
    ]
    if spec.objectLock is not None:
        out += [
            {"name": "BSLS_RETENTION_MODE", "value": spec.objectLock.mode},
            {"name": "BSLS_RETENTION_PERIOD", "value": f"{spec.objectLock.periodDays * 24}h"},
        ]
    return out


def applied(spec: BSLRSpec) -> dict[str, object]:
    """The settings as the status shows them once a Job applied them."""
    out: dict[str, object] = {
        "format": spec.format.effective(),
        "policy": {
            "compression": spec.policy.compression,
            "retention": spec.policy.retention.model_dump(),
            "ignore": list(spec.policy.ignore),
        },
    }
    if spec.objectLock is not None:
        out["objectLock"] = {"mode": spec.objectLock.mode, "periodDays": spec.objectLock.periodDays}
    return out


def digest(spec: BSLRSpec) -> str:
    """A digest of what the Jobs apply: a change runs the init Job again."""
    doc = json.dumps(env(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:16]
