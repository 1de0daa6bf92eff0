"""What a VM owner (or an operator) does with the stock kopia client, and test data."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import subprocess

from tests.e2e.cluster import BASE_ENV, with_hosts

CLIENT_TIMEOUT = 120


@dataclasses.dataclass
class Client:
    """A kopia client with its own config, cache and logs, like one VM's.

    It resolves names through `hosts` (the cluster's DNS, or a poisoned one) and trusts
    the CA file `ca_file` through SSL_CERT_FILE, as the bundle's connect script sets up.
    """

    home: pathlib.Path
    hosts: pathlib.Path
    password: str | None = None
    ca_file: pathlib.Path | None = None

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def config(self) -> pathlib.Path:
        """The client's repository config file."""
        return self.home / "config" / "repository.config"

    def env(self, password: str | None) -> dict[str, str]:
        """The client's environment: nothing from the test process leaks in."""
        env = {
            **BASE_ENV,
            "HOME": str(self.home),
            "KOPIA_CONFIG_PATH": str(self.config),
            "KOPIA_CACHE_DIRECTORY": str(self.home / "cache"),
            "KOPIA_LOG_DIR": str(self.home / "logs"),
            "KOPIA_CHECK_FOR_UPDATES": "false",
        }
        if password is not None:
            env["KOPIA_PASSWORD"] = password
        if self.ca_file is not None:
            env["SSL_CERT_FILE"] = str(self.ca_file)
        return env

    def trust(self, ca_pem: str | bytes) -> pathlib.Path:
        """Trust a CA from now on (a per-user CA file, as connect-linux.sh installs)."""
        self.ca_file = self.home / "ca.crt"
        self.ca_file.write_bytes(ca_pem.encode() if isinstance(ca_pem, str) else ca_pem)
        return self.ca_file

    def run(
        self,
        *args: str,
        password: str | None = None,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `kopia <args>`; the password (if any) goes in KOPIA_PASSWORD."""
        env = self.env(password if password is not None else self.password)
        done = subprocess.run(
            with_hosts(self.hosts, ["kopia", *args]),
            env={**env, **(extra_env or {})},
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
        if check and done.returncode != 0:
            msg = f"kopia {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            raise AssertionError(msg)
        return done

    def connect_server(
        self,
        url: str,
        username: str,
        hostname: str,
        password: str,
        fingerprint: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`kopia repository connect server`: verified TLS, or pinned to a fingerprint."""
        pin = [f"--server-cert-fingerprint={fingerprint}"] if fingerprint else []
        return self.run(
            "repository",
            "connect",
            "server",
            f"--url={url}",
            *pin,
            f"--override-username={username}",
            f"--override-hostname={hostname}",
            password=password,
            check=False,
        )

    def snapshot(self, folder: pathlib.Path) -> str:
        """Snapshot a folder; returns the snapshot's manifest ID."""
        done = self.run("snapshot", "create", str(folder), "--json")
        return json.loads(done.stdout)["id"]

    def snapshots(self) -> list[dict]:
        """`kopia snapshot list --all --json`: every snapshot this client may see."""
        return json.loads(self.run("snapshot", "list", "--all", "--json").stdout)

    def restore(self, snapshot_id: str, target: pathlib.Path) -> None:
        """Restore a snapshot into a new folder."""
        self.run("snapshot", "restore", snapshot_id, str(target))


def make_tree(root: pathlib.Path, seed: str = "") -> pathlib.Path:
    """A folder of varied files: text, random binary, empty, nested, unicode names."""
    files: dict[str, bytes] = {
        "notes.txt": f"Hello from a VM {seed}\n".encode() * 50,
        "binary/random.bin": os.urandom(3 * 1024 * 1024 + 17),
        "binary/small.bin": os.urandom(1),
        "empty.txt": b"",
        "a/b/c/d/deep.txt": b"nested five levels down\n",
        "naïve café.txt": "crème brûlée, s'il vous plaît\n".encode(),
        "日本語/ファイル.txt": "こんにちは\n".encode(),
        "emoji 🙂/x y.dat": bytes(range(256)) * 16,
        ".hidden": b"dotfile\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty-dir").mkdir(parents=True, exist_ok=True)
    return root


def tree(root: pathlib.Path) -> dict[str, str]:
    """Relative path -> 'dir' or the SHA-256 of the file's bytes, for every entry."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out
