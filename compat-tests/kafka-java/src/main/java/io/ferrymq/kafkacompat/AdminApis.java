package io.ferrymq.kafkacompat;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Admin calls of Kafka 3.8-4.x brokers, in one run: describeTopics by name (DescribeTopicPartitions on
 * 4.x) and by topic id (Metadata with ids), describeLogDirs, describeProducers (after an idempotent
 * producer wrote), electLeaders and listPartitionReassignments; each answer printed as a RESULT line.
 */
final class AdminApis {
    private AdminApis() {
    }

    static void run(String bootstrap, String topic, Properties extra) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.putAll(extra);
        try (Admin admin = Admin.create(props)) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get();
            produceOne(bootstrap, topic, extra);
            TopicPartition tp0 = new TopicPartition(topic, 0);

            TopicDescription td = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            Uuid id = td.topicId();
            TopicDescription byId = admin.describeTopics(TopicCollection.ofTopicIds(List.of(id)))
                .allTopicIds().get().get(id);
            Json.result(Json.obj("type", "topic", "id", id.toString(), "partitions", td.partitions().size(),
                "byIdName", byId.name(), "byIdPartitions", byId.partitions().size()));

            int node = td.partitions().get(0).leader().id();
            Map<Integer, Map<String, LogDirDescription>> dirs =
                admin.describeLogDirs(List.of(node)).allDescriptions().get();
            for (Map.Entry<String, LogDirDescription> dir : dirs.get(node).entrySet()) {
                for (Map.Entry<TopicPartition, ReplicaInfo> r : dir.getValue().replicaInfos().entrySet()) {
                    if (r.getKey().topic().equals(topic)) {
                        Json.result(Json.obj("type", "logdir", "dir", dir.getKey(), "partition",
                            r.getKey().partition(), "size", r.getValue().size()));
                    }
                }
            }

            for (ProducerState s : admin.describeProducers(List.of(tp0)).partitionResult(tp0).get()
                    .activeProducers()) {
                Json.result(Json.obj("type", "producer", "id", s.producerId(), "epoch", s.producerEpoch(),
                    "lastSequence", s.lastSequence()));
            }

            Map<TopicPartition, Optional<Throwable>> elected =
                admin.electLeaders(ElectionType.PREFERRED, Set.of(tp0)).partitions().get();
            Optional<Throwable> error = elected.get(tp0);
            Json.result(Json.obj("type", "elect", "error",
                error.map(e -> e.getClass().getSimpleName()).orElse(null)));

            Map<TopicPartition, PartitionReassignment> moving =
                admin.listPartitionReassignments().reassignments().get();
            Json.result(Json.obj("type", "reassignments", "count", moving.size()));
            admin.deleteTopics(List.of(topic)).all().get();
        }
    }

    private static void produceOne(String bootstrap, String topic, Properties extra) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.putAll(extra);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.send(new ProducerRecord<>(topic, 0, null, "v".getBytes(StandardCharsets.UTF_8))).get();
        }
    }
}
