package io.ferrymq.compat;

import java.io.File;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.remoting.protocol.heartbeat.MessageModel;

/**
 * Consumes with DefaultMQPushConsumer and prints one line per message handed to the listener
 * (every delivery, retries included).
 *
 * <pre>
 * PushConsume NAMESRV TOPIC GROUP [--mode concurrent|orderly] [--model clustering|broadcasting]
 *             [--from first|last] [--fail-idx I,J] [--max-reconsume N] [--count N] [--timeout-ms N]
 *             [--stop-file PATH] [--ready-file PATH] [--sleep-ms N] [--name NAME] [--rebalance-ms N]
 * </pre>
 *
 * A message whose user property {@code idx} is listed in --fail-idx always fails (RECONSUME_LATER,
 * or SUSPEND_CURRENT_QUEUE_A_MOMENT when orderly). The consumer stops after --count deliveries
 * (if given), when --stop-file appears, or after --timeout-ms, then shuts down (committing its
 * offsets). --ready-file is created once the consumer has started. --rebalance-ms sets the client's
 * rebalance interval (rocketmq.client.rebalance.waitInterval).
 *
 * Lines: {@code RESULT {"type":"msg", ...Common.describeReceived..., "consumer", "t", "failed"}} per
 * delivery and last {@code {"type":"summary","received","stoppedBy"}}.
 */
public final class PushConsume {
    static final String USAGE = "PushConsume NAMESRV TOPIC GROUP [--mode concurrent|orderly]"
        + " [--model clustering|broadcasting] [--from first|last] [--fail-idx I,J] [--max-reconsume N]"
        + " [--count N] [--timeout-ms N] [--stop-file PATH] [--ready-file PATH] [--sleep-ms N] [--name NAME]"
        + " [--rebalance-ms N]";

    private PushConsume() {
    }

    public static void main(String[] args) {
        Common.initLogging();
        Cli cli;
        try {
            cli = new Cli(args, USAGE, 3);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(Common.EXIT_ERROR);
            return;
        }
        String rebalanceMs = cli.opt("rebalance-ms", null);
        if (rebalanceMs != null) {
            System.setProperty("rocketmq.client.rebalance.waitInterval", rebalanceMs);
        }
        long timeoutMs = cli.optLong("timeout-ms", 60_000);
        Common.startWatchdog(timeoutMs + 30_000);
        int code;
        try {
            code = run(cli, timeoutMs);
        } catch (Throwable t) {
            Common.error("PushConsume failed", t);
            code = Common.EXIT_ERROR;
        }
        System.out.flush();
        System.exit(code);
    }

    private static int run(Cli cli, long timeoutMs) throws Exception {
        String name = cli.opt("name", "java");
        int count = cli.optInt("count", 0);
        long sleepMs = cli.optLong("sleep-ms", 0);
        Set<String> failIdx = new HashSet<>(List.of(Common.splitList(cli.opt("fail-idx", ""))));
        String stopFile = cli.opt("stop-file", null);
        String readyFile = cli.opt("ready-file", null);
        AtomicInteger received = new AtomicInteger();
        Object done = new Object();

        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(cli.pos(2));
        Common.configure(consumer, cli.pos(0), "push-" + name);
        consumer.setPersistConsumerOffsetInterval(1000);
        consumer.setPollNameServerInterval(1000);
        consumer.setHeartbeatBrokerInterval(1000);
        consumer.setSuspendCurrentQueueTimeMillis(100);
        consumer.setMaxReconsumeTimes(cli.optInt("max-reconsume", -1));
        consumer.setMessageModel("broadcasting".equals(cli.opt("model", "clustering"))
            ? MessageModel.BROADCASTING : MessageModel.CLUSTERING);
        consumer.setConsumeFromWhere("last".equals(cli.opt("from", "first"))
            ? ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET : ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(cli.pos(1), "*");

        String mode = cli.opt("mode", "concurrent");
        switch (mode) {
            case "concurrent" -> consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                boolean failed = handle(msgs, name, failIdx, sleepMs, received, count, done);
                return failed ? ConsumeConcurrentlyStatus.RECONSUME_LATER : ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
            case "orderly" -> consumer.registerMessageListener((MessageListenerOrderly) (msgs, ctx) -> {
                boolean failed = handle(msgs, name, failIdx, sleepMs, received, count, done);
                return failed ? ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT : ConsumeOrderlyStatus.SUCCESS;
            });
            default -> throw cli.fail("unknown --mode " + mode);
        }

        consumer.start();
        if (readyFile != null) {
            new File(readyFile).createNewFile();
        }
        String stoppedBy = "timeout";
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        synchronized (done) {
            while (System.nanoTime() < deadline) {
                if (count > 0 && received.get() >= count) {
                    stoppedBy = "count";
                    break;
                }
                if (stopFile != null && new File(stopFile).exists()) {
                    stoppedBy = "stop-file";
                    break;
                }
                done.wait(50);
            }
        }
        consumer.shutdown();
        Out.result(Common.fields("type", "summary", "received", received.get(), "stoppedBy", stoppedBy));
        return "timeout".equals(stoppedBy) && (count > 0 || stopFile != null) ? Common.EXIT_INCOMPLETE : 0;
    }

    private static boolean handle(List<MessageExt> msgs, String name, Set<String> failIdx, long sleepMs,
        AtomicInteger received, int count, Object done) {
        boolean failed = false;
        for (MessageExt msg : msgs) {
            String idx = msg.getUserProperty("idx");
            boolean fail = idx != null && failIdx.contains(idx);
            failed |= fail;
            Map<String, Object> line = Common.describeReceived(msg);
            line.put("consumer", name);
            line.put("t", System.currentTimeMillis());
            line.put("failed", fail);
            Out.result(line);
        }
        if (sleepMs > 0) {
            try {
                Thread.sleep(sleepMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (received.addAndGet(msgs.size()) >= count && count > 0) {
            synchronized (done) {
                done.notifyAll();
            }
        }
        return failed;
    }
}
