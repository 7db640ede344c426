"""One execution environment: a process forked from a zygote, serving one invocation at a time.

Lifecycle (EnvironmentState): STARTING (forked, running its init phase) -> IDLE <-> BUSY, and
DEAD after a timeout, crash, memory overrun, init failure or stop. A dead environment has been
SIGKILLed with every process it started (process group, cgroup members, and its uid's
processes when it has its own uid); its cgroups, uid and scratch directory are released in the
background once the processes are gone.

The process behind an environment (EnvironmentProcess) is forked before it knows its function:
it joins its own fresh cgroups, takes its own session, sets the rlimits that do not depend on the
function and points stdout/stderr at its output pipe, then waits on its channel for a `spec`
frame. The pool keeps one or more such *spares* per zygote, so a cold start skips the fork and,
above all, the cgroup join (10-30 ms in the kernel when cold starts are spaced out; decision
0010). Handing a process its function sets the memory limit of its cgroup, gives it a uid and a
scratch directory, and sends the spec (variables, code, handler, uid): the process drops to that
uid, scrubs its environment and runs the init phase. With no spare at hand, an environment forks
its process on the spot and sends the spec at once: the same protocol.

The server side of the channel is an asyncio Protocol on a socketpair; frames are
struct "!II" (header length, body length) + JSON header + raw body (bootstrap/python.py). Only
one thing is awaited per invocation: `_waiter`, resolved by the first of: a result frame, the
timeout timer, channel EOF, or the zygote's exit report for the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.errors import ServiceError
from lamina.model.invocation import Outcome
from lamina.runtime import faults
from lamina.runtime.base import EnvironmentSpec, EnvironmentState, Invocation, LogLine, RunResult
from lamina.runtime.limits import MB, EnvironmentLimits, Limits, kill_all
from lamina.runtime.output import Output, make_pipe
from lamina.runtime.runtime_api import RuntimeApi
from lamina.runtime.sandbox import Sandbox
from lamina.runtime.zygote import Zygote, ZygoteDied

log = logging.getLogger("lamina.runtime")

PREFIX = struct.Struct("!II")
EXIT_REPORT_WAIT_S = 2.0  # after EOF, how long the zygote may take to report the wait status
EXIT_GRACE_S = 0.05
_SMALL = 1 << 16


@dataclass(frozen=True)
class LaunchPlan:
    """How to start environments for one spec; computed once per key by the pool."""

    spec: EnvironmentSpec
    zygote: Zygote
    env: dict[str, str]  # environment variables, less the per-environment ones
    path: tuple[str, ...]  # sys.path: code dir, layers, runtime packages, stdlib
    drop_privileges: bool
    interpreter_note: str | None
    response_limit: int
    output_cap: int
    init_timeout_s: float
    max_processes: int = 1024
    max_files: int = 1024
    # Runtime API runtimes (runtimes.py): what the process execs once sandboxed; empty for the
    # Python fast path, which runs the handler in the forked process itself.
    command: tuple[str, ...] = ()


def log_stream_name(version: str, hex_id: str, now: float | None = None) -> str:
    """`2019/03/13/[$LATEST]94fa867e5374431291a7fc14e2f56ae7`."""
    return time.strftime("%Y/%m/%d/", time.gmtime(now)) + f"[{version}]{hex_id}"


class _Channel(asyncio.Protocol):
    def __init__(self, env: EnvironmentProcess) -> None:
        self.env = env
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= PREFIX.size:
            hlen, blen = PREFIX.unpack_from(buf)
            end = PREFIX.size + hlen + blen
            if len(buf) < end:
                return
            with memoryview(buf) as view:
                header = json.loads(view[PREFIX.size : PREFIX.size + hlen].tobytes())
                body = view[PREFIX.size + hlen : end].tobytes()
            del buf[:end]
            self.env._event(("frame", header, body))

    def eof_received(self) -> bool:
        if not self.env.exec_mode:  # an exec'd runtime closes the channel at exec: only its exit counts
            self.env._event(("died",))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.env.exec_mode:
            self.env._event(("died",))


class EnvironmentProcess:
    """The process behind an environment, from fork to release.

    `fork()` asks the zygote for a child that prepares itself without knowing its function
    (cgroups joined, session, rlimits, output) and then waits for a spec on its channel. Until an
    environment adopts it (`ProcessEnvironment(..., process=...)`), it is a *spare*: if it dies
    meanwhile (its zygote died, say) it releases itself. `kill()` SIGKILLs it with everything it
    started and releases its cgroups, uid, scratch directory, channel and pipe in the background.
    """

    def __init__(
        self,
        zygote: Zygote,
        limits: Limits,
        sandbox: Sandbox,
        *,
        max_processes: int = 1024,
        max_files: int = 1024,
        output_cap: int = 1 << 20,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.zygote = zygote
        self.pid = 0
        self.uid: int | None = None  # given when handed out, if the plan drops privileges
        self.scratch: Path | None = None  # made when handed out (owned by the uid)
        self.limits: EnvironmentLimits | None = None
        self.output: Output | None = None
        self.transport: asyncio.Transport | None = None
        self.listener: Callable[[tuple[Any, ...]], None] | None = None  # the adopting environment
        self.exec_mode = False  # set when it is handed a Runtime API runtime to exec
        self._pool_limits = limits
        self._sandbox = sandbox
        self._max_processes = max_processes
        self._max_files = max_files
        self._output_cap = output_cap
        self._loop: asyncio.AbstractEventLoop | None = None
        self._forking: asyncio.Task[None] | None = None
        self._exit: asyncio.Future[int | None] | None = None
        self._cleanup: asyncio.Task[None] | None = None

    # Fork ------------------------------------------------------------------------------------

    def fork(self) -> asyncio.Task[None]:
        """Start the fork (once); the task ends when the zygote has reported the pid, which may
        be before the child has finished joining its cgroups (a spec sent meanwhile waits in
        the channel). Raises ZygoteDied or OSError."""
        if self._forking is None:
            self._loop = asyncio.get_running_loop()
            self._forking = self._loop.create_task(self._fork())
        return self._forking

    @property
    def forked(self) -> bool:
        """The fork has succeeded (the pid is known)."""
        return self._forking is not None and self._forking.done() and self.pid > 0

    async def _fork(self) -> None:
        loop = asyncio.get_running_loop()
        # mkdir of a cgroup waits for the cgroup mutex, which a concurrent join into another
        # group holds for its whole RCU grace period (up to ~30 ms): not on the event loop.
        create = loop.run_in_executor(None, self._pool_limits.create, self.id)
        try:
            self.limits = await asyncio.shield(create)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.limits = await create  # so that the release removes the groups
            raise
        read_fd, write_fd = make_pipe()
        self.output = Output(read_fd, self._output_cap)
        self.output.start()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                transport, _ = await loop.create_unix_connection(lambda: _Channel(self), sock=ours)
            except BaseException:
                ours.close()
                raise
            self.transport = transport  # type: ignore[assignment]
            prep = {"cgroups": self.limits.join, "nproc": self._max_processes, "nofile": self._max_files}
            self.pid = await self.zygote.spawn(prep, [theirs.fileno(), write_fd])
        finally:
            theirs.close()
            os.close(write_fd)
        self._exit = self.zygote.exit_status(self.pid)
        self._exit.add_done_callback(self._on_exit)

    # Hand-out --------------------------------------------------------------------------------

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        """One frame to the process: its spec, then invocations."""
        assert self.transport is not None
        head = json.dumps(header, separators=(",", ":")).encode()
        prefix = PREFIX.pack(len(head), len(body))
        if len(body) < _SMALL:
            self.transport.write(prefix + head + body)
        else:  # no copy of a large payload
            self.transport.writelines([prefix + head, body])

    # Events ----------------------------------------------------------------------------------

    def _event(self, event: tuple[Any, ...]) -> None:
        if self.listener is not None:
            self.listener(event)
        elif event[0] == "died":
            self.kill()  # a spare that died waiting: never hand it out

    def _on_exit(self, _: object) -> None:
        # The exit report travels on the zygote's socket, the last frames and EOF on the
        # channel: let the channel speak first. The report only decides when a forked
        # grandchild still holds the channel open (so no EOF comes).
        assert self._loop is not None
        self._loop.call_later(EXIT_GRACE_S, self._event, ("died",))

    async def exit_status(self) -> int | None:
        if self._exit is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(self._exit), EXIT_REPORT_WAIT_S)
        except TimeoutError:
            return None

    # Death -------------------------------------------------------------------------------------

    @property
    def dead(self) -> bool:
        return self._cleanup is not None

    @property
    def released(self) -> bool:
        """Dead, and its processes, cgroups, uid and scratch directory are gone."""
        return self._cleanup is not None and self._cleanup.done()

    def kill(self) -> None:
        """SIGKILL the process and everything it started; release resources in the background."""
        if self._cleanup is not None:
            return
        self._kill_processes()
        loop = self._loop or asyncio.get_running_loop()
        self._cleanup = loop.create_task(self._release())

    async def stop(self) -> None:
        """Kill the process and wait until its resources are released."""
        self.kill()
        assert self._cleanup is not None
        await asyncio.shield(self._cleanup)

    def _kill_processes(self) -> None:
        pids = self.limits.pids() if self.limits else set()
        kill_all(self.pid or None, pids, self.uid)

    async def _release(self) -> None:
        if self._forking is not None and not self._forking.done():
            # Not cancelled: a child may exist before its pid is known. The zygote answers
            # within milliseconds (or fails the spawn if it dies); then the child is killed.
            await asyncio.wait([self._forking])
        if self.pid:
            self._kill_processes()  # the pid may have become known since kill()
            await self.exit_status()
        limits = self.limits
        for _ in range(250):  # ~5 s for the last processes of the group to die
            if limits is None:
                break
            limits.unwatch()
            if await asyncio.to_thread(limits.remove_groups):  # rmdir waits for the cgroup mutex
                limits.close_files()
                break
            kill_all(self.pid or None, limits.pids(), self.uid)
            await asyncio.sleep(0.02)
        else:
            log.warning("environment %s: processes survive SIGKILL; cgroups left behind", self.id)
        if self.uid is not None:
            kill_all(None, set(), self.uid)
            self._sandbox.release_uid(self.uid)
        if self.transport is not None:
            self.transport.abort()
        if self.output is not None:
            self.output.drain()
            self.output.close()
        if self.scratch is not None:
            await asyncio.to_thread(Sandbox.remove_scratch, self.scratch)

    def __repr__(self) -> str:
        state = "dead" if self.dead else ("adopted" if self.listener else "spare")
        return f"<EnvironmentProcess {self.id[:8]} pid={self.pid} {state}>"


class ProcessEnvironment:
    """An Environment (runtime/base.py) backed by a real process.

    `process` is a spare to adopt (forked or still forking); without one the environment forks
    its own process when it starts."""

    def __init__(
        self, plan: LaunchPlan, limits: Limits, sandbox: Sandbox, process: EnvironmentProcess | None = None
    ) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.from_spare = process is not None
        self._proc = process or EnvironmentProcess(
            plan.zygote,
            limits,
            sandbox,
            max_processes=plan.max_processes,
            max_files=plan.max_files,
            output_cap=plan.output_cap,
        )
        self.id = self._proc.id
        self.log_stream = log_stream_name(plan.spec.version, self.id)
        self.state = EnvironmentState.STARTING
        self.retired = False
        self.idle_since = 0.0
        self._sandbox = sandbox
        self._limits: EnvironmentLimits | None = None
        self._output: Output | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[tuple[Any, ...]] | None = None
        self._init_ms: float | None = None
        self._init_logs: list[LogLine] = []
        self._init_failure: tuple[Any, ...] | None = None
        self._invoked = False
        self._rss_kb = 0
        self._api: RuntimeApi | None = None  # Runtime API runtimes only

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def uid(self) -> int | None:
        return self._proc.uid

    # Start-up and the init phase ----------------------------------------------------------

    async def start(self) -> None:
        """Hand the process its function (forking it first if it is not a spare) and wait for
        its init phase. A failing init is not an exception: it is kept and returned by the
        first invoke(). Raises ZygoteDied if the zygote is gone."""
        loop = self._loop = asyncio.get_running_loop()
        plan, spec, proc = self.plan, self.spec, self._proc
        started = time.perf_counter()
        try:
            forking = proc.fork()
            await asyncio.wait([forking])
            if forking.cancelled() or proc.dead:
                raise ZygoteDied("the environment's process died before it was handed out")
            if self.from_spare and forking.exception() is not None:
                # A spare forked earlier failed: say so in a way the pool retries on.
                raise ZygoteDied(f"the spare process could not start: {forking.exception()}")
            forking.result()  # ZygoteDied, OSError
            assert proc.limits is not None and proc.output is not None and proc.transport is not None
            proc.listener = self._event
            self._limits, self._output = proc.limits, proc.output
            if plan.drop_privileges:
                proc.uid = self._sandbox.allocate_uid()
            proc.scratch = self._sandbox.make_scratch(proc.id, proc.uid)
            proc.limits.set_memory(spec.memory_mb)  # before the process learns whose it is
            proc.output.cap = plan.output_cap
            self._waiter = loop.create_future()
            if plan.command:
                self._api = RuntimeApi(self._event, plan.response_limit, proc.uid)
                await self._api.start()
                proc.exec_mode = True
            proc.send({"t": "spec", "spec": self._child_spec()})
        except OSError as exc:
            self.kill()
            raise ServiceError(f"cannot start an environment for {spec.function_name}: {exc}") from exc
        except BaseException:
            self.kill()
            raise
        timer = loop.call_later(plan.init_timeout_s, self._on_timeout)
        try:
            event = await self._waiter
        except BaseException:
            self.kill()
            raise
        finally:
            timer.cancel()
            self._waiter = None
        self._init_ms = (time.perf_counter() - started) * 1000
        if event[0] == "died":
            status = await proc.exit_status()
            self._init_failure = ("crash", status)
        self._output.drain()
        self._init_logs = self._output.take()
        if plan.interpreter_note:
            self._init_logs.insert(0, LogLine(int(time.time() * 1000), plan.interpreter_note))
        if event[0] == "frame" and event[1].get("ok"):
            self.state = EnvironmentState.IDLE
            return
        if event[0] == "frame":
            self._init_failure = ("error", event[2])
        elif event[0] == "timeout":
            self._init_failure = ("timeout", None)
        self.kill()

    def mark_provisioned(self) -> list[LogLine]:
        """Initialised ahead of demand (provisioned concurrency): its first invocation is no cold
        start, so it reports no Init Duration. Returns the init phase's output, which the first
        invocation then does not carry."""
        self._init_ms = None
        logs, self._init_logs = self._init_logs, []
        return logs

    def _child_spec(self) -> dict[str, Any]:
        """What the process needs to become this function's environment (bootstrap/python.py);
        the rest (cgroups, NOFILE/NPROC) it was given when it was forked."""
        plan, spec, proc = self.plan, self.spec, self._proc
        env = dict(plan.env)
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = self.log_stream
        env["TMPDIR"] = env["HOME"] = str(proc.scratch)
        extra: dict[str, Any] = {}
        if self._api is not None:
            env["AWS_LAMBDA_RUNTIME_API"] = self._api.address
            extra["exec"] = list(plan.command)
        return {
            **extra,
            "env": env,
            "cwd": str(spec.code_dir),
            "path": list(plan.path),
            "handler": spec.handler,
            "uid": proc.uid,
            "gid": proc.uid,
            "fsize": spec.ephemeral_storage_mb * MB,
            "response_limit": plan.response_limit,
        }

    # Invocations ---------------------------------------------------------------------------

    async def invoke(self, invocation: Invocation) -> RunResult:
        if self._init_failure is not None and not self._invoked:
            self._invoked = True
            return self._init_failed(invocation)
        if self.state is not EnvironmentState.IDLE:
            raise ServiceError(f"environment {self.id} is {self.state}, cannot invoke")
        assert self._loop is not None and self._output is not None and self._limits is not None
        self.state = EnvironmentState.BUSY
        first = not self._invoked
        self._invoked = True
        timeout = self.spec.timeout_s
        deadline_ms = invocation.deadline_ms
        if first:  # the init phase does not eat into the first invocation's time
            deadline_ms = max(deadline_ms, int(time.time() * 1000 + timeout * 1000))
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, self._on_timeout)
        started = time.perf_counter()
        if self._api is not None:
            self._api.deliver(invocation, deadline_ms)
        else:
            self._send(invocation, deadline_ms)
        self._limits.watch(self.pid, self.kill)
        try:
            event = await waiter
        except BaseException:  # cancelled: the invocation's state is unknown, so it dies
            self.kill()
            raise
        finally:
            self._waiter = None
            timer.cancel()
            self._limits.unwatch()
        duration_ms = (time.perf_counter() - started) * 1000

        kind = event[0]
        if kind == "frame":
            self._output.drain()
            result = self._completed(event[1], event[2], duration_ms)
            self.state = EnvironmentState.IDLE
        elif kind == "timeout":
            result = self._timed_out(invocation, duration_ms)
        else:
            result = await self._died(invocation, duration_ms)
        if first:
            result.init_duration_ms = self._init_ms
            result.init_logs, self._init_logs = self._init_logs, []
        return result

    def _send(self, invocation: Invocation, deadline_ms: int) -> None:
        header: dict[str, Any] = {
            "id": invocation.request_id,
            "deadline": deadline_ms,
            "arn": invocation.invoked_function_arn,
        }
        if invocation.client_context:
            header["cc"] = invocation.client_context
        if invocation.cognito_identity:
            header["ci"] = invocation.cognito_identity
        if invocation.trace_id:
            header["trace"] = invocation.trace_id
        self._proc.send(header, invocation.payload)

    def _completed(self, header: dict[str, Any], body: bytes, duration_ms: float) -> RunResult:
        assert self._output is not None
        if self._api is not None:
            self._rss_kb = max(self._rss_kb, _peak_rss_kb(self.pid))
        else:
            self._rss_kb = header.get("rss", self._rss_kb)
        kind = header["t"]
        outcome, error_type, payload = Outcome.SUCCESS, None, body
        if kind == "err":
            outcome, error_type = Outcome.ERROR, header.get("et") or "Unhandled"
        elif kind == "big":
            outcome, error_type = Outcome.ERROR, faults.RESPONSE_TOO_LARGE
            message = faults.too_large_message(header["n"], self.plan.response_limit)
            payload = faults.error_document(error_type, message)
        return self._result(outcome, payload, duration_ms, error_type, self._output.take())

    def _timed_out(self, invocation: Invocation, duration_ms: float) -> RunResult:
        assert self._output is not None
        self._output.drain()
        logs = self._output.take()
        now = time.time()
        timeout = self.spec.timeout_s
        logs.append(LogLine(int(now * 1000), faults.timeout_log_line(invocation.request_id, timeout, now)))
        payload = faults.error_document(faults.TIMEOUT, faults.timeout_message(invocation.request_id, timeout))
        return self._result(Outcome.TIMEOUT, payload, duration_ms, faults.TIMEOUT, logs)

    async def _died(self, invocation: Invocation, duration_ms: float) -> RunResult:
        assert self._output is not None and self._limits is not None
        status = await self._exit_status()
        oom = self._limits.oom_killed()
        self._output.drain()  # what it printed before dying (e.g. "Fatal Python error: ...")
        self.kill()
        return self._exit_result(invocation.request_id, status, oom, duration_ms, self._output.take())

    def _exit_result(
        self, request_id: str, status: int | None, oom: bool, duration_ms: float, logs: list[LogLine]
    ) -> RunResult:
        outcome, error_type = (
            (Outcome.OUT_OF_MEMORY, faults.OUT_OF_MEMORY)
            if oom
            else (
                Outcome.CRASH,
                faults.EXIT_ERROR,
            )
        )
        message = faults.exit_message(request_id, status)
        now = int(time.time() * 1000)
        logs += [LogLine(now, message), LogLine(now, error_type)]
        payload = faults.error_document(error_type, message)
        return self._result(outcome, payload, duration_ms, error_type, logs)

    def _init_failed(self, invocation: Invocation) -> RunResult:
        assert self._init_failure is not None
        kind, detail = self._init_failure
        init_logs, self._init_logs = self._init_logs, []
        logs: list[LogLine] = []
        if kind == "error":
            try:
                error_type = json.loads(detail).get("errorType") or "Unhandled"
            except ValueError:
                error_type = "Unhandled"
            result = self._result(Outcome.ERROR, detail, 0.0, error_type, logs)
        elif kind == "timeout":
            payload = faults.error_document(
                faults.TIMEOUT, faults.timeout_message(invocation.request_id, self.plan.init_timeout_s)
            )
            result = self._result(Outcome.TIMEOUT, payload, 0.0, faults.TIMEOUT, logs)
        else:
            oom = self._limits.oom_killed() if self._limits else False
            result = self._exit_result(invocation.request_id, detail, oom, 0.0, logs)
        result.init_duration_ms = self._init_ms
        result.init_logs = init_logs
        return result

    def _result(
        self, outcome: Outcome, payload: bytes, duration_ms: float, error_type: str | None, logs: list[LogLine]
    ) -> RunResult:
        peak = max(self._limits.peak_bytes() if self._limits else 0, self._rss_kb * 1024)
        return RunResult(
            outcome=outcome,
            payload=payload,
            duration_ms=duration_ms,
            max_memory_used_mb=math.ceil(peak / MB),
            error_type=error_type,
            logs=logs,
            environment_id=self.id,
            log_stream=self.log_stream,
            interpreter_note=self.plan.interpreter_note,
        )

    # Events ------------------------------------------------------------------------------------

    def _event(self, event: tuple[Any, ...]) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(event)
        elif event[0] == "died" and self.state is EnvironmentState.IDLE:
            self.kill()  # died while idle (a background thread, the OOM killer): never reuse it

    def _on_timeout(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(("timeout",))
            self.kill()  # now, not after the awaiting task wakes: stop the burn at once

    async def _exit_status(self) -> int | None:
        return await self._proc.exit_status()

    # Death -------------------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the environment and everything it started; release resources in the background."""
        self.state = EnvironmentState.DEAD
        self._proc.kill()
        if self._api is not None:
            self._api.close()

    @property
    def released(self) -> bool:
        """Dead, and its processes, cgroups, uid and scratch directory are gone."""
        return self._proc.released

    async def stop(self) -> None:
        """Kill the environment and wait until its resources are released."""
        self.state = EnvironmentState.DEAD
        if self._api is not None:
            self._api.close()
        await self._proc.stop()

    def __repr__(self) -> str:
        return f"<ProcessEnvironment {self.id[:8]} {self.spec.function_name} pid={self.pid} {self.state}>"


def _peak_rss_kb(pid: int) -> int:
    """VmHWM of an exec'd runtime's process (a Python environment reports its own)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
