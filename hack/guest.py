"""The guest VM image of the VM suite (tests/vm): built here, cached by the digest of its inputs.

A Debian 12 (bookworm) guest from `debootstrap --variant=minbase`, with the machine's own
apt sources: systemd (as init), udev, dbus, logind's PAM module, sudo, iproute2,
ca-certificates and Debian's kernel (`linux-image-amd64`), plus the pinned stock kopia
(`.tools/bin/kopia`, v0.23.1) at /usr/bin/kopia. Nothing of the project's code: the
credentials bundle reaches a guest at run time as a disk built from the user's Secret,
and the test's own steps on a second disk; neither is ever in the image.

The cache ($BSLS_GUEST_CACHE, default ~/.cache/function-bsls/guest) holds one folder per
digest of every input (this file, the kopia binary, the apt source it installs from):

- `rootfs.img`: the root file system, an ext4 image that `mkfs.ext4 -d` builds straight
  from the debootstrap folder (nothing is mounted, no loop device);
- `vmlinuz` and `initrd.img`: Debian's kernel, and an initramfs-tools initramfs with only
  the modules a virtio guest needs to find its root (`MODULES=list`: virtio_pci,
  virtio_blk, ext4; 6 MB instead of 36 MB, seconds less to unpack under emulation).

Why a kernel and initramfs (qemu `-kernel`/`-initrd`) rather than a bootable disk: no boot
loader to install (grub-install wants a partitioned, mounted loop device), no firmware
disk probing and boot menu under software emulation, and the kernel command line is the
test's to set (the consoles). KubeVirt boots a VM the same way with
`spec.domain.firmware.kernelBoot`.

The guest's own configuration, beyond Debian's defaults:

- no network configuration of its own: the test's first step gives the virtio network
  card its address on qemu's user-mode network (as a cloud-init network config would),
  with no default route and no DNS server, so the guest reaches nothing but its own
  subnet, where qemu forwards only what the test set up (systemd-networkd with DHCP
  took a third of every boot under emulation);
- `bsls-seed.service`: when a disk labelled BSLS-SEED is attached, it is mounted read-only
  at /run/seed and its `run` runs as root once logins are possible, as cloud-init's
  `runcmd` would (cloud-init itself would add tens of seconds to every boot under
  emulation). The test writes that disk; without it the unit waits for nothing;
- the units that only cost boot time in a throwaway guest are masked (apt's, dpkg's,
  e2scrub's and fstrim's timers, a getty on a display the guest does not have, module
  loaders for devices it does not have).

`python hack/guest.py` builds the image if the cache lacks it (about 3 minutes: mostly
debootstrap) and prints its folder. Runs as root (debootstrap and chroot need it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent
KOPIA = ROOT / ".tools" / "bin" / "kopia"
SUITE = "bookworm"
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "libpam-systemd",
    "sudo",
    "iproute2",
    "kmod",
    "ca-certificates",
    "linux-image-amd64",
]
# The modules the initramfs needs to mount a virtio disk's ext4 root; the rest load later.
INITRAMFS_MODULES = ["virtio_pci", "virtio_blk", "ext4"]
MASKED = [
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "getty@tty1.service",
    "modprobe@drm.service",
    "modprobe@fuse.service",
    "modprobe@loop.service",
    "modprobe@dm_mod.service",
    "modprobe@efi_pstore.service",
]
SEED_LABEL = "BSLS-SEED"
SEED_MOUNT = f"""\
[Unit]
Description=The test's seed disk (label {SEED_LABEL})

[Mount]
What=/dev/disk/by-label/{SEED_LABEL}
Where=/run/seed
Type=iso9660
Options=ro
"""
SEED_SERVICE = """\
[Unit]
Description=Run the seed disk's script, as cloud-init's runcmd would
RequiresMountsFor=/run/seed
After=systemd-user-sessions.service systemd-logind.service dbus.service

[Service]
Type=oneshot
ExecStart=/bin/sh /run/seed/run
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""
HOSTNAME = "debian"
HOSTS = f"127.0.0.1 localhost\n127.0.1.1 {HOSTNAME}\n::1 localhost ip6-localhost ip6-loopback\n"
FILES = ("rootfs.img", "vmlinuz", "initrd.img")


class GuestError(RuntimeError):
    """The image could not be built."""


def cache_root() -> pathlib.Path:
    """Where images are kept, outside the clone."""
    if env := os.environ.get("BSLS_GUEST_CACHE"):
        return pathlib.Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(xdg) / "function-bsls" / "guest"


def debian_mirror() -> str:
    """The first archive URI the machine's apt uses for bookworm main (read at run time)."""
    etc = pathlib.Path("/etc/apt")
    files = [etc / "sources.list"] if (etc / "sources.list").is_file() else []
    files += sorted((etc / "sources.list.d").glob("*.sources"))
    files += sorted((etc / "sources.list.d").glob("*.list"))
    for path in files:
        text = path.read_text()
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = {}
                for line in stanza.splitlines():
                    if line and not line.startswith(("#", " ")) and ":" in line:
                        key, _, value = line.partition(":")
                        fields[key.strip()] = value.strip()
                suites = fields.get("Suites", "").split()
                if SUITE in suites and "main" in fields.get("Components", "").split():
                    return fields["URIs"].split()[0]
        else:
            for line in text.splitlines():
                words = [w for w in line.split() if not w.startswith("[")]
                if len(words) >= 4 and words[0] == "deb" and words[2] == SUITE:
                    return words[1]
    msg = f"no apt source for {SUITE} main on this machine: cannot debootstrap"
    raise GuestError(msg)


