"""Imports mujoco.mjx once with its two harmless start-up lines silenced.

mujoco 4's `mujoco.mjx.warp` prints "Failed to import warp: ..." and "Failed to import
mujoco_warp: ..." to stdout whenever NVIDIA Warp is not installed; nothing here uses Warp
(planar is plain JAX, and the mjx backend runs MJX's JAX implementation), so on every
machine without it those two lines were the first thing a user read. Brax imports
mujoco.mjx too; importing it here first (envs/__init__.py does, before anything imports
Brax) leaves Brax the cached module. Any other line the import prints is passed through.
"""

import contextlib
import io

_HARMLESS = ("Failed to import warp:", "Failed to import mujoco_warp:")

_printed = io.StringIO()
with contextlib.redirect_stdout(_printed):
  import mujoco.mjx  # noqa: F401  pylint: disable=unused-import
for _line in _printed.getvalue().splitlines():
  if not _line.startswith(_HARMLESS):
    print(_line)
