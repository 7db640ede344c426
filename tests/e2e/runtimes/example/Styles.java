package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Java: the stream style (RequestStreamHandler) and a static String handler. */
public class Styles implements RequestStreamHandler {
    public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
        String event = new String(input.readAllBytes(), StandardCharsets.UTF_8);
        output.write(("{\"raw\":" + event + ",\"fn\":\"" + context.getFunctionName() + "\"}").getBytes(StandardCharsets.UTF_8));
    }

    public static String upper(String name) {
        return name.toUpperCase();
    }

    /** Where temporary files go: the environment's own scratch directory. */
    public static String tmpdir(Object event) throws IOException {
        java.io.File file = java.io.File.createTempFile("lamina", ".tmp");
        file.deleteOnExit();
        return file.getParent();
    }
}
