"""A guest VM inside a pod on the real node, as KubeVirt's virt-launcher runs one.

The pod carries virt-launcher's labels (`kubevirt.io: virt-launcher`,
`vm.kubevirt.io/name`) and passes the app team's namespace's Pod Security "restricted"
admission: the qemu user 107, no capabilities, no privilege escalation, the runtime's
seccomp profile. Its volumes are the ones virt-launcher has:

- the user's credentials Secret, an ordinary Secret volume at
  /var/run/kubevirt-private/secret/kopia-bundle (the kubelet's own layout), which the
  launcher script (guest/launcher.sh) turns into the Secret disk with virt-launcher's
  xorrisofs command before qemu starts;
- the root disk from a PersistentVolumeClaim (read-only): a static PersistentVolume on
  the guest image's cached folder (hack/guest.py), as a DataVolume would hold it;
- a second claim for what the test and the guest exchange: the seed disk going in, the
  output disk and the serial ports' files coming out (the test follows the report as
  the guest writes it).

qemu runs with user-mode networking (`restrict=on`) in the pod's own network namespace:
its forward to the server is `socat ... TCP:<service>.<namespace>.svc:<port>`, which
the pod resolves through the cluster's DNS and kube-proxy takes to the server pod: the
path VM -> Service -> server pod that a VM owner's connections take.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import secrets
import subprocess
import time
from typing import Any

from tests.node.tenant import node_module
from tests.vm import kubevirt
from tests.vm.guest import RUN_TIMEOUT, Guest, Layout, Run

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
LAUNCHER_IMAGE = "localhost/bsls-test/vm-launcher:qemu"
CONTAINERFILE = ROOT / "hack" / "images" / "vm-launcher.Containerfile"
PRIVATE = pathlib.PurePosixPath("/var/run/kubevirt-private")
DISKS = PRIVATE / "vmi-disks" / "rootdisk"
EXCHANGE = pathlib.PurePosixPath("/var/run/bsls-test")
SECRET_VOLUME = "kopia-bundle"
QEMU_UID = 107
GUEST_IMAGE_CLAIM = "vm-guest-image"
T = 180


def launcher_image(node: Any) -> str:
    """The launcher image (hack/images/vm-launcher.Containerfile on the node's Debian
    image, built once and cached by hack/images.py's builder), in the node's containerd.
    """
    images = node_module().images
    builder = images.Builder(verbose=True)
    # The builder's own recipe for an image from a Containerfile, cached by digest.
    image = builder._from_containerfile(
        "vm-launcher", LAUNCHER_IMAGE, CONTAINERFILE, {"BASE_IMAGE": builder.debian()}, {}
    )
    ctr = ["ctr", f"--address={node.containerd_socket}", "--namespace=k8s.io"]
    subprocess.run([*ctr, "images", "import", str(image.path)], check=True, capture_output=True)
    return image.name


def static_claim(team: Any, name: str, folder: pathlib.Path, *, read_only: bool) -> str:
    """A claim bound to a static hostPath volume on `folder` (the node has no provisioner)."""
    pv = f"{team.namespace}-{name}"
    modes = ["ReadOnlyMany"] if read_only else ["ReadWriteOnce"]
    team.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "4Gi"},
                "accessModes": modes,
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": team.namespace, "name": name},
                "hostPath": {"path": str(folder), "type": "Directory"},
            },
        }
    )
    team.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": team.namespace},
            "spec": {
                "accessModes": modes,
                "storageClassName": "",
                "resources": {"requests": {"storage": "4Gi"}},
                "volumeName": pv,
            },
        }
    )
    wait(
        lambda: (
            (team.kube.get("v1", "PersistentVolumeClaim", name, team.namespace) or {})
            .get("status", {})
            .get("phase")
            == "Bound"
        ),
        T,
        f"claim {name} to be bound",
    )
    return name


def wait(check: Any, timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (last := check()):
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(0.5)
    return last


@dataclasses.dataclass
class LauncherPod:
    """One guest in one launcher pod."""

    team: Any  # tests/node/tenant.py's Tenant
    vm: str  # the VM's name
    guest: Guest
    secret: str  # the user's credentials Secret
    image: str  # the launcher image
    image_claim: str = GUEST_IMAGE_CLAIM

    def layout(self) -> Layout:
        """Where qemu finds its files inside the pod."""
        return Layout(
            image=DISKS,
            seed=EXCHANGE / "seed.iso",
            bundle=PRIVATE / "secret-disks" / f"{SECRET_VOLUME}.iso",
            out=EXCHANGE / "out.img",
            logs=EXCHANGE,
            socat="/usr/bin/socat",
        )

    def manifest(self, pod: str, exchange: str, script: str) -> dict:
        _, label, _ = kubevirt.example_bundle_disk()
        argv = self.guest.argv(self.layout())
        (self.guest.work / "qemu.argv").write_text("\n".join(argv) + "\n")
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod,
                "namespace": self.team.namespace,
                "labels": {
                    "kubevirt.io": "virt-launcher",
                    "vm.kubevirt.io/name": self.vm,
                    "app.kubernetes.io/name": self.vm,
                },
            },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 5,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": QEMU_UID,
                    "runAsGroup": QEMU_UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "compute",
                        "image": self.image,
                        "imagePullPolicy": "Never",
                        "command": ["/bin/sh", "/launcher/launcher.sh"],
                        "args": [SECRET_VOLUME, label, *argv],
                        "env": [{"name": "TMPDIR", "value": "/var/tmp"}],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "1280Mi"},
                            "limits": {"memory": "2Gi"},
                        },
                        "volumeMounts": [
                            {
                                "name": SECRET_VOLUME,
                                "mountPath": str(PRIVATE / "secret" / SECRET_VOLUME),
                                "readOnly": True,
                            },
                            {"name": "secret-disks", "mountPath": str(PRIVATE / "secret-disks")},
                            {"name": "rootdisk", "mountPath": str(DISKS), "readOnly": True},
                            {"name": "exchange", "mountPath": str(EXCHANGE)},
                            {"name": "launcher", "mountPath": "/launcher", "readOnly": True},
                            {"name": "scratch", "mountPath": "/var/tmp"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": SECRET_VOLUME, "secret": {"secretName": self.secret}},
                    {"name": "secret-disks", "emptyDir": {}},
                    {
                        "name": "rootdisk",
                        "persistentVolumeClaim": {"claimName": self.image_claim, "readOnly": True},
                    },
                    {"name": "exchange", "persistentVolumeClaim": {"claimName": exchange}},
                    {"name": "launcher", "configMap": {"name": script}},
                    {"name": "scratch", "emptyDir": {}},
                ],
            },
        }

    def run(self, timeout: float = RUN_TIMEOUT) -> Run:
        """Create the pod, follow the guest's plan, collect what it wrote, delete the pod."""
        kube, ns = self.team.kube, self.team.namespace
        work = self.guest.work
        self.guest.seed_disk()
        self.guest.out_disk()
        follower, started = self.guest.start()
        # The qemu user writes the output disk and the serial ports' files.
        work.chmod(0o777)
        for name in ("out.img", "report.log"):
            os.chmod(work / name, 0o666)  # noqa: S103 - a test folder the pod shares
        pod = f"virt-launcher-{self.vm}-{secrets.token_hex(3)}"  # as KubeVirt names them
        exchange = static_claim(self.team, f"{pod}-exchange", work, read_only=False)
        script = f"{pod}-launcher"
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": script, "namespace": ns},
                "data": {"launcher.sh": (HERE / "guest" / "launcher.sh").read_text()},
            }
        )
        obj = kube.create(self.manifest(pod, exchange, script))
        try:

            def alive() -> bool:
                got = kube.reload(obj) or {}
                return (got.get("status") or {}).get("phase") not in ("Succeeded", "Failed")

            follower.follow(alive, started + timeout)
            wait(lambda: not alive(), T, f"pod {pod} to end (the guest powers off)")
        finally:
            (work / "launcher.log").write_text(self.team.node.pod_logs(ns, pod))
            kube.delete(obj)
            wait(lambda: kube.reload(obj) is None, T, f"pod {pod} to be gone")
            for kind, name in (("PersistentVolumeClaim", exchange), ("ConfigMap", script)):
                meta = {"name": name, "namespace": ns}
                kube.delete({"apiVersion": "v1", "kind": kind, "metadata": meta})
            pv = {"name": f"{ns}-{exchange}"}
            kube.delete({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": pv})
        return self.guest.finish(follower, started)
