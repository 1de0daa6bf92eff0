"""ServerAvailable: the server Deployment, its Service, its NetworkPolicy and its scripts.

The Deployment is composed only when the repository can be opened and there is a
certificate to serve; otherwise a running server is kept exactly as it is. Everything
the server reads only at start (the served chain, the scripts, the storage settings,
the control password) goes into the pod template as digests, so a change rolls it.
"""

from __future__ import annotations

from function import names, placement, pods
from function.conditions import Condition, ServerAvailable
from function.connection import Connection
from function.memo import recipe
from function.resources import configmaps, server
from function.snapshot import ServerSnapshot
from function.step import KEEP, Desired, Step
from function.steps.control import Control
from function.steps.serving import Served


def port(s: ServerSnapshot) -> int:
    """The Service port clients dial."""
    return s.spec.service.port or s.input.servicePort


def endpoint(s: ServerSnapshot) -> str:
    """The URL VM owners pass to `--url`."""
    return server.endpoint(s.xr.tenant, s.xr.namespace, port(s))


def step(
    s: ServerSnapshot, connection: Connection | None, served: Served, control: Control
) -> Step[None]:
    """The server's objects, and whether it serves."""
    owner, namespace, spec = s.xr.tenant, s.xr.namespace, s.spec
    resources: dict[str, Desired] = {
        names.SCRIPTS: recipe(configmaps.scripts, owner, namespace, "scripts", pods.SERVER_SCRIPTS),
        names.SERVICE: recipe(
            server.service,
            owner,
            namespace,
            spec.service.type,
            port(s),
            node_port=spec.service.nodePort,
            annotations=tuple(sorted(spec.service.annotations.items())),
        ),
    }
    if spec.networkPolicy.enabled:
        resources[names.NETWORK_POLICY] = recipe(
            server.network_policy,
            owner,
            namespace,
            spec.networkPolicy.peers,
            spec.metrics.enabled,
            tuple(spec.metrics.from_),
        )
    if spec.metrics.podMonitor:
        resources[names.POD_MONITOR] = recipe(server.pod_monitor, owner, namespace)
    if connection is not None:
        storage = server.storage_for(spec.server.cache)
        rollout = {
            "tls-digest": served.chain_digest,
            # The server pod's scripts only: a Job's changed script restarts no server.
            "scripts-digest": pods.scripts_digest(pods.SERVER_POD_SCRIPTS),
            "repository-digest": connection.digest,
            "control-digest": control.keyed(control.password)[:16],
        }
        resources[names.SERVER] = recipe(
            server.deployment,
            owner=owner,
            namespace=namespace,
            image=spec.server.image or s.input.kopiaImage,
            uid=s.input.runAsUser,
            log_level=spec.server.logLevel,
            resources=server.resources_for(spec.server.resources, storage),
            storage=storage,
            metrics=spec.metrics.enabled,
            connection=connection,
            tls_secret=served.secret_name,
            append_ca=served.append_ca,
            control_secret=control.secret_name,
            control_username=control.username,
            scripts_config_map=names.owned(owner, "scripts"),
            rollout=rollout,
            placement=placement.merge(s.input.placement, spec.placement, connection.claim),
        )
    elif names.SERVER in s.observed:
        resources[names.SERVER] = KEEP
    return Step(resources, _condition(s, composed=connection is not None), None)


def _condition(s: ServerSnapshot, *, composed: bool) -> Condition:
    deployment = names.server(s.xr.tenant)
    where = f"{s.xr.namespace}/{deployment}"
    if s.observed.available(names.SERVER):
        return Condition(True, ServerAvailable.AVAILABLE, f"The server answers at {endpoint(s)}.")
    if names.SERVER not in s.observed and composed:
        return Condition(False, ServerAvailable.DEPLOYING, f"Deployment {where} is being created.")
    if names.SERVER not in s.observed:
        return Condition(
            False,
            ServerAvailable.NOT_DEPLOYED,
            "The server is not deployed yet: see the RepositoryReady and TLSReady conditions.",
        )
    return Condition(
        False,
        ServerAvailable.UNAVAILABLE,
        f"Deployment {where} has no available replica yet; see why with: "
        f"kubectl -n {s.xr.namespace} describe deployment {deployment}",
    )
