"""Repositories to publish to: a file-system folder or a SeaweedFS S3 bucket.

Every measurement gets a fresh, empty repository
(or a fresh copy of a prepared one, for the ``incremental`` shape)
that is deleted afterwards.
A repository is passed to the worker as a plain dict
``{"name", "host", "backend"}``,
the arguments of :class:`audb.Repository`.

"""

import concurrent.futures
import contextlib
import io
import itertools
import os
from pathlib import Path
import shutil

_COUNTER = itertools.count()


def unique_name(prefix: str) -> str:
    """Name that is unique within this run and valid as an S3 bucket name."""
    return f"{prefix}-{os.getpid()}-{next(_COUNTER)}".lower()


class FileSystemTarget:
    """File-system repositories in folders below ``work``."""

    backend = "file-system"

    def __init__(self, work: Path, name: str = "fs"):
        self.name = name
        self.work = work

    def new(self) -> dict:
        """Create an empty repository."""
        host = self.work / unique_name("repo")
        (host / "bench").mkdir(parents=True)
        return {"name": "bench", "host": str(host), "backend": self.backend}

    def clone(self, template: dict) -> dict:
        """Copy of a prepared repository."""
        repo = self.new()
        shutil.rmtree(Path(repo["host"]) / "bench")
        shutil.copytree(
            Path(template["host"]) / template["name"], Path(repo["host"]) / "bench"
        )
        return repo

    def size(self, repo: dict) -> int:
        """Bytes stored in the repository."""
        total = 0
        for dirpath, _, names in os.walk(Path(repo["host"]) / repo["name"]):
            total += sum(os.path.getsize(os.path.join(dirpath, n)) for n in names)
        return total

    def delete(self, repo: dict):
        """Remove the repository."""
        shutil.rmtree(repo["host"], ignore_errors=True)


class S3Target:
    """Buckets on a SeaweedFS server, optionally reached through a throttling proxy.

    Args:
        server: running :class:`audb_publish.testing.SeaweedFS`
        name: label of the target in the results
        host: address the publishing code connects to
            (the server or a proxy in front of it)

    """

    backend = "minio"

    def __init__(self, server, name: str = "s3", host: str | None = None):
        self.server = server
        self.name = name
        self.host = host or server.host

    @property
    def client(self):
        """MinIO client talking to the server directly (not through a proxy)."""
        import minio

        from audb_publish import testing

        return minio.Minio(
            self.server.host, testing.ACCESS_KEY, testing.SECRET_KEY, secure=False
        )

    def new(self) -> dict:
        """Create an empty, warmed-up bucket.

        SeaweedFS allocates the volumes of a bucket on its first write,
        which takes 0.2-1 s;
        one tiny object is put and removed
        so that this is not part of the measurement.

        """
        name = unique_name("bench")
        host = None if self.host == self.server.host else self.host
        repository = self.server.repository(name, host=host)
        client = self.client
        client.put_object(name, "warm-up", io.BytesIO(b"0"), 1)
        client.remove_object(name, "warm-up")
        return {
            "name": repository.name,
            "host": repository.host,
            "backend": self.backend,
        }

    def clone(self, template: dict) -> dict:
        """New bucket with server-side copies of all objects of ``template``."""
        from minio.commonconfig import CopySource

        repo = self.new()
        client = self.client
        names = [
            o.object_name for o in client.list_objects(template["name"], recursive=True)
        ]

        def copy(name):
            client.copy_object(repo["name"], name, CopySource(template["name"], name))

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(copy, names))
        return repo

    def size(self, repo: dict) -> int:
        """Bytes stored in the bucket."""
        objects = self.client.list_objects(repo["name"], recursive=True)
        return sum(o.size for o in objects)

    def delete(self, repo: dict):
        """Remove all objects and the bucket."""
        from minio.deleteobjects import DeleteObject

        client = self.client
        names = [
            o.object_name for o in client.list_objects(repo["name"], recursive=True)
        ]
        for start in range(0, len(names), 1000):
            batch = [DeleteObject(n) for n in names[start : start + 1000]]
            errors = list(client.remove_objects(repo["name"], batch))
            if errors:
                raise RuntimeError(
                    f"Cannot delete objects of {repo['name']}: {errors[:3]}"
                )
        client.remove_bucket(repo["name"])


@contextlib.contextmanager
def open_targets(backends: list[str], bandwidths: list[float], work: Path):
    """Yield the targets, starting SeaweedFS and proxies as needed.

    Args:
        backends: subset of ``["fs", "s3"]``
        bandwidths: MB/s (1e6 bytes) of throttled S3 targets to add
        work: folder for file-system repositories

    """
    with contextlib.ExitStack() as stack:
        targets = []
        if "fs" in backends:
            targets.append(FileSystemTarget(work / "fs"))
        if "s3" in backends or bandwidths:
            from audb_publish import testing

            server = stack.enter_context(testing.SeaweedFS(str(work / "seaweedfs")))
            if "s3" in backends:
                targets.append(S3Target(server))
            for rate in bandwidths:
                proxy = stack.enter_context(
                    testing.ThrottlingProxy(server.host, rate * 1e6)
                )
                targets.append(S3Target(server, f"s3@{rate:g}MB/s", proxy.host))
        yield targets
