"""The operator's memory of the cluster: the latest ModelDeployments, children and pods it saw.

Fed by the watches, by the answers to the operator's own writes, and by periodic re-lists. Every
way in goes through the same rule: a body older than the one held never replaces it (watch events
and write answers race), and a re-list is the API's word on what exists.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from modeldeploy_operator import naming

Key = tuple[str, str]  # (namespace, ModelDeployment name)
ChildId = tuple[str, str]  # (kind, name)
Body = dict[str, Any]
Ident = TypeVar("Ident")


def owner_key(body: Body) -> Key | None:
    meta = body.get("metadata", {})
    model = meta.get("labels", {}).get(naming.LABEL_MODEL)
    namespace = meta.get("namespace")
    return (namespace, model) if model and namespace else None


def _version(body: Body) -> int | None:
    rv = body.get("metadata", {}).get("resourceVersion", "")
    return int(rv) if isinstance(rv, str) and rv.isdigit() else None


def is_older(body: Body, held: Body | None) -> bool:
    """Whether `body` predates `held`. resourceVersions are opaque strings, but etcd-backed ones
    are increasing integers; anything else is never treated as older."""
    if held is None:
        return False
    new, old = _version(body), _version(held)
    return new is not None and old is not None and new < old


def slim_pod(body: Body) -> Body:
    """Pods are numerous; keep only what status needs (and the version, to order updates)."""
    meta = body.get("metadata", {})
    status = body.get("status", {})
    return {
        "metadata": {
            "name": meta.get("name"),
            "labels": meta.get("labels", {}),
            "deletionTimestamp": meta.get("deletionTimestamp"),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "status": {
            "phase": status.get("phase"),
            "initContainerStatuses": status.get("initContainerStatuses", []),
            "containerStatuses": status.get("containerStatuses", []),
        },
    }


def same_pod(a: Body | None, b: Body | None) -> bool:
    """Equal in everything status reads (a new resourceVersion alone changes nothing)."""
    if a is None or b is None:
        return a is b

    def content(pod: Body) -> tuple[Any, Any]:
        meta = {k: v for k, v in pod["metadata"].items() if k != "resourceVersion"}
        return meta, pod["status"]

    return content(a) == content(b)


@dataclass
class ClusterView:
    """The latest bodies seen, for ModelDeployments and their children and pods."""

    models: dict[Key, Body] = field(default_factory=dict)
    children: dict[Key, dict[ChildId, Body]] = field(default_factory=dict)
    pods: dict[Key, dict[str, Body]] = field(default_factory=dict)

    def children_of(self, key: Key) -> dict[ChildId, Body]:
        """A copy: a pass records what it wrote through `remember_child`, never by assignment."""
        return dict(self.children.get(key, {}))

    def pods_of(self, key: Key) -> list[Body]:
        return list(self.pods.get(key, {}).values())

    def remember_model(self, body: Body) -> bool:
        """Hold `body` unless a newer one is held; True when it was taken."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if is_older(body, self.models.get(key)):
            return False
        self.models[key] = body
        return True

    def forget_model(self, key: Key) -> None:
        self.models.pop(key, None)

    def remember_child(self, key: Key, body: Body) -> bool:
        """Hold a child unless a newer copy is held; True when it was taken."""
        children = self.children.setdefault(key, {})
        ident = (body["kind"], body["metadata"]["name"])
        if is_older(body, children.get(ident)):
            return False
        children[ident] = body
        return True

    def forget_child(self, key: Key, ident: ChildId) -> None:
        children = self.children.get(key, {})
        children.pop(ident, None)
        if not children:
            self.children.pop(key, None)

    def remember_pod(self, key: Key, body: Body) -> bool:
        """Hold a pod's slim copy; True when something status reads changed."""
        pods = self.pods.setdefault(key, {})
        slim = slim_pod(body)
        before = pods.get(slim["metadata"]["name"])
        if before is not None and is_older(slim, before):
            return False
        pods[slim["metadata"]["name"]] = slim
        return not same_pod(before, slim)

    def forget_pod(self, key: Key, name: str) -> None:
        pods = self.pods.get(key, {})
        pods.pop(name, None)
        if not pods:
            self.pods.pop(key, None)

    def clear(self) -> None:
        self.models.clear()
        self.children.clear()
        self.pods.clear()

    def replace_from_listing(
        self,
        models: Iterable[Body],
        children: Iterable[Body],
        pods: Iterable[Body],
        listed_version: str,
    ) -> set[Key]:
        """Make the view agree with a fresh listing of everything in scope (see merge_listing);
        the keys whose held bodies changed, so their owners can be reconciled again."""
        changed: set[Key] = set()

        listed_models = {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in models}
        merged_models = merge_listing(self.models, listed_models, listed_version)
        changed |= _differing(self.models, merged_models)
        self.models = merged_models

        grouped: dict[Key, dict[ChildId, Body]] = {}
        for body in children:
            key = owner_key(body)
            if key is not None:
                grouped.setdefault(key, {})[(body["kind"], body["metadata"]["name"])] = body
        changed |= _replace_grouped(self.children, grouped, listed_version)

        slim: dict[Key, dict[str, Body]] = {}
        for body in pods:
            key = owner_key(body)
            if key is not None:
                slim.setdefault(key, {})[body["metadata"]["name"]] = slim_pod(body)
        changed |= _replace_grouped(self.pods, slim, listed_version, same=same_pod)
        return changed

    def replace_kind_from_listing(
        self, kind: str, namespace: str | None, listed: Iterable[Body], listed_version: str
    ) -> set[Key]:
        """`replace_from_listing` for the children of one kind in one namespace (None: all),
        as one kind's own watch lists them; the keys whose children changed. An empty listing
        with no version (the kind's CRD is gone) drops every child of the kind held there."""
        grouped: dict[Key, dict[ChildId, Body]] = {}
        for body in listed:
            key = owner_key(body)
            if key is not None:
                grouped.setdefault(key, {})[(body["kind"], body["metadata"]["name"])] = body
        held = {
            key: {ident: body for ident, body in children.items() if ident[0] == kind}
            for key, children in self.children.items()
            if namespace is None or key[0] == namespace
        }
        changed = _replace_grouped(held, grouped, listed_version)
        for key in changed:
            others = {i: b for i, b in self.children.get(key, {}).items() if i[0] != kind}
            merged = {**others, **held.get(key, {})}
            if merged:
                self.children[key] = merged
            else:
                self.children.pop(key, None)
        return changed


