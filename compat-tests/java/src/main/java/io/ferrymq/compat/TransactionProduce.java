package io.ferrymq.compat;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.client.producer.TransactionSendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Sends messages in transactions with the unmodified TransactionMQProducer.
 *
 * <pre>
 * TransactionProduce NAMESRV TOPIC GROUP BODY=DECISION[,BODY=DECISION...]
 *                    [--check COMMIT|ROLLBACK|UNKNOW] [--delay-ms N] [--warmup BODY]
 *                    [--wait-file PATH] [--half-file PATH] [--stop-file PATH] [--timeout-ms N]
 * </pre>
 *
 * DECISION is what executeLocalTransaction returns: COMMIT, ROLLBACK, UNKNOW, or DIE (the JVM halts
 * inside executeLocalTransaction, before any decision). checkLocalTransaction answers --check
 * (default COMMIT) for every message. --warmup sends one plain message first (route and heartbeat,
 * so this producer can be asked). --delay-ms sets Message.setDelayTimeMs. With --half-file, the
 * listener creates that file and waits for --wait-file before deciding. With --stop-file the JVM
 * keeps answering checks until that file exists. Lines: {"type":"send","body","state","status",
 * "msgId","offsetMsgId","transactionId"} per message and {"type":"check","body","times"} per check.
 */
public final class TransactionProduce {
    static final String USAGE = "TransactionProduce NAMESRV TOPIC GROUP BODY=DECISION[,...] [--check STATE]"
        + " [--delay-ms N] [--warmup BODY] [--wait-file PATH] [--half-file PATH] [--stop-file PATH] [--timeout-ms N]";

    private TransactionProduce() {
    }

    public static void main(String[] args) {
        Common.initLogging();
        Cli cli;
        try {
            cli = new Cli(args, USAGE, 4);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(Common.EXIT_ERROR);
            return;
        }
        long timeoutMs = cli.optLong("timeout-ms", 60_000);
        Common.startWatchdog(timeoutMs + 30_000);
        int code;
        try {
            code = run(cli, timeoutMs);
        } catch (Throwable t) {
            Common.error("TransactionProduce failed", t);
            code = Common.EXIT_ERROR;
        }
        System.out.flush();
        System.exit(code);
    }

    private static int run(Cli cli, long timeoutMs) throws Exception {
        String topic = cli.pos(1);
        Map<String, String> decisions = new ConcurrentHashMap<>();
        for (String pair : Common.splitList(cli.pos(3))) {
            int eq = pair.indexOf('=');
            decisions.put(pair.substring(0, eq), pair.substring(eq + 1));
        }
        LocalTransactionState checkAnswer = LocalTransactionState.valueOf(
            cli.opt("check", "COMMIT").equals("COMMIT") ? "COMMIT_MESSAGE"
                : cli.opt("check", "COMMIT").equals("ROLLBACK") ? "ROLLBACK_MESSAGE" : "UNKNOW");
        String halfFile = cli.opt("half-file", null);
        String waitFile = cli.opt("wait-file", null);
        long deadline = System.currentTimeMillis() + timeoutMs;

        TransactionMQProducer producer = new TransactionMQProducer(cli.pos(2));
        Common.configure(producer, cli.pos(0), "txn");
        producer.setSendMsgTimeout(10_000);
        producer.setTransactionListener(new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                String body = new String(msg.getBody(), StandardCharsets.UTF_8);
                String decision = decisions.getOrDefault(body, "UNKNOW");
                if (halfFile != null) {
                    touch(halfFile);
                    while (!new File(waitFile).exists() && System.currentTimeMillis() < deadline) {
                        sleep(20);
                    }
                }
                switch (decision) {
                    case "DIE":
                        System.out.flush();
                        Runtime.getRuntime().halt(0);
                        return LocalTransactionState.UNKNOW;
                    case "COMMIT":
                        return LocalTransactionState.COMMIT_MESSAGE;
                    case "ROLLBACK":
                        return LocalTransactionState.ROLLBACK_MESSAGE;
                    default:
                        return LocalTransactionState.UNKNOW;
                }
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                Out.result(Common.fields("type", "check", "body", new String(msg.getBody(), StandardCharsets.UTF_8),
                    "times", msg.getProperty("TRANSACTION_CHECK_TIMES"), "topic", msg.getTopic()));
                return checkAnswer;
            }
        });
        producer.start();
        try {
            String warmup = cli.opt("warmup", null);
            if (warmup != null) {
                SendResult r = producer.send(new Message(topic, warmup.getBytes(StandardCharsets.UTF_8)));
                Out.result(Common.fields("type", "warmup", "status", r.getSendStatus().name()));
            }
            long delayMs = cli.optLong("delay-ms", 0);
            for (String body : Common.splitList(cli.pos(3))) {
                body = body.substring(0, body.indexOf('='));
                Message msg = new Message(topic, "txn", body.getBytes(StandardCharsets.UTF_8));
                if (delayMs > 0) {
                    msg.setDelayTimeMs(delayMs);
                }
                TransactionSendResult r = producer.sendMessageInTransaction(msg, null);
                Out.result(Common.fields("type", "send", "body", body, "state", r.getLocalTransactionState().name(),
                    "status", r.getSendStatus().name(), "msgId", r.getMsgId(), "offsetMsgId", r.getOffsetMsgId(),
                    "transactionId", r.getTransactionId(), "sentAt", System.currentTimeMillis()));
            }
            String stopFile = cli.opt("stop-file", null);
            while (stopFile != null && !new File(stopFile).exists() && System.currentTimeMillis() < deadline) {
                sleep(50);
            }
        } finally {
            producer.shutdown();
        }
        return 0;
    }

    private static void touch(String path) {
        try {
            new File(path).createNewFile();
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
