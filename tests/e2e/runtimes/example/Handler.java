package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/** Java, Map in and out, with the Context. */
public class Handler {
    private static int count = 0;
    private static final Map<String, Integer> SEEN = new HashMap<>();
    private static final String[] ENV = {"_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION",
        "_X_AMZN_TRACE_ID", "AWS_LAMBDA_LOG_STREAM_NAME"};

    static {
        if (System.getenv("FAIL_AT_LOAD") != null) {
            throw new IllegalStateException("boom at load");
        }
    }

    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) throws Exception {
        count++;
        String action = (String) event.getOrDefault("action", "echo");
        if (action.equals("error")) {
            throw new IllegalArgumentException("boom");
        }
        if (action.equals("crash")) {
            System.exit(3);
        }
        if (action.equals("sleep")) {
            Process child = new ProcessBuilder("sleep", "60").start();
            System.out.println("CHILD " + child.pid());
            Thread.sleep(60000);
        }
        if (action.equals("wait")) {
            Thread.sleep((long) (((Number) event.get("seconds")).doubleValue() * 1000));
        }
        if (action.equals("flaky")) {
            int n = SEEN.merge(context.getAwsRequestId(), 1, Integer::sum);
            if (n < 2) {
                throw new RuntimeException("attempt " + n + " fails");
            }
        }
        System.out.println("handling " + context.getAwsRequestId());
        Map<String, Object> env = new LinkedHashMap<>();
        for (String k : ENV) {
            env.put(k, System.getenv(k));
        }
        env.put("_X_AMZN_TRACE_ID", System.getProperty("com.amazonaws.xray.traceHeader"));  // no env var in Java
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("event", event);
        out.put("requestId", context.getAwsRequestId());
        out.put("count", count);
        out.put("remaining", context.getRemainingTimeInMillis());
        out.put("functionName", context.getFunctionName());
        out.put("arn", context.getInvokedFunctionArn());
        out.put("env", env);
        out.put("pid", ProcessHandle.current().pid());
        return out;
    }
}
