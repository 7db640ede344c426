# ruff: noqa: B904, RUF023  (raise without `from` and slot order exactly as awslambdaric has them)
"""Lamina's Python bootstrap: the code that runs inside the sandbox.

Standard library only, and it must run unchanged on every Python from 3.9 up (no `match`, no
`X | Y` at run time, nothing newer without a fallback).

It starts as a *zygote*, single-threaded, never the server itself:

    <interpreter> -I -S -B python.py zygote <control fd> <config json>

(-I -S: no user site, no site-packages, no env vars; -B: write no bytecode into shared dirs.)

The zygote imports the preload set once (boto3 costs ~300 ms to import), warms botocore's data
for the configured services, then serves spawn requests on the control socket (SOCK_SEQPACKET).
Each request carries, by SCM_RIGHTS, the environment's channel socket and the write end of its
output pipe, plus a JSON spec of what does not depend on the function (cgroups, rlimits); the
zygote forks a child, reports its pid, and reports every child's wait status when it is reaped.

The forked child is one Lambda execution environment. It prepares itself (session, cgroups,
rlimits, output), then waits for its function's spec on the channel: at once when it was forked
for a cold start, later when it is a spare the server keeps ready. With the spec it finishes its
sandbox (uid, variables, working dir, sys.path), runs the init phase (imports the handler exactly
as awslambdaric does), then serves invocations over the channel, one at a time.

Channel frames, both directions: struct "!II" (header length, body length), a JSON header, then
the raw body bytes. The payload is never wrapped in JSON, so it is never re-encoded.

Error documents, messages and log lines follow awslambdaric (aws-lambda-python-runtime-interface-
client, awslambdaric/bootstrap.py, lambda_context.py, lambda_runtime_marshaller.py).
"""

import atexit
import decimal
import gc
import importlib
import io
import json
import logging
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback

PREFIX = struct.Struct("!II")
ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"  # NO-BREAK SPACE, as awslambdaric indents traceback lines in text logs
_THIS_FILE = __file__  # frames of this file are cut from the top of user tracebacks

LAMBDA_WARNING = "LAMBDA_WARNING"
UNHANDLED_EXCEPTION_WARNING = (
    LAMBDA_WARNING + ": "
    "Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate this "
    "error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)

_GLOBAL_AWS_REQUEST_ID = None
_GLOBAL_TENANT_ID = None


# --------------------------------------------------------------------------------------------
# Faults, error documents and the error log line (awslambdaric bootstrap.py)


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        Exception.__init__(self, msg)
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    """The traceback as awslambdaric reports it: leading frames of the bootstrap cut off."""
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i in range(len(frames)):
        if frames[i][0] != _THIS_FILE:
            return frames[i:]
    return frames


def build_fault_result(exc_info, msg, invoke_id=None):
    etype, value, tb = exc_info
    return make_error(msg if msg else str(value), etype.__name__, traceback.format_list(_user_frames(tb)), invoke_id)


def _replace_line_indentation(line, indent_char, new_indent_char):
    count = 0
    for c in line:
        if c != indent_char:
            break
        count += 1
    return (new_indent_char * count) + line[count:]


def log_error(error_result):
    """`[ERROR] Type: message` and the traceback, joined with CR so it is one log event."""
    description = "[ERROR]"
    error_type = error_result.get("errorType")
    if error_type:
        description += " " + error_type
    message = error_result.get("errorMessage")
    if message:
        if error_type:
            description += ":"
        description += " " + message
    lines = [description]
    stack_trace = error_result.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
            else:
                for trace_line in element.splitlines():
                    lines.append(_replace_line_indentation(trace_line, " ", ERROR_LOG_IDENT))
    sys.stdout.write(ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Marshalling (awslambdaric lambda_runtime_marshaller.py, on the standard json module)


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, decimal.Decimal):
            # awslambdaric emits the decimal's own digits (simplejson RawJSON); the standard
            # encoder cannot, so integral decimals become ints and the rest floats.
            if o.is_nan():
                return float("nan")
            if o == o.to_integral_value():
                return int(o)
            return float(o)
        return json.JSONEncoder.default(self, o)


def _make_encoder():
    # awslambdaric writes non-ASCII characters unescaped on python3.12 only.
    ascii_only = os.environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12"
    return _Encoder(ensure_ascii=ascii_only)


def marshal_response(encoder, response):
    if isinstance(response, bytes):
        return response
    try:
        return encoder.encode(response).encode("utf-8")
    except Exception as e:
        raise FaultException(FaultException.MARSHAL_ERROR, "Unable to marshal response: {}".format(str(e)), None)


def unmarshal_request(body):
    if not body:
        return {}  # an Invoke without a body delivers {}
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(str(e)), None)


