"""Ship ``audb_publish.pth``, the start-up hook, at the root of the wheel.

Setuptools installs only packages and modules by itself;
a ``.pth`` file must sit beside them in ``site-packages``
for Python to run it at start-up,
so it is copied into the build folder with them,
as pytest-cov ships its own hook.
Everything else is configured in ``pyproject.toml``.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HOOK = "audb_publish.pth"


class BuildWithHook(build_py):
    """``build_py`` that also copies the start-up hook."""

    def run(self):
        """Build the packages and modules, then copy the hook beside them."""
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        shutil.copy(os.path.join(here, HOOK), os.path.join(self.build_lib, HOOK))

    def get_outputs(self, include_bytecode=True):
        """Files built, the hook included."""
        return [
            *super().get_outputs(include_bytecode),
            os.path.join(self.build_lib, HOOK),
        ]


setup(cmdclass={"build_py": BuildWithHook})
