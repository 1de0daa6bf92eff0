"""A stand-in for the parts of Kubernetes the rendered manifests use, as local processes.

The manifests the function renders are run exactly as written: the same command, args
and environment. Only what a cluster provides is substituted (README.md lists each):

- the API server: an object store that `apply` fills (Secrets' `stringData` is folded
  into base64 `data`, as the API server does) and the function reads required
  resources from;
- volumes: every Secret, ConfigMap, projected, emptyDir and PVC volume becomes a folder
  (emptyDirs are fresh per pod, a PVC lives as long as the cluster);
- the kubelet: env from values and `secretKeyRef`s, `$(VAR)` expansion, and mount paths
  in env values and args rewritten to those folders;
- cluster networking and DNS: a Service gets a loopback address of its own (in
  127.0.0.0/8, which Linux routes to `lo`) that stays while the Service exists, like a
  ClusterIP; a pod listening on `0.0.0.0:<containerPort>` listens on that address and
  the Service's port; and every pod (and every VM client) runs in a private mount
  namespace whose /etc/hosts maps `<svc>.<ns>.svc` (and `.svc.cluster.local`,
  `<svc>.<ns>`) to it, so clients dial the names a cluster hands out and verify TLS
  against them;
- the Job and Deployment controllers: a Job runs once per name; a Deployment's pod is
  (re)created, Recreate-style, when its template changes or it died.

Anything else in a manifest (an init container, a volume or env source this file does
not know) raises HarnessError instead of being skipped, so the harness never runs a pod
that differs from what the manifest says.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime
import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable

from function.snapshot import normalise
from tests import helpers
from tests.procs import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
# The pods see only what their manifest gives them, plus a PATH on which `kopia` is the
# pinned binary (the image's /bin/kopia).
BASE_ENV = {"PATH": f"{TOOLS_BIN}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
READY_TIMEOUT = 30.0
JOB_TIMEOUT = 180.0


class HarnessError(RuntimeError):
    """A manifest uses something this stand-in cannot run faithfully, or a pod failed."""


def with_hosts(hosts: pathlib.Path, argv: list[str]) -> list[str]:
    """`argv` run in a private mount namespace whose /etc/hosts is `hosts` (root only).

    How a pod (or a VM) resolves cluster DNS names here: the names resolve to the
    Service's loopback address, and nothing on the machine outside the process changes.
    """
    bind = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", bind,
            str(hosts), *argv]  # fmt: skip


def hosts_text(entries: dict[str, list[str]]) -> str:
    """An /etc/hosts: localhost, then one line per address."""
    lines = ["127.0.0.1 localhost", "::1 localhost"]
    lines += [f"{ip} {' '.join(names)}" for ip, names in sorted(entries.items())]
    return "\n".join(lines) + "\n"


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: unknown references stay, `$$` escapes a `$`."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([-._A-Za-z0-9]+)\)", sub, text)


def _b64decode(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


@dataclasses.dataclass
class Process:
    """A process started in its own session, so stopping it stops its children too."""

    name: str
    popen: subprocess.Popen
    log: pathlib.Path  # stdout and stderr, interleaved as `kubectl logs` shows them

    @property
    def running(self) -> bool:
        """Whether the process has not exited."""
        return self.popen.poll() is None

    def logs(self) -> str:
        """What `kubectl logs` would show."""
        return self.log.read_text(errors="replace")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds (a pod's termination)."""
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def _signal(self, sig: int) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


@dataclasses.dataclass
class JobRun:
    """The one run of a Job."""

    name: str  # the Job's
    pod: str
    returncode: int
    logs: str
    finished: str = ""  # when the pod ended, as the Job controller writes times

    @property
    def succeeded(self) -> bool:
        """Whether the Job's pod exited 0."""
        return self.returncode == 0