# --------------------------------------------------------------------------------------------
# The context object (awslambdaric lambda_context.py)

W3C_ALLOWED_FIELDS = ("traceparent", "tracestate", "baggage")


class LambdaContext(object):
    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = _extract_and_strip_w3c(client_context)

        self.client_context = _make_obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _make_obj_from_dict(Client, self.client_context.client)

        self.identity = _make_obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self):
        return dict(self._w3c_fields)

    def log(self, msg):
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "{}([aws_request_id={},log_group_name={},log_stream_name={},function_name={},"
            "memory_limit_in_mb={},function_version={},invoked_function_arn={},client_context={},"
            "identity={},tenant_id={}])"
        ).format(
            self.__class__.__name__,
            self.aws_request_id,
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
            self.invoked_function_arn,
            self.client_context,
            self.identity,
            self.tenant_id,
        )


def _extract_and_strip_w3c(client_context):
    if not isinstance(client_context, dict) or "w3c" not in client_context:
        return {}
    raw = client_context.pop("w3c")
    if not isinstance(raw, dict):
        return {}
    return dict((k, raw[k]) for k in W3C_ALLOWED_FIELDS if isinstance(raw.get(k), str))


class _Slotted(object):
    __slots__ = ()

    def __repr__(self):
        fields = ",".join("{}={}".format(n, getattr(self, n, None)) for n in self.__slots__)
        return "{}([{}])".format(self.__class__.__name__, fields)


class CognitoIdentity(_Slotted):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client(_Slotted):
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]


class ClientContext(_Slotted):
    __slots__ = ["custom", "env", "client"]


def _make_obj_from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for name in cls.__slots__:
        setattr(obj, name, values.get(name, None))
    return obj


def _parse_json_header(text, name):
    try:
        return json.loads(text)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
            None,
        )


# --------------------------------------------------------------------------------------------
# Logging (awslambdaric: root logger -> LambdaLoggerHandler -> StandardLogSink -> stdout)


class StandardLogSink(object):
    def log(self, msg, frame_type=None):
        sys.stdout.write(msg)


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink):
        logging.Handler.__init__(self)
        self.log_sink = log_sink

    def emit(self, record):
        self.log_sink.log(self.format(record))


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _GLOBAL_AWS_REQUEST_ID or ""
        record.tenant_id = _GLOBAL_TENANT_ID
        return True


def _setup_logging():
    logging.Formatter.converter = time.gmtime
    logger = logging.getLogger()
    handler = LambdaLoggerHandler(StandardLogSink())
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging._nameToLevel:
        logger.setLevel(level)
    handler.addFilter(LambdaLoggerFilter())
    logger.addHandler(handler)


# --------------------------------------------------------------------------------------------
# Init phase (awslambdaric bootstrap._get_handler)


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, str(e)))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR, "Unable to import module '{}': {}".format(modname, str(e))
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND, "Handler '{}' missing on module '{}'".format(fname, modname), None
        )


# --------------------------------------------------------------------------------------------
# The channel


def _recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            return None
        got += k
    return buf


def _send_frame(sock, header, body=b""):
    head = json.dumps(header, separators=(",", ":")).encode()
    buffers = [PREFIX.pack(len(head), len(body)) + head, body]
    total = len(buffers[0]) + len(body)
    sent = sock.sendmsg(buffers)
    if sent < total:  # a blocking socket only sends partially when interrupted
        rest = memoryview(buffers[0] + bytes(body))[sent:]
        sock.sendall(rest)


