// Node.js, callback style.
let count = 0;
exports.handler = function (event, context, callback) {
  count += 1;
  if (event.action === 'error') {
    callback(new RangeError('boom by callback'));
    return;
  }
  setTimeout(() => callback(null, { event, requestId: context.awsRequestId, count, style: 'callback' }), 5);
};

// The callback answers once the event loop is empty (a pending timer holds it back), unless the
// handler says not to wait.
exports.lingering = function (event, context, callback) {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => { count += 100; }, 400);
  callback(null, { count });
};
