"""One measurement, run in a fresh subprocess by ``run.py``.

Usage: ``python benchmarks/worker.py SPEC.json``

The spec names an action:

* ``publish``: call upstream ``audb.publish`` or ``audb_publish.publish``
  (``impl`` is ``upstream``, ``ours`` or ``pipeline``)
  and time only that call
* ``floor``: MD5 of every file of the database plus one copy (file system)
  or one upload (S3) of the published files, using all cores
* ``s5cmd``: copy every file of the database raw to the S3 bucket
  with ``s5cmd cp`` (a peer, not a floor: it hashes and zips nothing)
* ``prepare``: publish the database as 1.0.0 with upstream,
  load it back with ``audb.load_to()``
  and alter and add 1% of the media
  (the starting point of the ``incremental`` shape)

The result is written as JSON to ``spec["result"]``.
Modules are imported lazily,
so that the floor does not pay for importing audb
and upstream runs never import ``audb_publish``.

"""

import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import time
import traceback


def configure_audb(spec: dict):
    """Point audb at the benchmark repository and a private cache only."""
    import audb

    repo = spec["repository"]
    audb.config.REPOSITORIES = [
        audb.Repository(repo["name"], repo["host"], repo["backend"])
    ]
    audb.config.CACHE_ROOT = os.path.join(spec["cache_root"], "cache")
    audb.config.SHARED_CACHE_ROOT = os.path.join(spec["cache_root"], "shared")
    return audb.config.REPOSITORIES[0]


# ---------------------------------------------------------------------------
# publish


def publish_function(impl: str, profile: bool, workers: int = 1):
    """Return ``(publish, extra keyword arguments, stage collector)``."""
    if impl == "upstream":
        import audb.core.publish

        collector = None
        if profile:
            import profiling

            collector = profiling.UpstreamProfiler().install()
        return audb.core.publish.publish, {}, collector

    import profiling

    import audb_publish

    collector = profiling.StageCollector().install()
    extra = {"pipeline": impl == "pipeline"}
    if impl == "processes":
        extra["scheduler"] = "processes"
    elif impl == "dask":
        extra["scheduler"] = dask_client(workers)
    return audb_publish.publish, extra, collector


_CLUSTERS = contextlib.ExitStack()


def dask_client(workers: int):
    """A Dask cluster of ``workers`` processes with one thread, started untimed.

    A user publishing to a cluster has it running already.
    It runs until this worker process exits.
    """
    from audb_publish.testing import dask_cluster

    return _CLUSTERS.enter_context(dask_cluster(workers))


def run_publish(spec: dict) -> dict:
    """Time one publish call."""
    repository = configure_audb(spec)
    publish, extra, collector = publish_function(
        spec["impl"], spec.get("profile", False), spec["workers"]
    )
    extra.update(spec.get("options", {}))
    start = time.perf_counter()
    publish(
        spec["db_root"],
        spec["version"],
        repository,
        num_workers=spec["workers"],
        verbose=False,
        **extra,
    )
    seconds = time.perf_counter() - start
    stages = collector.stages(seconds) if collector else []
    return {"seconds": seconds, "stages": stages}


# ---------------------------------------------------------------------------
# floor


def md5_command(root: str, cores: int) -> list[str]:
    """Shell pipeline hashing every file below ``root`` on all cores."""
    return [
        "sh",
        "-c",
        'find "$1" -type f -print0 | xargs -0 -r -P "$2" -n 32 md5sum > /dev/null',
        "md5",
        root,
        str(cores),
    ]


def copy_command(root: str, destination: str, files: list[str] | None) -> tuple:
    """``cp -r`` of everything, or ``cp --parents`` of a file list (from stdin)."""
    if files is None:
        return ["cp", "-r", f"{root}/.", destination], None
    command = ["xargs", "-0", "-r", "cp", "--parents", "-t", destination]
    return command, "\0".join(files).encode()


def check(process: subprocess.Popen, what: str):
    """Wait for a process and raise if it failed."""
    if process.wait() != 0:
        raise RuntimeError(f"{what} failed with exit code {process.returncode}")


