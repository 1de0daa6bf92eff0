"""A real guest VM as the VM owner: qemu under software emulation, the guest image of
hack/guest.py, the user's credentials Secret as a KubeVirt Secret disk, and a plan of
steps (the guide's, and the harness's own) on a seed disk.

The guest's network is qemu's user-mode network with `restrict=on`: the guest reaches
nothing but the addresses qemu forwards (`guestfwd`), each to a fresh `socat` that
connects to an address on this machine (the stand-in cluster's Service, or a machine in
the middle): no tap device, no route, nothing leaves the machine. Every address the
guest sees is in 198.18.0.0/15.

The test follows the guest on its second serial port (see guest/run.sh) and, once it
has powered off, reads what it wrote to its output disk: each step's log and whatever
the steps saved (the restored files, snapshot lists).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable

from tests.vm import guide, kubevirt

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
STEPS = HERE / "guest" / "steps"
SEED_LABEL = "BSLS-SEED"
OUT_SERIAL = "bsls-out"
OUT_SIZE = 256 << 20  # sparse; a tar of the steps' logs and the restored files
# The guest's user-mode network (inside qemu only), in 198.18.0.0/15.
NET = "198.18.20.0/24"
GATEWAY = "198.18.20.2"
DNS = "198.18.20.3"
DHCP_START = "198.18.20.15"
GUEST_ADDRESS = "198.18.20.15/24"  # what the harness's `network` step sets
FORWARD_BASE = 100  # forwarded addresses: 198.18.20.100, .101, ...
CMDLINE = (
    "root=LABEL=guestroot rw console=ttyS0 quiet systemd.show_status=false "
    "mitigations=off modprobe.blacklist=kvm,kvm_amd,kvm_intel"
)
RUN_TIMEOUT = 1200.0  # the whole guest run, boot to power-off, on a loaded machine
POWEROFF_TIMEOUT = 120.0
REPORT = re.compile(r"^BSLS (?P<uptime>[\d.]+) (?P<event>\w+)(?: (?P<rest>.*))?$")


def load_builder():
    """hack/guest.py, the image builder, as a module."""
    spec = importlib.util.spec_from_file_location("bsls_guest", ROOT / "hack" / "guest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def forwarded(n: int) -> str:
    """The guest-side address of the n-th forward (0-based)."""
    return f"198.18.20.{FORWARD_BASE + n}"


@dataclasses.dataclass(frozen=True)
class Step:
    """One line of the guest's plan: who runs which step, and whether a failure ends it."""

    who: str  # "root" or the VM owner's user name
    name: str  # a step of the guide, or a harness step in guest/steps/
    args: tuple[str, ...] = ()
    stop: bool = True  # False: the step is meant to fail (or may), the plan goes on
    label: str = ""  # how the test finds this step's run (default: its name)

    @property
    def key(self) -> str:
        return self.label or self.name

    def line(self) -> str:
        words = [self.who, "stop" if self.stop else "go", self.name, *self.args]
        assert all(w and not re.search(r"\s", w) for w in words), words
        return " ".join(words)


@dataclasses.dataclass(frozen=True)
class Forward:
    """A guest address and port that qemu hands to `socat ... TCP:<target>:<port>`."""

    guest: str
    port: int
    target: str  # an address (or, in a pod, a name the pod resolves)
    target_port: int


@dataclasses.dataclass
class StepRun:
    """What one step did in the guest."""

    number: int
    name: str
    started: float  # the guest's uptime, seconds
    ended: float | None = None
    rc: int | None = None
    log: str = ""

    @property
    def seconds(self) -> float:
        assert self.ended is not None, f"step {self.name} never ended"
        return self.ended - self.started


