"""YAML loading that remembers line numbers, so every config error reads `path:line: reason`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class YamlDocument:
    """Parsed data plus the node tree, to find the line of any key path."""

    def __init__(self, path: Path, text: str):
        self.path = path
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            raise ConfigError([f"{path}:{line}: invalid YAML: {exc.problem or exc}"]) from None
        if self.data is None:
            self.data = {}

    @classmethod
    def load(cls, path: Path) -> "YamlDocument":
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError([f"{path}:1: cannot read: {exc.strerror}"]) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}:1: not UTF-8 text"]) from None
        return cls(path, text)

    def line_of(self, loc: Iterable[Any]) -> int:
        node = self.root
        line = node.start_mark.line + 1 if node is not None else 1
        for key in loc:
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if k.value == str(key):
                        node, line = v, k.start_mark.line + 1
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def validate(self, model: type[M], data: Any = None, prefix: tuple = ()) -> M:
        try:
            return model.model_validate(self.data if data is None else data)
        except ValidationError as exc:
            raise ConfigError(
                [
                    f"{self.path}:{self.line_of(prefix + tuple(err['loc']))}: "
                    f"{'.'.join(str(p) for p in prefix + tuple(err['loc'])) or 'file'}: {err['msg']}"
                    for err in exc.errors()
                ]
            ) from None
