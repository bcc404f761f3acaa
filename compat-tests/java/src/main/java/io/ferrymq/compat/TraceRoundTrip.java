package io.ferrymq.compat;

import java.io.File;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Message trace with the unmodified client, in one JVM: a producer with trace on
 * ({@code new DefaultMQProducer(group, true, null)}) sends COUNT messages, a push consumer with trace on
 * ({@code new DefaultMQPushConsumer(group, true, null)}) consumes them; both keep running until
 * --stop-file appears (the caller has seen the consumer's trace records: its dispatcher sends them
 * in the background, and a shutdown right after consuming drops them), then shut down.
 *
 * <pre>
 * TraceRoundTrip NAMESRV TOPIC PRODUCER_GROUP CONSUMER_GROUP COUNT [--stop-file PATH] [--timeout-ms N]
 * </pre>
 *
 * Lines: {@code {"type":"send","msgId","offsetMsgId","queueId","queueOffset"}} per send,
 * {@code {"type":"consumed","msgId","t"}} per first delivery, last {@code {"type":"done"}}.
 */
public final class TraceRoundTrip {
    static final String USAGE =
        "TraceRoundTrip NAMESRV TOPIC PRODUCER_GROUP CONSUMER_GROUP COUNT [--stop-file PATH] [--timeout-ms N]";

    private TraceRoundTrip() {
    }

    public static void main(String[] args) {
        Common.main(args, USAGE, 5, 60_000, TraceRoundTrip::run);
    }

    private static int run(Cli cli, long timeoutMs) throws Exception {
        String namesrv = cli.pos(0);
        String topic = cli.pos(1);
        int count = cli.posInt(4);
        DefaultMQProducer producer = new DefaultMQProducer(cli.pos(2), true, null); // trace on, default topic
        Common.configure(producer, namesrv, "trace-producer");
        producer.start();
        for (int i = 0; i < count; i++) {
            Message msg = new Message(topic, "TagT", ("traced " + i).getBytes());
            SendResult r = producer.send(msg);
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("type", "send");
            line.put("msgId", r.getMsgId());
            line.put("offsetMsgId", r.getOffsetMsgId());
            line.put("queueId", r.getMessageQueue().getQueueId());
            line.put("queueOffset", r.getQueueOffset());
            Out.result(line);
        }

        Set<String> seen = ConcurrentHashMap.newKeySet();
        CountDownLatch all = new CountDownLatch(count);
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(cli.pos(3), true, null);
        Common.configure(consumer, namesrv, "trace-consumer");
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                if (seen.add(m.getMsgId())) {
                    Map<String, Object> line = new LinkedHashMap<>();
                    line.put("type", "consumed");
                    line.put("msgId", m.getMsgId());
                    line.put("t", System.currentTimeMillis());
                    Out.result(line);
                    all.countDown();
                }
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        boolean done = all.await(timeoutMs, TimeUnit.MILLISECONDS);
        Out.result(Map.of("type", "consumedAll", "ok", done));
        String stopFile = cli.opt("stop-file", null);
        while (done && stopFile != null && !new File(stopFile).exists() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        consumer.shutdown();
        producer.shutdown();
        Out.result(Map.of("type", "done"));
        return done ? 0 : Common.EXIT_INCOMPLETE;
    }
}
