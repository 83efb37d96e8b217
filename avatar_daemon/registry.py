"""Named objects that plugins registered, one Registry per hook."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from .errors import PluginError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object map that refuses duplicates and says which plugins clashed."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._owners: dict[str, str] = {}

    def add(self, item: T, owner: str) -> None:
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {owner!r} registered a {self.kind} without a name: {item!r}")
        if name in self._items:
            raise PluginError(
                f"{self.kind} {name!r} is registered by both plugin {self._owners[name]!r} and plugin {owner!r}"
            )
        self._items[name] = item
        self._owners[name] = owner

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownNameError(f"no {self.kind} named {name!r} (known: {known})") from None

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return list(self._items)
