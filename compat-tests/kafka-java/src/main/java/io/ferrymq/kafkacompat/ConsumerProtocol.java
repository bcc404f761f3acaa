package io.ferrymq.kafkacompat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * KIP-848 consumer groups ({@code group.protocol=consumer}) in one JVM run:
 *
 * <pre>
 *   kip848 BOOTSTRAP TOPIC PARTITIONS COUNT GROUP GROUP2
 * </pre>
 *
 * Produces COUNT records (record i to partition i % PARTITIONS). Phase "share": consumer c1 reads
 * a quarter alone, c2 joins and both read (commitSync after every poll) until half is read, the
 * Admin describes GROUP, c1 leaves, c2 reads the rest. Phase "upgrade", a rolling upgrade of GROUP2:
 * classic members k1 and k2 share the topic, k1 is restarted with group.protocol=consumer (k1n)
 * while k2 stays classic, then k2 is restarted likewise (k2n). Phase "downgrade", the way back, in
 * GROUP2-down: a consumer-protocol member d1 and a classic member d2 share the topic, d1 leaves, the
 * group turns classic again and d2 owns every partition from the committed offsets. Each record
 * read is a {@code record} result with its phase, consumer, partition and offset.
 */
final class ConsumerProtocol {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final Duration POLL = Duration.ofMillis(100);

    private ConsumerProtocol() {
    }

    static void run(String bootstrap, String topic, int partitions, int count, String group, String group2)
            throws Exception {
        produce(bootstrap, topic, partitions, count);
        int[] seen = {0};
        try (KafkaConsumer<byte[], byte[]> c2 = consumer(bootstrap, group, "consumer", "c2")) {
            try (KafkaConsumer<byte[], byte[]> c1 = consumer(bootstrap, group, "consumer", "c1")) {
                c1.subscribe(List.of(topic));
                long deadline = System.nanoTime() + WAIT.toNanos();
                while (seen[0] < count / 4 && System.nanoTime() < deadline) {
                    poll(c1, "share", "c1", seen);
                }
                c2.subscribe(List.of(topic));
                while ((seen[0] < count / 2 || c2.assignment().isEmpty()) && System.nanoTime() < deadline) {
                    poll(c1, "share", "c1", seen);
                    poll(c2, "share", "c2", seen);
                }
                Json.result(Json.obj("type", "assigned", "c1", partitionsOf(c1.assignment()), "c2",
                    partitionsOf(c2.assignment())));
                describe(bootstrap, group);
            }
            long deadline = System.nanoTime() + WAIT.toNanos();
            while ((seen[0] < count || c2.assignment().size() < partitions) && System.nanoTime() < deadline) {
                poll(c2, "share", "c2", seen);
            }
            Json.result(Json.obj("type", "after-leave", "c2", partitionsOf(c2.assignment())));
        }
        // a rolling upgrade: two classic members; k1 is restarted with the new protocol while k2 stays
        // classic (the group becomes a consumer group holding a classic member), then k2 too
        int[] upgraded = {0};
        long deadline = System.nanoTime() + WAIT.toNanos();
        KafkaConsumer<byte[], byte[]> k2 = consumer(bootstrap, group2, "classic", "k2");
        try {
            try (KafkaConsumer<byte[], byte[]> k1 = consumer(bootstrap, group2, "classic", "k1")) {
                k1.subscribe(List.of(topic));
                k2.subscribe(List.of(topic));
                while ((upgraded[0] < count / 4 || k1.assignment().isEmpty() || k2.assignment().isEmpty())
                        && System.nanoTime() < deadline) {
                    poll(k1, "upgrade", "k1", upgraded);
                    poll(k2, "upgrade", "k2", upgraded);
                }
            }
            try (KafkaConsumer<byte[], byte[]> k1 = consumer(bootstrap, group2, "consumer", "k1n")) {
                k1.subscribe(List.of(topic));
                while ((upgraded[0] < count / 2 || k1.assignment().isEmpty() || k2.assignment().isEmpty())
                        && System.nanoTime() < deadline) {
                    poll(k1, "upgrade", "k1n", upgraded);
                    poll(k2, "upgrade", "k2", upgraded);
                }
                Json.result(Json.obj("type", "mixed", "k1n", partitionsOf(k1.assignment()), "k2",
                    partitionsOf(k2.assignment())));
                k2.close();
                k2 = consumer(bootstrap, group2, "consumer", "k2n");
                k2.subscribe(List.of(topic));
                while ((upgraded[0] < count || k2.assignment().isEmpty()) && System.nanoTime() < deadline) {
                    poll(k1, "upgrade", "k1n", upgraded);
                    poll(k2, "upgrade", "k2n", upgraded);
                }
                Json.result(Json.obj("type", "upgraded", "k1n", partitionsOf(k1.assignment()), "k2n",
                    partitionsOf(k2.assignment())));
            }
        } finally {
            k2.close();
        }
        downgrade(bootstrap, topic, partitions, count, group2 + "-down");
    }

