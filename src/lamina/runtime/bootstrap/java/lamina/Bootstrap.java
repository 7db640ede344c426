package lamina;

import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Lamina's Java bootstrap: loads the handler named by _HANDLER ({@code package.Class::method}, or
 * {@code package.Class} implementing RequestHandler / RequestStreamHandler) and serves invocations
 * over the Lambda Runtime API. JDK only: a small HTTP/1.1 client on a socket and the JSON codec in
 * {@link Json}. Events reach handlers as String, Map/List/boxed values (parsed JSON), plain Java
 * objects ({@link Beans}: setters and public fields) or streams.
 */
public final class Bootstrap {
    private static final String BASE = "/2018-06-01/runtime";

    public static void main(String[] args) throws Exception {
        String scratch = System.getenv("TMPDIR"); // the environment's own /tmp (the JVM ignores TMPDIR)
        if (scratch != null && !scratch.isEmpty()) {
            System.setProperty("java.io.tmpdir", scratch);
        }
        String address = System.getenv("AWS_LAMBDA_RUNTIME_API");
        int colon = address.lastIndexOf(':');
        Http http = new Http(address.substring(0, colon), Integer.parseInt(address.substring(colon + 1)));
        Handler handler;
        try {
            handler = Handler.load(System.getenv("_HANDLER"));
        } catch (Throwable e) {
            Throwable error = unwrap(e);
            Map<String, Object> document = errorDocument(error, e instanceof ClassNotFoundException
                    ? "Class not found: " + e.getMessage() : null);
            System.out.println(document.get("errorMessage") + ": " + document.get("errorType"));
            flush();
            http.request("POST", BASE + "/init/error", Json.write(document).getBytes(StandardCharsets.UTF_8),
                    (String) document.get("errorType"));
            System.exit(1);
            return;
        }
        while (true) {
            Http.Response next = http.request("GET", BASE + "/invocation/next", null, null);
            String requestId = next.headers.get("lambda-runtime-aws-request-id");
            LaminaContext context = new LaminaContext(next.headers);
            // A JVM cannot set its own environment: AWS's Java runtime passes the trace header
            // as this system property (the X-Ray SDK reads it).
            String trace = next.headers.get("lambda-runtime-trace-id");
            if (trace != null) {
                System.setProperty("com.amazonaws.xray.traceHeader", trace);
            } else {
                System.clearProperty("com.amazonaws.xray.traceHeader");
            }
            byte[] result;
            try {
                result = handler.invoke(next.body, context);
            } catch (Throwable e) {
                Throwable error = unwrap(e);
                Map<String, Object> document = errorDocument(error, null);
                StringBuilder log = new StringBuilder();
                log.append(error.getClass().getName()).append(": ").append(error.getMessage());
                for (Object line : (List<?>) document.get("stackTrace")) {
                    log.append("\r\tat ").append(line);
                }
                System.out.println(log);
                flush();
                http.request("POST", BASE + "/invocation/" + requestId + "/error",
                        Json.write(document).getBytes(StandardCharsets.UTF_8), (String) document.get("errorType"));
                continue;
            }
            flush();
            http.request("POST", BASE + "/invocation/" + requestId + "/response", result, null);
        }
    }

    private static void flush() {
        System.out.flush();
        System.err.flush();
    }

