package io.ferrymq.compat;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.rocketmq.client.ClientConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientExt;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;

/** Client settings and message shapes shared by the scenarios. */
final class Common {
    /** Exit codes: 0 done, 1 error (stack trace on stderr), 2 incomplete (timeout), 3 some sends failed, 4 watchdog. */
    static final int EXIT_ERROR = 1;
    static final int EXIT_INCOMPLETE = 2;
    static final int EXIT_SEND_FAILED = 3;
    static final int EXIT_WATCHDOG = 4;

    /** Bytes appended to every body so that binary safety (NUL, 0xff, the property separators) is tested. */
    static final byte[] BINARY_TAIL = {0x00, (byte) 0xff, 0x01, 0x02, 0x7f, (byte) 0x80};

    private Common() {
    }

    /**
     * Before any client class is loaded: keep the client's own log file out of ~/logs unless told
     * otherwise (-Drocketmq.log.root=...).
     */
    static void initLogging() {
        if (System.getProperty("rocketmq.log.root") == null) {
            File dir = new File(System.getProperty("java.io.tmpdir"), "ferrymq-compat-logs");
            System.setProperty("rocketmq.log.root", dir.getAbsolutePath());
        }
        if (System.getProperty("rocketmq.log.level") == null) {
            System.setProperty("rocketmq.log.level", "warn");
        }
    }

