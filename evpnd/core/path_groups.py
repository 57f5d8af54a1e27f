"""Index groups: the best paths feeding one kernel object (an FDB entry, a neighbour, a route).

Most objects have one path, so a group is that Path itself, and a dict {key: Path} only from
two paths on: a dict per MAC would cost memory and garbage-collector time at 100k routes.
"""

from __future__ import annotations

from collections.abc import Iterable

from evpnd.routes.evpn import Path, RouteKey

Group = Path | dict[RouteKey, Path]
ABSENT = object()  # group_del: there was no such group


def group_put(
    index: dict[tuple[int, str], Group], gk: tuple[int, str], key: RouteKey, path: Path
) -> None:
    group = index.get(gk)
    if group is None:
        index[gk] = path
    elif isinstance(group, dict):
        group[key] = path
    elif group.key == key:
        index[gk] = path
    else:
        index[gk] = {group.key: group, key: path}


def group_del(index: dict[tuple[int, str], Group], gk: tuple[int, str], key: RouteKey) -> object:
    """Remove a key from a group: what is left (a group, or None), or ABSENT if no group."""
    group = index.get(gk)
    if group is None:
        return ABSENT
    if isinstance(group, dict):
        group.pop(key, None)
        if len(group) > 1:
            return group
        if group:
            (left,) = group.values()
            index[gk] = left
            return left
    elif group.key != key:
        return group
    del index[gk]
    return None


def group_paths(group: Group | None) -> Iterable[Path]:
    """The paths of a group (of a missing group: none)."""
    if group is None:
        return ()
    if isinstance(group, dict):
        return group.values()
    return (group,)
