"""The application layer: the one set of operations every front-end (CLI, HTTP, MCP, review page) calls.

Each use case is a function ``f(services, typed input) -> frozen model``: it owns the business
rules (trust checks, run folders, history, retention) and nothing about rendering. Front-ends
parse, call, and render; none of them repeats a pipeline step. Import the submodules directly
(``from harness.app import scripts``): this package imports nothing, so a front-end pays only
for what it uses.
"""