def _recv_frame(sock):
    prefix = _recv_exact(sock, PREFIX.size)
    if prefix is None:
        return None, None
    hlen, blen = PREFIX.unpack(prefix)
    head = _recv_exact(sock, hlen)
    body = _recv_exact(sock, blen) if blen else b""
    if head is None or body is None:
        return None, None
    return json.loads(head), body


def _flush_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass  # a handler may have replaced or closed them


def _max_rss_kb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children)


# --------------------------------------------------------------------------------------------
# The environment: init, then one invocation at a time


def _handle(request_handler, encoder, header, body, response_limit):
    """Run one invocation; returns (kind, extra header, body) for the result frame."""
    invoke_id = header["id"]
    try:
        client_context = None
        if header.get("cc"):
            client_context = _parse_json_header(header["cc"], "Client Context")
        cognito_identity = None
        if header.get("ci"):
            cognito_identity = _parse_json_header(header["ci"], "Cognito Identity")
        context = LambdaContext(invoke_id, client_context, cognito_identity, header["deadline"], header.get("arn"))
        event = unmarshal_request(body)
        response = request_handler(event, context)
        result = marshal_response(encoder, response)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error_result = build_fault_result(sys.exc_info(), None, invoke_id)
    else:
        if len(result) > response_limit:
            return "big", {"n": len(result)}, b""
        return "ok", {}, result
    log_error(error_result)
    return "err", {"et": error_result["errorType"]}, json.dumps(error_result).encode("utf-8")


def _init(handler_name):
    """The init phase; returns (request_handler, None) or (None, error document)."""
    try:
        _setup_logging()
        return get_handler(handler_name), None
    except Exception as e:
        if isinstance(e, FaultException):
            error_result = make_error(e.msg, e.exception_type, e.trace)
        else:
            error_result = build_fault_result(sys.exc_info(), None)
        logging.warning(UNHANDLED_EXCEPTION_WARNING)
        log_error(error_result)
        return None, error_result


def run_environment(sock, spec):
    global _GLOBAL_AWS_REQUEST_ID
    request_handler, init_error = _init(spec["handler"])
    _flush_streams()
    if init_error is not None:
        _send_frame(sock, {"t": "init", "ok": False}, json.dumps(init_error).encode("utf-8"))
        return 1  # awslambdaric exits 1 after reporting an init error
    _send_frame(sock, {"t": "init", "ok": True})

    encoder = _make_encoder()
    response_limit = spec["response_limit"]
    environ = os.environ
    while True:
        header, body = _recv_frame(sock)
        if header is None:
            return 0  # the server closed the channel: this environment is done
        _GLOBAL_AWS_REQUEST_ID = header["id"]
        trace_id = header.get("trace")
        if trace_id is not None:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        elif "_X_AMZN_TRACE_ID" in environ:
            del environ["_X_AMZN_TRACE_ID"]
        kind, extra, result = _handle(request_handler, encoder, header, body, response_limit)
        # Everything the invocation printed is in the pipe before the result is on the
        # channel: the server drains the pipe when the result arrives, so lines are
        # attributed to the invocation that printed them.
        _flush_streams()
        extra["t"] = kind
        extra["rss"] = _max_rss_kb()
        _send_frame(sock, extra, result)


# --------------------------------------------------------------------------------------------
# Runtime API runtimes: the sandboxed child becomes the runtime's bootstrap


