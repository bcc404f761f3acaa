package io.ferrymq.kafkacompat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Drives Apache Kafka's own client (kafka-clients, unmodified, default settings unless noted)
 * against a bootstrap address and prints one {@code RESULT <json>} line per observation.
 *
 * <pre>
 *   produce BOOTSTRAP TOPIC COUNT PARTITIONS [TAG]   record i: partition i % PARTITIONS, key "key-i",
 *                                                    value "value-i", headers n=i (and rocketmq.tags=TAG)
 *   consume BOOTSTRAP TOPIC GROUP COUNT              subscribe in GROUP, poll COUNT records, commitSync
 *   read BOOTSTRAP TOPIC PARTITION OFFSET COUNT      assign + seek, no group
 *   admin BOOTSTRAP TOPIC GROUP                      createTopics, describeTopics, a member in GROUP,
 *                                                    listConsumerGroups, describeConsumerGroups, deleteTopics
 *   times BOOTSTRAP TOPIC PARTITION TIMESTAMP        offsetsForTimes, then the record found there
 *   ctp BOOTSTRAP IN OUT GROUP TXID COUNT            consume-transform-produce: a read_committed consumer in
 *                                                    GROUP, a producer with transactional.id TXID; per poll one
 *                                                    transaction: "t-"+value to OUT and sendOffsetsToTransaction;
 *                                                    one transaction aborted first (its output and offsets dropped)
 *   kip848 BOOTSTRAP TOPIC PARTITIONS COUNT G G2     group.protocol=consumer: two members share, one leaves; a
 *                                                    classic member restarted as a consumer one (ConsumerProtocol)
 *   sasl PREFIX USER PASSWORD CA_PEM PROTOCOL@HOST:PORT...   PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over each
 *                                                    SASL listener: one record produced and read back (SaslMatrix)
 * </pre>
 *
 * Arguments of the form {@code name=value} anywhere are client settings added to the defaults
 * (e.g. {@code compression.type=zstd}). Exits 0 when the command completed, 1 (stack trace on stderr) when the client threw.
 */
public final class KafkaCompat {
    private static final Duration WAIT = Duration.ofSeconds(30);

    private KafkaCompat() {
    }

    /** Client settings given on the command line as name=value. */
    private static final Properties EXTRA = new Properties();

