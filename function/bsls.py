"""Composing a BackupStorageLocationServer, in the order of the reconciliation flow.

1. Validate the spec and declare what must be read (the BSLR, password Secrets, a
   brought certificate), all pinned to the tenant's namespace.
2. Repository: the BSLR must exist, be valid and be Ready.
3. TLS: keep or renew the serving certificate under a CA that clients pin.
4. Server: Deployment, Service, NetworkPolicy, control credentials.
5. Users: one credentials Secret each and a sync Job named by what it applies.
6. Status: endpoint, fingerprint, users, conditions, readiness.

Anything that depends on an input that is missing or broken is kept exactly as it runs
(or not created yet), and a condition says what to fix.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import hmac
import json
import re

import pydantic
from crossplane.function import resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import json_format, struct_pb2

from function import bundle, names, pods, repository, serving, status, users
from function.models import BSLRSpec, BSLSSpec, FunctionInput, describe_error, user_spec
from function.observed import Observed, normalise
from function.resources import jobs, secrets, server
from function.safe import mapping, text
from function.status import Conditions
from function.structs import BUILT, Built
from function.tenancy import CLAIM_NAMESPACE_LABEL, InputError, belongs, in_namespace, tenant_name

SCRIPT_NAMES = ("server.sh", "user-sync.sh")


@dataclasses.dataclass
class Repo:
    """The outcome of reading the BSLR."""

    connection: repository.Connection | None
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Context:
    """What every step of one call needs to know."""

    name: str
    namespace: str
    spec: BSLSSpec
    inp: FunctionInput
    observed: Observed
    port: int
    endpoint: str
    spec_key: bytes  # the serialized spec: keys caches of what derives from it


@dataclasses.dataclass(frozen=True)
class Control:
    """The control user's credentials and the key that makes digests unguessable."""

    username: str
    password: str
    hmac_key: str
    secret: dict


def compose(  # noqa: PLR0917 - one call's inputs, passed straight through
    req: fnv1.RunFunctionRequest,  # noqa: ARG001 - same signature as bslr.compose
    rsp: fnv1.RunFunctionResponse,
    observed: Observed,
    inp: FunctionInput,
    namespace: str,
    now: datetime.datetime,
) -> None:
    """Compose the server of one BSLS into `rsp`."""
    xr = observed.xr
    name = tenant_name(xr)
    spec = _spec(observed)

    # 1. Requirements. Declared on every call; Crossplane calls again until they settle.
    _require(rsp, spec, inp, namespace, xr)
    if not all(observed.resolved(n) for n in rsp.requirements.resources):
        return

    port = spec.service.port or inp.servicePort
    ctx = Context(
        name,
        namespace,
        spec,
        inp,
        observed,
        port,
        server.endpoint(name, namespace, port),
        observed.xr_spec_bytes(),
    )
    previous = _previous_status(xr)
    conditions = Conditions()

    # 2. Repository.
    repo = _repository(ctx, xr)
    conditions.set(status.REPOSITORY_READY, repo.connection is not None, repo.reason, repo.message)

    # 3. TLS.
    served = serving.serve(
        observed=observed,
        spec=spec,
        inp=inp,
        name=name,
        namespace=namespace,
        now=now,
        previous=previous,
        host=server.endpoint_host(name, namespace),
    )
    conditions.set(status.TLS_READY, served.ok, served.reason, served.message)
    # 4. Server.
    control = _control(ctx)
    scripts_cm = secrets.scripts(name, namespace, SCRIPT_NAMES)
    connection = repo.connection if served.ok else None
    desired: dict[str, dict | Built] = {
        **served.manifests,
        names.CONTROL: BUILT.get(
            ("control", name, namespace, control.username, control.password, control.hmac_key),
            lambda: control.secret,
        ),
        names.SCRIPTS: BUILT.get(("scripts", name, namespace), lambda: scripts_cm),
        **_ca_bundle(ctx, served),
        **_server(ctx, connection, served, control, scripts_cm),
    }

    # 5. Users.
    resolved = users.resolve(
        spec.users,
        xr=name,
        observed_credentials=_observed_credentials(ctx),
        required_secrets=_password_secrets(ctx),
    )
    desired.update(_users(ctx, connection, served, control, scripts_cm, resolved))
    problems = [r.problem for r in resolved if r.problem]
    syncing = connection is not None and not problems
    job = next((v for k, v in desired.items() if k.startswith(f"{names.USER_SYNC}-")), None)
    job_name = job.name if isinstance(job, Built) and syncing else None
    _users_condition(conditions, ctx, job_name, problems)

    # 6. Status and readiness.
    _server_condition(conditions, ctx, composed=connection is not None)
    status.emit(rsp, observed, desired)
    if names.SERVER not in desired:
        # Everything composed may be ready, but without a server nothing is served.
        rsp.desired.composite.ready = fnv1.READY_FALSE
    fingerprint = served.fingerprint or previous["tlsFingerprint"]
    xr_status = {
        "endpoint": ctx.endpoint,
        "tlsFingerprint": fingerprint,
        # For `kubectl get`: enough to tell servers apart at a glance, never to pin.
        "tlsFingerprintShort": f"{fingerprint[:12]}..." if fingerprint else "",
        "certificateNotAfter": served.not_after or previous["certificateNotAfter"],
        "userCount": len(resolved),
        "users": [
            {"identity": r.user.identity, "credentialsSecretName": r.secret_name} for r in resolved
        ],
    }
    resource.update(rsp.desired.composite, {"status": xr_status})
    response.set_conditions(rsp, *conditions.items)
    status.announce(rsp, xr, conditions)


