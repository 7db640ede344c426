// Node.js, an ES module with top-level await.
import { spawn } from 'node:child_process';
let count = 0;
const seen = {};
const ENV = ['_HANDLER', 'LAMBDA_TASK_ROOT', 'LAMBDA_RUNTIME_DIR', 'AWS_EXECUTION_ENV', 'AWS_LAMBDA_RUNTIME_API',
  'AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_REGION', '_X_AMZN_TRACE_ID',
  'AWS_LAMBDA_LOG_STREAM_NAME'];
const ready = await Promise.resolve('esm');
if (process.env.FAIL_AT_LOAD) throw new Error('boom at load');

export const handler = async (event, context) => {
  count += 1;
  const action = event.action || 'echo';
  if (action === 'error') throw new TypeError('boom');
  if (action === 'crash') process.exit(3);
  if (action === 'sleep') {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    console.log('CHILD', child.pid);
    await new Promise((resolve) => setTimeout(resolve, 60000));
  }
  if (action === 'wait') await new Promise((resolve) => setTimeout(resolve, event.seconds * 1000));
  if (action === 'flaky') {
    seen[context.awsRequestId] = (seen[context.awsRequestId] || 0) + 1;
    if (seen[context.awsRequestId] < 2) throw new Error(`attempt ${seen[context.awsRequestId]} fails`);
  }
  console.log('handling', context.awsRequestId);
  const env = {};
  for (const k of ENV) env[k] = process.env[k] === undefined ? null : process.env[k];
  return {
    event, requestId: context.awsRequestId, count, remaining: context.getRemainingTimeInMillis(),
    functionName: context.functionName, arn: context.invokedFunctionArn, env, module: ready, pid: process.pid,
  };
};
