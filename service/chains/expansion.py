"""A bound on how many values a chain file holds, aliases expanded, checked before any is built.

In PyYAML's node tree an alias is only a second reference to its anchor's node, but everything
after composing copies what it refers to: ``<<`` merges copy the merged entries into every
mapping (exponentially, when merges nest), and pydantic validates a shared list once per
reference. 586 bytes of nested aliases expand to hundreds of millions of values. And a file
without aliases costs by its values too: pure-Python PyYAML composes about 50,000 a second, in
some 600 bytes each.

So composing stops past :data:`MAX_VALUES` nodes, and the composed tree is then measured with
each alias counted at the size its anchor expands to — each node visited once, so the
measuring is linear in the file however much its aliases expand.
"""

from collections.abc import Iterator
from typing import Any

import yaml

from service.chains import error_texts as texts

# Chain files hold hundreds of values (a test's chat history: a few each per message).
MAX_VALUES = 100_000


class TooManyValues(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def compose(text: str, limit: int = MAX_VALUES) -> yaml.Node | None:
    """The YAML node tree of ``text`` (``None`` for no document), if it holds at most ``limit``
    values with aliases expanded; else :class:`TooManyValues`. YAML errors propagate."""
    loader = _CountingComposer(text, limit)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    if root is not None:
        _measure(root, limit)
    return root


class _CountingComposer(yaml.SafeLoader):
    """Composes, counting the nodes made: a 1 MB list of one-letter items is 500,000 of them."""

    def __init__(self, text: str, limit: int) -> None:
        super().__init__(text)
        self.limit = limit
        self.made = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        alias = self.check_event(yaml.AliasEvent)  # an alias makes no node: _measure counts it
        node = super().compose_node(parent, index)
        if not alias and node is not None:
            self.made += 1
            if self.made > self.limit:
                raise TooManyValues(texts.too_many_values(self.limit), node.start_mark.line + 1)
        return node


def _measure(root: yaml.Node, limit: int) -> None:
    """Raise :class:`TooManyValues` if ``root`` expands to more than ``limit`` values, or an
    alias sits inside its own anchor (the value would contain itself)."""
    expanded: dict[int, int] = {}  # node id → how many values it holds, expanded
    open_ids = {id(root)}  # the nodes being measured: the path from the root
    stack: list[tuple[yaml.Node, Iterator[tuple[yaml.Node, int]], list[int]]] = [
        (root, _children(root), [1])
    ]
    # Every node once, plus each alias at its anchor's expanded size: at the end, the root's
    # expanded size. It only grows, so it passes the limit exactly when the root would.
    counted = 1
    while stack:
        node, children, total = stack[-1]
        child, line = next(children, (None, 0))
        if child is None:
            stack.pop()
            open_ids.discard(id(node))
            expanded[id(node)] = total[0]
            if stack:
                stack[-1][2][0] += total[0]
        elif id(child) in open_ids:
            raise TooManyValues(texts.alias_loop(), line)
        elif id(child) in expanded:  # a second reference to a node: an alias
            counted += expanded[id(child)]
            total[0] += expanded[id(child)]
            if counted > limit:
                raise TooManyValues(texts.too_many_aliases(limit), line)
        else:
            counted += 1
            open_ids.add(id(child))
            stack.append((child, _children(child), [1]))


def _children(node: yaml.Node) -> Iterator[tuple[yaml.Node, int]]:
    """A node's children with the line to blame for each: an alias keeps no position of its
    own, so a mapping value is blamed on its key's line, a list item on the list's."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key, key.start_mark.line + 1
            yield value, key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield item, node.start_mark.line + 1