def sha256_file(path: pathlib.Path) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def inputs(kopia: pathlib.Path) -> dict[str, str]:
    """Everything the image is built from; its digest names the image."""
    return {
        "recipe": hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest(),
        "kopia": sha256_file(kopia),
        "mirror": debian_mirror(),
        "suite": SUITE,
    }


def digest_of(values: dict[str, str]) -> str:
    """A short digest of the inputs."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def locked(root: pathlib.Path) -> Iterator[None]:
    """One build at a time per cache (two test runs may start together)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(argv: list[str | pathlib.Path], log: pathlib.Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(map(str, argv))}\n")
        out.flush()
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        msg = f"{argv[0]} exited {done.returncode} (log {log}):\n{tail}"
        raise GuestError(msg)


def _unmount_under(path: pathlib.Path) -> None:
    """Unmount whatever is mounted at or below `path` (debootstrap mounts /proc, /sys)."""
    prefix = str(path.resolve())
    points = []
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _configure(rootfs: pathlib.Path, kopia: pathlib.Path, log: pathlib.Path) -> str:
    """The guest's configuration beyond Debian's defaults; returns the kernel version."""
    shutil.copyfile(kopia, rootfs / "usr/bin/kopia")
    (rootfs / "usr/bin/kopia").chmod(0o755)
    (rootfs / "etc/hostname").write_text(HOSTNAME + "\n")
    (rootfs / "etc/hosts").write_text(HOSTS)
    units = rootfs / "etc/systemd/system"
    (units / "run-seed.mount").write_text(SEED_MOUNT)
    (units / "bsls-seed.service").write_text(SEED_SERVICE)
    chroot = ["chroot", rootfs]
    _run([*chroot, "systemctl", "enable", "bsls-seed.service"], log)
    _run([*chroot, "systemctl", "mask", *MASKED], log)
    # A smaller initramfs: only what finding a virtio root takes.
    conf = rootfs / "etc/initramfs-tools"
    (conf / "conf.d" / "bsls-guest").write_text("MODULES=list\n")
    with (conf / "modules").open("a") as f:
        f.write("".join(f"{m}\n" for m in INITRAMFS_MODULES))
    [version] = [p.name for p in (rootfs / "lib/modules").iterdir()]
    _run([*chroot, "update-initramfs", "-u", "-k", version], log)
    # What a throwaway guest does not need: downloaded packages and package lists.
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (rootfs / junk).iterdir():
            if entry.is_file():
                entry.unlink()
    return version


def _du(path: pathlib.Path) -> int:
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def build(kopia: pathlib.Path = KOPIA, root: pathlib.Path | None = None) -> pathlib.Path:
    """The image's folder, built first if the cache does not have it."""
    if not (kopia.is_file() and os.access(kopia, os.X_OK)):
        msg = f"{kopia} is missing: run `make tools`"
        raise GuestError(msg)
    root = root or cache_root()
    values = inputs(kopia)
    image = root / digest_of(values)
    with locked(root):
        if all((image / name).is_file() for name in FILES):
            os.utime(image)  # recently used: kept by prune()
            return image
        if os.geteuid() != 0:
            msg = "building the guest image needs root (debootstrap, chroot)"
            raise GuestError(msg)
        work = root / f"{image.name}.build"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        log = work / "build.log"
        rootfs = work / "rootfs"
        started = time.monotonic()
        print(f"building the guest image {image.name} (about 3 minutes, once)", file=sys.stderr)
        try:
            include = ",".join(PACKAGES)
            argv = ["debootstrap", "--variant=minbase", f"--include={include}", SUITE]
            _run([*argv, rootfs, values["mirror"]], log)
        finally:
            _unmount_under(rootfs)
        version = _configure(rootfs, kopia, log)
        shutil.copyfile(rootfs / f"boot/vmlinuz-{version}", work / "vmlinuz")
        shutil.copyfile(rootfs / f"boot/initrd.img-{version}", work / "initrd.img")
        # Room for what the guest writes (tests boot with a throwaway overlay anyway).
        size_mb = _du(rootfs) * 13 // 10 // (1 << 20) + 512
        _run(["mkfs.ext4", "-q", "-F", "-L", "guestroot", "-d", rootfs, work / "rootfs.img",
              f"{size_mb}M"], log)  # fmt: skip
        shutil.rmtree(rootfs)
        values["kernel"] = version
        values["seconds"] = f"{time.monotonic() - started:.0f}"
        (work / "inputs.json").write_text(json.dumps(values, indent=1) + "\n")
        shutil.rmtree(image, ignore_errors=True)
        work.rename(image)
        prune(root, keep=image)
        print(f"guest image built in {values['seconds']} s: {image}", file=sys.stderr)
        return image


def prune(root: pathlib.Path, keep: pathlib.Path, newest: int = 2) -> None:
    """Remove all but the `newest` most recently used images (each is about 1 GB)."""
    images = [p for p in root.iterdir() if p.is_dir() and (p / "inputs.json").is_file()]
    images.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in images if p != keep][newest - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def main() -> None:
    try:
        print(build())
    except GuestError as e:
        print(f"guest image: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