    /** Settings that make the client work against one local broker on 127.0.0.1. */
    static void configure(ClientConfig config, String namesrv, String role) {
        config.setNamesrvAddr(namesrv);
        config.setInstanceName("ferrymq-compat-" + role + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        config.setVipChannelEnabled(false);
        config.setMqClientApiTimeout(15_000);
        config.setUseTLS(false);
    }

    /** Kills the JVM if the scenario outlives its deadline, so no caller ever hangs on us. */
    static void startWatchdog(long deadlineMs) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(deadlineMs);
            } catch (InterruptedException e) {
                return;
            }
            System.err.println("watchdog: scenario still running after " + deadlineMs + " ms, halting");
            Runtime.getRuntime().halt(EXIT_WATCHDOG);
        }, "ferrymq-compat-watchdog");
        t.setDaemon(true);
        t.start();
    }

    /** A scenario's body: its exit code. */
    interface Scenario {
        int run(Cli cli, long timeoutMs) throws Exception;
    }

    /**
     * A tool's main: parse the arguments (exit 1 with the usage if wrong), start the watchdog at
     * --timeout-ms (default {@code defaultTimeoutMs}) + 30 s, run the scenario, exit with its code.
     */
    static void main(String[] args, String usage, int positional, long defaultTimeoutMs, Scenario scenario) {
        initLogging();
        Cli cli;
        try {
            cli = new Cli(args, usage, positional);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(EXIT_ERROR);
            return;
        }
        long timeoutMs = cli.optLong("timeout-ms", defaultTimeoutMs);
        startWatchdog(timeoutMs + 30_000);
        int code;
        try {
            code = scenario.run(cli, timeoutMs);
        } catch (Throwable t) {
            error(usage.split(" ", 2)[0] + " failed", t);
            code = EXIT_ERROR;
        }
        System.out.flush();
        System.exit(code);
    }

    static String[] splitList(String csv) {
        List<String> out = new ArrayList<>();
        for (String s : csv.split(",")) {
            if (!s.isBlank()) {
                out.add(s.trim());
            }
        }
        return out.toArray(new String[0]);
    }

    /**
     * The message of index i: body "ferrymq|mode|run|i" + BINARY_TAIL + padding, the tag tags[i % n],
     * keys "key-run-i" and "all-run", and user properties idx, mode, run, uni (non-ASCII) plus extra.
     */
    static Message buildMessage(String topic, String mode, String runId, int i, String[] tags, int bodySize,
        Map<String, String> extra) {
        byte[] head = ("ferrymq|" + mode + "|" + runId + "|" + i).getBytes(StandardCharsets.UTF_8);
        int len = Math.max(bodySize, head.length + BINARY_TAIL.length);
        byte[] body = new byte[len];
        System.arraycopy(head, 0, body, 0, head.length);
        System.arraycopy(BINARY_TAIL, 0, body, head.length, BINARY_TAIL.length);
        for (int p = head.length + BINARY_TAIL.length; p < len; p++) {
            body[p] = (byte) ('a' + p % 26);
        }
        Message msg = new Message(topic, body);
        if (tags.length > 0) {
            msg.setTags(tags[i % tags.length]);
        }
        msg.setKeys(List.of("key-" + runId + "-" + i, "all-" + runId));
        msg.putUserProperty("idx", Integer.toString(i));
        msg.putUserProperty("mode", mode);
        msg.putUserProperty("run", runId);
        msg.putUserProperty("uni", "h\u00e9llo w\u00f6rld \u2713");
        for (Map.Entry<String, String> e : extra.entrySet()) {
            msg.putUserProperty(e.getKey(), e.getValue());
        }
        return msg;
    }

    /** User properties (not in MessageConst.STRING_HASH_SET), sorted. */
    static Map<String, String> userProperties(Message msg) {
        Map<String, String> out = new TreeMap<>();
        Map<String, String> all = msg.getProperties();
        if (all != null) {
            for (Map.Entry<String, String> e : all.entrySet()) {
                if (!MessageConst.STRING_HASH_SET.contains(e.getKey())) {
                    out.put(e.getKey(), e.getValue());
                }
            }
        }
        return out;
    }

    /** System properties (in MessageConst.STRING_HASH_SET), sorted. */
    static Map<String, String> systemProperties(Message msg) {
        Map<String, String> out = new TreeMap<>();
        Map<String, String> all = msg.getProperties();
        if (all != null) {
            for (Map.Entry<String, String> e : all.entrySet()) {
                if (MessageConst.STRING_HASH_SET.contains(e.getKey())) {
                    out.put(e.getKey(), e.getValue());
                }
            }
        }
        return out;
    }

    /** What was sent (before the SendResult fields are added). */
    static Map<String, Object> describeSent(Message msg) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("topic", msg.getTopic());
        m.put("tags", msg.getTags());
        m.put("keys", msg.getKeys());
        m.put("properties", userProperties(msg));
        m.put("body", hex(msg.getBody()));
        return m;
    }

    /** A received message, as printed by the readers. */
    static Map<String, Object> describeReceived(MessageExt msg) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "msg");
        m.put("topic", msg.getTopic());
        m.put("brokerName", msg.getBrokerName());
        m.put("queueId", msg.getQueueId());
        m.put("queueOffset", msg.getQueueOffset());
        m.put("commitLogOffset", msg.getCommitLogOffset());
        m.put("msgId", msg.getMsgId());
        m.put("offsetMsgId", msg instanceof MessageClientExt ext ? ext.getOffsetMsgId() : null);
        m.put("tags", msg.getTags());
        m.put("keys", msg.getKeys());
        m.put("properties", userProperties(msg));
        m.put("sysProperties", systemProperties(msg));
        m.put("body", hex(msg.getBody()));
        m.put("bodyCRC", msg.getBodyCRC());
        m.put("sysFlag", msg.getSysFlag());
        m.put("flag", msg.getFlag());
        m.put("reconsumeTimes", msg.getReconsumeTimes());
        m.put("bornTimestamp", msg.getBornTimestamp());
        m.put("storeTimestamp", msg.getStoreTimestamp());
        m.put("bornHost", String.valueOf(msg.getBornHost()));
        m.put("storeHost", String.valueOf(msg.getStoreHost()));
        return m;
    }

    static String hex(byte[] bytes) {
        if (bytes == null) {
            return null;
        }
        StringBuilder sb = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            sb.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
        }
        return sb.toString();
    }

    static Map<String, Object> fields(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    static void error(String where, Throwable t) {
        System.err.println(where + ": " + t);
        t.printStackTrace(System.err);
    }
}
