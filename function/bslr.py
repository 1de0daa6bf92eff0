"""Composing a BackupStorageLocationRepository: a Job that connects to or creates it.

The repository is Ready once the Job completed. The Job's name carries a digest of the
storage settings, so changing them runs it again; an unchanged repository keeps its
completed Job.
"""

from __future__ import annotations

import pydantic
from crossplane.function import resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from function import names, repository, status
from function.models import BSLRSpec, FunctionInput, describe_error, user_spec
from function.observed import Observed, normalise
from function.resources import jobs, secrets
from function.status import Conditions
from function.tenancy import InputError, tenant_name

SCRIPT_NAMES = ("repository-init.sh",)


def compose(
    req: fnv1.RunFunctionRequest,  # noqa: ARG001 - same signature as bsls.compose
    rsp: fnv1.RunFunctionResponse,
    observed: Observed,
    inp: FunctionInput,
    namespace: str,
) -> None:
    """Compose the initialisation of one repository into `rsp`."""
    xr = observed.xr
    name = tenant_name(xr)
    try:
        spec = BSLRSpec.model_validate(normalise(user_spec(observed.xr_spec() or {})))
    except pydantic.ValidationError as e:
        msg = f"invalid BackupStorageLocationRepository: {describe_error(e, 'spec')}"
        raise InputError(msg) from None

    connection = repository.connection(spec)
    # "repository-scripts", not "scripts": a BSLS of the same name has a "<name>-scripts".
    scripts_cm = secrets.scripts(name, namespace, SCRIPT_NAMES, suffix="repository-scripts")
    job = jobs.repository_init(
        xr=name,
        namespace=namespace,
        image=inp.kopiaImage,
        uid=inp.runAsUser,
        connection=connection,
        scripts_config_map=scripts_cm["metadata"]["name"],
    )
    job_name = job["metadata"]["name"]
    job_key = names.job_key(names.REPOSITORY_INIT, job_name)
    desired = {
        names.REPOSITORY_SCRIPTS: scripts_cm,
        job_key: job,
        names.NETWORK_POLICY: jobs.deny_ingress(name, namespace, "repository-init"),
    }
    status.emit(rsp, observed, desired)

    conditions = Conditions()
    obs = observed.get(job_key)
    same = status.observed_name(obs) == job_name
    if same and status.job_complete(obs):
        conditions.set(
            status.INITIALIZED,
            True,
            "Initialized",
            f"The repository at {connection.location} is initialised (Job {job_name}).",
        )
    elif same and status.job_failed(obs):
        conditions.set(
            status.INITIALIZED,
            False,
            "InitFailed",
            f"Job {namespace}/{job_name} could not connect to or create the repository at "
            f"{connection.location}. Its log says why (bad credentials, a missing bucket, or "
            "a password that does not open the existing data): "
            f"kubectl -n {namespace} logs job/{job_name}",
        )
    else:
        conditions.set(
            status.INITIALIZED,
            False,
            "Initializing",
            f"Job {namespace}/{job_name} is connecting to or creating the repository at "
            f"{connection.location}.",
        )
    resource.update(
        rsp.desired.composite,
        {"status": {"backend": connection.backend, "location": connection.location}},
    )
    response.set_conditions(rsp, *conditions.items)
    status.announce(rsp, observed.xr, conditions)
