"""Where the time goes inside a publish call.

:class:`UpstreamProfiler` wraps the internal functions
that ``audb.core.publish`` calls
(and a few they call in turn: archive creation, ``put_file``, MD5,
audio metadata)
with timers,
by monkeypatching them for the lifetime of the (worker) process.
Each timer is recorded under its call path,
e.g. ``_put_media/create_archive``,
so nested times can be told apart from the time of their caller.
Calls made in worker threads are attributed
to the top-level stage that the main thread is in,
and their times are summed over threads.

:class:`StageCollector` captures the per-stage records
that ``audb_publish`` logs at DEBUG level on the ``"audb_publish"`` logger.

"""

from collections import defaultdict
import functools
import logging
import threading
import time

# Functions in the namespace of audb.core.publish that are timed
UPSTREAM_STAGES = (
    "_database_versions",
    "api_versions",
    "dependencies",
    "_check_for_duplicates",
    "_get_root_files",
    "_check_for_missing_media",
    "_find_attachments",
    "_put_attachments",
    "_find_tables",
    "_put_tables",
    "_find_media",
    "_put_media",
    "upload_dependencies",
)

# Top-level timers in the order upstream's publish() calls them
CALL_ORDER = (
    "load header",
    "_database_versions",
    "api_versions",
    "load dependency table",
    "dependencies",
    "load tables",
    *UPSTREAM_STAGES[3:],
    "put_file",
)


class UpstreamProfiler:
    """Accumulate wall time per call path of upstream's publish internals."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._top = None  # stage the main thread is in

    # -- recording ---------------------------------------------------------

    def _stack(self) -> list:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def _wrap(self, name: str, function, *, label=None):
        """Return ``function`` wrapped with a timer recorded as ``name``."""

        @functools.wraps(function)
        def timed(*args, **kwargs):
            stack = self._stack()
            key = label(*args, **kwargs) if label else name
            if (
                not stack
                and self._top
                and threading.current_thread() is not threading.main_thread()
            ):
                stack.append(self._top)  # a worker thread of a top-level stage
                outer = True
            else:
                outer = False
            top_level = not stack
            stack.append(key)
            path = "/".join(stack)
            if top_level:
                self._top = key
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                stack.pop()
                if outer:
                    stack.pop()
                if top_level:
                    self._top = None
                with self._lock:
                    self.seconds[path] += elapsed
                    self.calls[path] += 1

        return timed

    def _patch(self, owner, attribute: str, name: str, *, static=False, label=None):
        original = getattr(owner, attribute)
        wrapped = self._wrap(name, original, label=label)
        setattr(owner, attribute, staticmethod(wrapped) if static else wrapped)

    # -- installation ------------------------------------------------------

    def install(self):
        """Monkeypatch upstream's internals (stays in place for the process)."""
        import audb.core.publish as publish
        import audbackend
        import audeer
        import audformat

        def load_label(*args, **kwargs):
            return "load tables" if kwargs.get("load_data") else "load header"

        self._patch(audformat.Database, "load", "load", static=True, label=load_label)
        self._patch(publish.Dependencies, "load", "load dependency table")
        for name in UPSTREAM_STAGES:
            self._patch(publish, name, name)
        self._patch(publish, "_media_values", "audio info")
        self._patch(audeer, "md5", "md5")
        self._patch(audeer, "create_archive", "create_archive")
        self._patch(audbackend.backend.Base, "put_file", "put_file")
        return self

    def stages(self, total: float) -> list[tuple[str, float]]:
        """``(path, seconds)`` in call order, with 'other' as the remainder."""
        order = list(CALL_ORDER)
        names = [name for name in self.seconds if "/" not in name]
        names = sorted(
            names, key=lambda n: order.index(n) if n in order else len(order)
        )
        tops = [(name, self.seconds[name]) for name in names]
        children = sorted(
            (path, seconds) for path, seconds in self.seconds.items() if "/" in path
        )
        rows = []
        for name, seconds in tops:
            rows.append((name if name != "put_file" else "put_file (header)", seconds))
            rows += [(p, s) for p, s in children if p.split("/")[0] == name]
        rows.append(("other", total - sum(seconds for _, seconds in tops)))
        return rows


class StageCollector(logging.Handler):
    """Collect ``(stage, seconds)`` from the ``"audb_publish"`` logger."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = {}

    def emit(self, record):  # noqa: D102
        stage = getattr(record, "stage", None)
        if stage is not None:
            # a stage may be logged in parts (the caches, before and after
            # validation): summed, in the order of its first part
            self.seconds[stage] = self.seconds.get(stage, 0.0) + float(record.seconds)

    def install(self):
        """Attach to the ``"audb_publish"`` logger at DEBUG level."""
        logger = logging.getLogger("audb_publish")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def stages(self, total: float) -> list[tuple[str, float]]:
        """Logged stages in order, with 'other' as the remainder."""
        rows = list(self.seconds.items())
        return [*rows, ("other", total - sum(self.seconds.values()))]
