"""Serving a harness app over real TCP and running the installed console script against it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from tests.ports import free_port

CLI = shutil.which("omni-secrets", path=str(Path(sys.executable).parent)) or "omni-secrets"


@contextlib.asynccontextmanager
async def over_tcp(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` (its lifespan already entered by the harness) on a free loopback port."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def cli(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run the installed console script; the event loop keeps serving meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
