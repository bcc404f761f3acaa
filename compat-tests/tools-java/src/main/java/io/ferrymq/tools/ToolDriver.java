package io.ferrymq.tools;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Runs unmodified command-line tools in one JVM, one invocation per stdin line, so a test module
 * pays for one JVM start instead of one per command.
 *
 * <p>Each stdin line is tab-separated: the tool's main class, then its arguments; a first field
 * {@code <path} gives the tool that file as its stdin. The tool's stdout
 * and stderr are captured and written back between {@code @@BEGIN} and {@code @@END <status>}, where
 * status is 0, the exit code (System.exit and Kafka's Exit.exit are trapped) a tool asked for, or 99 when main threw.
 */
public final class ToolDriver {
    private static final PrintStream STDOUT =
        new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

    /** Thrown by the Kafka exit procedure in place of System.exit. */
    static final class ExitRequested extends RuntimeException {
        final int status;

        ExitRequested(int status) {
            super("exit " + status, null, false, false);
            this.status = status;
            if (firstExit == null) {
                firstExit = status;
            }
        }
    }

    /** The first exit a tool asked for in the current run (a tool may catch the exception). */
    static volatile Integer firstExit;

    private ToolDriver() {
    }

    public static void main(String[] args) throws Exception {
        KafkaExit.install();
        trapSystemExit();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        STDOUT.println("@@READY");
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String[] parts = line.split("\t", -1);
            InputStream oldIn = System.in;
            int first = 0;
            if (parts[0].startsWith("<")) {  // "<path": the tool reads this file as its stdin
                System.setIn(new FileInputStream(parts[0].substring(1)));
                first = 1;
            }
            String mainClass = parts[first];
            String[] toolArgs = Arrays.copyOfRange(parts, first + 1, parts.length);
            firstExit = null;
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            PrintStream capture = new PrintStream(buf, true, StandardCharsets.UTF_8);
            PrintStream oldOut = System.out;
            PrintStream oldErr = System.err;
            System.setOut(capture);
            System.setErr(capture);
            int status = 0;
            try {
                Method main = Class.forName(mainClass).getMethod("main", String[].class);
                main.invoke(null, (Object) toolArgs);
            } catch (InvocationTargetException e) {
                status = statusOf(e.getCause(), capture);
            } catch (ExitRequested e) {
                status = e.status;
            } catch (Throwable t) {
                t.printStackTrace(capture);
                status = 99;
            } finally {
                capture.flush();
                System.setOut(oldOut);
                System.setErr(oldErr);
                if (System.in != oldIn) {
                    System.in.close();
                    System.setIn(oldIn);
                }
            }
            if (firstExit != null) {
                status = firstExit;
            }
            STDOUT.println("@@BEGIN");
            STDOUT.print(buf.toString(StandardCharsets.UTF_8));
            STDOUT.println();
            STDOUT.println("@@END " + status);
            STDOUT.flush();
        }
    }

    /**
     * mqadmin's argument parser calls System.exit on a bad command line; turn that into an
     * exception too (the JVM runs with -Djava.security.manager=allow; JDK 17 to 23).
     */
    @SuppressWarnings("removal")
    private static void trapSystemExit() {
        SecurityManager trap = new SecurityManager() {
            @Override
            public void checkExit(int status) {
                throw new ExitRequested(status);
            }

            @Override
            public void checkPermission(java.security.Permission perm) {
            }

            @Override
            public void checkPermission(java.security.Permission perm, Object context) {
            }
        };
        try {
            System.setSecurityManager(trap);
        } catch (UnsupportedOperationException e) {
            // JDK 24+: no security manager; a tool's System.exit then ends the driver, which the
            // Python side reports as "tool driver exited"
            System.err.println("ToolDriver: System.exit cannot be trapped on this JDK");
        }
    }

    private static int statusOf(Throwable cause, PrintStream capture) {
        if (cause instanceof ExitRequested) {
            return ((ExitRequested) cause).status;
        }
        cause.printStackTrace(capture);
        return 99;
    }
}