    static Throwable unwrap(Throwable e) {
        while (e instanceof InvocationTargetException && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    /** {"errorMessage", "errorType", "stackTrace", "cause"} as AWS's Java runtime writes it. */
    static Map<String, Object> errorDocument(Throwable error, String message) {
        Map<String, Object> document = new java.util.LinkedHashMap<>();
        document.put("errorMessage", message != null ? message : String.valueOf(error.getMessage()));
        document.put("errorType", error.getClass().getName());
        List<Object> trace = new ArrayList<>();
        for (StackTraceElement element : error.getStackTrace()) {
            if (element.getClassName().startsWith("lamina.Bootstrap")
                    || element.getClassName().startsWith("jdk.internal.reflect")
                    || element.getClassName().startsWith("java.lang.reflect")) {
                continue;
            }
            trace.add(element.toString());
        }
        document.put("stackTrace", trace);
        if (error.getCause() != null && error.getCause() != error) {
            document.put("cause", errorDocument(error.getCause(), null));
        }
        return document;
    }

    /** The handler: a method, its instance (null if static) and how its event is passed. */
    static final class Handler {
        final Method method;
        final Object instance;
        final Class<?>[] params;

        Handler(Method method, Object instance) {
            this.method = method;
            this.instance = instance;
            this.params = method.getParameterTypes();
        }

        static Handler load(String spec) throws Exception {
            if (spec == null || spec.isEmpty()) {
                throw new ClassNotFoundException(String.valueOf(spec));
            }
            String className = spec;
            String methodName = null;
            int sep = spec.indexOf("::");
            if (sep >= 0) {
                className = spec.substring(0, sep);
                methodName = spec.substring(sep + 2);
            }
            Class<?> type = Class.forName(className, true, Bootstrap.class.getClassLoader());
            if (methodName == null) {
                if (RequestStreamHandler.class.isAssignableFrom(type) || RequestHandler.class.isAssignableFrom(type)) {
                    methodName = "handleRequest";
                } else {
                    throw new NoSuchMethodException("Class " + className
                            + " does not implement RequestHandler or RequestStreamHandler with appropriate type parameters");
                }
            }
            Method chosen = null;
            for (Method candidate : type.getMethods()) {
                if (!candidate.getName().equals(methodName) || candidate.isBridge() || candidate.isSynthetic()) {
                    continue;
                }
                if (chosen == null || candidate.getParameterCount() > chosen.getParameterCount()
                        || (chosen.getParameterTypes().length > 0 && chosen.getParameterTypes()[0] == Object.class)) {
                    chosen = candidate;
                }
            }
            if (chosen == null || chosen.getParameterCount() > 3) {
                throw new NoSuchMethodException("No public method named " + methodName
                        + " with appropriate method signature found on class " + className);
            }
            Object instance = Modifier.isStatic(chosen.getModifiers()) ? null
                    : type.getDeclaredConstructor().newInstance();
            return new Handler(chosen, instance);
        }

        byte[] invoke(byte[] event, Context context) throws Throwable {
            if (params.length >= 2 && params[0] == InputStream.class && params[1] == OutputStream.class) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                Object[] args = params.length == 3
                        ? new Object[] {new ByteArrayInputStream(event), out, context}
                        : new Object[] {new ByteArrayInputStream(event), out};
                method.invoke(instance, args);
                return out.toByteArray();
            }
            Object[] args = new Object[params.length];
            for (int i = 0; i < params.length; i++) {
                if (params[i] == Context.class) {
                    args[i] = context;
                } else if (i == 0) {
                    args[i] = convert(event, params[0], method.getGenericParameterTypes()[0]);
                } else {
                    throw new IllegalArgumentException("unsupported handler parameter " + params[i].getName());
                }
            }
            Object result = method.invoke(instance, args);
            if (method.getReturnType() == void.class) {
                result = null;
            }
            return Json.write(result).getBytes(StandardCharsets.UTF_8);
        }

        static Object convert(byte[] event, Class<?> type, java.lang.reflect.Type generic) throws Exception {
            if (type == byte[].class) {
                return event;
            }
            String text = new String(event, StandardCharsets.UTF_8);
            Object value = text.isBlank() ? new HashMap<String, Object>() : Json.parse(text);
            if (type == String.class) {
                return value instanceof String ? value : text; // a JSON string's value, else the JSON text
            }
            return Beans.convert(value, type, generic);
        }
    }

    /** The Context of one invocation. */
    static final class LaminaContext implements Context {
        private final Map<String, String> headers;
        private final long deadline;

        LaminaContext(Map<String, String> headers) {
            this.headers = headers;
            long parsed;
            try {
                parsed = Long.parseLong(headers.getOrDefault("lambda-runtime-deadline-ms", "0"));
            } catch (NumberFormatException e) {
                parsed = 0;
            }
            this.deadline = parsed;
        }

        public String getAwsRequestId() { return headers.get("lambda-runtime-aws-request-id"); }
        public String getLogGroupName() { return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME"); }
        public String getLogStreamName() { return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME"); }
        public String getFunctionName() { return System.getenv("AWS_LAMBDA_FUNCTION_NAME"); }
        public String getFunctionVersion() { return System.getenv("AWS_LAMBDA_FUNCTION_VERSION"); }
        public String getInvokedFunctionArn() { return headers.get("lambda-runtime-invoked-function-arn"); }

        public CognitoIdentity getIdentity() {
            Object parsed = parseHeader("lambda-runtime-cognito-identity");
            Map<?, ?> map = parsed instanceof Map ? (Map<?, ?>) parsed : new HashMap<>();
            return new CognitoIdentity() {
                public String getIdentityId() { return (String) map.get("cognitoIdentityId"); }
                public String getIdentityPoolId() { return (String) map.get("cognitoIdentityPoolId"); }
            };
        }

        @SuppressWarnings("unchecked")
        public ClientContext getClientContext() {
            Object parsed = parseHeader("lambda-runtime-client-context");
            if (!(parsed instanceof Map)) {
                return null;
            }
            Map<String, Object> map = (Map<String, Object>) parsed;
            return new ClientContext() {
                public com.amazonaws.services.lambda.runtime.Client getClient() {
                    Object client = map.get("client");
                    Map<String, Object> c = client instanceof Map ? (Map<String, Object>) client : new HashMap<>();
                    return new com.amazonaws.services.lambda.runtime.Client() {
                        public String getInstallationId() { return (String) c.get("installation_id"); }
                        public String getAppTitle() { return (String) c.get("app_title"); }
                        public String getAppVersionName() { return (String) c.get("app_version_name"); }
                        public String getAppVersionCode() { return (String) c.get("app_version_code"); }
                        public String getAppPackageName() { return (String) c.get("app_package_name"); }
                    };
                }
                public Map<String, String> getCustom() { return (Map<String, String>) map.get("custom"); }
                public Map<String, String> getEnvironment() { return (Map<String, String>) map.get("env"); }
            };
        }

        private Object parseHeader(String name) {
            String value = headers.get(name);
            return value == null || value.isEmpty() ? null : Json.parse(value);
        }

        public int getRemainingTimeInMillis() {
            return (int) Math.max(0, deadline - System.currentTimeMillis());
        }

        public int getMemoryLimitInMB() {
            return Integer.parseInt(System.getenv().getOrDefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"));
        }

        public LambdaLogger getLogger() {
            return new LambdaLogger() {
                public void log(String message) {
                    System.out.println(message);
                }

                public void log(byte[] message) {
                    System.out.println(new String(message, StandardCharsets.UTF_8));
                }
            };
        }
    }

    /** A minimal HTTP/1.1 client for the Runtime API: one keep-alive connection, Content-Length bodies. */
    static final class Http {
        private final String host;
        private final int port;
        private Socket socket;
        private InputStream in;
        private OutputStream out;

        static final class Response {
            int status;
            Map<String, String> headers = new HashMap<>();
            byte[] body;
        }

        Http(String host, int port) {
            this.host = host;
            this.port = port;
        }

        Response request(String method, String path, byte[] body, String errorType) throws IOException {
            for (int attempt = 0; ; attempt++) {
                try {
                    return send(method, path, body, errorType);
                } catch (IOException e) {
                    close();
                    if (attempt >= 1) {
                        throw e;
                    }
                }
            }
        }

        private void close() {
            try {
                if (socket != null) {
                    socket.close();
                }
            } catch (IOException ignored) {
                // reconnect below
            }
            socket = null;
        }

        private Response send(String method, String path, byte[] body, String errorType) throws IOException {
            if (socket == null) {
                socket = new Socket();
                socket.setTcpNoDelay(true);
                socket.connect(new InetSocketAddress(host, port));
                in = new java.io.BufferedInputStream(socket.getInputStream(), 65536);
                out = socket.getOutputStream();
            }
            StringBuilder head = new StringBuilder();
            head.append(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: ").append(host).append(':')
                    .append(port).append("\r\n");
            if (body != null) {
                head.append("Content-Type: application/json\r\nContent-Length: ").append(body.length).append("\r\n");
            }
            if (errorType != null) {
                head.append("Lambda-Runtime-Function-Error-Type: ").append(errorType).append("\r\n");
            }
            head.append("\r\n");
            byte[] headBytes = head.toString().getBytes(StandardCharsets.ISO_8859_1);
            if (body != null && body.length < 65536) {
                byte[] all = new byte[headBytes.length + body.length];
                System.arraycopy(headBytes, 0, all, 0, headBytes.length);
                System.arraycopy(body, 0, all, headBytes.length, body.length);
                out.write(all);
            } else {
                out.write(headBytes);
                if (body != null) {
                    out.write(body);
                }
            }
            out.flush();
            Response response = new Response();
            String status = readLine();
            if (status == null) {
                throw new IOException("connection closed");
            }
            response.status = Integer.parseInt(status.split(" ")[1]);
            String line;
            while ((line = readLine()) != null && !line.isEmpty()) {
                int c = line.indexOf(':');
                if (c > 0) {
                    response.headers.put(line.substring(0, c).trim().toLowerCase(), line.substring(c + 1).trim());
                }
            }
            int length = Integer.parseInt(response.headers.getOrDefault("content-length", "0"));
            byte[] data = new byte[length];
            int read = 0;
            while (read < length) {
                int n = in.read(data, read, length - read);
                if (n < 0) {
                    throw new IOException("connection closed");
                }
                read += n;
            }
            response.body = data;
            if ("close".equalsIgnoreCase(response.headers.get("connection"))) {
                close();
            }
            return response;
        }

        private String readLine() throws IOException {
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            int b;
            while ((b = in.read()) >= 0) {
                if (b == '\n') {
                    byte[] bytes = line.toByteArray();
                    int n = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                    return new String(bytes, 0, n, StandardCharsets.ISO_8859_1);
                }
                line.write(b);
            }
            return line.size() == 0 ? null : line.toString(StandardCharsets.ISO_8859_1);
        }
    }
}
