"""moto's CloudFormation deploys the sample without two costs no answer depends on (issue 21, the suite's time).

Every test that runs the product deploys the sample assembly on a fresh emulator (the demo, `make
emulator`, the end-to-end tests: about 30 deploys per `make test`), and most of a deploy's CPU was spent
inside moto rather than in the deployer:

- each account's first EC2 request (the platform's VPC, subnets and gateways create EC2 backends in every
  account the stacks touch) built moto's catalogue of ~6,500 public AMIs, each with random ids drawn one
  character at a time: about a third of the emulator's CPU in a deploy. Nothing here starts an instance or
  lists images; moto skips the catalogue when its setting ``MOTO_EC2_LOAD_DEFAULT_AMIS`` is ``false``, which
  :func:`install` answers in moto's ``settings`` rather than in the environment (children inherit that).
- ``CreateStack`` parsed each template with PyYAML's pure-Python loader (JSON is YAML, so moto tries YAML
  first and JSON only when YAML fails): about a quarter of it. A synthesized template is JSON; it is now
  read with ``json.loads`` first, and anything that is not a JSON object still goes to moto's own YAML
  loader, so a YAML template (with its short-form tags) is read as before. For the templates the tests
  deploy both give the same dictionary (compared on every template of the sample and of the single-account
  variant: ``tests/test_cfn_speedups.py``); where the two could differ (``1e3``, which PyYAML's YAML 1.1
  reads as a string), JSON's reading is CloudFormation's.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import json
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_MODELS = "moto.cloudformation.models"
_installed = False


def _json_first(parse: Any) -> Any:
    """``parse`` (moto's YAML-then-JSON template parser) that reads a JSON object with ``json.loads``."""

    @functools.wraps(parse)
    def parse_template(template: str) -> Any:
        if isinstance(template, str) and template.lstrip().startswith("{"):
            try:
                parsed = json.loads(template)
            except ValueError:
                pass
            else:
                if isinstance(parsed, dict):
                    return parsed
        return parse(template)

    return parse_template


def _patch_templates(models: ModuleType) -> None:
    """moto's stacks and change sets read a JSON template with ``json.loads``."""
    stack = models.Stack
    stack.parse_template = staticmethod(_json_first(stack.parse_template))

    def parse_change_set(self: Any) -> None:
        self.template_dict = stack.parse_template(self.template)

    models.ChangeSet._parse_template = parse_change_set


class _PatchedOnImport(importlib.abc.MetaPathFinder):
    """Patches moto's CloudFormation models when they are imported: importing them costs ~1.2 CPU s, which
    an emulator host that never deploys (the fault tests, the benchmarks' emulator) does not pay."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _MODELS:
            return None
        sys.meta_path.remove(self)  # once: the module is imported once per process
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            loader: Any = spec.loader  # this spec's own loader: patching it changes no other import
            load = loader.exec_module

            def exec_module(module: ModuleType) -> None:
                load(module)
                _patch_templates(module)

            loader.exec_module = exec_module
        return spec


def install() -> None:
    """Patch moto in this process (idempotent; before serving). :class:`devtools.emulator.LocalAws` calls it."""
    global _installed
    if _installed:
        return
    from moto import settings

    settings.ec2_load_default_amis = lambda: False  # the catalogue of public AMIs: nothing here uses an image
    if _MODELS in sys.modules:
        _patch_templates(sys.modules[_MODELS])
    else:
        sys.meta_path.insert(0, _PatchedOnImport())
    _installed = True
