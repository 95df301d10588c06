"""Sweep points on a Dask cluster (`--executor dask://HOST:PORT`, the [dask] extra).

The address is checked before anything is submitted: its form, a TCP connection and the Dask
handshake, each within CONNECT_TIMEOUT_S. A scheduler lost mid-sweep is one line (the rows that
finished are already in the sweep's journal); distributed's own log chatter is silenced meanwhile.
"""

from __future__ import annotations

import logging
import socket
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from simsparse.errors import SimSparseError
from simsparse.parse import parse_int

CONNECT_TIMEOUT_S = 5.0
BATCH_POINTS = 256             # points in flight at once (the grid is streamed, never listed whole)


def parse_address(executor: str) -> tuple[str, int]:
    """`dask://HOST:PORT` -> (host, port); SimSparseError on anything else."""
    rest = executor.removeprefix("dask://")
    host, sep, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text or "/" in rest:
        raise SimSparseError(f"--executor {executor!r}: expected dask://HOST:PORT (e.g. dask://127.0.0.1:8786)")
    try:
        port = parse_int(port_text, what="port", min=1, max=65535)
    except SimSparseError as exc:
        raise SimSparseError(f"--executor {executor!r}: {exc}; expected dask://HOST:PORT") from None
    return host, port


def check_reachable(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise SimSparseError(f"cannot reach a Dask scheduler at {host}:{port} ({why} within "
                             f"{CONNECT_TIMEOUT_S:g} s); start one (`dask scheduler`) or use --executor local") from None


@contextmanager
def _quiet_distributed() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("distributed", "distributed.client", "distributed.core",
                                               "distributed.comm", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _client_class() -> type:
    try:
        from dask.distributed import Client  # optional heavy dependency: the [dask] extra
    except ImportError:
        raise SimSparseError("--executor dask:// needs the dask extra: pip install 'simsparse[dask]'") from None
    return Client


def _check_scheduler(host: str, port: int) -> None:
    """Ask the server who it is, all within CONNECT_TIMEOUT_S (the Client's own handshake can wait
    forever on a server that accepts and never answers)."""
    import asyncio

    from distributed.comm import connect  # optional heavy dependency: the [dask] extra

    async def identity() -> object:
        comm = await connect(f"tcp://{host}:{port}", timeout=CONNECT_TIMEOUT_S)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        reply = asyncio.run(asyncio.wait_for(identity(), CONNECT_TIMEOUT_S))
    except Exception as exc:  # noqa: BLE001 - no answer, or not the Dask protocol
        raise SimSparseError(f"{host}:{port} did not answer as a Dask scheduler within {CONNECT_TIMEOUT_S:g} s "
                             f"({type(exc).__name__}); check the address or use --executor local") from None
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        raise SimSparseError(f"{host}:{port} answers, but not as a Dask scheduler; check the address "
                             "(the scheduler's port, usually 8786)")


def _connect(Client: type, host: str, port: int):
    _check_scheduler(host, port)
    try:
        return Client(f"tcp://{host}:{port}", timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any handshake failure: not a (working) scheduler
        raise SimSparseError(f"{host}:{port} did not answer as a Dask scheduler within {CONNECT_TIMEOUT_S:g} s "
                             f"({type(exc).__name__}); check the address or use --executor local") from None


@contextmanager
def dask_executor(executor: str) -> Iterator[Callable[[Iterable[Any], Callable[[Any], dict]], Iterator[dict]]]:
    """Check the address and connect (all before the caller touches any file), then yield a map
    function: results of `fn` over `points` in completion order, BATCH_POINTS in flight."""
    host, port = parse_address(executor)
    check_reachable(host, port)
    client_class = _client_class()  # imported first: distributed sets its loggers' levels on import
    with _quiet_distributed():
        client = _connect(client_class, host, port)
        try:
            yield lambda points, fn: _map(client, points, fn, where=f"{host}:{port}")
        finally:
            try:
                client.close(timeout=2)
            except Exception:  # noqa: BLE001 - closing a client whose scheduler is gone may fail; nothing to keep
                pass


def _map(client: Any, points: Iterable[Any], fn: Callable[[Any], dict], *, where: str) -> Iterator[dict]:
    from dask.distributed import as_completed  # optional heavy dependency: the [dask] extra

    done = 0
    it = iter(points)
    try:
        while batch := [p for _, p in zip(range(BATCH_POINTS), it)]:
            for fut in as_completed(client.map(fn, batch, pure=False)):
                row = fut.result()
                done += 1
                yield row
    except Exception as exc:  # noqa: BLE001 - a point's own bad input is an error row: this is the cluster
        raise SimSparseError(f"the Dask cluster at {where} failed after {done} points ({type(exc).__name__}: "
                             f"{_first_line(exc)}); the finished rows are kept: rerun with --resume") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else "no message")[:120]
