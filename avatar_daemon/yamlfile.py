"""YAML loading that remembers line numbers, so every config error reads `path:line: reason`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .decoding import MAX_DEPTH

MAX_VALUES = 100_000  # far beyond any config file, far below what an alias bomb expands to

M = TypeVar("M", bound=BaseModel)


class YamlDocument:
    """Parsed data plus the node tree, to find the line of any key path."""

    def __init__(self, path: Path, text: str):
        self.path = path
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            self._check_shape()
            self.data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            raise ConfigError([f"{path}:{line}: invalid YAML: {exc.problem or exc}"]) from None
        except yaml.reader.ReaderError as exc:  # a control character or bad encoding: no mark, a position
            line = text.count("\n", 0, exc.position) + 1
            raise ConfigError([f"{path}:{line}: invalid YAML: character #x{exc.character:04x} is not allowed "
                               "(control characters cannot appear in YAML)"]) from None
        except RecursionError:
            raise ConfigError([f"{path}:1: nested too deeply (more than {MAX_DEPTH} levels)"]) from None
        if self.data is None:
            self.data = {}

    def _check_shape(self) -> None:
        """Refuse, without recursing, what no config file needs: deep nesting, or aliases that share one
        node so often (a "billion laughs" file) or so circularly that validating it would never end."""
        budget = MAX_VALUES
        stack = [(self.root, 1)] if self.root is not None else []
        while stack:
            node, depth = stack.pop()
            line = node.start_mark.line + 1
            if depth > MAX_DEPTH:
                raise ConfigError([f"{self.path}:{line}: nested too deeply (more than {MAX_DEPTH} levels)"])
            budget -= 1
            if budget < 0:
                raise ConfigError([f"{self.path}:{line}: too large once its aliases are expanded "
                                   f"(more than {MAX_VALUES} values)"])
            if isinstance(node, yaml.MappingNode):
                stack.extend((child, depth + 1) for pair in node.value for child in pair)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((child, depth + 1) for child in node.value)

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
