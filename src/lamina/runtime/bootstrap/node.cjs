'use strict';
// Lamina's Node.js bootstrap: loads the handler named by _HANDLER from LAMBDA_TASK_ROOT and
// serves invocations over the Lambda Runtime API (AWS_LAMBDA_RUNTIME_API) with node's own http
// module. No dependencies. Behaviour follows AWS's Node.js runtime (aws-lambda-nodejs-runtime-
// interface-client): handler resolution, CommonJS and ES modules, async and callback handlers,
// the context object, error documents ({errorType, errorMessage, trace}) and log lines
// (`<ISO time>\t<request id>\t<LEVEL>\t<message>`, newlines folded into \r).

const fs = require('fs');
const http = require('http');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

const API = process.env.AWS_LAMBDA_RUNTIME_API || '';
const SEP = API.lastIndexOf(':');
const HOST = API.slice(0, SEP);
const PORT = Number(API.slice(SEP + 1));
const BASE = '/2018-06-01/runtime';
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT || process.cwd();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

let currentRequestId;
let invokeInFlight = null; // the request id whose result has not been posted yet

// ---------------------------------------------------------------------------------------------
// Logging

function writeOut(text) {
  const buffer = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(1, buffer, offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') return;
    }
  }
}

function logLine(level, args) {
  const message = util.format.apply(util, args).replace(/\n/g, '\r');
  writeOut(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message}\n`);
}

console.log = (...args) => logLine('INFO', args);
console.info = (...args) => logLine('INFO', args);
console.warn = (...args) => logLine('WARN', args);
console.error = (...args) => logLine('ERROR', args);
console.debug = (...args) => logLine('DEBUG', args);
console.trace = (...args) => logLine('TRACE', args);
console.fatal = (...args) => logLine('FATAL', args);

// ---------------------------------------------------------------------------------------------
// Errors, as the Node.js runtime reports them

function isError(value) {
  return value instanceof Error || util.types.isNativeError(value) ||
    (value && typeof value === 'object' && typeof value.name === 'string' && typeof value.message === 'string');
}

function toRapidResponse(error) {
  try {
    if (isError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: String(error.stack || '').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_e) {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function logError(label, error) {
  const response = toRapidResponse(error);
  const logged = { errorType: response.errorType, errorMessage: response.errorMessage, stack: response.trace };
  logLine('ERROR', [`${label}\t${JSON.stringify(logged)}`]);
}

class RuntimeError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

// ---------------------------------------------------------------------------------------------
// The Runtime API client

function call(method, route, body, headers) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body);
    const request = http.request(
      {
        host: HOST,
        port: PORT,
        path: BASE + route,
        method,
        agent,
        headers: Object.assign(
          data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': data.length },
          headers || {},
        ),
      },
      (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(data); // headers and body in one write
  });
}

function postError(route, error) {
  const response = toRapidResponse(error);
  return call('POST', route, JSON.stringify(response), {
    'Lambda-Runtime-Function-Error-Type': response.errorType,
  });
}

// ---------------------------------------------------------------------------------------------
// Loading the handler (UserFunction.js)

const HANDLER_RE = /^([^.]*)\.(.*)$/;

function moduleType(directory) {
  let dir = directory;
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')).type === 'module' ? 'module' : 'commonjs';
      } catch (_e) {
        return 'commonjs';
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir || !dir.startsWith(TASK_ROOT)) return 'commonjs';
    dir = parent;
  }
}

async function loadModule(root, name) {
  const base = path.resolve(root, name);
  for (const ext of ['.js', '.mjs', '.cjs']) {
    const file = base + ext;
    if (!fs.existsSync(file)) continue;
    if (ext === '.mjs' || (ext === '.js' && moduleType(path.dirname(file)) === 'module')) {
      return import(pathToFileURL(file).href);
    }
    try {
      return require(file);
    } catch (err) {
      if (err && err.code === 'ERR_REQUIRE_ESM') return import(pathToFileURL(file).href);
      throw err;
    }
  }
  try {
    return require(require.resolve(name, { paths: [root, TASK_ROOT] }));
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') {
      throw new RuntimeError('Runtime.ImportModuleError', `Error: Cannot find module '${name}'\nRequire stack:\n- ${__filename}`);
    }
    throw err;
  }
}

async function loadHandler(fullHandler) {
  const slash = fullHandler.lastIndexOf('/') + 1;
  const moduleRoot = fullHandler.slice(0, slash);
  const match = fullHandler.slice(slash).match(HANDLER_RE);
  if (!match || !match[1] || !match[2]) {
    throw new RuntimeError('Runtime.MalformedHandlerName', 'Bad handler');
  }
  const [, moduleName, handlerPath] = match;
  let loaded;
  try {
    loaded = await loadModule(path.resolve(TASK_ROOT, moduleRoot), moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new RuntimeError('Runtime.UserCodeSyntaxError', `${err.name}: ${err.message}`);
    }
    throw err;
  }
  let handler = loaded;
  for (const part of handlerPath.split('.')) {
    handler = handler == null ? undefined : handler[part];
  }
  if (handler === undefined && loaded && loaded.default && typeof loaded.default === 'object') {
    handler = loaded.default;
    for (const part of handlerPath.split('.')) handler = handler == null ? undefined : handler[part];
  }
  if (typeof handler !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound', `${fullHandler} is undefined or not exported`);
  }
  return handler;
}

// ---------------------------------------------------------------------------------------------
// The context object

function parseJsonHeader(value, what) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new RuntimeError('Runtime.LambdaContextUnmarshalError', `Unable to parse ${what} JSON: ${err.message}`);
  }
}

function makeContext(headers, settle) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const env = process.env;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'client context'),
    identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'cognito identity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    getRemainingTimeInMillis() {
      return Math.max(0, deadline - Date.now());
    },
    done: (err, result) => settle(err, result),
    succeed: (result) => settle(null, result),
    fail: (err) => settle(err == null ? 'handled' : err),
  };
}

// ---------------------------------------------------------------------------------------------
// Invocations

let afterEmptyLoop = null;
process.on('beforeExit', () => {
  // Node emits this when nothing is left to run; the Runtime API client's idle keep-alive socket
  // is unref'd, so it does not count.
  const pending = afterEmptyLoop;
  afterEmptyLoop = null;
  if (pending) pending();
});

function runHandler(handler, event, headers) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err, result) => {
      if (settled) return;
      settled = true;
      if (err != null) reject(err);
      else resolve(result);
    };
    const context = makeContext(headers, settle);
    // As AWS: a callback's answer waits for the event loop to empty (timers, sockets...) unless
    // the handler sets context.callbackWaitsForEmptyEventLoop = false.
    const callback = (err, result) => {
      if (context.callbackWaitsForEmptyEventLoop) afterEmptyLoop = () => settle(err, result);
      else settle(err, result);
    };
    const returned = handler(event, context, callback);
    if (returned && typeof returned.then === 'function') {
      returned.then((result) => settle(null, result), (err) => settle(err === undefined || err === null ? new Error(String(err)) : err));
    } else if (handler.length < 3) {
      settle(null, returned);
    }
  });
}

async function invokeOnce(handler) {
  const next = await call('GET', '/invocation/next');
  const headers = next.headers;
  const requestId = headers['lambda-runtime-aws-request-id'];
  currentRequestId = requestId;
  invokeInFlight = requestId;
  if (headers['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
  else delete process.env._X_AMZN_TRACE_ID;
  let result;
  try {
    const text = next.body.toString('utf8');
    const event = text.length ? JSON.parse(text) : {};
    result = await runHandler(handler, event, headers);
  } catch (err) {
    logError('Invoke Error ', err);
    invokeInFlight = null;
    await postError(`/invocation/${requestId}/error`, err);
    return;
  }
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch (err) {
    const error = new RuntimeError('Runtime.MarshalError', `Unable to stringify response body as json: ${err.message}`);
    logError('Invoke Error ', error);
    invokeInFlight = null;
    await postError(`/invocation/${requestId}/error`, error);
    return;
  }
  invokeInFlight = null;
  await call('POST', `/invocation/${requestId}/response`, body === undefined ? 'null' : body);
}

async function fatal(label, error) {
  logError(label, error);
  try {
    if (invokeInFlight) await postError(`/invocation/${invokeInFlight}/error`, error);
    else if (!initialised) await postError('/init/error', error);
  } catch (_e) {
    // the API is gone: nothing more to say
  }
  process.exit(129);
}

let initialised = false;
process.on('uncaughtException', (error) => fatal('Uncaught Exception ', error));
process.on('unhandledRejection', (reason) => {
  const error = new RuntimeError('Runtime.UnhandledPromiseRejection', `${isError(reason) ? reason.stack || reason : reason}`);
  fatal('Unhandled Promise Rejection ', error);
});

async function main() {
  let handler;
  try {
    handler = await loadHandler(process.env._HANDLER || '');
  } catch (err) {
    logError('Uncaught Exception ', err);
    try {
      await postError('/init/error', err);
    } catch (_e) {
      // the API is gone
    }
    process.exit(129);
  }
  initialised = true;
  for (;;) {
    await invokeOnce(handler);
  }
}

main();