    private static void downgrade(String bootstrap, String topic, int partitions, int count, String group)
            throws Exception {
        int[] seen = {0};
        long deadline = System.nanoTime() + WAIT.toNanos();
        try (KafkaConsumer<byte[], byte[]> d2 = consumer(bootstrap, group, "classic", "d2")) {
            try (KafkaConsumer<byte[], byte[]> d1 = consumer(bootstrap, group, "consumer", "d1")) {
                d1.subscribe(List.of(topic));
                while (seen[0] < count / 4 && System.nanoTime() < deadline) {
                    poll(d1, "downgrade", "d1", seen);
                }
                d2.subscribe(List.of(topic));
                while ((seen[0] < count / 2 || d1.assignment().isEmpty() || d2.assignment().isEmpty())
                        && System.nanoTime() < deadline) {
                    poll(d1, "downgrade", "d1", seen);
                    poll(d2, "downgrade", "d2", seen);
                }
                Json.result(Json.obj("type", "before-downgrade", "d1", partitionsOf(d1.assignment()), "d2",
                    partitionsOf(d2.assignment())));
            }
            while ((seen[0] < count || d2.assignment().size() < partitions) && System.nanoTime() < deadline) {
                poll(d2, "downgrade", "d2", seen);
            }
            Json.result(Json.obj("type", "downgraded", "d2", partitionsOf(d2.assignment())));
            describe(bootstrap, group);
        }
    }

    private static void produce(String bootstrap, String topic, int partitions, int count) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(topic, i % partitions, null,
                    ("value-" + i).getBytes(StandardCharsets.UTF_8)));
            }
            producer.flush();
        }
    }

    private static KafkaConsumer<byte[], byte[]> consumer(String bootstrap, String group, String protocol,
            String name) {
        Properties props = KafkaCompat.consumerProps(bootstrap, group);
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "5");
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
        props.put("group.protocol", protocol);
        if (protocol.equals("classic")) {
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "200"); // it learns of rebalances by heartbeat
        }
        return new KafkaConsumer<>(props);
    }

    /** One poll; what it returned is printed and committed before the next poll. */
    private static void poll(KafkaConsumer<byte[], byte[]> consumer, String phase, String name, int[] seen) {
        int n = 0;
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(POLL)) {
            Json.result(Json.obj("type", "record", "phase", phase, "consumer", name, "partition", r.partition(),
                "offset", r.offset(), "value", new String(r.value(), StandardCharsets.UTF_8)));
            n++;
        }
        if (n > 0) {
            consumer.commitSync();
            seen[0] += n;
        }
    }

    private static List<Integer> partitionsOf(Set<TopicPartition> assignment) {
        List<Integer> out = new ArrayList<>();
        for (TopicPartition tp : assignment) {
            out.add(tp.partition());
        }
        out.sort(null);
        return out;
    }

    private static void describe(String bootstrap, String group) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(props)) {
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            Json.result(Json.obj("type", "described", "group", d.groupId(), "groupType", String.valueOf(d.type()),
                "members", d.members().size(), "assignor", d.partitionAssignor()));
        }
    }
}
