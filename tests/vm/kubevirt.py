"""A user's credentials Secret as a disk, the way KubeVirt hands a `secret` volume to a VM.

KubeVirt v1.7.0 (kubevirt.io/kubevirt, pkg/config and pkg/virt-controller/services):

- virt-controller mounts the Secret into the VM's launcher pod as an ordinary Secret
  volume (no `defaultMode`, so 0644) at /var/run/kubevirt-private/secret/<volume>; the
  kubelet lays it out with its atomic writer: the keys in a dated folder `..<time>`, a
  symlink `..data` to it, and one symlink per key to `..data/<key>`;
- virt-launcher lists that folder (`os.ReadDir`: every entry, `..data` and the dated
  folder too) and runs `xorrisofs -output <iso> -follow-links -volid <volumeLabel, or
  "cfgdata"> -joliet -rock -graft-points -partition_cyl_align on <name>=<path>...`;
- the ISO becomes a raw, file-backed disk of the VM on the bus the VM's disk names, with
  the disk's `serial`.

`secret_volume` writes the kubelet's layout, `secret_disk` runs the same xorrisofs
command on it. examples/kubevirt/vm-alice.yaml gives the label and the serial.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import secrets
import subprocess

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "kubevirt" / "vm-alice.yaml"
SECRET_MODE = 0o644  # a Secret volume's defaultMode when none is set


def example_bundle_disk() -> tuple[str, str, str]:
    """(Secret name, volumeLabel, disk serial) of the bundle in the VirtualMachine example."""
    vm = yaml.safe_load(EXAMPLE.read_text())
    spec = vm["spec"]["template"]["spec"]
    [volume] = [v for v in spec["volumes"] if "secret" in v]
    [disk] = [d for d in spec["domain"]["devices"]["disks"] if d["name"] == volume["name"]]
    return volume["secret"]["secretName"], volume["secret"]["volumeLabel"], disk["serial"]


def secret_volume(folder: pathlib.Path, data: dict[str, bytes]) -> pathlib.Path:
    """A Secret volume as the kubelet writes it (its atomic writer's layout)."""
    now = datetime.datetime.now(datetime.UTC)
    dated = f"..{now:%Y_%m_%d_%H_%M_%S}.{secrets.randbelow(10**9):09d}"
    (folder / dated).mkdir(parents=True)
    for key, value in data.items():
        path = folder / dated / key
        path.write_bytes(value)
        path.chmod(SECRET_MODE)
    os.symlink(dated, folder / "..data")
    for key in data:
        os.symlink(f"..data/{key}", folder / key)
    return folder


def secret_disk(volume: pathlib.Path, iso: pathlib.Path, label: str) -> pathlib.Path:
    """virt-launcher's ISO of a Secret volume (pkg/config: defaultCreateIsoImage)."""
    files = [f"{entry.name}={entry}" for entry in sorted(volume.iterdir())]
    staging = iso.with_name(iso.name + ".staging")
    argv = ["xorrisofs", "-output", str(staging), "-follow-links", "-volid", label or "cfgdata",
            "-joliet", "-rock", "-graft-points", "-partition_cyl_align", "on", *files]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"xorrisofs exited {done.returncode}: {done.stderr}"
        raise RuntimeError(msg)
    staging.rename(iso)
    return iso