def _ca_bundle(ctx: Context, served: serving.ServedTLS) -> dict[str, dict | Built]:
    """The public CA bundle clients and the sync Job trust, kept as it is when unknown."""
    if served.trust_pem:
        key = ("ca-bundle", ctx.name, ctx.namespace, served.trust_pem)
        return {
            names.CA_BUNDLE: BUILT.get(
                key, lambda: secrets.ca_bundle(ctx.name, ctx.namespace, served.trust_pem)
            )
        }
    kept = ctx.observed.keep(names.CA_BUNDLE)
    return {names.CA_BUNDLE: kept} if kept is not None else {}


def _server(
    ctx: Context,
    connection: repository.Connection | None,
    served: serving.ServedTLS,
    control: Control,
    scripts_cm: dict,
) -> dict[str, dict | Built]:
    """The Service, the NetworkPolicy and, when it can run, the server Deployment."""
    name, namespace, spec = ctx.name, ctx.namespace, ctx.spec
    out: dict[str, dict | Built] = {
        names.SERVICE: BUILT.get(
            ("service", name, namespace, spec.service.type, ctx.port),
            lambda: server.service(name, namespace, spec, ctx.port),
        )
    }
    if spec.networkPolicy.enabled:
        out[names.NETWORK_POLICY] = BUILT.get(
            ("network-policy", name, namespace, ctx.spec_key),
            lambda: server.network_policy(name, namespace, spec),
        )
    if ctx.spec.metrics.podMonitor:
        out[names.POD_MONITOR] = server.pod_monitor(ctx.name, ctx.namespace)
    if connection is not None:
        rollout = {
            "tls-digest": served.chain_digest,
            "scripts-digest": _scripts_digest(),
            "repository-digest": connection.digest,
            "control-digest": _keyed(control.hmac_key, control.password)[:16],
        }
        inputs = {
            "xr": ctx.name,
            "namespace": ctx.namespace,
            "image": ctx.inp.kopiaImage,
            "uid": ctx.inp.runAsUser,
            "connection": connection,
            "tls_secret": served.secret_name,
            "append_ca": served.append_ca,
            "control_secret": control.secret["metadata"]["name"],
            "control_username": control.username,
            "scripts_config_map": scripts_cm["metadata"]["name"],
        }
        key = ("server", ctx.spec_key, *inputs.values(), *sorted(rollout.items()))
        out[names.SERVER] = BUILT.get(
            key, lambda: server.deployment(spec=ctx.spec, rollout=rollout, **inputs)
        )
    elif (kept := ctx.observed.keep(names.SERVER)) is not None:
        out[names.SERVER] = kept
    return out