@dataclasses.dataclass
class Pod:
    """One pod of a rendered template, materialised on the host, ready to run."""

    name: str
    owner: str  # the Job or Deployment
    namespace: str
    template: dict
    dir: pathlib.Path
    argv: list[str]
    env: dict[str, str]
    ports: dict[int, tuple[str, int]]  # containerPort -> (host address, port)
    port_names: dict[str, int]  # port name -> containerPort
    hosts: pathlib.Path  # the cluster's /etc/hosts
    process: Process | None = None

    def start(self) -> Process:
        """Start the container's command."""
        log = self.dir / "log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                with_hosts(self.hosts, self.argv),
                env=self.env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.process = Process(self.name, popen, log)
        return self.process

    def run(self, timeout: float = JOB_TIMEOUT) -> JobRun:
        """Run the container to completion (restartPolicy Never, one attempt)."""
        process = self.start()
        try:
            process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            msg = f"pod {self.name} did not finish within {timeout}s:\n{process.logs()}"
            raise HarnessError(msg) from None
        return JobRun(self.owner, self.name, process.popen.returncode, process.logs())

    def address(self, port: int | str) -> tuple[str, int]:
        """The host address of a container port given by number or name."""
        number = self.port_names[port] if isinstance(port, str) else port
        return self.ports[number]

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the container's tcpSocket readiness probe succeeds."""
        container = self.template["spec"]["containers"][0]
        probe = container.get("readinessProbe")
        assert self.process is not None
        if probe is None:
            return
        timing = {
            "periodSeconds",
            "initialDelaySeconds",
            "timeoutSeconds",
            "successThreshold",
            "failureThreshold",
        }
        if "tcpSocket" not in probe or set(probe) - timing - {"tcpSocket"}:
            msg = f"pod {self.name}: only tcpSocket readiness probes are supported: {probe}"
            raise HarnessError(msg)
        address = self.address(probe["tcpSocket"]["port"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.running:
                msg = (
                    f"pod {self.name} exited with {self.process.popen.returncode} before it "
                    f"was ready:\n{self.process.logs()}"
                )
                raise HarnessError(msg)
            with contextlib.suppress(OSError), socket.create_connection(address, 0.5):
                return
            time.sleep(0.1)
        msg = f"pod {self.name} is not ready after {timeout}s:\n{self.process.logs()}"
        raise HarnessError(msg)


class Cluster:
    """The API server, kubelet, networking and controllers, as far as the manifests need."""

    def __init__(self, root: pathlib.Path, extra_env: dict[str, dict[str, str]] | None = None):
        """A cluster whose files live under `root`.

        Args:
            root: A fresh folder for PVCs and pods.
            extra_env: Env added to containers by container name, for test speed-ups
                only; a variable the manifest sets itself is an error, never overridden.
        """
        self.root = root
        self.extra_env = extra_env or {}
        self.objects: dict[tuple[str, str, str], dict] = {}  # (kind, namespace, name)
        self.claims: dict[tuple[str, str], pathlib.Path] = {}
        # Each Service's "ClusterIP": a loopback address of its own.
        self.service_ips: dict[tuple[str, str], str] = {}
        self._ip_base = random.randint(64, 250)  # noqa: S311 - not security
        self._spares = 0
        self.hosts = root / "hosts"
        self.hosts.write_text(hosts_text({}))
        self.jobs: dict[tuple[str, str], JobRun] = {}
        self.pods: dict[tuple[str, str], Pod] = {}  # a Deployment's running pod
        self._counter = 0
        # The controllers' clock: the one the function reads, once a Composite shares it.
        self.clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)

    # ------------------------------------------------------------------ API server

    def apply(self, *manifests: dict) -> None:
        """Create or replace objects, as `kubectl apply` (or Crossplane) would."""
        for manifest in manifests:
            obj = normalise(copy.deepcopy(manifest))
            assert isinstance(obj, dict)
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            if obj["kind"] == "Secret" and "stringData" in obj:
                data = obj.setdefault("data", {})
                for key, value in obj.pop("stringData").items():
                    data[key] = base64.b64encode(str(value).encode()).decode()
            key = (obj["kind"], meta["namespace"], meta["name"])
            self.objects[key] = obj
            if obj["kind"] == "Service" and key[1:] not in self.service_ips:
                n = len(self.service_ips) + 1
                self.service_ips[key[1:]] = f"127.{self._ip_base}.{n // 250}.{n % 250 + 2}"
                self._write_hosts()

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete an object; deleting a Deployment stops its pod."""
        self.objects.pop((kind, namespace, name), None)
        if kind == "Service" and self.service_ips.pop((namespace, name), None):
            self._write_hosts()
        if kind == "Deployment" and (pod := self.pods.pop((namespace, name), None)):
            assert pod.process is not None
            pod.process.stop()

    def _write_hosts(self) -> None:
        """Cluster DNS: every Service's names. Written in place: pods bind-mount the file."""
        entries = {
            ip: [f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local", f"{svc}.{ns}"]
            for (ns, svc), ip in self.service_ips.items()
        }
        with self.hosts.open("r+") as f:
            f.truncate(0)
            f.write(hosts_text(entries))

    def service_ip(self, namespace: str, name: str) -> str:
        """A Service's address."""
        return self.service_ips[(namespace, name)]

    def spare_ip(self) -> str:
        """A loopback address no Service uses (for a machine in the middle)."""
        self._spares += 1
        return f"127.{self._ip_base}.250.{self._spares}"

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        """An object, or None."""
        return self.objects.get((kind, namespace, name))

    def list(self) -> list[dict]:
        """Every object (what the function's required-resource selectors search)."""
        return list(self.objects.values())

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """A Secret's data, decoded; None if there is no such Secret."""
        secret = self.get("Secret", namespace, name)
        if secret is None:
            return None
        return {k: _b64decode(v) for k, v in (secret.get("data") or {}).items()}

    def config_map_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """A ConfigMap's data and binaryData; None if there is no such ConfigMap."""
        cm = self.get("ConfigMap", namespace, name)
        if cm is None:
            return None
        out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
        out.update({k: _b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        return out

    def status(self, manifest: dict) -> dict | None:
        """The status the cluster reports for a composed object (Jobs and Deployments)."""
        meta = manifest["metadata"]
        key = (meta.get("namespace", "default"), meta["name"])
        if manifest["kind"] == "Job" and key in self.jobs:
            run = self.jobs[key]
            if run.succeeded:
                return {**helpers.JOB_COMPLETE, "completionTime": run.finished}
            job = self.objects[("Job", *key)]
            return helpers.job_failed(job, run.returncode, run.finished, run.pod)
        if manifest["kind"] == "Deployment":
            pod = self.pods.get(key)
            if pod is not None and pod.process is not None and pod.process.running:
                return helpers.DEPLOYMENT_AVAILABLE
            return {"availableReplicas": 0}
        return None

    # ------------------------------------------------------------------ controllers

    def run_jobs(self) -> list[JobRun]:
        """Run every Job that has not run yet (a Job runs once per name).

        As the Job controller does: a pod that exits with a code the podFailurePolicy
        lists fails the Job at once; any other failure runs a new pod, up to
        backoffLimit times (without the controller's back-off delay between them).
        """
        runs = []
        for (kind, namespace, name), job in list(self.objects.items()):
            if kind != "Job" or (namespace, name) in self.jobs:
                continue
            fatal = {
                int(v)
                for rule in (job["spec"].get("podFailurePolicy") or {}).get("rules", [])
                if rule["action"] == "FailJob"
                for v in (rule.get("onExitCodes") or {}).get("values", [])
            }
            for _ in range(int(job["spec"].get("backoffLimit", 6)) + 1):
                pod = self.pod(namespace, name, job["spec"]["template"])
                run = pod.run()
                if run.succeeded or run.returncode in fatal:
                    break
            finished = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            run = dataclasses.replace(run, finished=finished)
            self.jobs[(namespace, name)] = run
            runs.append(run)
        return runs

    def run_cronjob(
        self, namespace: str, name: str, extra_env: dict[str, str] | None = None
    ) -> JobRun:
        """Run one Job from a CronJob's jobTemplate now, as its schedule would.

        `extra_env` is for test clocks only: it may add env, never replace the manifest's.
        """
        cronjob = self.objects[("CronJob", namespace, name)]
        template = copy.deepcopy(cronjob["spec"]["jobTemplate"]["spec"]["template"])
        container = template["spec"]["containers"][0]
        present = {e["name"] for e in container.get("env", [])}
        if present & set(extra_env or {}):
            msg = f"CronJob {name}: extra env would override the manifest's own value"
            raise HarnessError(msg)
        container.setdefault("env", []).extend(
            {"name": k, "value": v} for k, v in (extra_env or {}).items()
        )
        self._counter += 1
        pod = self.pod(namespace, f"{name}-{self._counter}", template)
        return pod.run()

    def roll_out(self) -> list[str]:
        """Give every Deployment one running, ready pod of its current template.

        A pod is replaced when the template changed or the pod died; the old one is
        stopped before the new one starts (strategy Recreate). Returns the Deployments
        whose pod was (re)created.
        """
        started = []
        for (kind, namespace, name), deployment in list(self.objects.items()):
            if kind != "Deployment":
                continue
            spec = deployment["spec"]
            if spec.get("replicas", 1) != 1:
                msg = f"Deployment {name}: only one replica is supported"
                raise HarnessError(msg)
            if spec.get("strategy", {}).get("type") != "Recreate":
                msg = f"Deployment {name}: only the Recreate strategy is modelled"
                raise HarnessError(msg)
            template = spec["template"]
            current = self.pods.get((namespace, name))
            if current is not None:
                assert current.process is not None
                if current.template == template and current.process.running:
                    continue
                current.process.stop()
            pod = self.pod(namespace, name, template)
            self.pods[(namespace, name)] = pod
            pod.start()
            pod.wait_ready()
            started.append(name)
        return started

    def kill_pod(self, namespace: str, deployment: str) -> None:
        """SIGKILL a Deployment's pod, as a node failure would."""
        pod = self.pods[(namespace, deployment)]
        assert pod.process is not None
        pod.process.kill()

    def server_pod(self, namespace: str, deployment: str) -> Pod:
        """The running pod of a Deployment."""
        return self.pods[(namespace, deployment)]

    def shutdown(self) -> None:
        """Stop every pod. Always called on teardown."""
        for pod in self.pods.values():
            if pod.process is not None:
                pod.process.kill()
        self.pods.clear()

    # ------------------------------------------------------------------ kubelet

    def claim(self, namespace: str, claim_name: str) -> pathlib.Path:
        """The folder behind a PVC (bound on first use, kept for the cluster's life)."""
        key = (namespace, claim_name)
        if key not in self.claims:
            path = self.root / "pvcs" / namespace / claim_name
            path.mkdir(parents=True)
            self.claims[key] = path
        return self.claims[key]

    def pod(self, namespace: str, owner: str, template: dict) -> Pod:
        """Materialise a pod template: volumes, env, ports, argv."""
        template = normalise(copy.deepcopy(template))
        assert isinstance(template, dict)
        spec = template["spec"]
        for unsupported in ("initContainers", "hostNetwork", "hostPID"):
            if spec.get(unsupported):
                msg = f"{owner}: {unsupported} is not supported by the harness"
                raise HarnessError(msg)
        if len(spec["containers"]) != 1:
            msg = f"{owner}: exactly one container is supported"
            raise HarnessError(msg)
        container = spec["containers"][0]
        self._counter += 1
        name = f"{owner}-{self._counter}"
        pod_dir = self.root / "pods" / name
        pod_dir.mkdir(parents=True)

        volumes = {
            v["name"]: self._volume(namespace, v, pod_dir / "volumes" / v["name"])
            for v in spec.get("volumes", [])
        }
        mounts = []
        for m in container.get("volumeMounts", []):
            if m["name"] not in volumes:
                msg = f"{owner}: volumeMount {m['name']} has no volume"
                raise HarnessError(msg)
            host = volumes[m["name"]] / m.get("subPath", "")
            mounts.append((m["mountPath"].rstrip("/"), host))
        mounts.sort(key=lambda m: len(m[0]), reverse=True)

        ports, port_names = self._ports(namespace, template, container)
        translate = _Translator(mounts=mounts, ports=ports)

        env = dict(BASE_ENV)
        container_env = self._env(namespace, owner, container)
        env.update({k: translate(v) for k, v in container_env.items()})
        for key, value in self.extra_env.get(container["name"], {}).items():
            if key in container_env:
                msg = f"{owner}: extra env {key} would override the manifest's own value"
                raise HarnessError(msg)
            env[key] = value

        raw = [*container.get("command", []), *container.get("args", [])]
        if not container.get("command"):
            msg = f"{owner}: a container without a command (the image entrypoint) is unsupported"
            raise HarnessError(msg)
        argv = [expand(translate(a), env) for a in raw]
        (pod_dir / "argv.json").write_text(json.dumps(argv, indent=1))
        return Pod(
            name, owner, namespace, template, pod_dir, argv, env, ports, port_names, self.hosts
        )

    def _volume(self, namespace: str, volume: dict, path: pathlib.Path) -> pathlib.Path:
        kinds = set(volume) - {"name"}
        if kinds == {"emptyDir"}:
            path.mkdir(parents=True)
            return path
        if kinds == {"persistentVolumeClaim"}:
            return self.claim(namespace, volume["persistentVolumeClaim"]["claimName"])
        if kinds == {"secret"}:
            src = volume["secret"]
            data = self.secret_data(namespace, src["secretName"])
            self._project(path, data, src, src.get("defaultMode", 0o644), src["secretName"])
            return path
        if kinds == {"configMap"}:
            src = volume["configMap"]
            data = self.config_map_data(namespace, src["name"])
            self._project(path, data, src, src.get("defaultMode", 0o644), src["name"])
            return path
        if kinds == {"projected"}:
            projected = volume["projected"]
            mode = projected.get("defaultMode", 0o644)
            path.mkdir(parents=True)
            for source in projected["sources"]:
                if set(source) == {"secret"}:
                    src = source["secret"]
                    data = self.secret_data(namespace, src["name"])
                elif set(source) == {"configMap"}:
                    src = source["configMap"]
                    data = self.config_map_data(namespace, src["name"])
                else:
                    msg = f"projected volume source {source} is not supported by the harness"
                    raise HarnessError(msg)
                self._project(path, data, src, mode, src["name"])
            return path
        msg = f"volume {volume} is not supported by the harness"
        raise HarnessError(msg)

    @staticmethod
    def _project(
        path: pathlib.Path, data: dict[str, bytes] | None, src: dict, mode: int, what: str
    ) -> None:
        """Write a Secret's or ConfigMap's keys as files, honouring items and modes."""
        if data is None:
            if src.get("optional"):
                path.mkdir(parents=True, exist_ok=True)
                return
            msg = f"{what} does not exist: the pod would be stuck in ContainerCreating"
            raise HarnessError(msg)
        items = src.get("items") or [{"key": k, "path": k} for k in sorted(data)]
        path.mkdir(parents=True, exist_ok=True)
        for item in items:
            if item["key"] not in data:
                if src.get("optional"):
                    continue
                msg = f"{what} has no key {item['key']!r}: the pod would not start"
                raise HarnessError(msg)
            target = path / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[item["key"]])
            target.chmod(item.get("mode", mode))

    def _env(self, namespace: str, owner: str, container: dict) -> dict[str, str]:
        """The container's env as the kubelet builds it, in the container's own paths."""
        if container.get("envFrom"):
            msg = f"{owner}: envFrom is not supported by the harness"
            raise HarnessError(msg)
        env: dict[str, str] = {}
        for entry in container.get("env", []):
            name = entry["name"]
            if "value" in entry:
                env[name] = expand(str(entry["value"]), env)
                continue
            source = entry.get("valueFrom") or {}
            if set(source) == {"secretKeyRef"}:
                ref = source["secretKeyRef"]
                data = self.secret_data(namespace, ref["name"])
            elif set(source) == {"configMapKeyRef"}:
                ref = source["configMapKeyRef"]
                data = self.config_map_data(namespace, ref["name"])
            else:
                msg = f"{owner}: env {name} from {source} is not supported by the harness"
                raise HarnessError(msg)
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                msg = (
                    f"{owner}: env {name} needs key {ref['key']!r} of {ref['name']}, which "
                    "does not exist: the kubelet would report CreateContainerConfigError"
                )
                raise HarnessError(msg)
            env[name] = data[ref["key"]].decode()
        return env

    def _ports(
        self, namespace: str, template: dict, container: dict
    ) -> tuple[dict[int, tuple[str, int]], dict[str, int]]:
        """Where each container port listens: the address and port of the Service that
        selects this pod (as a ClusterIP forwards its port), else a free local port."""
        labels = (template.get("metadata") or {}).get("labels") or {}
        ports: dict[int, tuple[str, int]] = {}
        names: dict[str, int] = {}
        for port in container.get("ports", []):
            number = port["containerPort"]
            if "name" in port:
                names[port["name"]] = number
            ports[number] = ("127.0.0.1", free_port())
            for (kind, ns, svc), service in self.objects.items():
                if kind != "Service" or ns != namespace:
                    continue
                selector = service["spec"].get("selector") or {}
                if not selector or any(labels.get(k) != v for k, v in selector.items()):
                    continue
                for sp in service["spec"].get("ports", []):
                    target = sp.get("targetPort", sp["port"])
                    if target in (number, port.get("name")):
                        ports[number] = (self.service_ips[(ns, svc)], sp["port"])
        return ports, names


@dataclasses.dataclass
class _Translator:
    """Rewrites one env value or arg from the container's world to the host's."""

    mounts: list[tuple[str, pathlib.Path]]  # longest mount path first
    ports: dict[int, tuple[str, int]]

    def __call__(self, value: str) -> str:
        # A listen address on a container port: where the pod's port is on the host.
        listen = re.fullmatch(r"(?:0\.0\.0\.0|\[::\])?:(\d+)", value)
        if listen and int(listen.group(1)) in self.ports:
            host, port = self.ports[int(listen.group(1))]
            return f"{host}:{port}"
        # A path under a mount, alone or as the value of a `--flag=`.
        m = re.fullmatch(r"(--[-\w]+=)?(/.*)", value, flags=re.DOTALL)
        if m:
            prefix, path = m.group(1) or "", m.group(2)
            for mount, host in self.mounts:
                if mount and (path == mount or path.startswith(mount + "/")):
                    return prefix + str(host) + path[len(mount) :]
        return value
