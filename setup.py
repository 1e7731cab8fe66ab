"""Package discovery (metadata lives in pyproject.toml): a new subpackage is never left out of an install.

``envs/`` is installed under the import name ``equirobot_envs``, so nothing generic lands in site-packages.
"""

from setuptools import find_packages, setup

envs = ["equirobot_envs" + name.removeprefix("envs") for name in find_packages(include=["envs", "envs.*"])]
setup(packages=find_packages(include=["equirobot", "equirobot.*"]) + envs, package_dir={"equirobot_envs": "envs"})
