"""docs/adding_a_family.md can be followed literally: every command it gives runs with the flags it
shows, every file it names exists, and every name of the model contract it mentions is real."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ppnets.arch import base, layers, reparam, registry

from helpers.runs import REPO

DOC = open(os.path.join(REPO, "docs", "adding_a_family.md"), encoding="utf-8").read()
COMMANDS = [line.strip() for block in re.findall(r"```bash\n(.*?)```", DOC, re.S) for line in block.splitlines()
            if line.strip().startswith("python tools/")]


def test_the_doc_gives_its_commands():
    assert {c.split()[1] for c in COMMANDS} == {"tools/make_reference.py", "tools/config_reference.py",
                                               "tools/model_table.py", "tools/weights.py"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_the_flags_the_doc_shows(command):
    tool, *words = command.split("#")[0].split()[1:]
    sub = words[:1] if words and not words[0].startswith("-") and "/" not in words[0] else []  # a subcommand
    out = subprocess.run([sys.executable, os.path.join(REPO, tool), *sub, "--help"], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    for flag in (w for w in words if w.startswith("--")):
        assert flag in out.stdout, f"{command}: {tool} has no {flag}"
    for path in (w for w in words if "/" in w and not w.startswith(("~", "--"))):
        assert os.path.exists(os.path.join(REPO, path)), f"{command}: {path} does not exist"


def test_every_file_the_doc_names_exists():
    paths = set(re.findall(r"`((?:ppnets|tests|configs|docs|tools)/[\w./]+)`", DOC))
    assert len(paths) > 10
    missing = [p for p in paths if "<" not in p and not os.path.exists(os.path.join(REPO, p))]
    assert not missing, missing


def test_every_contract_name_the_doc_mentions_exists():
    names = {"ClassificationModel": base, "FamilyHead": base, "add_stage": base.ClassificationModel,
             "add_stages_by_stride": base.ClassificationModel, "init_head": base.ClassificationModel,
             "init_family_head": base.ClassificationModel, "reparameterize": base.ClassificationModel,
             "register_model": registry, "ConvBNLayer": layers, "SqueezeExcite": layers, "DropPath": layers,
             "use_fast_convs": layers, "fuse_conv_bn": reparam, "fuse_bn": reparam, "identity_kernel": reparam,
             "pad_kernel": reparam, "fused_conv": reparam}
    for name, owner in names.items():
        assert re.search(rf"`[^`]*\b{name}\b[^`]*`", DOC), name
        assert hasattr(owner, name), name
    for key in ("family", "input_size", "paper", "year", "paddleclas", "from_paddleclas", "timm", "from_timm"):
        assert key in registry.register_model.__code__.co_varnames, key
