#!/usr/bin/env python3
"""Import circles between the modules of src/: which module uses which, read from the source
(`crate::a::b`, `super::x`, `self::x` paths), and every strongly connected component of more
than one module — at the top level (`analysis`, `condition`, `source`, ...) and among the
children of each module (`template::argo`, `template::args`, ...).

Exit 1 when a circle is found that is not in KNOWN below, 0 otherwise; `--list` prints the
graph. A test module (`tests.rs`, `#[cfg(test)] mod tests`) is skipped: tests may look anywhere.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"

# Circles tolerated for now, each with the issue that removes it; one listed here that is
# gone is reported too, so the list cannot go stale. None are left: the Argo
# CRD model no longer carries the engine's Judge provider (ResolvedMetric does), and the
# judges' shared parts live in judge::part, judge::counts and judge::words.
KNOWN: set = set()

PATH = re.compile(r"\b(crate|super|self)((?:::[a-z_][a-z0-9_]*)+)")


def module_of(path: pathlib.Path) -> tuple:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def code_without_tests(text: str) -> str:
    """The text before a `#[cfg(test)]` module, without line comments."""
    cut = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if cut:
        text = text[: cut.start()]
    return re.sub(r"//[^\n]*", "", text)


def main() -> int:
    files = [p for p in SRC.rglob("*.rs") if p.name != "tests.rs" and "tests" not in p.parts]
    modules = {module_of(p) for p in files}
    edges = {}
    for p in files:
        me = module_of(p)
        for root, rest in PATH.findall(code_without_tests(p.read_text())):
            names = tuple(rest.strip(":").split("::"))
            if root == "crate":
                target = names
            elif root == "super":
                # `super` of a file module is its parent; a `mod.rs` is its directory's module.
                base = me[:-1]
                while names and names[0] == "super":
                    base, names = base[:-1], names[1:]
                target = base + names
            else:
                target = me + names
            # The longest module prefix the path names.
            while target and target not in modules:
                target = target[:-1]
            if target and target != me:
                edges.setdefault(me, set()).add(target)

    found = set()
    # Two levels: top-level modules, then the children of each module.
    levels = [lambda m: m[:1]] + [
        child_of(parent)
        for parent in sorted({m[:-1] for m in modules if len(m) > 1})
    ]
    for level in levels:
        graph = {}
        for a, bs in edges.items():
            ga = level(a)
            for b in bs:
                gb = level(b)
                if ga and gb and ga != gb:
                    graph.setdefault(ga, set()).add(gb)
        for comp in sccs(graph):
            if len(comp) > 1:
                found.add(frozenset("::".join(m) for m in comp))
    if "--list" in sys.argv:
        for a in sorted(edges):
            print("::".join(a), "->", ", ".join(sorted("::".join(b) for b in edges[a])))
    new = found - KNOWN
    gone = KNOWN - found
    for c in sorted(found, key=sorted):
        print(("known circle: " if c in KNOWN else "NEW circle: ") + " <-> ".join(sorted(c)))
    for c in gone:
        print("a known circle is gone, remove it from KNOWN: " + " <-> ".join(sorted(c)))
    if not found:
        print("no import circles between modules")
    return 1 if new or gone else 0


def child_of(parent):
    """The child of `parent` a module is in (None outside `parent`)."""

    def level(m):
        if m[: len(parent)] == parent and len(m) > len(parent):
            return m[: len(parent) + 1]
        return None

    return level


def sccs(graph):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    nodes = set(graph) | {b for bs in graph.values() for b in bs}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
