package io.ferrymq.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;

/**
 * Send and receive throughput of the RocketMQ 5.x Java client against one gRPC endpoint.
 *
 * <p>Args: endpoint topic group seconds threads size. Phase 1: {@code threads} threads send
 * {@code size}-byte messages synchronously for {@code seconds}. Phase 2: {@code threads} threads
 * share one SimpleConsumer (batches of 32, invisible 30 s) and ack each message asynchronously until
 * everything sent was received or nothing arrived for 10 s. The topic must be new (both servers
 * start a new group at a fresh queue's first message). Prints one line:
 * {@code RESULT {"sent":..,"sendTps":..,"avgRtMs":..,"maxRtMs":..,"failed":..,"received":..,"receiveTps":..}}.
 */
public final class GrpcBench {
    private static final ClientServiceProvider PROVIDER = ClientServiceProvider.loadService();

    private GrpcBench() {
    }

    public static void main(String[] args) throws Exception {
        String endpoint = args[0];
        String topic = args[1];
        String group = args[2];
        long millis = (long) (Double.parseDouble(args[3]) * 1000);
        int threads = Integer.parseInt(args[4]);
        byte[] body = new byte[Integer.parseInt(args[5])];
        Arrays.fill(body, (byte) 'x');
        ClientConfiguration config = ClientConfiguration.newBuilder()
            .setEndpoints(endpoint)
            .enableSsl(false)
            .setRequestTimeout(Duration.ofSeconds(10))
            .build();

        AtomicLong sent = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        AtomicLong rtNanos = new AtomicLong();
        AtomicLong maxRtNanos = new AtomicLong();
        long sendNanos;
        try (Producer producer = PROVIDER.newProducerBuilder().setClientConfiguration(config).setTopics(topic)
            .build()) {
            Message message = PROVIDER.newMessageBuilder().setTopic(topic).setTag("bench").setBody(body).build();
            long start = System.nanoTime();
            long end = start + millis * 1_000_000L;
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Thread w = new Thread(() -> {
                    while (System.nanoTime() < end) {
                        long t0 = System.nanoTime();
                        try {
                            producer.send(message);
                            long rt = System.nanoTime() - t0;
                            sent.incrementAndGet();
                            rtNanos.addAndGet(rt);
                            maxRtNanos.accumulateAndGet(rt, Math::max);
                        } catch (Exception e) {
                            failed.incrementAndGet();
                        }
                    }
                });
                w.start();
                workers.add(w);
            }
            for (Thread w : workers) {
                w.join();
            }
            sendNanos = System.nanoTime() - start;
        }

        AtomicLong received = new AtomicLong();
        AtomicLong lastReceived = new AtomicLong(System.nanoTime());
        long receiveStart;
        try (SimpleConsumer consumer = PROVIDER.newSimpleConsumerBuilder().setClientConfiguration(config)
            .setConsumerGroup(group).setAwaitDuration(Duration.ofSeconds(5))
            .setSubscriptionExpressions(Collections.singletonMap(topic, FilterExpression.SUB_ALL)).build()) {
            long want = sent.get();
            receiveStart = System.nanoTime();
            lastReceived.set(receiveStart);
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Thread w = new Thread(() -> {
                    while (received.get() < want && System.nanoTime() - lastReceived.get() < 10_000_000_000L) {
                        try {
                            List<MessageView> views = consumer.receive(32, Duration.ofSeconds(30));
                            for (MessageView view : views) {
                                consumer.ackAsync(view);
                            }
                            if (!views.isEmpty()) {
                                received.addAndGet(views.size());
                                lastReceived.set(System.nanoTime());
                            }
                        } catch (Exception e) {
                            // counted by what was not received
                        }
                    }
                });
                w.start();
                workers.add(w);
            }
            for (Thread w : workers) {
                w.join();
            }
        }
        long n = sent.get();
        double sendS = sendNanos / 1e9;
        double receiveS = Math.max(lastReceived.get() - receiveStart, 1) / 1e9;
        System.out.println("RESULT {\"sent\":" + n + ",\"sendTps\":" + Math.round(n / sendS)
            + ",\"avgRtMs\":" + String.format(Locale.ROOT, "%.3f", n == 0 ? 0.0 : rtNanos.get() / 1e6 / n)
            + ",\"maxRtMs\":" + String.format(Locale.ROOT, "%.1f", maxRtNanos.get() / 1e6)
            + ",\"failed\":" + failed.get() + ",\"received\":" + received.get()
            + ",\"receiveTps\":" + Math.round(received.get() / receiveS) + "}");
        System.out.flush();
    }
}
