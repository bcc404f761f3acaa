package io.ferrymq.kafkacompat;

import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Share groups (KIP-932) with the unmodified {@link KafkaShareConsumer}, several scenarios in one JVM run:
 *
 * <pre>
 *   share BOOTSTRAP PREFIX COUNT
 * </pre>
 *
 * Topics PREFIX-split, -release, -lock and -reject (one partition each, made by the caller); groups
 * PREFIX-g-split and so on. "split": COUNT records read by two consumers of one group (implicit
 * acknowledgement), the group described by the Admin client while both are in it. "release": a
 * record released comes back. "lock": a record one consumer never acknowledges comes to another after
 * the lock. "reject": of two records the first is rejected, the second released; the second comes
 * back, the first never. Each record read is a {@code record} result (scenario, consumer, offset,
 * value, delivery count).
 */
final class ShareGroups {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final Duration POLL = Duration.ofMillis(200);

    private ShareGroups() {
    }

    static void run(String bootstrap, String prefix, int count) throws Exception {
        produce(bootstrap, Map.of(prefix + "-split", count, prefix + "-release", 1, prefix + "-lock", 1,
            prefix + "-reject", 2));
        long t = System.nanoTime();
        split(bootstrap, prefix, count);
        t = took("split", t);
        release(bootstrap, prefix);
        t = took("release", t);
        lock(bootstrap, prefix);
        t = took("lock", t);
        reject(bootstrap, prefix);
        took("reject", t);
    }

    /** A {@code took} result: how long a scenario ran (ms), for the test's log. */
    private static long took(String scenario, long since) {
        long now = System.nanoTime();
        Json.result(Json.obj("type", "took", "scenario", scenario, "ms", (now - since) / 1_000_000));
        return now;
    }

    private static void split(String bootstrap, String prefix, int count) throws Exception {
        String topic = prefix + "-split";
        String group = prefix + "-g-split";
        int seen = 0;
        try (KafkaShareConsumer<byte[], byte[]> c1 = consumer(bootstrap, group, "c1", false);
                KafkaShareConsumer<byte[], byte[]> c2 = consumer(bootstrap, group, "c2", false)) {
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            long deadline = System.nanoTime() + WAIT.toNanos();
            boolean described = false;
            while (seen < count && System.nanoTime() < deadline) {
                seen += poll(c1, "split", "c1").size();
                seen += poll(c2, "split", "c2").size();
                if (!described && seen >= count / 2) {
                    describe(bootstrap, group);
                    described = true;
                }
            }
            c1.commitSync();
            c2.commitSync();
        }
    }

    private static void release(String bootstrap, String prefix) {
        try (KafkaShareConsumer<byte[], byte[]> c = consumer(bootstrap, prefix + "-g-release", "r", true)) {
            c.subscribe(List.of(prefix + "-release"));
            List<ConsumerRecord<byte[], byte[]>> got = pollUntil(c, "release", "r", 1);
            for (ConsumerRecord<byte[], byte[]> r : got) {
                c.acknowledge(r, AcknowledgeType.RELEASE);
            }
            c.commitSync();
            for (ConsumerRecord<byte[], byte[]> r : pollUntil(c, "release", "r", 1)) {
                c.acknowledge(r, AcknowledgeType.ACCEPT);
            }
            c.commitSync();
        }
    }

    private static void lock(String bootstrap, String prefix) {
        String group = prefix + "-g-lock";
        try (KafkaShareConsumer<byte[], byte[]> x = consumer(bootstrap, group, "x", true);
                KafkaShareConsumer<byte[], byte[]> y = consumer(bootstrap, group, "y", true)) {
            x.subscribe(List.of(prefix + "-lock"));
            pollUntil(x, "lock", "x", 1); // acquired and never acknowledged: x polls no more
            y.subscribe(List.of(prefix + "-lock"));
            for (ConsumerRecord<byte[], byte[]> r : pollUntil(y, "lock", "y", 1)) {
                y.acknowledge(r, AcknowledgeType.ACCEPT);
            }
            y.commitSync();
        }
    }

    private static void reject(String bootstrap, String prefix) {
        try (KafkaShareConsumer<byte[], byte[]> c = consumer(bootstrap, prefix + "-g-reject", "j", true)) {
            c.subscribe(List.of(prefix + "-reject"));
            List<ConsumerRecord<byte[], byte[]>> got = pollUntil(c, "reject", "j", 2);
            for (ConsumerRecord<byte[], byte[]> r : got) {
                c.acknowledge(r, r.offset() == 0 ? AcknowledgeType.REJECT : AcknowledgeType.RELEASE);
            }
            c.commitSync();
            for (ConsumerRecord<byte[], byte[]> r : pollUntil(c, "reject", "j", 1)) {
                c.acknowledge(r, AcknowledgeType.ACCEPT);
            }
            c.commitSync();
        }
    }

    /** Polls until {@code want} records came (or the deadline); returns them, each printed. */
    private static List<ConsumerRecord<byte[], byte[]>> pollUntil(KafkaShareConsumer<byte[], byte[]> c,
            String scenario, String name, int want) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (out.size() < want && System.nanoTime() < deadline) {
            out.addAll(poll(c, scenario, name));
        }
        return out;
    }

    private static List<ConsumerRecord<byte[], byte[]>> poll(KafkaShareConsumer<byte[], byte[]> c, String scenario,
            String name) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : c.poll(POLL)) {
            Json.result(Json.obj("type", "record", "scenario", scenario, "consumer", name, "offset", r.offset(),
                "value", new String(r.value(), StandardCharsets.UTF_8), "delivery", deliveryCount(r)));
            out.add(r);
        }
        return out;
    }

    /** {@code ConsumerRecord.deliveryCount()} (4.x; reflection keeps this compiling for the 3.9 line). */
    private static int deliveryCount(ConsumerRecord<byte[], byte[]> r) {
        try {
            Object count = ((java.util.Optional<?>) r.getClass().getMethod("deliveryCount").invoke(r)).orElse(null);
            return count == null ? -1 : ((Number) count).intValue();
        } catch (ReflectiveOperationException e) {
            return -1;
        }
    }

    private static KafkaShareConsumer<byte[], byte[]> consumer(String bootstrap, String group, String name,
            boolean explicit) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "5");
        props.put("share.acknowledgement.mode", explicit ? "explicit" : "implicit");
        return new KafkaShareConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    private static void produce(String bootstrap, Map<String, Integer> counts) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props, new ByteArraySerializer(),
                new ByteArraySerializer())) {
            for (Map.Entry<String, Integer> e : counts.entrySet()) {
                for (int i = 0; i < e.getValue(); i++) {
                    p.send(new ProducerRecord<>(e.getKey(), 0, null, ("v" + i).getBytes(StandardCharsets.UTF_8)));
                }
            }
            p.flush();
        }
    }

    /** {@code Admin.describeShareGroups} (4.x; by reflection, see {@link #deliveryCount}). */
    private static void describe(String bootstrap, String group) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(props)) {
            Method m = Admin.class.getMethod("describeShareGroups", Collection.class);
            Object result = m.invoke(admin, List.of(group));
            Object all = result.getClass().getMethod("all").invoke(result);
            Map<?, ?> groups = (Map<?, ?>) ((java.util.concurrent.Future<?>) all).get();
            Object d = groups.get(group);
            Collection<?> members = (Collection<?>) d.getClass().getMethod("members").invoke(d);
            Json.result(Json.obj("type", "described", "group", group, "members", members.size(), "state",
                String.valueOf(d.getClass().getMethod("groupState").invoke(d))));
        }
    }
}
