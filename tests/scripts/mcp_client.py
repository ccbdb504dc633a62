"""An independent MCP client for tests/tests/mcp_server.rs: the official
Python SDK (PyPI `mcp`) drives `agentctl mcp` over stdio.

Usage: mcp_client.py AGENTCTL SCRIPT_JSON
SCRIPT_JSON is a list of steps: {"list_tools": true} or
{"tool": NAME, "args": {...}}; an argument "$N" is replaced by the
`short_id` in the structured result of step N (0-based). Every step's result is printed on stdout as
one JSON line in wire form (camelCase), with the progress notifications a
tool call received; the Rust test asserts on them.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def wire(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


async def main():
    agentctl, script = sys.argv[1], json.loads(sys.argv[2])
    params = StdioServerParameters(
        command=agentctl, args=script.get("args", ["mcp"]), env=dict(os.environ)
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            print(json.dumps({"initialize": wire(init)}), flush=True)
            results = []
            for step in script["steps"]:
                if step.get("list_tools"):
                    tools = await session.list_tools()
                    print(json.dumps({"tools": wire(tools)}), flush=True)
                    results.append(None)
                    continue
                progress = []

                async def on_progress(value, total, message):
                    progress.append({"progress": value, "total": total, "message": message})

                args = {
                    k: results[int(v[1:])]["structuredContent"]["short_id"]
                    if isinstance(v, str) and v.startswith("$")
                    else v
                    for k, v in step.get("args", {}).items()
                }
                result = await session.call_tool(
                    step["tool"], args, progress_callback=on_progress
                )
                results.append(wire(result))
                print(json.dumps({"result": wire(result), "progress": progress}), flush=True)


asyncio.run(main())