def exec_runtime(sock, argv):
    """Replace this process (sandbox in place: session, cgroups, rlimits, uid, variables, cwd)
    with a runtime that speaks the Runtime API (runtime_api.py). The channel is close-on-exec;
    before the exec it can still report a bootstrap that cannot start, as AWS does
    (Runtime.InvalidEntrypoint)."""
    program = argv[0]
    problem = None
    if not os.path.isfile(program):
        problem = "Couldn't find valid bootstrap(s): [{}]".format(program)
    elif not os.access(program, os.X_OK):
        problem = "Couldn't find valid bootstrap(s): [{}] (it is not executable)".format(program)
    if problem is None:
        for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(signum, signal.SIG_DFL)  # Python ignores SIGPIPE and SIGXFSZ
            except (OSError, ValueError):
                pass
        _flush_streams()
        keep = sock.fileno()
        os.closerange(3, keep)  # nothing of the zygote's leaks into the runtime
        os.closerange(keep + 1, 65536)
        try:
            os.execve(program, argv, os.environ)
        except OSError as e:
            problem = "Couldn't start bootstrap {}: {}".format(program, e)
    error = make_error(problem, "Runtime.InvalidEntrypoint", None)
    sys.stdout.write("[ERROR] Runtime.InvalidEntrypoint: {}\n".format(problem))
    _flush_streams()
    _send_frame(sock, {"t": "init", "ok": False}, json.dumps(error).encode("utf-8"))
    return 1


# --------------------------------------------------------------------------------------------
# Sandboxing the forked child


def _prctl(option, value):
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _set_rlimit(which, value):
    try:
        hard = resource.getrlimit(which)[1]
        if os.geteuid() != 0 and hard != resource.RLIM_INFINITY and value > hard:
            value = hard  # an unprivileged process cannot raise its hard limit
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass


def _prepare_child(prep, out_fd):
    """Everything that does not depend on the function; runs in the forked child before it
    learns its spec, so a *spare* does it ahead of demand (the cgroup join is the slow part:
    10-30 ms in the kernel when no other migration happened just before). Joining the cgroups
    and setting limits needs privileges, so this runs before the uid is dropped."""
    os.setsid()  # own session and process group: a timeout kills the handler's children too
    for procs in prep.get("cgroups") or ():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    _set_rlimit(resource.RLIMIT_NOFILE, prep.get("nofile", 1024))
    _set_rlimit(resource.RLIMIT_NPROC, prep.get("nproc", 1024))
    _set_rlimit(resource.RLIMIT_CORE, 0)

    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    if out_fd > 2:
        os.close(out_fd)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a waiting spare dies with its zygote too
    if os.getppid() != prep["zygote_pid"]:
        os._exit(1)  # the zygote died between fork and prctl

    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="strict", write_through=True
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    # The zygote's own (buffered) streams would hold output back past the result frame.
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr


def _assume_spec(spec, zygote_pid):
    """Become the function's environment: what depends on the function, before any user code.
    The server has set the memory limit of this process's cgroup before sending the spec."""
    if spec.get("fsize"):
        _set_rlimit(resource.RLIMIT_FSIZE, spec["fsize"])
    uid, gid = spec.get("uid"), spec.get("gid")
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # changing credentials cleared it
        if os.getppid() != zygote_pid:
            os._exit(1)

    os.environ.clear()
    os.environ.update(spec["env"])
    os.chdir(spec["cwd"])
    sys.path[:] = spec["path"]
    sys.argv[:] = [_THIS_FILE]
    sys.dont_write_bytecode = True  # the code dir is shared by every environment of a version
    import tempfile

    tempfile.tempdir = None  # re-read TMPDIR: each environment has its own scratch dir
    _rehome_preloaded()


# Paths that preloaded modules computed at import time from the zygote's home directory; a
# fresh import in the environment would use its HOME (the scratch dir). (module, class,
# attribute, path under ~)
_HOME_PATHS = (
    ("botocore.loaders", "Loader", "CUSTOMER_DATA_PATH", (".aws", "models")),
    ("botocore.tokens", "SSOTokenProvider", "_SSO_TOKEN_CACHE_DIR", (".aws", "sso", "cache")),
    ("botocore.credentials", "SSOProvider", "_SSO_TOKEN_CACHE_DIR", (".aws", "sso", "cache")),
    ("botocore.utils", "JSONFileCache", "CACHE_DIR", (".aws", "boto", "cache")),
)


