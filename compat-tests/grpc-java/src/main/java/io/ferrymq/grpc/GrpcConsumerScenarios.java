package io.ferrymq.grpc;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.Transaction;
import org.apache.rocketmq.client.apis.producer.TransactionResolution;

/**
 * The RocketMQ 5.x Java client as a CONSUMER of ferrymq's gRPC listener, every scenario in one JVM.
 *
 * <p>Args: endpoint simpleTopic simpleGroup pushTopic pushGroup fifoTopic fifoGroup txnTopic. Prints
 * {@code RESULT <json>} lines: "recv" (scenario, body, attempt, group) for every message a consumer
 * got, "check" (resolution) for every transaction check, "error" (reason) for a step that did not
 * happen in time, then {"type":"done"}.
 *
 * <ul>
 *   <li>simple: SimpleConsumer receives two messages, acks one, changes the other's invisible
 *       duration to 1 s and receives it again (delivery attempt 2), then acks it.
 *   <li>push: PushConsumer with a listener; "push-fail" answers FAILURE once and comes back.
 *   <li>fifo: PushConsumer on a FIFO group, two message groups of three, "fifo-a-0" failing once:
 *       the client redelivers it locally before the rest of its group.
 *   <li>txn: a transaction never ended; its checker answers UNKNOWN once, then COMMIT, and the
 *       simple consumer receives the committed message.
 * </ul>
 */
public final class GrpcConsumerScenarios {
    private static final ClientServiceProvider PROVIDER = ClientServiceProvider.loadService();
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final Set<String> SIMPLE_SEEN = ConcurrentHashMap.newKeySet();

    private GrpcConsumerScenarios() {
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    private static synchronized void result(String json) {
        System.out.println("RESULT " + json);
        System.out.flush();
    }

    private static String body(MessageView view) {
        return StandardCharsets.UTF_8.decode(view.getBody().duplicate()).toString();
    }

    private static void received(String scenario, MessageView view) {
        result("{\"type\":\"recv\",\"scenario\":" + quote(scenario) + ",\"body\":" + quote(body(view))
            + ",\"attempt\":" + view.getDeliveryAttempt() + ",\"group\":"
            + quote(view.getMessageGroup().orElse("")) + "}");
    }

    private static void error(String reason) {
        result("{\"type\":\"error\",\"reason\":" + quote(reason) + "}");
    }

    private static Message message(String topic, String body, String group) {
        var builder = PROVIDER.newMessageBuilder().setTopic(topic).setBody(body.getBytes(StandardCharsets.UTF_8));
        if (group != null) {
            builder.setMessageGroup(group);
        }
        return builder.build();
    }

    private static Map<String, FilterExpression> all(String topic) {
        return Collections.singletonMap(topic, FilterExpression.SUB_ALL);
    }

    /** Receives until {@code want} is seen (acking everything else but simple-change), or null after WAIT. */
    private static MessageView receiveUntil(SimpleConsumer consumer, String want, int attempt) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        MessageView found = null;
        while (found == null && System.nanoTime() < deadline) {
            for (MessageView view : consumer.receive(16, Duration.ofSeconds(5))) {
                received("simple", view);
                SIMPLE_SEEN.add(body(view));
                if (body(view).equals(want) && view.getDeliveryAttempt() >= attempt) {
                    found = view;
                } else if (!body(view).equals("simple-change")) {
                    consumer.ack(view);
                }
            }
        }
        return found;
    }

    private static void simple(ClientConfiguration config, String topic, String group, String txnTopic,
                               Producer producer, CountDownLatch committed) throws Exception {
        Map<String, FilterExpression> subs = new ConcurrentHashMap<>(all(topic));
        subs.put(txnTopic, FilterExpression.SUB_ALL);
        try (SimpleConsumer consumer = PROVIDER.newSimpleConsumerBuilder().setClientConfiguration(config)
            .setConsumerGroup(group).setSubscriptionExpressions(subs).setAwaitDuration(Duration.ofSeconds(2))
            .build()) {
            producer.send(message(topic, "simple-ack", null));
            producer.send(message(topic, "simple-change", null));
            MessageView change = receiveUntil(consumer, "simple-change", 1);
            if (change == null) {
                error("simple: simple-change never received");
                return;
            }
            consumer.changeInvisibleDuration(change, Duration.ofSeconds(1));
            result("{\"type\":\"changed\",\"body\":\"simple-change\"}");
            MessageView again = receiveUntil(consumer, "simple-change", 2);
            if (again == null) {
                error("simple: simple-change not redelivered");
                return;
            }
            consumer.ack(again);
            result("{\"type\":\"acked\",\"body\":\"simple-change\"}");
            if (!committed.await(WAIT.toSeconds(), TimeUnit.SECONDS)) {
                error("txn: never committed by the check");
                return;
            }
            if (!SIMPLE_SEEN.contains("txn-checked") && receiveUntil(consumer, "txn-checked", 1) == null) {
                error("txn: the committed message was never received");
            }
        }
    }

