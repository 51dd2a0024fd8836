"""The three roles and their order: each role can do everything the one below can."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    editor = "editor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.viewer: 0, Role.editor: 1, Role.admin: 2}


def lowest(a: Role, b: Role) -> Role:
    return a if a.rank <= b.rank else b