    public static void main(String[] argv) throws Exception {
        List<String> positional = new ArrayList<>();
        for (String arg : argv) {
            int eq = arg.indexOf('=');
            if (eq > 0) {
                EXTRA.put(arg.substring(0, eq), arg.substring(eq + 1));
            } else {
                positional.add(arg);
            }
        }
        String[] args = positional.toArray(new String[0]);
        if (args.length < 2) {
            System.err.println("usage: KafkaCompat produce|consume|read|admin BOOTSTRAP ...");
            System.exit(2);
        }
        try {
            switch (args[0]) {
                case "produce" -> produce(args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]),
                    args.length > 5 ? args[5] : null);
                case "consume" -> consume(args[1], args[2], args[3], Integer.parseInt(args[4]));
                case "read" -> read(args[1], args[2], Integer.parseInt(args[3]), Long.parseLong(args[4]),
                    Integer.parseInt(args[5]));
                case "admin" -> admin(args[1], args[2], args[3]);
                case "apis" -> AdminApis.run(args[1], args[2], EXTRA);
                case "times" -> times(args[1], args[2], Integer.parseInt(args[3]), Long.parseLong(args[4]));
                case "ctp" -> consumeTransformProduce(args[1], args[2], args[3], args[4], args[5],
                    Integer.parseInt(args[6]));
                case "kip848" -> ConsumerProtocol.run(args[1], args[2], Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]), args[5], args[6]);
                case "share" -> ShareGroups.run(args[1], args[2], Integer.parseInt(args[3]));
                case "sasl" -> SaslMatrix.run(args[1], args[2], args[3], args[4],
                    List.of(args).subList(5, args.length));
                default -> throw new IllegalArgumentException("unknown command " + args[0]);
            }
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(1);
        }
        Json.result(Json.obj("type", "done", "client", clientVersion()));
    }

    /** kafka-clients' own version (the resource its AppInfoParser reads; that class moved in 4.0). */
    private static String clientVersion() throws IOException {
        Properties props = new Properties();
        try (InputStream in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) {
                props.load(in);
            }
        }
        return props.getProperty("version", "unknown");
    }

    private static String text(byte[] bytes) {
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }

    /** The default producer (idempotent since 3.0): only the address and serializers are set. */
    static void produce(String bootstrap, String topic, int count, int partitions, String tag) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.putAll(EXTRA);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                ProducerRecord<byte[], byte[]> record = new ProducerRecord<>(topic, i % partitions,
                    ("key-" + i).getBytes(StandardCharsets.UTF_8), ("value-" + i).getBytes(StandardCharsets.UTF_8));
                record.headers().add("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                if (tag != null) {
                    record.headers().add("rocketmq.tags", tag.getBytes(StandardCharsets.UTF_8));
                }
                sent.add(producer.send(record));
            }
            producer.flush();
            for (int i = 0; i < count; i++) {
                RecordMetadata md = sent.get(i).get();
                Json.result(Json.obj("type", "send", "index", i, "partition", md.partition(), "offset", md.offset(),
                    "timestamp", md.timestamp()));
            }
        }
    }

    static Properties consumerProps(String bootstrap, String group) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.CLIENT_ID_CONFIG, group + "-member");
        }
        props.putAll(EXTRA);
        return props;
    }

    private static void printRecord(ConsumerRecord<byte[], byte[]> r) {
        Map<String, Object> headers = new LinkedHashMap<>();
        for (Header h : r.headers()) {
            headers.put(h.key(), text(h.value()));
        }
        Json.result(Json.obj("type", "record", "partition", r.partition(), "offset", r.offset(), "key", text(r.key()),
            "value", text(r.value()), "headers", headers, "timestamp", r.timestamp()));
    }

    /** Reads exactly COUNT records in GROUP and commits the offset after each one read (commitSync). */
    static void consume(String bootstrap, String topic, String group, int count) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProps(bootstrap, group))) {
            consumer.subscribe(List.of(topic));
            Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
            long deadline = System.nanoTime() + WAIT.toNanos();
            int got = 0;
            while (got < count && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (got == count) {
                        break; // read but not processed: not committed, the next run gets it
                    }
                    printRecord(r);
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    got++;
                }
            }
            consumer.commitSync(next);
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : consumer.committed(next.keySet()).entrySet()) {
                Json.result(Json.obj("type", "committed", "partition", e.getKey().partition(), "offset",
                    e.getValue() == null ? null : e.getValue().offset()));
            }
        }
    }

    /**
     * The exactly-once loop: each poll's records become one transaction that writes "t-" + value to OUT
     * and commits the consumer's offsets with sendOffsetsToTransaction (KIP-447: the group metadata).
     * The first poll's transaction is aborted once, then its records are processed again from the
     * last committed offsets, so only committed output and offsets remain.
     */
    static void consumeTransformProduce(String bootstrap, String in, String out, String group, String txid,
            int count) {
        Properties cprops = consumerProps(bootstrap, group);
        cprops.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        Properties pprops = new Properties();
        pprops.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pprops.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pprops.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pprops.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cprops);
             KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pprops)) {
            producer.initTransactions();
            consumer.subscribe(List.of(in));
            boolean aborted = false;
            int done = 0;
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (done < count && System.nanoTime() < deadline) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
                if (records.isEmpty()) {
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                producer.beginTransaction();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    producer.send(new ProducerRecord<>(out, r.key(), ("t-" + text(r.value())).getBytes(
                        StandardCharsets.UTF_8)));
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(next, consumer.groupMetadata());
                if (!aborted) {
                    producer.abortTransaction();
                    aborted = true;
                    Json.result(Json.obj("type", "aborted", "records", records.count()));
                    for (TopicPartition tp : records.partitions()) { // back to the last committed offsets
                        OffsetAndMetadata c = consumer.committed(java.util.Set.of(tp)).get(tp);
                        consumer.seek(tp, c == null ? 0 : c.offset());
                    }
                    continue;
                }
                producer.commitTransaction();
                done += records.count();
                Json.result(Json.obj("type", "txn", "records", records.count()));
            }
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e
                    : consumer.committed(consumer.assignment()).entrySet()) {
                Json.result(Json.obj("type", "committed", "partition", e.getKey().partition(), "offset",
                    e.getValue() == null ? null : e.getValue().offset()));
            }
        }
    }

    static void read(String bootstrap, String topic, int partition, long offset, int count) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProps(bootstrap, null))) {
            read(consumer, new TopicPartition(topic, partition), offset, count);
        }
    }

    private static void read(KafkaConsumer<byte[], byte[]> consumer, TopicPartition tp, long offset, int count) {
        consumer.assign(List.of(tp));
        consumer.seek(tp, offset);
        long deadline = System.nanoTime() + WAIT.toNanos();
        int got = 0;
        while (got < count && System.nanoTime() < deadline) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                if (got++ < count) {
                    printRecord(r);
                }
            }
        }
    }

    /** Seek by timestamp: the offset offsetsForTimes finds, and the record read from there. */
    static void times(String bootstrap, String topic, int partition, long timestamp) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProps(bootstrap, null))) {
            TopicPartition tp = new TopicPartition(topic, partition);
            OffsetAndTimestamp found = consumer.offsetsForTimes(Map.of(tp, timestamp)).get(tp);
            Json.result(Json.obj("type", "found", "offset", found == null ? null : found.offset(),
                "timestamp", found == null ? null : found.timestamp()));
            if (found != null) {
                read(consumer, tp, found.offset(), 1);
            }
        }
    }

    static void admin(String bootstrap, String topic, String group) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.putAll(EXTRA);
        try (Admin admin = Admin.create(props)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
            Json.result(Json.obj("type", "created", "topic", topic));

            TopicDescription td = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            List<Object> parts = new ArrayList<>();
            for (TopicPartitionInfo p : td.partitions()) {
                parts.add(Json.obj("partition", p.partition(), "leader", p.leader() == null ? null : p.leader().id(),
                    "replicas", p.replicas().size()));
            }
            Json.result(Json.obj("type", "described", "topic", td.name(), "internal", td.isInternal(),
                "partitions", parts));

            try (KafkaConsumer<byte[], byte[]> member = new KafkaConsumer<>(consumerProps(bootstrap, group))) {
                member.subscribe(List.of(topic));
                long deadline = System.nanoTime() + WAIT.toNanos();
                while (member.assignment().size() < 3 && System.nanoTime() < deadline) {
                    member.poll(Duration.ofMillis(100));
                }
                List<Object> groups = new ArrayList<>();
                for (ConsumerGroupListing g : admin.listConsumerGroups().all().get()) {
                    groups.add(Json.obj("group", g.groupId(), "simple", g.isSimpleConsumerGroup()));
                }
                Json.result(Json.obj("type", "groups", "groups", groups));

                ConsumerGroupDescription gd = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                List<Object> members = new ArrayList<>();
                for (MemberDescription m : gd.members()) {
                    List<Object> assigned = new ArrayList<>();
                    for (TopicPartition tp : m.assignment().topicPartitions()) {
                        assigned.add(tp.partition());
                    }
                    members.add(Json.obj("client", m.clientId(), "partitions", assigned));
                }
                Json.result(Json.obj("type", "group", "group", gd.groupId(), "state", String.valueOf(gd.state()),
                    "simple", gd.isSimpleConsumerGroup(), "assignor", gd.partitionAssignor(), "members", members));
            }

            admin.deleteTopics(List.of(topic)).all().get();
            Json.result(Json.obj("type", "deleted", "topic", topic,
                "listed", admin.listTopics().names().get().contains(topic)));
        }
    }
}
