"""``harness mcp``: the harness tools for coding agents, served over MCP on stdio.

Import :mod:`harness.mcp.server` for the server itself; this package imports nothing, so the
CLI can register the command without loading the MCP SDK.
"""
