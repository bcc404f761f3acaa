package io.ferrymq.compat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.MessageQueueSelector;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientIDSetter;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * Sends COUNT messages with DefaultMQProducer in one of five modes and prints one line per message.
 *
 * <pre>
 * Produce NAMESRV TOPIC GROUP COUNT [--mode sync|async|oneway|batch|ordered] [--tags TagA,TagB]
 *         [--batch-size N] [--order-keys N] [--body-size N] [--run-id ID] [--send-timeout-ms N]
 *         [--timeout-ms N]
 * </pre>
 *
 * Per message: {@code RESULT {"type":"send","mode","index","status","msgId","offsetMsgId","brokerName",
 * "queueId","queueOffset","orderKey"?,"topic","tags","keys","properties":{...},"body":hex}}; failures:
 * {@code {"type":"send-error","index","error"}}; last: {@code {"type":"summary","mode","sent","failed",
 * "elapsedMs"}}. Oneway sends have no SendResult: status "ONEWAY", msgId = the client UNIQ_KEY,
 * queueId/queueOffset -1. Batch sends split the batch SendResult (comma-separated ids, first offset) per message.
 * Ordered sends pick the queue with {@code floorMod(orderKey.hashCode(), queues)}, orderKey "order-(i % N)".
 */
public final class Produce {
    static final String USAGE = "Produce NAMESRV TOPIC GROUP COUNT [--mode sync|async|oneway|batch|ordered]"
        + " [--tags TagA,TagB] [--batch-size N] [--order-keys N] [--body-size N] [--run-id ID]"
        + " [--send-timeout-ms N] [--timeout-ms N]";

    /** The selector of the ordered scenario: same order key, same queue. */
    static final MessageQueueSelector BY_ORDER_KEY =
        (mqs, msg, arg) -> mqs.get(Math.floorMod(arg.hashCode(), mqs.size()));