def _users(  # noqa: PLR0917
    ctx: Context,
    connection: repository.Connection | None,
    served: serving.ServedTLS,
    control: Control,
    scripts_cm: dict,
    resolved: list[users.Resolved],
) -> dict[str, dict | Built]:
    """One credentials Secret per user, and the sync Job when every password is known."""
    out: dict[str, dict | Built] = {}
    for r in resolved:
        key = names.credentials_key(r.user.identity)
        legacy = names.legacy_credentials_key(r.user.identity)
        if r.password is not None and served.trust_pem:
            out[key] = _credentials(ctx, r, served)
        elif (kept := ctx.observed.keep(key)) is not None:
            out[key] = kept
        elif (kept := ctx.observed.keep(legacy)) is not None:
            # Not moved to its new name yet: the old Secret stays until it can be.
            out[legacy] = kept
    if connection is not None and not any(r.problem for r in resolved) and served.trust_pem:
        settings = {
            "endpoint": ctx.endpoint,
            "repository": connection.digest,
            "image": ctx.inp.kopiaImage,
            "scripts": _scripts_digest(),
            "control": control.password,
        }
        job = _sync_job(
            ctx,
            digest=users.sync_digest(control.hmac_key, resolved, settings),
            connection=connection,
            sources=tuple((r.secret_name, r.user.identity) for r in resolved),
            control_secret=control.secret["metadata"]["name"],
            control_username=control.username,
            scripts_config_map=scripts_cm["metadata"]["name"],
        )
        out[names.job_key(names.USER_SYNC, job.name)] = job
    else:
        # Keep the last sync exactly as it is: it stays the one in force.
        for key in ctx.observed.keys(f"{names.USER_SYNC}-"):
            if (kept := ctx.observed.keep(key)) is not None:
                out[key] = kept
    return out


def _credentials(ctx: Context, r: users.Resolved, served: serving.ServedTLS) -> Built:
    fingerprint, trust = served.fingerprint, served.trust_pem
    key = ("credentials", ctx.name, ctx.namespace, r.user, r.secret_name, r.password)
    return BUILT.get(
        (*key, ctx.endpoint, trust, fingerprint),
        lambda: bundle.credentials_secret(
            ctx.name, ctx.namespace, r, ctx.endpoint, trust, fingerprint
        ),
    )


def _sync_job(
    ctx: Context,
    *,
    digest: str,
    connection: repository.Connection,
    sources: tuple[tuple[str, str], ...],
    control_secret: str,
    control_username: str,
    scripts_config_map: str,
) -> Built:
    """The sync Job, cached by its inputs.

    `digest` covers the identities and passwords, and with the XR's name the credentials
    Secret names, so the long list of sources stays out of the key.
    """
    inp = ctx.inp
    key = (
        "user-sync",
        ctx.name,
        ctx.namespace,
        inp.kopiaImage,
        inp.runAsUser,
        ctx.endpoint,
        digest,
        connection.digest,
        control_secret,
        control_username,
        scripts_config_map,
    )
    return BUILT.get(
        key,
        lambda: jobs.user_sync(
            xr=ctx.name,
            namespace=ctx.namespace,
            digest=digest,
            image=inp.kopiaImage,
            uid=inp.runAsUser,
            connection=connection,
            sources=sources,
            endpoint=ctx.endpoint,
            ca_bundle=names.secret(ctx.name, "ca-bundle"),
            control_secret=control_secret,
            control_username=control_username,
            scripts_config_map=scripts_config_map,
        ),
    )


def _server_condition(conditions: Conditions, ctx: Context, *, composed: bool) -> None:
    obs = ctx.observed.get(names.SERVER)
    deployment = f"{ctx.namespace}/{names.server(ctx.name)}"
    if status.deployment_available(obs):
        conditions.set(
            status.SERVER_AVAILABLE, True, "Available", f"The server answers at {ctx.endpoint}."
        )
    elif obs is None and composed:
        conditions.set(
            status.SERVER_AVAILABLE,
            False,
            "Deploying",
            f"Deployment {deployment} is being created.",
        )
    elif obs is None:
        conditions.set(
            status.SERVER_AVAILABLE,
            False,
            "NotDeployed",
            "The server is not deployed yet: see the RepositoryReady and TLSReady conditions.",
        )
    else:
        conditions.set(
            status.SERVER_AVAILABLE,
            False,
            "Unavailable",
            f"Deployment {deployment} has no available replica yet; see why with: "
            f"kubectl -n {ctx.namespace} describe deployment {names.server(ctx.name)}",
        )


# ---------------------------------------------------------------------------- steps


def _previous_status(xr: dict) -> dict[str, str]:
    """What the XR's status said before: re-published when this call cannot know better."""
    fingerprint = text(xr, "status", "tlsFingerprint")
    return {
        "tlsFingerprint": fingerprint if re.fullmatch(r"[0-9a-f]{64}", fingerprint) else "",
        "certificateNotAfter": text(xr, "status", "certificateNotAfter"),
    }


