"""Each package's ``__all__`` names exactly its public re-exports, and the light ones stay light."""

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "zoobot",
    "zoobot.schemas",
    "zoobot.models",
    "zoobot.data",
    "zoobot.finetune",
    "prioritiser",
    "panoptes_sync",
    "panoptes_sync.store",
    "panoptes_sync.emulator",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_the_public_names(name):
    module = importlib.import_module(name)
    public = {
        attribute
        for attribute, value in vars(module).items()
        if not attribute.startswith("_")
        and not isinstance(value, type(sys))
        and attribute != "annotations"
    }
    assert set(module.__all__) == public


@pytest.mark.parametrize("name", ["zoobot", "prioritiser", "panoptes_sync"])
def test_light_packages_do_not_import_torch(name):
    code = f"import sys, {name}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
