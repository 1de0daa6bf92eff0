"""The images the real node runs, built here without a Docker engine, cached by digest.

No registry can be pulled from on this kind of machine, so every image is built from
what is here: Debian 12 from `debootstrap --variant=minbase bookworm` (the machine's own
apt sources), then, with buildah:

- `debian`, for `docker.io/library/debian:12-slim`: debootstrap;
- `python`, for `gcr.io/distroless/python3-debian12:nonroot`:
  `hack/images/python3-debian12.Containerfile`;
- `function`: the repository's own `Dockerfile`, only its base-image build args set;
- `kopia`, for `kopia/kopia:0.23.1`: `hack/images/kopia.Containerfile` and the pinned
  `.tools/bin/kopia`;
- `pause`, for `registry.k8s.io/pause`: `hack/images/pause.Containerfile`, `tools/pause`;
- `coredns`, for `registry.k8s.io/coredns/coredns`: `hack/images/coredns.Containerfile`;
- `crossplane`, for `xpkg.crossplane.io/crossplane/crossplane:v2.2.1`:
  `hack/images/crossplane.Containerfile`, the version-stamped core and its CRDs;

and `package`: the Function package (`crossplane xpkg build`, the function image
embedded). Each lands in the cache ($BSLS_IMAGES_CACHE, default
~/.cache/function-bsls/images) as `<name>-<digest>.tar` (docker-archive) or
`function-bsls-<digest>.xpkg`, where the digest covers every input: the recipe, the
files copied in, the build args and the digests of the images it is built on. A second
build with the same inputs is a cache hit and takes no time.

Every build runs in a buildah storage of its own under the cache (removed afterwards),
with `--network=host` (only `apt-get` and `pip` use it, to reach the machine's package
registries) and `--pull=never`. Inside the build containers apt uses the machine's apt
sources and Acquire settings (written into the Debian image) and pip the machine's pip
configuration and CA bundle (mounted read-only), read from this machine at build time:
no registry address is written into this repository.

`python hack/images.py [NAME...]` builds the named images (default: all) and prints
their files; `make image` builds `function`, `make package` builds `package`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent
HERE = ROOT / "hack" / "images"
TOOLS = ROOT / ".tools" / "bin"
CROSSPLANE_MODULE = "github.com/crossplane/crossplane/v2"
CROSSPLANE_VERSION = "v2.2.1"
BLOB_CACHE_ROOT = "/var/lib/containers"
# Bump to rebuild every image when the way this file builds them changes.
RECIPE = "2"

# What the node's pods and the Dockerfile refer to. The stand-ins are named under
# localhost/ so they can never be mistaken for the images they stand in for.
DEBIAN_NAME = "localhost/bsls-standin/debian:12-slim"
DISTROLESS_PREFIX = "localhost/bsls-standin/distroless"
PYTHON_NAME = f"{DISTROLESS_PREFIX}/python3-debian12:nonroot"
FUNCTION_NAME = "localhost/bsls/function-bsls-runtime:dev"
KOPIA_NAME = "docker.io/kopia/kopia:0.23.1"
PAUSE_NAME = "registry.k8s.io/pause:3.10"
COREDNS_NAME = "registry.k8s.io/coredns/coredns:v1.14.7"
CROSSPLANE_NAME = f"xpkg.crossplane.io/crossplane/crossplane:{CROSSPLANE_VERSION}"


class ImageError(RuntimeError):
    """A build step failed; the message carries its output."""


def cache_dir() -> pathlib.Path:
    """Where built images live: outside the clone, shared by every clone on the machine."""
    env = os.environ.get("BSLS_IMAGES_CACHE")
    if env:
        return pathlib.Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "function-bsls" / "images"


@dataclasses.dataclass(frozen=True)
class Image:
    """A built image: the reference it carries and its docker-archive file."""

    key: str  # debian, python, function, ...
    name: str  # the reference inside the archive, e.g. docker.io/kopia/kopia:0.23.1
    digest: str  # over the inputs, 16 hex
    path: pathlib.Path


def _sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree(root: pathlib.Path, paths: Iterable[str]) -> dict[str, str]:
    """sha256 of every file under each path (relative to root), skipping caches."""
    out: dict[str, str] = {}
    for rel in paths:
        p = root / rel
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
        for f in files:
            parts = f.relative_to(root).parts
            if "__pycache__" in parts or f.suffix == ".pyc":
                continue
            out["/".join(parts)] = _sha256_file(f)
    return out


def digest(inputs: dict) -> str:
    """A short, stable digest of a build's inputs."""
    blob = json.dumps({"recipe": RECIPE, **inputs}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _run(argv: list[str], *, log: pathlib.Path | None = None, **kwargs: object) -> str:
    """Run a command; raise ImageError with its output if it fails."""
    result = subprocess.run(  # noqa: PLW1510 - checked below, with the output
        [str(a) for a in argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ {' '.join(map(str, argv))}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        msg = f"{' '.join(map(str, argv[:4]))} ... failed ({result.returncode}):\n{tail}"
        raise ImageError(msg)
    return result.stdout


def _tool(name: str) -> pathlib.Path:
    path = TOOLS / name
    if not os.access(path, os.X_OK):
        msg = f"{path} is missing: run hack/node-tools.sh (or make tools) first"
        raise ImageError(msg)
    return path.resolve()


# --- the machine's own package-registry settings ---------------------------------------------


def apt_sources() -> list[pathlib.Path]:
    """The machine's apt source files (deb822 .sources and one-line .list)."""
    etc = pathlib.Path("/etc/apt")
    found = [etc / "sources.list"] if (etc / "sources.list").is_file() else []
    found += sorted((etc / "sources.list.d").glob("*.sources"))
    found += sorted((etc / "sources.list.d").glob("*.list"))
    return [f for f in found if f.read_text().strip()]


def debian_mirror() -> str:
    """The first Debian archive URI the machine's apt uses for bookworm main."""
    for path in apt_sources():
        text = path.read_text()
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = {
                    k.strip(): v.strip()
                    for k, _, v in (
                        line.partition(":")
                        for line in stanza.splitlines()
                        if line and not line.startswith("#")
                    )
                }
                if (
                    "bookworm" in fields.get("Suites", "").split()
                    and "main" in fields.get("Components", "").split()
                ):
                    return fields["URIs"].split()[0]
        else:
            for line in text.splitlines():
                words = line.split()
                if len(words) >= 4 and words[0] == "deb" and words[2] == "bookworm":
                    return next(w for w in words[1:] if not w.startswith("["))
    msg = "no apt source for bookworm main on this machine: cannot debootstrap"
    raise ImageError(msg)


def apt_acquire_settings() -> dict[str, str]:
    """The machine's apt.conf.d files that only set Acquire:: options (name -> text).

    These are what apt needs to reach the machine's archive (a snapshot mirror needs
    Check-Valid-Until "false", a proxy needs Acquire::http::Proxy, ...).
    """
    out = {}
    for f in sorted(pathlib.Path("/etc/apt/apt.conf.d").glob("*")):
        if not f.is_file():
            continue
        lines = [
            line.strip()
            for line in f.read_text(errors="replace").splitlines()
            if line.strip() and not line.strip().startswith(("//", "#"))
        ]
        if lines and all(line.startswith("Acquire::") for line in lines):
            out[f.name] = f.read_text()
    return out


def pip_settings() -> tuple[str, list[tuple[pathlib.Path, str]]]:
    """A pip.conf with this machine's effective pip settings, and what to mount for it.

    `pip config list` merges pip's configuration files and PIP_* variables. A value that
    is a path on this machine (a CA bundle, a wheel folder) is mounted read-only under
    /run/bsls-host/ in the build container, and the pip.conf names it there: mounted at
    its own path it would sit where the build's own packages write (ca-certificates
    replaces /etc/ssl/certs/ca-certificates.crt, and a mounted file cannot be replaced).
    """
    out = _run([sys.executable, "-m", "pip", "config", "list"])
    settings: dict[str, str] = {}
    for line in out.splitlines():
        key, _, raw = line.partition("=")
        section, _, name = key.rpartition(".")
        if section not in ("global", ":env:", "install") or not name:
            continue
        settings[name] = raw.strip().strip("'\"")
    mounts: dict[pathlib.Path, str] = {}
    for name, value in settings.items():
        words = []
        for word in value.split():
            p = pathlib.Path(word)
            if p.is_absolute() and p.exists():
                target = mounts.setdefault(p, f"/run/bsls-host/{len(mounts)}-{p.name}")
                words.append(target)
            else:
                words.append(word)
        settings[name] = " ".join(words)
    text = "[global]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(settings.items()))
    return text, sorted(mounts.items())


# --- buildah ---------------------------------------------------------------------------------


class Buildah:
    """buildah with a storage of its own (removed on exit), so nothing touches the host's."""

    def __init__(self, work: pathlib.Path, log: pathlib.Path) -> None:
        self.work = work
        self.log = log
        self.loaded: set[str] = set()

    def __call__(self, *args: object) -> str:
        """Run one buildah command in this storage."""
        return _run(
            [
                "buildah",
                f"--root={self.work / 'root'}",
                f"--runroot={self.work / 'runroot'}",
                "--storage-driver=overlay",
                "--cgroup-manager=cgroupfs",
                *map(str, args),
            ],
            log=self.log,
        )

    def load(self, image: Image) -> None:
        """Make a cached image available to FROM (buildah pulls it from its archive)."""
        if image.name not in self.loaded:
            self("pull", "--quiet", f"docker-archive:{image.path}")
            self.loaded.add(image.name)

    def bud(
        self,
        containerfile: pathlib.Path,
        context: pathlib.Path,
        tag: str,
        build_args: dict[str, str],
        volumes: Iterable[tuple[pathlib.Path, str]] = (),
    ) -> None:
        """`buildah bud` with the node's build settings."""
        args: list[object] = [
            "bud",
            f"--cni-config-dir={self.work / 'cni'}",
            "--pull=never",
            "--network=host",
            "--layers=false",
            "--ulimit=nofile=1024:1024",
            "--ulimit=nproc=1024:1024",
            f"--file={containerfile}",
            f"--tag={tag}",
        ]
        for k, v in build_args.items():
            args.append(f"--build-arg={k}={v}")
        for host, target in volumes:
            args.append(f"--volume={host}:{target}:ro")
        self(*args, context)

    def save(self, name: str, target: pathlib.Path) -> None:
        """Write an image as a docker-archive carrying `name`."""
        self("push", "--quiet", name, f"docker-archive:{target}:{name}")


# A build: (its workspace, buildah in that workspace, the archive to write).
BuildStep = Callable[[pathlib.Path, Buildah, pathlib.Path], None]


class Builder:
    """Builds the node's images into the cache, each at most once per digest."""

    def __init__(self, cache: pathlib.Path | None = None, *, verbose: bool = True) -> None:
        self.cache = cache or cache_dir()
        self.cache.mkdir(parents=True, exist_ok=True)
        self.verbose = verbose
        self.built: dict[str, Image] = {}
        self.timings: dict[str, float] = {}

    def say(self, text: str) -> None:
        """Progress on stderr."""
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One build at a time.

        The containers/image blob cache that buildah writes as root whatever --root says
        (/var/lib/containers/cache) goes when the build is done, unless it was there
        before.
        """
        with (self.cache / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            absent = not os.path.lexists(BLOB_CACHE_ROOT)
            try:
                yield
            finally:
                if absent:
                    shutil.rmtree(BLOB_CACHE_ROOT, ignore_errors=True)

    @contextlib.contextmanager
    def _workspace(self, key: str) -> Iterator[tuple[pathlib.Path, Buildah]]:
        work = pathlib.Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=self.cache))
        log = self.cache / f"{key}.log"
        log.write_text("")
        buildah = Buildah(work, log)
        try:
            yield work, buildah
        finally:
            with contextlib.suppress(ImageError):
                buildah("rm", "--all")
            _unmount_under(work)
            shutil.rmtree(work, ignore_errors=True)

    def _cached(self, key: str, name: str, inputs: dict, build: BuildStep) -> Image:
        d = digest({"key": key, "name": name, **inputs})
        image = Image(key, name, d, self.cache / f"{key}-{d}.tar")
        if key in self.built:
            return self.built[key]
        with self._locked():
            if not image.path.is_file():
                self.say(f"building image {key} ({name}, digest {d})")
                start = time.monotonic()
                with self._workspace(key) as (work, buildah):
                    tmp = work / "image.tar"
                    build(work, buildah, tmp)
                    os.replace(tmp, image.path)
                self.timings[key] = round(time.monotonic() - start, 1)
                self.say(f"built image {key} in {self.timings[key]}s: {image.path}")
        self.built[key] = image
        return image

    # --- the images ----------------------------------------------------------------------

    def debian(self) -> Image:
        """Debian 12 (minbase) from debootstrap, with the machine's apt sources."""
        mirror = debian_mirror()
        sources = {p.name: p.read_text() for p in apt_sources()}
        acquire = apt_acquire_settings()
        inputs = {"suite": "bookworm", "variant": "minbase", "sources": sources, "apt": acquire}

        def build(work: pathlib.Path, buildah: Buildah, out: pathlib.Path) -> None:
            rootfs = work / "rootfs"
            try:
                _run(
                    ["debootstrap", "--variant=minbase", "bookworm", rootfs, mirror],
                    log=buildah.log,
                )
            finally:
                _unmount_under(rootfs)
            # What the debian:12-slim image leaves out: package lists, .debs, devices.
            for junk in ("var/lib/apt/lists", "var/cache/apt", "dev", "proc", "sys", "run"):
                shutil.rmtree(rootfs / junk, ignore_errors=True)
                (rootfs / junk).mkdir(parents=True)
            (rootfs / "var/lib/apt/lists/partial").mkdir()
            (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)
            (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
            for name, text in sources.items():
                folder = "etc/apt" if name == "sources.list" else "etc/apt/sources.list.d"
                (rootfs / folder / name).write_text(text)
            for name, text in acquire.items():
                (rootfs / "etc/apt/apt.conf.d" / name).write_text(text)
            tar = work / "rootfs.tar"
            _run(["tar", "--numeric-owner", "-C", rootfs, "-cf", tar, "."], log=buildah.log)
            ctr = buildah("from", "scratch").strip()
            buildah("add", ctr, tar, "/")
            buildah(
                "config",
                "--env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                '--cmd=["bash"]',
                ctr,
            )
            buildah("commit", "--quiet", ctr, DEBIAN_NAME)
            buildah.save(DEBIAN_NAME, out)

        return self._cached("debian", DEBIAN_NAME, inputs, build)

    def _from_containerfile(
        self,
        key: str,
        name: str,
        containerfile: pathlib.Path,
        bases: dict[str, Image],
        context_files: dict[str, pathlib.Path],
        *,
        volumes: Iterable[tuple[pathlib.Path, str]] = (),
        extra_inputs: dict | None = None,
    ) -> Image:
        """An image from a Containerfile whose context is `context_files` (name -> source).

        `bases` maps a build arg to the image it names (loaded first).
        """
        inputs = {
            "containerfile": containerfile.read_text(),
            "bases": {arg: img.digest for arg, img in bases.items()},
            "files": {
                n: _tree(p.parent, [p.name]) if p.is_dir() else _sha256_file(p)
                for n, p in sorted(context_files.items())
            },
            **(extra_inputs or {}),
        }

        def build(work: pathlib.Path, buildah: Buildah, out: pathlib.Path) -> None:
            context = work / "context"
            context.mkdir()
            for n, src in context_files.items():
                if src.is_dir():
                    shutil.copytree(src, context / n, symlinks=True)
                else:
                    shutil.copy2(src, context / n)
            for img in bases.values():
                buildah.load(img)
            args = {arg: img.name for arg, img in bases.items()}
            buildah.bud(containerfile, context, name, args, volumes)
            buildah.save(name, out)

        return self._cached(key, name, inputs, build)

    def python(self) -> Image:
        """The distroless python3-debian12:nonroot stand-in."""
        return self._from_containerfile(
            "python",
            PYTHON_NAME,
            HERE / "python3-debian12.Containerfile",
            {"BASE_IMAGE": self.debian()},
            {},
        )

    def function(self) -> Image:
        """The function's image from the repository's Dockerfile, only base images changed."""
        debian, python = self.debian(), self.python()
        pip_conf, pip_paths = pip_settings()
        sources = ["Dockerfile", "pyproject.toml", "README.md", "function"]
        inputs = {
            "bases": {"debian": debian.digest, "python": python.digest},
            "files": _tree(ROOT, sources),
        }

        def build(work: pathlib.Path, buildah: Buildah, out: pathlib.Path) -> None:
            buildah.load(debian)
            buildah.load(python)
            conf = work / "pip.conf"
            conf.write_text(pip_conf)
            volumes = [(conf, "/etc/pip.conf"), *pip_paths]
            # The build context is a copy of what the Dockerfile COPYs, nothing else.
            context = work / "context"
            context.mkdir()
            for rel in sources:
                src = ROOT / rel
                if src.is_dir():
                    shutil.copytree(
                        src, context / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                    )
                else:
                    shutil.copy2(src, context / rel)
            buildah.bud(
                context / "Dockerfile",
                context,
                FUNCTION_NAME,
                {"DEBIAN_IMAGE": debian.name, "DISTROLESS_PREFIX": DISTROLESS_PREFIX},
                volumes,
            )
            buildah.save(FUNCTION_NAME, out)

        return self._cached("function", FUNCTION_NAME, inputs, build)

    def kopia(self) -> Image:
        """kopia/kopia:0.23.1's stand-in with the pinned kopia."""
        return self._from_containerfile(
            "kopia",
            KOPIA_NAME,
            HERE / "kopia.Containerfile",
            {"BASE_IMAGE": self.debian()},
            {"kopia": _tool("kopia")},
        )

    def pause(self) -> Image:
        """The sandbox image."""
        return self._from_containerfile(
            "pause", PAUSE_NAME, HERE / "pause.Containerfile", {}, {"pause": _tool("pause")}
        )

    def coredns(self) -> Image:
        """CoreDNS."""
        return self._from_containerfile(
            "coredns",
            COREDNS_NAME,
            HERE / "coredns.Containerfile",
            {},
            {"coredns": _tool("coredns")},
        )

    def crossplane(self) -> Image:
        """Crossplane core, version stamped, with its CRDs and webhook configurations."""
        module = crossplane_module_dir()
        work = pathlib.Path(tempfile.mkdtemp(prefix=".rootfs-crossplane-", dir=self.cache))
        try:
            rootfs = work / "rootfs"
            (rootfs / "bin").mkdir(parents=True)
            shutil.copy2(_tool("crossplane-stamped"), rootfs / "bin" / "crossplane")
            shutil.copytree(module / "cluster" / "crds", rootfs / "crds")
            shutil.copytree(
                module / "cluster" / "webhookconfigurations", rootfs / "webhookconfigurations"
            )
            etc = rootfs / "etc"
            etc.mkdir()
            (etc / "passwd").write_text(
                "root:x:0:0:root:/root:/sbin/nologin\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
                "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
            )
            (etc / "group").write_text("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")
            (etc / "nsswitch.conf").write_text("hosts: files dns\n")
            (rootfs / "tmp").mkdir()
            (rootfs / "tmp").chmod(0o1777)
            (rootfs / "home" / "nonroot").mkdir(parents=True)
            os.chown(rootfs / "home" / "nonroot", 65532, 65532)
            return self._from_containerfile(
                "crossplane",
                CROSSPLANE_NAME,
                HERE / "crossplane.Containerfile",
                {},
                {"rootfs": rootfs},
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def package(self) -> pathlib.Path:
        """The Function package (.xpkg) with the function image embedded."""
        function = self.function()
        inputs = {"function": function.digest, "package": _tree(ROOT, ["package"])}
        d = digest({"key": "package", **inputs})
        path = self.cache / f"function-bsls-{d}.xpkg"
        with self._locked():
            if not path.is_file():
                self.say(f"building the Function package (digest {d})")
                start = time.monotonic()
                with tempfile.TemporaryDirectory(prefix=".xpkg-", dir=self.cache) as tmp:
                    examples = pathlib.Path(tmp) / "no-examples"
                    examples.mkdir()
                    out = pathlib.Path(tmp) / "function-bsls.xpkg"
                    _run(
                        [
                            _tool("crossplane"),
                            "xpkg",
                            "build",
                            f"--package-root={ROOT / 'package'}",
                            f"--examples-root={examples}",
                            f"--embed-runtime-image-tarball={function.path}",
                            f"--package-file={out}",
                        ],
                        cwd=tmp,
                        log=self.cache / "package.log",
                    )
                    os.replace(out, path)
                self.timings["package"] = round(time.monotonic() - start, 1)
                self.say(f"built the Function package in {self.timings['package']}s: {path}")
        return path

    def node_images(self) -> list[Image]:
        """Every image the node's registry serves (not the package)."""
        return [self.pause(), self.coredns(), self.crossplane(), self.kopia(), self.function()]


def crossplane_module_dir() -> pathlib.Path:
    """The crossplane module that tools/crossplane-core pins, in the Go module cache."""
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", CROSSPLANE_MODULE],
        cwd=ROOT / "tools" / "crossplane-core",
        capture_output=True,
        text=True,
        check=False,
    )
    path = pathlib.Path(out.stdout.strip())
    if out.returncode != 0 or not (path / "cluster" / "crds").is_dir():
        msg = f"cannot find the crossplane module in the Go module cache: {out.stderr.strip()}"
        raise ImageError(msg)
    return path


def _unmount_under(path: pathlib.Path) -> None:
    """Unmount whatever is mounted at or below `path` (debootstrap mounts /proc, /sys)."""
    prefix = str(path.resolve())
    mounts = []
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def main() -> None:
    """Build images by name (default: every node image and the package); print their files."""
    names = ["debian", "python", "function", "kopia", "pause", "coredns", "crossplane", "package"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(names))
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown image(s) {unknown}: choose from {names}")
    builder = Builder()
    try:
        for name in args.names or names:
            built = getattr(builder, name)()
            path = built if isinstance(built, pathlib.Path) else built.path
            print(path)
    except ImageError as e:
        print(f"image build failed: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
