package io.ferrymq.compat;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * A producer that keeps sending and a push consumer that keeps consuming, in one JVM, for a
 * failover of the broker group under them (compat-tests/test_java_controller_failover.py).
 *
 * <pre>
 * FailoverClients NAMESRV TOPIC GROUP --ready-file PATH --stop-sending-file PATH --stop-file PATH
 *                 [--interval-ms N] [--timeout-ms N]
 * </pre>
 *
 * The producer sends bodies "m000000", "m000001", ... every --interval-ms (sync sends, 3 s timeout,
 * the client's own retries) until --stop-sending-file appears; the consumer runs until --stop-file
 * appears, then shuts down (committing its offsets). Lines: {@code {"type":"sent","body","status",
 * "brokerName","queueId","queueOffset"}} or {@code {"type":"send-error","body","error"}} per send,
 * then {@code {"type":"sending-stopped"}}; {@code {"type":"msg",...Common.describeReceived...}} per
 * delivery; last {@code {"type":"summary"}}.
 */
public final class FailoverClients {
    static final String USAGE = "FailoverClients NAMESRV TOPIC GROUP --ready-file PATH"
        + " --stop-sending-file PATH --stop-file PATH [--interval-ms N] [--timeout-ms N]";

    private FailoverClients() {
    }

    public static void main(String[] args) {
        System.setProperty("rocketmq.client.rebalance.waitInterval", "1000");
        Common.main(args, USAGE, 3, 120_000, FailoverClients::run);
    }

    private static int run(Cli cli, long timeoutMs) throws Exception {
        String namesrv = cli.pos(0);
        String topic = cli.pos(1);
        File stopSending = new File(cli.opt("stop-sending-file", "stop-sending"));
        File stop = new File(cli.opt("stop-file", "stop"));
        long intervalMs = cli.optLong("interval-ms", 20);
        AtomicInteger received = new AtomicInteger();

        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(cli.pos(2));
        Common.configure(consumer, namesrv, "failover-consumer");
        consumer.setPersistConsumerOffsetInterval(500);
        consumer.setPollNameServerInterval(500);
        consumer.setHeartbeatBrokerInterval(1000);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt msg : msgs) {
                received.incrementAndGet();
                Out.result(Common.describeReceived(msg));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();

        DefaultMQProducer producer = new DefaultMQProducer("failover-producer");
        Common.configure(producer, namesrv, "failover-producer");
        producer.setPollNameServerInterval(500);
        producer.setSendMsgTimeout(3000);
        producer.setRetryTimesWhenSendFailed(2);
        producer.start();
        new File(cli.opt("ready-file", "ready")).createNewFile();

        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        int sent = 0;
        while (!stopSending.exists() && System.nanoTime() < deadline) {
            String body = String.format("m%06d", sent++);
            try {
                SendResult r = producer.send(new Message(topic, body.getBytes(StandardCharsets.US_ASCII)));
                Out.result(Common.fields("type", "sent", "body", body, "status", r.getSendStatus().name(),
                    "brokerName", r.getMessageQueue().getBrokerName(), "queueId", r.getMessageQueue().getQueueId(),
                    "queueOffset", r.getQueueOffset(), "t", System.currentTimeMillis()));
            } catch (Exception e) {
                Out.result(Common.fields("type", "send-error", "body", body, "error", String.valueOf(e),
                    "t", System.currentTimeMillis()));
            }
            Thread.sleep(intervalMs);
        }
        producer.shutdown();
        Out.result(Common.fields("type", "sending-stopped", "sent", sent));
        while (!stop.exists() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        consumer.shutdown();
        Out.result(Common.fields("type", "summary", "sent", sent, "received", received.get()));
        return stop.exists() ? 0 : Common.EXIT_INCOMPLETE;
    }
}