def _spec(observed: Observed) -> BSLSSpec:
    parsed = _parse_spec(observed.xr_spec_bytes())
    if isinstance(parsed, str):
        raise InputError(parsed)
    return parsed


@functools.lru_cache(maxsize=256)
def _parse_bslr(spec: str) -> BSLRSpec | pydantic.ValidationError:
    """Validate a repository's spec once per distinct spec (the key is its JSON)."""
    try:
        return BSLRSpec.model_validate(normalise(user_spec(json.loads(spec))))
    except pydantic.ValidationError as e:
        return e


@functools.lru_cache(maxsize=128)
def _parse_spec(spec: bytes) -> BSLSSpec | str:
    """Validate a spec once per distinct spec (the key is its serialized Struct)."""
    value = struct_pb2.Value()
    value.ParseFromString(spec)
    try:
        return BSLSSpec.model_validate(normalise(user_spec(json_format.MessageToDict(value))))
    except pydantic.ValidationError as e:
        return f"invalid BackupStorageLocationServer: {describe_error(e, 'spec')}"


def _require(
    rsp: fnv1.RunFunctionResponse, spec: BSLSSpec, inp: FunctionInput, namespace: str, xr: dict
) -> None:
    """Every selector is pinned to the tenant's namespace: Crossplane does not restrict it."""
    response.require_resources(
        rsp,
        names.REQ_REPOSITORY,
        inp.repositoryApiVersion,
        inp.repositoryKind,
        match_name=spec.repositoryRef.name,
        namespace=namespace,
    )
    for secret_name in sorted(
        {u.passwordSecretRef.name for u in spec.users if u.passwordSecretRef}
    ):
        response.require_resources(
            rsp,
            names.secret_requirement(secret_name),
            "v1",
            "Secret",
            match_name=secret_name,
            namespace=namespace,
        )
    if spec.tls.secretRef is not None:
        response.require_resources(
            rsp,
            names.REQ_TLS_SECRET,
            "v1",
            "Secret",
            match_name=spec.tls.secretRef.name,
            namespace=namespace,
        )
    # Every server of the tenant, to refuse a second server on the same repository.
    # Legacy XRs are cluster-scoped: find them by the claim namespace they carry.
    api_version, kind = text(xr, "apiVersion"), text(xr, "kind")
    if text(xr, "metadata", "namespace"):
        response.require_resources(rsp, names.REQ_SERVERS, api_version, kind, namespace=namespace)
    else:
        response.require_resources(
            rsp,
            names.REQ_SERVERS,
            api_version,
            kind,
            match_labels={CLAIM_NAMESPACE_LABEL: namespace},
        )


def _repository(ctx: Context, xr: dict) -> Repo:
    ref = f"{ctx.namespace}/{ctx.spec.repositoryRef.name}"
    bslr = in_namespace(ctx.observed.required(names.REQ_REPOSITORY), ctx.namespace)
    if bslr is None:
        return Repo(
            None,
            "NotFound",
            f"BackupStorageLocationRepository {ref} does not exist; create it or fix "
            "spec.repositoryRef.name. A running server is left as it is.",
        )
    bslr_spec = _parse_bslr(json.dumps(mapping(bslr, "spec"), sort_keys=True))
    if isinstance(bslr_spec, pydantic.ValidationError):
        e = bslr_spec
        return Repo(
            None,
            "InvalidRepository",
            f"BackupStorageLocationRepository {ref} is invalid: {describe_error(e, 'spec')}",
        )
    if not status.condition_true(bslr, "Ready"):
        why = status.condition_message(bslr, "Ready")
        return Repo(
            None,
            "NotReady",
            f"BackupStorageLocationRepository {ref} is not Ready yet"
            + (f" ({why})" if why else "")
            + "; the server starts once the repository is initialised.",
        )
    owner = _repository_owner(ctx, xr)
    if owner is not None:
        return Repo(
            None,
            "RepositoryInUse",
            f"BackupStorageLocationServer {ctx.namespace}/{owner} already serves repository "
            f"{ctx.spec.repositoryRef.name}; users live in the repository, so two servers would "
            "overwrite each other's users. Point this server at another repository.",
        )
    return Repo(repository.connection(bslr_spec), "Available", f"Repository {ref} is Ready.")


