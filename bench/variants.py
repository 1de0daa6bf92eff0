"""Bench variants: candidate defaults, measured beside the shipped ones. Never shipped here.

Each changes only what the pods or the VM run (flags kopia v0.23.1 has, checked in its
source), through `bench/kopia-variant.sh` for the pods; the manifests and scripts stay
as rendered. `RECOMMENDED` is what `make bench` measures beside the shipped defaults;
`--tune` measures every candidate.
"""

from __future__ import annotations

from bench.tenant import Variant

# The server's concurrent request limit: kopia's default is 2 x runtime.NumCPU(), the
# CPUs it may run on (all of the node's in a pod, one here when the server is pinned).
CONCURRENCY = Variant(name="server --max-concurrency=32", server_args="--max-concurrency=32")
# The VM keeps no local content cache: no scrypt key derivation for it on every command
# (repo/open.go, getContentCacheOrNil) and no file written and fsynced per restored
# content; directory listings then come from the server.
VM_NO_CACHE = Variant(
    name="VM connect --content-cache-size-mb=0",
    client_connect_args="--content-cache-size-mb=0",
)
# The server's cache in memory, as an emptyDir with `medium: Memory` would hold it.
SERVER_CACHE_IN_MEMORY = Variant(
    name="server cache on tmpfs", connect_args="--cache-directory={tmpfs}/cache"
)
RESTORE_PARALLEL = Variant(name="VM restore --parallel=16", restore_args="--parallel=16")

CANDIDATES = (CONCURRENCY, VM_NO_CACHE, SERVER_CACHE_IN_MEMORY, RESTORE_PARALLEL)
RECOMMENDED: tuple[Variant, ...] = (VM_NO_CACHE,)