def floor_filesystem(spec: dict, files: list[str] | None):
    """MD5 of all files and ``cp`` of the published files, concurrently."""
    repo = spec["repository"]
    destination = os.path.join(repo["host"], repo["name"])
    os.makedirs(destination, exist_ok=True)
    md5 = subprocess.Popen(md5_command(spec["db_root"], spec["cores"]))
    command, stdin = copy_command(spec["db_root"], destination, files)
    copy = subprocess.Popen(command, cwd=spec["db_root"], stdin=subprocess.PIPE)
    copy.communicate(stdin)
    check(copy, "copy")
    check(md5, "md5sum")


def s3_client(host: str):
    """MinIO client with the credentials the benchmark server uses."""
    import minio

    access_key = os.environ["MINIO_ACCESS_KEY"]
    secret_key = os.environ["MINIO_SECRET_KEY"]
    return minio.Minio(host, access_key, secret_key, secure=False)


def floor_s3(spec: dict, files: list[str] | None):
    """MD5 of all files and parallel ``fput_object`` of the published files."""
    repo = spec["repository"]
    client = s3_client(repo["host"])
    root = spec["db_root"]
    if files is None:
        files = [
            os.path.relpath(os.path.join(d, n), root)
            for d, _, names in os.walk(root)
            for n in names
        ]
    md5 = subprocess.Popen(md5_command(root, spec["cores"]))
    with concurrent.futures.ThreadPoolExecutor(spec["floor_threads"]) as pool:
        jobs = [
            pool.submit(client.fput_object, repo["name"], f, os.path.join(root, f))
            for f in files
        ]
        for job in jobs:
            job.result()
    check(md5, "md5sum")


def run_floor(spec: dict) -> dict:
    """Time the floor for the spec's backend."""
    files = spec.get("files")
    floor = floor_s3 if spec["repository"]["backend"] == "minio" else floor_filesystem
    start = time.perf_counter()
    floor(spec, files)
    return {"seconds": time.perf_counter() - start, "stages": []}


def run_s5cmd(spec: dict) -> dict:
    """Time ``s5cmd cp`` of the database folder into the bucket."""
    repo = spec["repository"]
    environ = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": os.environ["MINIO_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": os.environ["MINIO_SECRET_KEY"],
        "AWS_REGION": "us-east-1",
    }
    command = [
        spec["s5cmd"],
        "--endpoint-url",
        f"http://{repo['host']}",
        "cp",
        os.path.join(spec["db_root"], "*"),
        f"s3://{repo['name']}/",
    ]
    start = time.perf_counter()
    subprocess.run(command, env=environ, check=True, stdout=subprocess.DEVNULL)
    return {"seconds": time.perf_counter() - start, "stages": []}


# ---------------------------------------------------------------------------
# incremental preparation


def run_prepare(spec: dict) -> dict:
    """Publish 1.0.0 with upstream, load it back, alter and add media."""
    import audb
    import audformat
    import incremental

    repository = configure_audb(spec)
    name = audformat.Database.load(spec["db_root"]).name
    audb.publish(
        spec["db_root"],
        "1.0.0",
        repository,
        previous_version=None,
        num_workers=spec["workers"],
        verbose=False,
    )
    audb.load_to(
        spec["target_root"],
        name,
        version="1.0.0",
        only_metadata=False,
        pickle_tables=False,
        num_workers=spec["workers"],
        verbose=False,
    )
    changed = incremental.alter(spec["target_root"], spec["fraction"], spec["seed"])
    return {"seconds": 0.0, "stages": [], "changed": changed}


def peak_rss_kib() -> int:
    """Peak RSS of this process (``VmHWM``, reset by exec) or of any child, KiB.

    ``wait4()`` in the parent would also count the parent's memory,
    which the child carries until it execs.

    """
    import resource

    own = 0
    with open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children)


ACTIONS = {
    "publish": run_publish,
    "floor": run_floor,
    "prepare": run_prepare,
    "s5cmd": run_s5cmd,
}


def main(path: str):
    """Run the spec at ``path`` and write its result."""
    with open(path) as fp:
        spec = json.load(fp)
    try:
        result = {"ok": True, **ACTIONS[spec["action"]](spec)}
        code = 0
    except Exception as error:  # noqa: BLE001 - report every failure to the parent
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        code = 1
    result["peak_rss_kib"] = peak_rss_kib()
    with open(spec["result"], "w") as fp:
        json.dump(result, fp)
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1])
