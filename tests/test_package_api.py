"""The package's names: ``gencli.__all__`` and ``dir(gencli)`` list the whole Python API, one function a task."""

from __future__ import annotations

import gencli
from gencli import api
from gencli.tasks import TASKS


def test_the_package_lists_every_api_function_and_one_for_each_task():
    listed = set(gencli.__all__) - {"__version__"}
    assert listed == set(api.__all__)
    assert {f"generate_{name}" for name in TASKS} <= listed  # a new task's generate_<task> is listed too
    assert {"generate_video", *listed} <= set(dir(gencli))
    assert all(callable(getattr(gencli, name)) for name in listed)
    assert gencli.generate_video is api.generate_video