    private static PushConsumer push(ClientConfiguration config, String scenario, String topic, String group,
                                     String failing, CountDownLatch done, Set<String> pending) throws Exception {
        Set<String> failed = ConcurrentHashMap.newKeySet();
        return PROVIDER.newPushConsumerBuilder().setClientConfiguration(config).setConsumerGroup(group)
            .setSubscriptionExpressions(all(topic)).setConsumptionThreadCount(4)
            .setMessageListener(view -> {
                received(scenario, view);
                String b = body(view);
                if (b.equals(failing) && failed.add(b)) {
                    return ConsumeResult.FAILURE;
                }
                if (pending.remove(b)) {
                    done.countDown();
                }
                return ConsumeResult.SUCCESS;
            }).build();
    }

    public static void main(String[] args) throws Exception {
        String endpoint = args[0];
        String simpleTopic = args[1];
        String simpleGroup = args[2];
        String pushTopic = args[3];
        String pushGroup = args[4];
        String fifoTopic = args[5];
        String fifoGroup = args[6];
        String txnTopic = args[7];
        ClientConfiguration config = ClientConfiguration.newBuilder().setEndpoints(endpoint).enableSsl(false)
            .setRequestTimeout(Duration.ofSeconds(10)).build();
        AtomicInteger checks = new AtomicInteger();
        CountDownLatch committed = new CountDownLatch(1);
        try (Producer producer = PROVIDER.newProducerBuilder().setClientConfiguration(config)
            .setTopics(simpleTopic, pushTopic, fifoTopic, txnTopic)
            .setTransactionChecker(view -> {
                TransactionResolution resolution = checks.getAndIncrement() == 0
                    ? TransactionResolution.UNKNOWN : TransactionResolution.COMMIT;
                result("{\"type\":\"check\",\"body\":" + quote(body(view)) + ",\"resolution\":"
                    + quote(resolution.name()) + "}");
                if (resolution == TransactionResolution.COMMIT) {
                    committed.countDown();
                }
                return resolution;
            }).build()) {
            Transaction open = producer.beginTransaction();
            producer.send(message(txnTopic, "txn-checked", null), open);

            List<String> pushBodies = List.of("push-0", "push-1", "push-fail", "push-3");
            Set<String> pushPending = ConcurrentHashMap.newKeySet();
            pushPending.addAll(pushBodies);
            CountDownLatch pushDone = new CountDownLatch(pushBodies.size());
            List<String> fifoBodies = List.of("fifo-a-0", "fifo-a-1", "fifo-a-2", "fifo-b-0", "fifo-b-1", "fifo-b-2");
            Set<String> fifoPending = ConcurrentHashMap.newKeySet();
            fifoPending.addAll(fifoBodies);
            CountDownLatch fifoDone = new CountDownLatch(fifoBodies.size());
            try (PushConsumer pushConsumer = push(config, "push", pushTopic, pushGroup, "push-fail", pushDone,
                pushPending);
                 PushConsumer fifoConsumer = push(config, "fifo", fifoTopic, fifoGroup, "fifo-a-0", fifoDone,
                     fifoPending)) {
                for (String b : pushBodies) {
                    producer.send(message(pushTopic, b, null));
                }
                for (int i = 0; i < 3; i++) {
                    producer.send(message(fifoTopic, "fifo-a-" + i, "ga"));
                    producer.send(message(fifoTopic, "fifo-b-" + i, "gb"));
                }
                simple(config, simpleTopic, simpleGroup, txnTopic, producer, committed);
                if (!pushDone.await(WAIT.toSeconds(), TimeUnit.SECONDS)) {
                    error("push: not consumed: " + pushPending);
                }
                if (!fifoDone.await(WAIT.toSeconds(), TimeUnit.SECONDS)) {
                    error("fifo: not consumed: " + fifoPending);
                }
            }
        }
        result("{\"type\":\"done\"}");
        System.exit(0);
    }
}