    private Produce() {
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
            Common.error("Produce failed", t);
            code = Common.EXIT_ERROR;
        }
        System.out.flush();
        System.exit(code);
    }

    private static int run(Cli cli, long timeoutMs) throws Exception {
        String namesrv = cli.pos(0);
        String topic = cli.pos(1);
        String group = cli.pos(2);
        int count = cli.posInt(3);
        String mode = cli.opt("mode", "sync");
        String[] tags = Common.splitList(cli.opt("tags", "TagA"));
        int bodySize = cli.optInt("body-size", 0);
        String runId = cli.opt("run-id", Long.toString(System.currentTimeMillis(), 36));
        int orderKeys = cli.optInt("order-keys", 4);
        int batchSize = cli.optInt("batch-size", count);

        DefaultMQProducer producer = new DefaultMQProducer(group);
        Common.configure(producer, namesrv, "producer");
        producer.setSendMsgTimeout(cli.optInt("send-timeout-ms", 15_000));
        producer.setRetryTimesWhenSendFailed(2);
        producer.setRetryTimesWhenSendAsyncFailed(2);
        producer.start();
        long start = System.nanoTime();
        AtomicInteger ok = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        try {
            switch (mode) {
                case "sync" -> {
                    for (int i = 0; i < count; i++) {
                        Message msg = Common.buildMessage(topic, mode, runId, i, tags, bodySize, Map.of());
                        try {
                            report(mode, i, msg, producer.send(msg), null);
                            ok.incrementAndGet();
                        } catch (Exception e) {
                            reportError(mode, i, e);
                            failed.incrementAndGet();
                        }
                    }
                }
                case "ordered" -> {
                    for (int i = 0; i < count; i++) {
                        String orderKey = "order-" + (i % orderKeys);
                        Message msg = Common.buildMessage(topic, mode, runId, i, tags, bodySize,
                            Map.of("orderKey", orderKey));
                        try {
                            report(mode, i, msg, producer.send(msg, BY_ORDER_KEY, orderKey), orderKey);
                            ok.incrementAndGet();
                        } catch (Exception e) {
                            reportError(mode, i, e);
                            failed.incrementAndGet();
                        }
                    }
                }
                case "async" -> {
                    CountDownLatch done = new CountDownLatch(count);
                    Semaphore inflight = new Semaphore(cli.optInt("max-inflight", 64));
                    for (int i = 0; i < count; i++) {
                        final int index = i;
                        final Message msg = Common.buildMessage(topic, mode, runId, i, tags, bodySize, Map.of());
                        inflight.acquire();
                        try {
                            producer.send(msg, new SendCallback() {
                                @Override
                                public void onSuccess(SendResult result) {
                                    report(mode, index, msg, result, null);
                                    ok.incrementAndGet();
                                    inflight.release();
                                    done.countDown();
                                }

                                @Override
                                public void onException(Throwable e) {
                                    reportError(mode, index, e);
                                    failed.incrementAndGet();
                                    inflight.release();
                                    done.countDown();
                                }
                            });
                        } catch (Exception e) {
                            reportError(mode, index, e);
                            failed.incrementAndGet();
                            inflight.release();
                            done.countDown();
                        }
                    }
                    if (!done.await(timeoutMs, TimeUnit.MILLISECONDS)) {
                        System.err.println("async: " + done.getCount() + " callbacks missing after " + timeoutMs + " ms");
                        failed.addAndGet((int) done.getCount());
                    }
                }
                case "oneway" -> {
                    for (int i = 0; i < count; i++) {
                        Message msg = Common.buildMessage(topic, mode, runId, i, tags, bodySize, Map.of());
                        try {
                            producer.sendOneway(msg);
                            Map<String, Object> m = Common.fields("type", "send", "mode", mode, "index", i,
                                "status", "ONEWAY", "msgId", MessageClientIDSetter.getUniqID(msg), "offsetMsgId", null,
                                "brokerName", null, "queueId", -1, "queueOffset", -1L);
                            m.putAll(Common.describeSent(msg));
                            Out.result(m);
                            ok.incrementAndGet();
                        } catch (Exception e) {
                            reportError(mode, i, e);
                            failed.incrementAndGet();
                        }
                    }
                    // Oneway writes are flushed asynchronously; give them time before the channel closes.
                    Thread.sleep(cli.optInt("oneway-linger-ms", 1_000));
                }
                case "batch" -> {
                    if (batchSize <= 0) {
                        throw cli.fail("--batch-size must be positive");
                    }
                    for (int first = 0; first < count; first += batchSize) {
                        List<Message> batch = new ArrayList<>();
                        for (int i = first; i < Math.min(count, first + batchSize); i++) {
                            batch.add(Common.buildMessage(topic, mode, runId, i, tags, bodySize, Map.of()));
                        }
                        try {
                            reportBatch(mode, first, batch, producer.send(batch));
                            ok.addAndGet(batch.size());
                        } catch (Exception e) {
                            for (int j = 0; j < batch.size(); j++) {
                                reportError(mode, first + j, e);
                            }
                            failed.addAndGet(batch.size());
                        }
                    }
                }
                default -> throw cli.fail("unknown --mode " + mode);
            }
        } finally {
            producer.shutdown();
        }
        long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        Out.result(Common.fields("type", "summary", "mode", mode, "runId", runId, "sent", ok.get(),
            "failed", failed.get(), "elapsedMs", elapsedMs));
        return failed.get() == 0 ? 0 : Common.EXIT_SEND_FAILED;
    }

    static void report(String mode, int index, Message msg, SendResult r, String orderKey) {
        MessageQueue mq = r.getMessageQueue();
        Map<String, Object> m = Common.fields("type", "send", "mode", mode, "index", index,
            "status", String.valueOf(r.getSendStatus()), "msgId", r.getMsgId(), "offsetMsgId", r.getOffsetMsgId(),
            "brokerName", mq == null ? null : mq.getBrokerName(), "queueId", mq == null ? -1 : mq.getQueueId(),
            "queueOffset", r.getQueueOffset());
        if (orderKey != null) {
            m.put("orderKey", orderKey);
        }
        m.putAll(Common.describeSent(msg));
        Out.result(m);
    }

    /** A batch SendResult carries comma-separated ids and the offset of the first message. */
    static void reportBatch(String mode, int firstIndex, List<Message> batch, SendResult r) {
        String[] ids = r.getMsgId() == null ? new String[0] : r.getMsgId().split(",");
        String[] offsetIds = r.getOffsetMsgId() == null ? new String[0] : r.getOffsetMsgId().split(",");
        MessageQueue mq = r.getMessageQueue();
        for (int j = 0; j < batch.size(); j++) {
            Message msg = batch.get(j);
            Map<String, Object> m = Common.fields("type", "send", "mode", mode, "index", firstIndex + j,
                "status", String.valueOf(r.getSendStatus()),
                "msgId", j < ids.length ? ids[j] : MessageClientIDSetter.getUniqID(msg),
                "offsetMsgId", j < offsetIds.length ? offsetIds[j] : null,
                "brokerName", mq == null ? null : mq.getBrokerName(), "queueId", mq == null ? -1 : mq.getQueueId(),
                "queueOffset", r.getQueueOffset() + j, "batchIds", ids.length, "batchOffsetIds", offsetIds.length);
            m.putAll(Common.describeSent(msg));
            Out.result(m);
        }
    }

    static void reportError(String mode, int index, Throwable e) {
        System.err.println("send " + mode + " #" + index + " failed: " + e);
        Out.result(Common.fields("type", "send-error", "mode", mode, "index", index, "error", String.valueOf(e)));
    }
}