def _repository_owner(ctx: Context, xr: dict) -> str | None:
    """The name of an older server on the same repository, or None if this one owns it.

    Users live in the repository, so only one server may manage them: the oldest one
    (by creation time, then name) wins.
    """
    mine = (text(xr, "metadata", "creationTimestamp"), text(xr, "metadata", "name"))
    older = []
    for other in ctx.observed.required_all(names.REQ_SERVERS):
        if not belongs(other, ctx.namespace):
            continue
        ref = text(other, "spec", "repositoryRef", "name")
        key = (text(other, "metadata", "creationTimestamp"), text(other, "metadata", "name"))
        if ref == ctx.spec.repositoryRef.name and key < mine and key[1] != mine[1]:
            older.append(key)
    return min(older)[1] if older else None


def _control(ctx: Context) -> Control:
    """The control user's password and the digest key: generated once, then read back."""
    found = ctx.observed.secret_bytes(names.CONTROL, "password", "hmac-key")
    password, key = (v.decode("utf-8", "replace") for v in found) if found else ("", "")
    if len(password) < 16:
        password = users.generate_password()
    if len(key) < 32:
        key = users.generate_password() + users.generate_password()
    username = ctx.inp.controlUsername
    return Control(
        username, password, key, secrets.control(ctx.name, ctx.namespace, username, password, key)
    )


def _observed_credentials(ctx: Context) -> dict[str, dict]:
    """The generated passwords kept in the observed credentials Secrets.

    A Secret composed before 0.2 (key `credentials-<identity>`) is read too, so its
    password moves to the new Secret; only if it was written for this very identity,
    since the old names let two look-alike identities share one Secret.
    """
    out = {}
    for user in ctx.spec.users:
        if user.passwordSecretRef is not None:
            continue
        found = ctx.observed.secret_value(names.credentials_key(user.identity), "password")
        legacy = names.legacy_credentials_key(user.identity)
        if found is None and (
            ctx.observed.annotations(legacy).get(bundle.IDENTITY_ANNOTATION) == user.identity
        ):
            found = ctx.observed.secret_value(legacy, "password")
        if found is not None:
            out[user.identity] = {"data": {"password": found}}
    return out


def _password_secrets(ctx: Context) -> dict[str, dict | None]:
    out: dict[str, dict | None] = {}
    for user in ctx.spec.users:
        ref = user.passwordSecretRef
        if ref is None:
            continue
        requirement = names.secret_requirement(ref.name)
        if ctx.observed.resolved(requirement):
            secret = ctx.observed.required(requirement)
            out[ref.name] = in_namespace(secret, ctx.namespace)
    return out


def _users_condition(
    conditions: Conditions, ctx: Context, job_name: str | None, problems: list[str]
) -> None:
    """Say which sync is in force, or why none is. `job_name` is the Job composed now."""
    count = len(ctx.spec.users)
    obs = ctx.observed.get(names.job_key(names.USER_SYNC, job_name)) if job_name else None
    if problems:
        conditions.set(
            status.USERS_SYNCED,
            False,
            "UserInputInvalid",
            "; ".join(problems)
            + ". Users are kept as the last good sync left them until this is fixed.",
        )
        return
    if job_name is None:
        conditions.set(
            status.USERS_SYNCED,
            False,
            "WaitingForServer",
            "Users are synced once the repository is Ready and TLS is in place.",
        )
        return
    namespace = ctx.namespace
    same = status.observed_name(obs) == job_name
    if same and status.job_complete(obs):
        conditions.set(
            status.USERS_SYNCED, True, "Synced", f"{count} user(s) in sync (Job {job_name})."
        )
    elif same and status.job_failed(obs):
        conditions.set(
            status.USERS_SYNCED,
            False,
            "SyncFailed",
            f"Job {namespace}/{job_name} failed; read its logs: "
            f"kubectl -n {namespace} logs job/{job_name}",
        )
    else:
        conditions.set(
            status.USERS_SYNCED,
            False,
            "Syncing",
            f"Job {namespace}/{job_name} is applying {count} user(s).",
        )


@functools.cache
def _scripts_digest() -> str:
    """A digest of the pod scripts this function ships (fixed for the process's life)."""
    return _digest_of({n: pods.script(n) for n in SCRIPT_NAMES})


def _digest_of(data: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(data):
        h.update(key.encode() + b"\0" + data[key].encode() + b"\0")
    return h.hexdigest()[:16]


def _keyed(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
