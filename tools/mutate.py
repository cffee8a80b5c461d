#!/usr/bin/env python3
"""Mutation testing: how many single-operator mistakes in a module do its tests catch?

    python3 tools/mutate.py specs/invariants.py tests/self/test_invariants.py [-j 2]

Each mutant changes one operator of the module's code (never a docstring or
other string): a comparison (== and !=, < and >=, in and not in, is and is
not), a boolean (and and or, any and all, a dropped `not`), an arithmetic or
set operator (+ and -, | and &), an integer constant (n to n + 1), True and
False, continue and break.  The tests run against a copy of the checkout with
that one change; a mutant is killed when they fail (or time out), and it
survived when they pass.  The score is killed / all; survivors are listed with
their line so a reader can judge whether each is an equivalent mutant or a
missing test.
"""

from __future__ import annotations

import argparse
import ast
import queue
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SWAPS: dict[type, type] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE,
    ast.LtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.And: ast.Or, ast.Or: ast.And, ast.Add: ast.Sub, ast.Sub: ast.Add, ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
_CALL_SWAPS = {"any": "all", "all": "any", "max": "min", "min": "max"}
_TYPE_NAMES = {"tuple", "list", "dict", "set", "frozenset", "type", "Literal", "Callable", "Mapping",
               "Iterable", "Iterator", "Sequence", "Counter", "deque"}


@dataclass(frozen=True)
class Mutant:
    number: int
    line: int
    description: str
    source: str


class _Mutator(ast.NodeTransformer):
    """Applies the `target`-th possible mutation (counting in a fixed walk order); counts them all."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.applied: tuple[int, str] | None = None

    def _hit(self, node: ast.AST, description: str) -> bool:
        hit = self.count == self.target
        self.count += 1
        if hit:
            self.applied = (getattr(node, "lineno", 0), description)
        return hit

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node  # a docstring
        return self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            swap = _SWAPS.get(type(op))
            if swap and self._hit(node, f"{type(op).__name__} -> {swap.__name__}"):
                node.ops[i] = swap()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        swap = _SWAPS[type(node.op)]
        if self._hit(node, f"{type(node.op).__name__} -> {swap.__name__}"):
            node.op = swap()
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        swap = _SWAPS.get(type(node.op))
        if swap and self._hit(node, f"{type(node.op).__name__} -> {swap.__name__}"):
            node.op = swap()
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        swap = _SWAPS.get(type(node.op))
        if swap and self._hit(node, f"{type(node.op).__name__}= -> {swap.__name__}="):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._hit(node, "drop `not`"):
            return node.operand
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, bool):
            if self._hit(node, f"{node.value} -> {not node.value}"):
                return ast.copy_location(ast.Constant(not node.value), node)
        elif isinstance(node.value, int) and self._hit(node, f"{node.value} -> {node.value + 1}"):
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in _CALL_SWAPS and self._hit(node, f"{name}() -> {_CALL_SWAPS[name]}()"):
            node.func = ast.copy_location(ast.Name(_CALL_SWAPS[name], ast.Load()), node.func)
        return node

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        return ast.copy_location(ast.Break(), node) if self._hit(node, "continue -> break") else node

    def visit_Break(self, node: ast.Break) -> ast.AST:
        return ast.copy_location(ast.Continue(), node) if self._hit(node, "break -> continue") else node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        # Leave annotations alone (they do not run); mutate only the value.
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_arguments(self, node: ast.arguments) -> ast.AST:
        # Default values are code, annotations are not.
        node.defaults = [self.visit(d) for d in node.defaults]
        node.kw_defaults = [self.visit(d) if d is not None else None for d in node.kw_defaults]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        # Decorators (dataclass options, caching) and annotations are not the logic under test.
        node.args = self.visit(node.args)
        node.body = [self.visit(statement) for statement in node.body]
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = [self.visit(statement) for statement in node.body]
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id in _TYPE_NAMES:
            return node  # a type expression such as tuple[str, str | None]
        return self.generic_visit(node)


def mutants(source: str) -> Iterator[Mutant]:
    total = _Mutator(-1)
    total.visit(ast.parse(source))
    for number in range(total.count):
        mutator = _Mutator(number)
        tree = mutator.visit(ast.parse(source))
        assert mutator.applied
        line, description = mutator.applied
        yield Mutant(number, line, description, ast.unparse(ast.fix_missing_locations(tree)))


def _killed(checkout: Path, target: str, mutant: Mutant, tests: list[str], timeout: float) -> bool:
    (checkout / target).write_text(mutant.source)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                               "-p", "no:randomly", *tests], cwd=checkout, capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return True
    return done.returncode != 0


def _checkout(into: Path) -> Path:
    copy = into / "checkout"
    shutil.copytree(ROOT, copy, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".hypothesis", "__pycache__", ".mypy_cache",
                                                  ".ruff_cache", "reports"))
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="the module to mutate, relative to the checkout (e.g. specs/model.py)")
    parser.add_argument("tests", nargs="+", help="the test files that should catch its mutants")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per test run")
    args = parser.parse_args()
    source = (ROOT / args.target).read_text()
    baseline = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.tests],
                              cwd=ROOT, capture_output=True)
    if baseline.returncode:
        sys.exit(f"the tests fail on the unmutated code (exit {baseline.returncode}); fix them first")
    every = list(mutants(source))
    print(f"{args.target}: {len(every)} mutants, tested by {' '.join(args.tests)}", flush=True)
    survivors = []
    with tempfile.TemporaryDirectory(prefix="mailconform-mutants-") as scratch:
        free: queue.Queue[Path] = queue.Queue()
        for n in range(args.jobs):
            free.put(_checkout(Path(scratch) / str(n)))

        def judge(mutant: Mutant) -> tuple[Mutant, bool]:
            checkout = free.get()  # one mutant per checkout at a time
            try:
                return mutant, _killed(checkout, args.target, mutant, args.tests, args.timeout)
            finally:
                free.put(checkout)
        with ThreadPoolExecutor(args.jobs) as pool:
            for done, future in enumerate(as_completed([pool.submit(judge, m) for m in every]), 1):
                mutant, caught = future.result()
                if not caught:
                    survivors.append(mutant)
                print(f"  [{done}/{len(every)}] line {mutant.line}: {mutant.description}:"
                      f" {'killed' if caught else 'SURVIVED'}", flush=True)
    killed = len(every) - len(survivors)
    for mutant in sorted(survivors, key=lambda m: m.number):
        print(f"  survived: line {mutant.line}: {mutant.description}")
    score = killed / len(every) if every else 1.0
    print(f"{args.target}: {killed}/{len(every)} mutants killed, score {score:.0%}")


if __name__ == "__main__":
    main()