def merge_listing(
    held: dict[Ident, Body], listed: dict[Ident, Body], listed_version: str
) -> dict[Ident, Body]:
    """What to hold after a re-list: the listed bodies, except where we hold a newer one (our own
    write, or a watch event that came after the list was read). A held object missing from the
    listing is gone, unless it is newer than the listing itself (created after it was read)."""
    merged: dict[Ident, Body] = {}
    for ident, body in listed.items():
        mine = held.get(ident)
        merged[ident] = mine if mine is not None and is_older(body, mine) else body
    listing = {"metadata": {"resourceVersion": listed_version}}
    for ident, body in held.items():
        if ident not in listed and is_older(listing, body):
            merged[ident] = body
    return merged


def _differing(
    before: dict[Ident, Body],
    after: dict[Ident, Body],
    same: Callable[[Body | None, Body | None], bool] = operator.eq,
) -> set[Ident]:
    """Idents whose body was added, removed or replaced by one that is not the `same`."""
    return {
        ident
        for ident in set(before) | set(after)
        if (ident in before) != (ident in after) or not same(before[ident], after[ident])
    }


def _replace_grouped(
    held: dict[Key, dict[Ident, Body]],
    listed: dict[Key, dict[Ident, Body]],
    listed_version: str,
    same: Callable[[Body | None, Body | None], bool] = operator.eq,
) -> set[Key]:
    """`merge_listing` per owner, in place; the owners whose bodies changed."""
    changed: set[Key] = set()
    for key in set(listed) | set(held):
        before = held.get(key, {})
        merged = merge_listing(before, listed.get(key, {}), listed_version)
        if _differing(before, merged, same):
            changed.add(key)
        if merged:
            held[key] = merged
        else:
            held.pop(key, None)
    return changed