def _rehome_preloaded():
    for module_name, class_name, attribute, parts in _HOME_PATHS:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is None:
            continue
        try:
            old = getattr(cls, attribute)
            new = os.path.join(os.path.expanduser("~"), *parts)
            setattr(cls, attribute, new)
            init = cls.__dict__.get("__init__")
            defaults = getattr(init, "__defaults__", None)
            if defaults and old in defaults:  # JSONFileCache(working_dir=CACHE_DIR)
                init.__defaults__ = tuple(new if d == old else d for d in defaults)
        except Exception:
            pass


def _child_main(prep, chan_fd, out_fd):
    code = 1
    try:
        _prepare_child(prep, out_fd)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=chan_fd)
        sock.set_inheritable(False)
        sock.setblocking(True)
        # Wait for the function's spec: at once for an environment forked on demand, or when
        # the server hands this process out if it is a spare. EOF: a spare nobody needed.
        header, _ = _recv_frame(sock)
        if header is None or header.get("t") != "spec":
            os._exit(0)
        spec = header["spec"]
        _assume_spec(spec, prep["zygote_pid"])
        code = exec_runtime(sock, spec["exec"]) if spec.get("exec") else run_environment(sock, spec)
    except SystemExit as e:
        # sys.exit() from user code ends the environment the way the interpreter would.
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            try:
                sys.stderr.write(str(e.code) + "\n")
            except Exception:
                pass
            code = 1
    except BaseException:
        try:
            traceback.print_exc()
        except Exception:
            pass
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code & 0xFF)


# --------------------------------------------------------------------------------------------
# The zygote


def _send_ctl(ctl, message):
    ctl.sendall(json.dumps(message, separators=(",", ":")).encode())


def _preload(names):
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:
            sys.stderr.write("lamina zygote: cannot preload {}: {}\n".format(name, e))
    # Warm what every environment needs, so children do not import it on their clock.
    import ctypes  # noqa: F401  (prctl in the child)
    import tempfile  # noqa: F401


# Modules boto3 imports lazily when it creates a client (or resource) of these services.
_CLIENT_MODULES = {
    "s3": ("boto3.s3.inject",),
    "dynamodb": ("boto3.dynamodb.conditions", "boto3.dynamodb.transform"),
}


def _warm_botocore(services):
    """Load the data a first `boto3.client(<service>)` spends most of its time on (~90 ms for
    S3: listing ~400 service directories, parsing the service model, endpoint rule set,
    endpoints and partitions) into a loader cache that every child inherits.

    Nothing here reads the environment or creates a session (sessions read AWS_* variables,
    credentials and config files when they are created or first used, and those belong to each
    function): only botocore's *static* data, from its own data directory, is cached. A child's
    session gets a fresh Loader as always; `create_loader` then seeds that loader's cache with
    these entries when the loader would have read exactly the same files (no AWS_DATA_PATH and
    no ~/.aws/models of the function's HOME). Returns the number of services warmed."""
    session = sys.modules.get("botocore.session")
    loaders = sys.modules.get("botocore.loaders")
    if session is None or loaders is None or not services:
        return 0
    builtin = loaders.Loader.BUILTIN_DATA_PATH
    warm = loaders.Loader(extra_search_paths=[builtin], include_default_search_paths=False)
    try:
        for type_name in ("service-2", "endpoint-rule-set-1"):
            warm.list_available_services(type_name)
        for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
            warm.load_data_with_path(name)
    except Exception as e:
        sys.stderr.write("lamina zygote: cannot warm botocore: {}\n".format(e))
        return 0
    warmed = 0
    for service in services:
        try:
            # The exact calls (and so cache keys) of botocore's ClientCreator.
            warm.load_service_model(service, "service-2", api_version=None)
            warm.load_service_model(service, "endpoint-rule-set-1", api_version=None)
            warmed += 1
        except Exception as e:
            sys.stderr.write("lamina zygote: cannot warm botocore service {}: {}\n".format(service, e))
            continue
        if "boto3" in sys.modules:
            for module in _CLIENT_MODULES.get(service, ()):
                try:
                    importlib.import_module(module)
                except Exception:
                    pass
    cache = dict(warm._cache)
    create_loader = session.create_loader
    loader_class = loaders.Loader

    def create_warm_loader(search_path_string=None):
        loader = create_loader(search_path_string)
        customer = loader_class.CUSTOMER_DATA_PATH
        if (
            search_path_string is None
            and type(loader) is loader_class
            and loader.search_paths == [customer, builtin]
            and not os.path.isdir(customer)
        ):
            loader._cache.update(cache)
        return loader

    create_warm_loader.__doc__ = create_loader.__doc__
    session.create_loader = create_warm_loader
    return warmed


