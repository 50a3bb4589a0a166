"""Start-up hook of audb-publish, run by ``audb_publish.pth``.

Only when the environment variable ``AUDB_PUBLISH_PATCH`` is set
(to anything but ``0``, ``false``, ``no`` or ``off``)
does ``audb_publish.pth`` import this module
and call :func:`install`.
It imports nothing itself:
it waits for the first ``import audb``
and patches :func:`audb.publish` right after audb is loaded,
so processes that never use audb pay nothing
and those that do pay for audb_publish once.
"""

import sys

requested = False
"""``True`` while audb_publish, which imports audb, owes the patch."""


class _PatchAfterImport:
    """Meta path finder that patches audb once it is loaded."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "audb":
            return None
        sys.meta_path.remove(cls)  # the real finders locate audb
        import importlib.util

        spec = importlib.util.find_spec("audb")
        if spec is None or spec.loader is None:  # pragma: no cover
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            if "audb_publish" in sys.modules:
                # audb_publish is importing audb: its module patching
                # patches at the end of its import
                global requested
                requested = True
                return
            from audb_publish.patching import patch_from_environment

            patch_from_environment()

        spec.loader.exec_module = exec_and_patch
        return spec


def install():
    """Patch :func:`audb.publish` when audb is imported."""
    if "audb" in sys.modules:  # pragma: no cover - not at start-up
        from audb_publish.patching import patch_from_environment

        patch_from_environment()
    elif _PatchAfterImport not in sys.meta_path:
        sys.meta_path.insert(0, _PatchAfterImport)
