"""The custom conditions of the XRs: their types, every reason each can have, and events.

Condition types and reasons are part of the API: docs/troubleshooting.md explains each
reason and what to do about it (a test checks every member of `REASONS` is there).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from crossplane.function import response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.resource import Condition as SDKCondition


class RepositoryReady(enum.StrEnum):
    """A BSLS: whether the BSLR it names can be used."""

    AVAILABLE = "Available"
    NOT_FOUND = "NotFound"
    INVALID = "InvalidRepository"
    NOT_READY = "NotReady"
    IN_USE = "RepositoryInUse"


class TLSReady(enum.StrEnum):
    """A BSLS: whether there is a certificate to serve, and which CA clients trust."""

    ISSUED = "Issued"
    RENEWED = "Renewed"
    CA_ROLLOVER_PENDING = "CARolloverPending"
    CA_ROLLED_OVER = "CARolledOver"
    CA_REGENERATED = "CARegenerated"
    PROVIDED = "Provided"
    SECRET_NOT_FOUND = "CertificateSecretNotFound"
    INVALID = "InvalidCertificate"


class UsersSynced(enum.StrEnum):
    """A BSLS: whether the repository's users match the spec."""

    SYNCED = "Synced"
    SYNCING = "Syncing"
    SYNC_FAILED = "SyncFailed"
    USER_INPUT_INVALID = "UserInputInvalid"
    WAITING_FOR_SERVER = "WaitingForServer"


class ServerAvailable(enum.StrEnum):
    """A BSLS: whether the server Deployment serves."""

    AVAILABLE = "Available"
    DEPLOYING = "Deploying"
    NOT_DEPLOYED = "NotDeployed"
    UNAVAILABLE = "Unavailable"


class BackupsFresh(enum.StrEnum):
    """A BSLS: whether every user stored a snapshot within spec.freshness.staleAfterMinutes."""

    FRESH = "Fresh"
    STALE = "Stale"
    NOT_GATHERED = "NotGathered"
    REPORT_OUTDATED = "ReportOutdated"
    REPORT_INVALID = "ReportInvalid"
    DISABLED = "Disabled"


class Initialized(enum.StrEnum):
    """A BSLR: whether the repository exists."""

    INITIALIZED = "Initialized"
    INITIALIZING = "Initializing"
    INIT_FAILED = "InitFailed"
    CLAIM_NOT_FOUND = "ClaimNotFound"
    CLAIM_UNUSABLE = "ClaimUnusable"


class RepositoryHealthy(enum.StrEnum):
    """A BSLR: whether its last check found the storage, the repository and the password."""

    VALIDATED = "Validated"
    VALIDATION_PENDING = "ValidationPending"
    VALIDATION_FAILED = "ValidationFailed"


class MaintenanceOnSchedule(enum.StrEnum):
    """A BSLR: whether kopia's quick and full maintenance run as often as they should."""

    ON_SCHEDULE = "OnSchedule"
    OVERDUE = "Overdue"


class PasswordRotation(enum.StrEnum):
    """A BSLR: whether the repository has the password spec.passwordSecretRef names."""

    IN_FORCE = "InForce"
    ROTATING = "Rotating"
    WAITING = "WaitingForInitialization"
    ROTATION_FAILED = "RotationFailed"


# Condition type -> its reasons. The class name is the type's name.
REASONS: Mapping[str, type[enum.StrEnum]] = {
    cls.__name__: cls
    for cls in (
        RepositoryReady,
        TLSReady,
        UsersSynced,
        ServerAvailable,
        BackupsFresh,
        Initialized,
        RepositoryHealthy,
        MaintenanceOnSchedule,
        PasswordRotation,
    )
}

# Reasons that deserve a Warning even though their condition is True: clients must act.
WARN = frozenset({TLSReady.CA_REGENERATED, TLSReady.CA_ROLLOVER_PENDING, TLSReady.CA_ROLLED_OVER})


@dataclasses.dataclass(frozen=True)
class Condition:
    """One custom condition: `ok` None means Unknown."""

    ok: bool | None
    reason: enum.StrEnum
    message: str

    @property
    def type(self) -> str:
        """The condition type: the name of the reason's class."""
        return type(self.reason).__name__

    @property
    def status(self) -> str:
        """True, False or Unknown."""
        return "Unknown" if self.ok is None else ("True" if self.ok else "False")

    def sdk(self) -> SDKCondition:
        """As the SDK sets it on the XR."""
        return SDKCondition(
            typ=self.type, status=self.status, reason=str(self.reason), message=self.message
        )


class JobProgress(enum.Enum):
    """Where a Job the function composed now stands, as Crossplane observes it."""

    COMPLETE = "complete"
    FAILED = "failed"
    RUNNING = "running"  # or not observed yet


def announce(
    rsp: fnv1.RunFunctionResponse,
    before: Mapping[str, tuple[str, str]],
    conditions: tuple[Condition, ...],
) -> None:
    """Emit a result for each condition whose status or reason changed since last time.

    `before` holds the (status, reason) the previous reconcile set, by type. A change
    becomes one Warning (something is wrong, or clients must act) or Normal result, so
    events mark transitions instead of repeating on every poll.
    """
    for c in conditions:
        if before.get(c.type) == (c.status, str(c.reason)):
            continue
        text = f"{c.type} is {c.status} ({c.reason}): {c.message}"
        if c.ok is False or c.reason in WARN:
            response.warning(rsp, text)
        else:
            response.normal(rsp, text)