@dataclasses.dataclass
class Run:
    """A guest's whole run, as the test saw it."""

    plan: list[Step]
    steps: list[StepRun]
    out: pathlib.Path  # what the guest wrote to its output disk
    console: pathlib.Path  # the kernel's and systemd's console (first serial port)
    ready_after: float | None  # host seconds from qemu's start to the plan's start
    ready_uptime: float | None  # the guest's uptime then
    wall: float  # host seconds from qemu's start to its exit
    done_rc: int | None

    def step(self, key: str) -> StepRun:
        """The run of the plan's step with this label (or name, when it has no label)."""
        keys = [s.key for s in self.plan]
        assert keys.count(key) == 1, f"the plan has {keys.count(key)} steps {key!r}"
        index = keys.index(key)
        assert index < len(self.steps), f"step {key!r} never ran: {self.summary()}"
        return self.steps[index]

    def ok(self, key: str) -> StepRun:
        """A step that must have succeeded; fails the test with its log otherwise."""
        step = self.step(key)
        assert step.rc == 0, f"step {key} exited {step.rc}:\n{step.log}\n{self.summary()}"
        return step

    def failed(self, key: str) -> StepRun:
        """A step that must have ended, and failed."""
        step = self.step(key)
        assert step.rc not in (0, None), f"step {key} exited {step.rc}:\n{step.log}"
        return step

    def summary(self) -> str:
        lines = [
            f"{s.number:2} {s.name:18} rc={s.rc} {s.seconds if s.ended else '?'}"
            for s in self.steps
        ]
        return "steps:\n" + "\n".join(lines) + f"\ndone: {self.done_rc}; console: {self.console}"

    def text(self, name: str) -> str:
        """A file the steps saved in /run/out."""
        return (self.out / name).read_text()


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where qemu finds its files: on this machine, or inside a launcher pod."""

    image: pathlib.PurePath  # hack/guest.py's folder: rootfs.img, vmlinuz, initrd.img
    seed: pathlib.PurePath
    bundle: pathlib.PurePath | None  # the Secret disk (an ISO), if the guest has one
    out: pathlib.PurePath
    logs: pathlib.PurePath  # where the serial ports' files go: console.log, report.log
    qemu: str = "qemu-system-x86_64"
    socat: str = "socat"


@dataclasses.dataclass
class Guest:
    """One guest VM: image, bundle disk, network and plan."""

    image: pathlib.Path  # hack/guest.py's folder
    work: pathlib.Path
    plan: list[Step]
    endpoint_host: str
    forwards: list[Forward] = dataclasses.field(default_factory=list)
    bundle: dict[str, bytes] | None = None  # the credentials Secret's data
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)  # more seed files

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- the disks

    def seed_disk(self) -> pathlib.Path:
        """The seed: guest/run.sh as `run`, the plan, the steps, and the test's files."""
        seed = self.work / "seed"
        steps = seed / "steps"
        steps.mkdir(parents=True)
        shutil.copyfile(HERE / "guest" / "run.sh", seed / "run")
        guide_steps = guide.steps()
        for step in self.plan:
            target = steps / f"{step.name}.sh"
            if step.name in guide_steps:
                assert not (STEPS / f"{step.name}.sh").exists(), step.name
                target.write_text(guide_steps[step.name])
            else:
                shutil.copyfile(STEPS / f"{step.name}.sh", target)
        (seed / "plan").write_text("".join(s.line() + "\n" for s in self.plan))
        (seed / "endpoint-host").write_text(self.endpoint_host + "\n")
        for name, data in self.files.items():
            (seed / name).write_bytes(data)
        iso = self.work / "seed.iso"
        _run(["xorrisofs", "-quiet", "-output", iso, "-volid", SEED_LABEL, "-joliet", "-rock",
              seed])  # fmt: skip
        return iso

    def bundle_disk(self) -> pathlib.Path | None:
        """The credentials Secret as KubeVirt's Secret disk, labelled as the example says."""
        if self.bundle is None:
            return None
        _, label, _ = kubevirt.example_bundle_disk()
        volume = kubevirt.secret_volume(self.work / "secret-volume", self.bundle)
        return kubevirt.secret_disk(volume, self.work / "bundle.iso", label)

    def out_disk(self) -> pathlib.Path:
        path = self.work / "out.img"
        with path.open("wb") as f:
            f.truncate(OUT_SIZE)
        return path

    # ---------------------------------------------------------------- qemu

    def netdev(self, socat: str = "socat") -> str:
        """qemu's user-mode network: restricted, and the forwards to socat."""
        parts = [
            "user,id=net0,restrict=on,ipv6=off",
            f"net={NET},host={GATEWAY},dns={DNS},dhcpstart={DHCP_START}",
        ]
        for f in self.forwards:
            target = f"TCP:{f.target}:{f.target_port}"
            parts.append(f"guestfwd=tcp:{f.guest}:{f.port}-cmd:{socat} STDIO {target}")
        return ",".join(parts)

    def argv(self, layout: Layout) -> list[str]:
        """The qemu command: software emulation only, no display, two serial ports."""
        image = layout.image
        drives = [("root", image / "rootfs.img", "snapshot=on", "")]
        if layout.bundle is not None:
            _, _, serial = kubevirt.example_bundle_disk()
            drives.append(("bundle", layout.bundle, "readonly=on", f",serial={serial}"))
        drives.append(("seed", layout.seed, "readonly=on", ",serial=bsls-seed"))
        drives.append(("out", layout.out, "", f",serial={OUT_SERIAL}"))
        argv = [layout.qemu, "-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max",
                "-smp", "2", "-m", "1024", "-nodefaults", "-no-user-config", "-display", "none",
                "-no-reboot", "-kernel", str(image / "vmlinuz"),
                "-initrd", str(image / "initrd.img"), "-append", CMDLINE]  # fmt: skip
        for name, path, option, device in drives:
            assert "," not in str(path), f"qemu's -drive needs paths without commas: {path}"
            spec = f"file={path},format=raw,if=none,id={name}" + (f",{option}" if option else "")
            argv += ["-drive", spec, "-device", f"virtio-blk-pci,drive={name}{device}"]
        argv += ["-netdev", self.netdev(layout.socat)]
        argv += ["-device", "virtio-net-pci,netdev=net0,romfile=", "-device", "virtio-rng-pci"]
        argv += ["-serial", f"file:{layout.logs / 'console.log'}"]
        argv += ["-serial", f"file:{layout.logs / 'report.log'}"]
        return argv

    def start(self) -> tuple[Follower, float]:
        """The guest's disks and an empty report, and when the run starts."""
        (self.work / "report.log").touch()
        return Follower(self.work / "report.log"), time.monotonic()

    def finish(self, follower: Follower, started: float) -> Run:
        """What the guest did: its steps, logs and output disk."""
        run = Run(
            plan=self.plan,
            steps=follower.steps,
            out=self.read_out(self.work / "out.img"),
            console=self.work / "console.log",
            ready_after=None if follower.ready_at is None else follower.ready_at - started,
            ready_uptime=follower.ready_uptime,
            wall=time.monotonic() - started,
            done_rc=follower.done_rc,
        )
        attach_logs(run)
        return run

    def run(self, timeout: float = RUN_TIMEOUT) -> Run:
        """Boot the guest on this machine, follow its plan to the end, read what it wrote."""
        layout = Layout(
            image=self.image,
            seed=self.seed_disk(),
            bundle=self.bundle_disk(),
            out=self.out_disk(),
            logs=self.work,
            socat=shutil.which("socat") or "socat",
        )
        argv = self.argv(layout)
        (self.work / "qemu.argv").write_text("\n".join(argv) + "\n")
        follower, started = self.start()
        with (self.work / "qemu.log").open("wb") as log:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # qemu and the socats it starts: one group
            )
        try:
            follower.follow(lambda: popen.poll() is None, started + timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(POWEROFF_TIMEOUT)
        finally:
            stop(popen)
        return self.finish(follower, started)

    def read_out(self, out: pathlib.Path) -> pathlib.Path:
        """The tar the guest wrote to its output disk, unpacked; step logs attached."""
        folder = self.work / "out"
        folder.mkdir(exist_ok=True)
        with out.open("rb") as f:
            head = f.read(512)
        if head.strip(b"\0"):
            with tarfile.open(out, "r:") as tar:
                tar.extractall(folder, filter="tar")
        return folder


@dataclasses.dataclass
class Follower:
    """Reads the guest's report lines as they arrive (the second serial port)."""

    report: pathlib.Path
    steps: list[StepRun] = dataclasses.field(default_factory=list)
    ready_at: float | None = None
    ready_uptime: float | None = None
    done_rc: int | None = None

    def follow(self, alive: Callable[[], bool], deadline: float) -> None:
        """Until the guest reports `done` or qemu is gone; fails at the deadline."""
        offset = 0
        pending = b""
        while True:
            with self.report.open("rb") as f:
                f.seek(offset)
                data = f.read()
            offset += len(data)
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.line(line.decode(errors="replace").strip("\r"))
            if self.done_rc is not None or not alive():
                return
            if time.monotonic() > deadline:
                msg = f"the guest did not finish in time; last steps: {self.steps[-3:]}"
                raise TimeoutError(msg)
            time.sleep(0.2)

    def line(self, text: str) -> None:
        m = REPORT.match(text)
        if m is None:
            return
        uptime, event, rest = float(m["uptime"]), m["event"], (m["rest"] or "").split()
        if event == "ready":
            self.ready_at, self.ready_uptime = time.monotonic(), uptime
        elif event == "start":
            self.steps.append(StepRun(int(rest[0]), rest[1], uptime))
        elif event == "end":
            step = self.steps[-1]
            assert step.number == int(rest[0]), (step, rest)
            step.ended, step.rc = uptime, int(rest[2])
        elif event == "done":
            self.done_rc = int(rest[0])


def attach_logs(run: Run) -> None:
    """Each step's log, from the guest's output disk."""
    for step in run.steps:
        path = run.out / f"{step.number:02d}-{step.name}.log"
        step.log = path.read_text(errors="replace") if path.is_file() else "(no log)"


def stop(popen: subprocess.Popen) -> None:
    """End qemu and the socats it started (its own process group), if still running."""
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(30)
    # socats of connections that outlived qemu are in the same group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)


def tar_of(root: pathlib.Path, name: str) -> bytes:
    """A tar of `root` whose top folder is `name` (the VM owner's files, for the seed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=name)
    return buffer.getvalue()


def _run(argv: list[str | pathlib.Path]) -> None:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"{argv[0]} exited {done.returncode}: {done.stderr}"
        raise RuntimeError(msg)
