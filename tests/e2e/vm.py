"""A Linux VM as a VM owner has one: a home, the credentials bundle, and the DNS it sees.

The bundle is the user's credentials Secret as files (how a Secret volume or KubeVirt's
Secret disk hands it to a VM). The VM runs the bundle's own `connect-linux.sh`, then
kopia commands with the SSL_CERT_FILE the script recorded, as docs/vm-user-guide.md
tells a VM owner to. Its /etc/hosts (a private mount namespace) decides where the
endpoint's host name leads: the genuine Service, or a machine in the middle.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess

from tests.e2e.cluster import BASE_ENV, with_hosts
from tests.e2e.stack import Stack


@dataclasses.dataclass
class VM:
    """A Linux VM of alice's: its home, its bundle, and the DNS it sees."""

    home: pathlib.Path
    bundle: pathlib.Path
    hosts: pathlib.Path

    def run(self, argv: list[str], hosts: pathlib.Path | None = None, **env: str):
        environment = {**BASE_ENV, "HOME": str(self.home), "KOPIA_CHECK_FOR_UPDATES": "false"}
        environment.update(env)
        return subprocess.run(
            with_hosts(hosts or self.hosts, argv),
            env=environment,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def connect(self, hosts: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
        """`sh connect-linux.sh`, from the bundle, as the guide says."""
        return self.run(["/bin/sh", str(self.bundle / "connect-linux.sh")], hosts)

    @property
    def ssl_cert_file(self) -> str:
        """What the connect script recorded in ~/.config/kopia/bsls.env."""
        line = (self.home / ".config" / "kopia" / "bsls.env").read_text().strip()
        assert line.startswith("SSL_CERT_FILE="), line
        return line.removeprefix("SSL_CERT_FILE=")

    def kopia(self, *args: str, hosts: pathlib.Path | None = None):
        """A later kopia command, with the variable the guide says to export."""
        return self.run(["kopia", *args], hosts, SSL_CERT_FILE=self.ssl_cert_file)


def new_vm(stack: Stack, identity: str, root: pathlib.Path) -> VM:
    """A VM whose bundle is `identity`'s credentials Secret as it is now."""
    (root / "home").mkdir(parents=True)
    return VM(root / "home", stack.bundle(identity, root / "bundle"), stack.cluster.hosts)
