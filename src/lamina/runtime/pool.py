"""The warm pool: environments per key, forked from zygotes, reused while warm.

- A lease takes the most recently used idle environment of `spec.key` (LIFO keeps few
  environments hot), or forks a new one. N concurrent leases get N environments; the pool
  enforces no concurrency limit (the invoke layer does).
- Zygotes are started lazily, one per (interpreter, preload set), and restarted if they die.
  A function that bundles a package the zygote preloaded (say its own `boto3/`) gets the
  interpreter's zygote without preloads: its own copy must win (DESIGN.md, Runtime).
- Each zygote keeps `spares` (default 1) pre-forked processes that have done everything that does
  not depend on the function (own cgroups joined, session, rlimits, output pipe) and wait for a
  spec. A cold start hands one its function and forks a replacement in the background, 50 ms
  later; with none at hand (a burst) the environment forks its own. Spares belong to a zygote, so the preload rule
  above holds for them too; they are never reused: handed out once, or killed.
- Idle environments are reaped after Settings.keep_alive_seconds; `retire(prefix)` drops the
  environments of changed or deleted versions; `close()` kills everything it ever started.
- Scaling rate (runtime/scaling.py): a cold start of an on-demand environment takes a token of its
  function's bucket (Settings.scaling_rate_per_10s); warm reuse takes none; none left → 429.
- Provisioned concurrency: `provision(spec, n)` keeps n environments of `spec.key` initialised
  ahead of demand (AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency, no Init Duration on
  their first invocation). Leases use them before any on-demand environment; keep-alive never
  reaps them; one that dies is replaced; an init failure stops the set and is reported
  (`provisioned_state`). They take no scaling tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from lamina.config import Settings
from lamina.errors import ServiceError
from lamina.runtime import runtimes
from lamina.runtime.base import EnvironmentSpec, EnvironmentState, LogLine
from lamina.runtime.environment import EnvironmentProcess, LaunchPlan, ProcessEnvironment
from lamina.runtime.limits import Limits
from lamina.runtime.packages import RuntimePackages
from lamina.runtime.sandbox import Sandbox
from lamina.runtime.scaling import ScalingRate
from lamina.runtime.zygote import BOOTSTRAP, Zygote, ZygoteDied

log = logging.getLogger("lamina.runtime")

INIT_TIMEOUT_S = 10.0  # AWS's init phase limit for on-demand functions
SPARE_REFILL_DELAY_S = 0.05  # from a cold start to forking the replacement of the spare it took
PROVISIONED_CHECK_S = 1.0  # how often provisioned environments that died while idle are replaced
PROVISIONED = "provisioned"  # appended to a spec's key for its provisioned environments
INIT_FAILURE = "FUNCTION_ERROR_INIT_FAILURE"  # Lambda's StatusReason when a provisioned init fails


@dataclass(frozen=True)
class ProvisionedState:
    """How far provisioning of one key has come: `allocated` environments initialised and alive
    out of `requested`; `failure` says why it stopped (None while it goes on or is done)."""

    requested: int
    allocated: int
    failure: str | None


class _Provisioned:
    """The provisioned environments of one key (`base`, the on-demand key)."""

    __slots__ = ("base", "envs", "failure", "filling", "idle", "spec", "target")

    def __init__(self, base: tuple[str, ...], spec: EnvironmentSpec, target: int) -> None:
        self.base = base
        self.spec = spec  # key base + (PROVISIONED,), initialisation type provisioned-concurrency
        self.target = target
        self.envs: set[ProcessEnvironment] = set()  # initialised and not yet dropped
        self.idle: list[ProcessEnvironment] = []
        self.failure: str | None = None
        self.filling: asyncio.Task[None] | None = None


class _Lease:
    __slots__ = ("env", "pool", "spec")

    def __init__(self, pool: ProcessPool, spec: EnvironmentSpec) -> None:
        self.pool = pool
        self.spec = spec
        self.env: ProcessEnvironment | None = None

    async def __aenter__(self) -> ProcessEnvironment:
        self.env = await self.pool._acquire(self.spec)
        return self.env

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.env is not None:
            self.pool._release(self.env)


class ProcessPool:
    """The Pool (runtime/base.py) of real processes.

    `packages_dir` holds the runtime packages (boto3 for every Python; default
    `<data_dir>/runtime/packages`); `scratch_dir` is where per-environment TMPDIRs go (default:
    the system temp dir); `max_processes` is pids.max / RLIMIT_NPROC per environment;
    `drop_privileges` None = run environments under their own uid when root and paths allow;
    `spares` is how many pre-forked processes each zygote keeps ready (0: fork on demand only);
    `preload_services` the botocore service models zygotes that preload botocore warm (default
    Settings.preload_services).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        packages_dir: Path | None = None,
        scratch_dir: Path | None = None,
        max_processes: int = 1024,
        drop_privileges: bool | None = None,
        init_timeout_s: float = INIT_TIMEOUT_S,
        bootstrap: Path = BOOTSTRAP,
        spares: int = 1,
        preload_services: tuple[str, ...] | None = None,
    ) -> None:
        self.settings = settings
        self.keep_alive_s = settings.keep_alive_seconds
        self.max_processes = max_processes
        self.spares = max(0, spares)
        self.preload_services = tuple(settings.preload_services if preload_services is None else preload_services)
        self.init_timeout_s = init_timeout_s
        self._bootstrap = bootstrap
        self._packages = RuntimePackages(packages_dir or Path(settings.data_dir) / "runtime" / "packages")
        self._scratch_dir = scratch_dir
        self._drop_privileges = drop_privileges
        self._limits: Limits | None = None
        self._sandbox: Sandbox | None = None
        self._zygotes: dict[tuple[str, tuple[str, ...]], Zygote] = {}
        self._zygote_starts: dict[tuple[str, tuple[str, ...]], asyncio.Task[Zygote]] = {}
        self._plans: dict[tuple[str, ...], LaunchPlan] = {}
        self._idle: dict[tuple[str, ...], list[ProcessEnvironment]] = {}
        self._spares: dict[Zygote, list[EnvironmentProcess]] = {}
        self._envs: set[ProcessEnvironment] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        self._cold_starts = 0
        self._warm_starts = 0
        self._scaling = ScalingRate(settings.scaling_rate_per_10s)
        self._provisioned: dict[tuple[str, ...], _Provisioned] = {}
        self._provisioned_of: dict[ProcessEnvironment, _Provisioned] = {}
        self._provision_watch: asyncio.Task[None] | None = None
        # Told of each provisioned environment's init output (the owner logs it: Lambda writes
        # INIT_START and the init output when the environment is allocated, not at first use).
        self.on_provisioned: Callable[[EnvironmentSpec, str, list[LogLine]], None] | None = None

    # The Pool contract -------------------------------------------------------------------------

    def lease(self, spec: EnvironmentSpec) -> _Lease:
        return _Lease(self, spec)

    def retire(self, key_prefix: tuple[str, ...]) -> None:
        n = len(key_prefix)
        for env in self._envs:
            if env.spec.key[:n] == key_prefix:
                env.retired = True  # busy ones die when their lease ends
        for key in [k for k in self._idle if k[:n] == key_prefix]:
            for env in self._idle.pop(key):
                env.kill()
        for key in [k for k in self._plans if k[:n] == key_prefix]:
            del self._plans[key]
        for key in [k for k in self._provisioned if k[:n] == key_prefix]:
            self.unprovision(key)  # the owner provisions again if the configuration still stands

    def stats(self) -> dict[str, int]:
        counts = {state: 0 for state in EnvironmentState}
        for env in self._envs:
            counts[env.state] += 1
        stacks = [*self._idle.values(), *(p.idle for p in self._provisioned.values())]
        idle = sum(1 for stack in stacks for env in stack if env.state is EnvironmentState.IDLE)
        live = len(self._envs) - counts[EnvironmentState.DEAD]
        return {
            "environments": live,
            "idle": idle,
            "busy": live - idle - counts[EnvironmentState.STARTING],
            "starting": counts[EnvironmentState.STARTING],
            "zygotes": sum(1 for z in self._zygotes.values() if z.alive),
            "spares": sum(1 for procs in self._spares.values() for proc in procs if not proc.dead),
            "cold_starts": self._cold_starts,
            "warm_starts": self._warm_starts,
            "provisioned": sum(len(p.envs) for p in self._provisioned.values()),
        }

    async def close(self) -> None:
        """Kill every environment and zygote; afterwards no process of this pool is left."""
        self._closed = True
        for task in (self._reaper, self._provision_watch, *(p.filling for p in self._provisioned.values())):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for task in list(self._zygote_starts.values()):
            with contextlib.suppress(Exception):
                await task
        spares = [proc for procs in self._spares.values() for proc in procs]
        self._spares.clear()
        await asyncio.gather(
            *(env.stop() for env in list(self._envs)), *(proc.stop() for proc in spares), return_exceptions=True
        )
        await asyncio.gather(*(z.stop() for z in self._zygotes.values()), return_exceptions=True)
        self._envs.clear()
        self._idle.clear()
        if self._limits is not None:
            self._limits.close()
        if self._sandbox is not None:
            self._sandbox.close()

    # Beyond the contract ---------------------------------------------------------------------

    async def prestart(self, interpreter: str, preload: tuple[str, ...] = (), runtime: str | None = None) -> None:
        """Start a zygote ahead of the first invocation (server start-up); for a Runtime API
        `runtime`, also probe its toolchain and build its bootstrap (Java's is compiled once)."""
        await self._zygote(interpreter, preload)
        if runtime is not None and runtimes.uses_runtime_api(runtime):
            await asyncio.to_thread(runtimes.prepare, runtime, self.settings)

    def reap_idle(self) -> None:
        """Stop environments idle for longer than the keep-alive; forget finished ones."""
        cutoff = time.monotonic() - self.keep_alive_s
        for key, stack in list(self._idle.items()):
            keep = []
            for env in stack:
                if env.state is not EnvironmentState.IDLE:
                    continue
                if env.idle_since < cutoff:
                    env.kill()
                else:
                    keep.append(env)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        self._envs = {env for env in self._envs if not env.released}

    # Leasing -----------------------------------------------------------------------------------

    async def _acquire(self, spec: EnvironmentSpec) -> ProcessEnvironment:
        if self._closed:
            raise ServiceError("the environment pool is closed")
        provisioned = self._provisioned.get(spec.key)
        while provisioned is not None and provisioned.idle:
            env = provisioned.idle.pop()
            if env.state is EnvironmentState.IDLE and not env.retired:
                self._warm_starts += 1
                return env
            self._drop_provisioned(provisioned, env)
        stack = self._idle.get(spec.key)
        while stack:
            env = stack.pop()
            if env.state is EnvironmentState.IDLE and not env.retired:
                self._warm_starts += 1
                return env
        self._scaling.take(spec.function_name)  # TooManyRequests when the function scales too fast
        self._start_reaper()
        env = await self._start(spec)
        self._cold_starts += 1
        return env

    async def _start(self, spec: EnvironmentSpec) -> ProcessEnvironment:
        """A new environment for `spec`, its init phase done (or failed: see ProcessEnvironment)."""
        for attempt in (1, 2):
            plan = await self._plan(spec)
            env = ProcessEnvironment(plan, self._get_limits(), self._get_sandbox(), self._take_spare(plan.zygote))
            self._envs.add(env)
            # Not at once: forking the replacement while this cold start's init, first
            # invocation and answer are under way costs them 1-2 ms (the server's CPU, GIL and
            # loop are shared); by then they are usually done, and the next spaced cold start
            # still finds a spare that has joined its groups.
            asyncio.get_running_loop().call_later(SPARE_REFILL_DELAY_S, self._fill_spares, plan.zygote)
            try:
                await env.start()
            except ZygoteDied:
                if attempt == 2:
                    raise
                log.warning("environment process for %s died before its init; trying again", spec.function_name)
                continue
            return env
        raise AssertionError("unreachable")

    def _release(self, env: ProcessEnvironment) -> None:
        provisioned = self._provisioned_of.get(env)
        if provisioned is not None:
            if (
                env.state is EnvironmentState.IDLE
                and not env.retired
                and not self._closed
                and self._provisioned.get(provisioned.base) is provisioned
                and len(provisioned.envs) <= provisioned.target
            ):
                provisioned.idle.append(env)
            else:
                self._drop_provisioned(provisioned, env)
            return
        if env.state is EnvironmentState.DEAD:
            return
        if self._closed or env.retired or env.state is not EnvironmentState.IDLE:
            env.kill()
            return
        env.idle_since = time.monotonic()
        self._idle.setdefault(env.spec.key, []).append(env)

    # Provisioned concurrency -------------------------------------------------------------------

    def provision(self, spec: EnvironmentSpec, count: int) -> None:
        """Keep `count` environments of `spec.key` initialised (0: none); returns at once, they
        start in the background. Calling again with the same spec and count retries a failure."""
        if count <= 0 or self._closed:
            self.unprovision(spec.key)
            return
        variables = {**spec.env_vars, "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}
        pspec = replace(spec, key=(*spec.key, PROVISIONED), env_vars=variables)
        current = self._provisioned.get(spec.key)
        if current is None or current.spec != pspec:
            self.unprovision(spec.key)
            current = self._provisioned[spec.key] = _Provisioned(spec.key, pspec, count)
        current.target = count
        current.failure = None
        while len(current.envs) > count and current.idle:  # busy extras go when released
            self._drop_provisioned(current, current.idle.pop())
        if self._provision_watch is None or self._provision_watch.done():
            self._provision_watch = asyncio.get_running_loop().create_task(self._watch_provisioned())
        self._fill_provisioned(current)

    def provisioned_state(self, key: tuple[str, ...]) -> ProvisionedState | None:
        current = self._provisioned.get(key)
        if current is None:
            return None
        alive = sum(1 for env in current.envs if env.state is not EnvironmentState.DEAD)
        return ProvisionedState(current.target, min(alive, current.target), current.failure)

    def unprovision(self, key: tuple[str, ...]) -> None:
        """Stop keeping environments of `key` provisioned: idle ones are stopped, busy ones when released."""
        current = self._provisioned.pop(key, None)
        if current is None:
            return
        if current.filling is not None:
            current.filling.cancel()
        for env in current.idle:
            env.kill()
            self._provisioned_of.pop(env, None)
        for env in current.envs:
            env.retired = True  # busy ones die when their lease ends
        current.idle.clear()

    def _drop_provisioned(self, current: _Provisioned, env: ProcessEnvironment) -> None:
        """`env` leaves its set (dead, retired, or one too many); the set is topped up."""
        if env.state is not EnvironmentState.DEAD:
            env.kill()
        current.envs.discard(env)
        self._provisioned_of.pop(env, None)
        if self._provisioned.get(current.base) is current:
            self._fill_provisioned(current)

    def _fill_provisioned(self, current: _Provisioned) -> None:
        if current.filling is None and current.failure is None and len(current.envs) < current.target:
            current.filling = asyncio.get_running_loop().create_task(self._fill(current))

    async def _fill(self, current: _Provisioned) -> None:
        try:
            while not self._closed and self._provisioned.get(current.base) is current and current.failure is None:
                missing = current.target - len(current.envs)
                if missing <= 0:
                    return
                starts = [asyncio.ensure_future(self._start(current.spec)) for _ in range(missing)]
                try:
                    await asyncio.wait(starts)
                except asyncio.CancelledError:  # unprovisioned or closing: nothing started may stay
                    for start in starts:
                        start.cancel()  # a start cancelled kills its environment
                        if start.done() and not start.cancelled() and start.exception() is None:
                            start.result().kill()
                    raise
                for start in starts:
                    if start.cancelled():
                        continue
                    if start.exception() is not None:
                        log.warning("provisioned environment for %s: %s", current.spec.function_name, start.exception())
                        current.failure = str(start.exception()) or type(start.exception()).__name__
                        continue
                    env = start.result()
                    if env.state is EnvironmentState.DEAD:  # its init failed
                        current.failure = INIT_FAILURE
                    elif self._provisioned.get(current.base) is not current or len(current.envs) >= current.target:
                        env.kill()
                    else:
                        init_logs = env.mark_provisioned()
                        if self.on_provisioned is not None:
                            try:
                                self.on_provisioned(current.spec, env.log_stream, init_logs)
                            except Exception as exc:  # logging it must not cost the environment
                                log.warning("provisioned environment's init output not logged: %s", exc)
                        current.envs.add(env)
                        current.idle.append(env)
                        self._provisioned_of[env] = current
        finally:
            current.filling = None

    async def _watch_provisioned(self) -> None:
        """Replace provisioned environments that died while idle (nobody releases those)."""
        while self._provisioned and not self._closed:
            await asyncio.sleep(PROVISIONED_CHECK_S)
            for current in list(self._provisioned.values()):
                for env in [e for e in current.idle if e.state is EnvironmentState.DEAD]:
                    current.idle.remove(env)
                    self._drop_provisioned(current, env)

    # Spares ------------------------------------------------------------------------------------

    def _take_spare(self, zygote: Zygote) -> EnvironmentProcess | None:
        """A live spare of `zygote`: one already forked if any, else the oldest still forking
        (its cgroup join started earlier than a new fork's would)."""
        procs = self._spares.get(zygote)
        if not procs:
            return None
        procs[:] = [proc for proc in procs if not proc.dead]
        proc = next((p for p in procs if p.forked), procs[0] if procs else None)
        if proc is not None:
            procs.remove(proc)
        return proc

    def _fill_spares(self, zygote: Zygote) -> None:
        """Fork spares in the background until `zygote` has `self.spares` live ones."""
        if self._closed or not zygote.alive or self.spares <= 0:
            return
        try:
            limits, sandbox = self._get_limits(), self._get_sandbox()
        except Exception:  # reported by the next lease, which needs them too
            return
        procs = self._spares.setdefault(zygote, [])
        procs[:] = [proc for proc in procs if not proc.dead]
        while len(procs) < self.spares:
            proc = EnvironmentProcess(
                zygote,
                limits,
                sandbox,
                max_processes=self.max_processes,
                output_cap=self.settings.max_log_bytes_per_invoke,
            )
            proc.fork().add_done_callback(lambda task, proc=proc: self._spare_forked(proc, task))
            procs.append(proc)

    @staticmethod
    def _spare_forked(proc: EnvironmentProcess, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # A dying zygote is reported (and restarted) on its own; anything else is news.
            log.log(logging.DEBUG if isinstance(exc, ZygoteDied) else logging.WARNING, "no spare process: %s", exc)
            proc.kill()  # dropped from the spares at the next look

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        interval = min(max(self.keep_alive_s / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            self.reap_idle()

    # Plans and zygotes -------------------------------------------------------------------------

    async def _plan(self, spec: EnvironmentSpec) -> LaunchPlan:
        plan = self._plans.get(spec.key)
        if plan is not None and plan.zygote.alive and plan.spec == spec:
            return plan
        zygote = await self._zygote(spec.interpreter, tuple(spec.preload))
        assert zygote.info is not None
        if zygote.info.modules and _shadowed(spec, zygote.info.modules):
            zygote = await self._zygote(spec.interpreter, ())
            assert zygote.info is not None
        info = zygote.info
        path = (str(spec.code_dir), *map(str, spec.layer_paths), *zygote.extra_path, *info.stdlib)
        env = self._environment_variables(spec, info.executable)
        note = interpreter_note(spec.runtime, spec.interpreter, info.version)
        command: tuple[str, ...] = ()
        readable = path
        if runtimes.uses_runtime_api(spec.runtime):
            # Forked from the zygote like any environment (the sandbox is the same), then it execs
            # the runtime's bootstrap, which speaks the Runtime API (decision 0100).
            try:
                launch = await asyncio.to_thread(
                    runtimes.launch, spec.runtime, spec.code_dir, spec.memory_mb, self.settings
                )
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                raise ServiceError(f"cannot start runtime {spec.runtime}: {exc}") from exc
            command, note, readable = launch.command, launch.note, launch.paths
            extra = dict(launch.env)
            tool_dir = extra.pop("PATH", "").split(":", 1)[0]
            env = {**env, **{k: v for k, v in extra.items() if k not in spec.env_vars}}
            if tool_dir and tool_dir not in env.get("PATH", "").split(":"):  # `node` etc. on PATH
                env["PATH"] = f"{tool_dir}:{env['PATH']}" if env.get("PATH") else tool_dir
        plan = LaunchPlan(
            spec=spec,
            zygote=zygote,
            env=env,
            path=path,
            command=command,
            drop_privileges=self._get_sandbox().can_drop(readable),
            interpreter_note=note,
            response_limit=self.settings.response_payload_limit,
            output_cap=self.settings.max_log_bytes_per_invoke,
            init_timeout_s=self.init_timeout_s + spec.timeout_s,
            max_processes=self.max_processes,
        )
        self._plans[spec.key] = plan
        return plan

    def _environment_variables(self, spec: EnvironmentSpec, executable: str) -> dict[str, str]:
        """What the sandbox sees: runtime defaults, then the invoke layer's variables (reserved
        + the user's), then what only the runtime knows. The per-environment ones
        (AWS_LAMBDA_LOG_STREAM_NAME, TMPDIR, HOME) are added by the environment."""
        python_bin = os.path.dirname(os.path.realpath(executable))
        env = {
            "PATH": f"{python_bin}:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        }
        if spec.runtime.startswith("python"):
            env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{spec.runtime}"
        env.update(spec.env_vars)
        env["LAMBDA_TASK_ROOT"] = str(spec.code_dir)
        env["LAMBDA_RUNTIME_DIR"] = str(self._bootstrap.parent)
        return env

    async def _zygote(self, interpreter: str, preload: tuple[str, ...]) -> Zygote:
        key = (interpreter, preload)
        zygote = self._zygotes.get(key)
        if zygote is not None and zygote.alive:
            return zygote
        task = self._zygote_starts.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._start_zygote(interpreter, preload))
            self._zygote_starts[key] = task
            task.add_done_callback(lambda _: self._zygote_starts.pop(key, None))
        return await asyncio.shield(task)

    async def _start_zygote(self, interpreter: str, preload: tuple[str, ...]) -> Zygote:
        try:
            packages = await asyncio.to_thread(self._packages.path_for, interpreter)
        except Exception as exc:  # OSError, CalledProcessError, TimeoutExpired
            raise ZygoteDied(f"cannot use interpreter {interpreter}: {exc}") from exc
        # An interpreter under a private home is run from a private bind mount (sandbox.py)
        mount = await asyncio.to_thread(self._get_sandbox().interpreter_mount, interpreter)
        zygote = Zygote(
            interpreter, preload, (str(packages),) if packages else (), self._bootstrap, self.preload_services, mount
        )
        await zygote.start()
        if self._closed:
            await zygote.stop()
            raise ServiceError("the environment pool is closed")
        self._zygotes[(interpreter, preload)] = zygote
        for dead in [z for z in self._spares if not z.alive]:
            for proc in self._spares.pop(dead):
                proc.kill()  # they died with their zygote: release their groups and pipes
        self._fill_spares(zygote)
        return zygote

    def _get_limits(self) -> Limits:
        if self._limits is None:
            self._limits = Limits(self.settings.memory_enforcement, self.max_processes)
        return self._limits

    def _get_sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self._scratch_dir, self._drop_privileges)
        return self._sandbox


def interpreter_note(runtime: str, interpreter: str, version: tuple[int, ...]) -> str | None:
    """Say so when the interpreter is not the runtime's version (never substitute silently)."""
    have = f"python{version[0]}.{version[1]}"
    if not runtime.startswith("python") or runtime == have:
        return None
    full = ".".join(map(str, version))
    return f"Runtime {runtime} is not installed here; running on Python {full} ({interpreter})"


def _shadowed(spec: EnvironmentSpec, modules: frozenset[str]) -> bool:
    """Whether the code or a layer ships a top-level module the zygote preloaded."""
    for directory in (spec.code_dir, *spec.layer_paths):
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith((".dist-info", ".egg-info")) or entry == "__pycache__":
                continue
            if entry.split(".")[0] in modules:
                return True
    return False