def _preloaded_top_level(stdlib_paths):
    """Top-level names of the modules loaded from outside the standard library: a function
    that bundles one of these must get a zygote without them."""
    names = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name.startswith("__"):
            continue  # __main__ (this file) and its aliases
        if not any(path.startswith(p + os.sep) for p in stdlib_paths):
            names.add(name.split(".")[0])
    return sorted(names)


def zygote_main(ctl_fd, config):
    stdlib_paths = [p for p in sys.path if p]
    sys.path[:] = stdlib_paths + list(config.get("path", ()))
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=ctl_fd)
    ctl.set_inheritable(False)
    _preload(config.get("preload", ()))
    _warm_botocore(config.get("services", ()))
    # Everything imported so far lives as long as the zygote: keep it out of the children's
    # garbage collections (a full collection would otherwise walk, and copy-on-write, the whole
    # preloaded heap: ~60 ms with boto3 and warmed models).
    gc.freeze()
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # reap the orphans of environments instead of leaking zombies

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_w)

    _send_ctl(
        ctl,
        {
            "op": "hello",
            "pid": os.getpid(),
            "version": list(sys.version_info[:3]),
            "executable": sys.executable,
            "stdlib": stdlib_paths,
            "modules": _preloaded_top_level(stdlib_paths),
        },
    )
    children = {}
    fd_size = struct.calcsize("i")
    try:
        while True:
            readable, _, _ = select.select([ctl, wake_r], [], [])
            if wake_r in readable:
                _reap(ctl, wake_r, children)
            if ctl not in readable:
                continue
            try:
                data, ancdata, _, _ = ctl.recvmsg(1 << 20, socket.CMSG_SPACE(8 * fd_size))
            except ConnectionResetError:
                data = b""
            fds = []
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(payload) - len(payload) % fd_size
                    fds.extend(struct.unpack("%di" % (usable // fd_size), payload[:usable]))
            if not data:
                break  # the server is gone: take every environment with us
            message = json.loads(data)
            if message["op"] == "stop":
                break
            if message["op"] == "spawn":
                _spawn(ctl, message, fds, children, wake_r, wake_w)
            else:
                for fd in fds:
                    os.close(fd)
    finally:
        for pid in list(children):
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    return 0


def _spawn(ctl, message, fds, children, wake_r, wake_w):
    spec = message["spec"]
    spec["zygote_pid"] = os.getpid()
    chan_fd, out_fd = fds[0], fds[1]
    sys.stdout.flush()  # a child must not inherit (and later write) buffered zygote output
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError as e:
        for fd in fds:
            os.close(fd)
        _send_ctl(ctl, {"op": "error", "id": message["id"], "error": str(e)})
        return
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            ctl.close()
            os.close(wake_r)
            os.close(wake_w)
        except BaseException:
            os._exit(1)
        _child_main(spec, chan_fd, out_fd)
        os._exit(1)  # not reached
    for fd in fds:
        os.close(fd)
    children[pid] = message["id"]
    _send_ctl(ctl, {"op": "spawned", "id": message["id"], "pid": pid})


def _reap(ctl, wake_r, children):
    try:
        while os.read(wake_r, 4096):
            pass
    except BlockingIOError:
        pass
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if children.pop(pid, None) is not None:  # orphans adopted as subreaper are not reported
            _send_ctl(ctl, {"op": "exit", "pid": pid, "status": status})


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "zygote":
        sys.exit(zygote_main(int(sys.argv[2]), json.loads(sys.argv[3])))
    sys.stderr.write("usage: python.py zygote <control fd> <config json>\n")
    sys.exit(2)
