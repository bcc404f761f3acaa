package io.ferrymq.kafkacompat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * {@code sasl PREFIX USER PASSWORD CA_PEM PROTOCOL@HOST:PORT...}: every SASL mechanism (PLAIN,
 * SCRAM-SHA-256, SCRAM-SHA-512) over every listener given (SASL_PLAINTEXT, SASL_SSL), in one JVM because
 * JVMs are dear on a small machine. Per case the default (idempotent) producer sends one record to
 * partition 0 of {@code PREFIX-mechanism-protocol} (lower case, '_' as '-') and a consumer without a group
 * reads it back by assignment. SASL_SSL trusts CA_PEM as a PEM truststore (ssl.truststore.type=PEM), host
 * names checked as by default. One {@code sasl} result per case, {@code ok} false with the error when the
 * client threw: a failure does not hide the other cases.
 */
final class SaslMatrix {
    private static final String[] MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    private static final Duration WAIT = Duration.ofSeconds(15);

    private SaslMatrix() {
    }

    static void run(String prefix, String user, String password, String caPem, List<String> listeners) {
        for (String listener : listeners) {
            int at = listener.indexOf('@');
            String protocol = listener.substring(0, at);
            for (String mechanism : MECHANISMS) {
                String topic = (prefix + "-" + mechanism + "-" + protocol).toLowerCase(Locale.ROOT).replace('_', '-');
                Properties props = new Properties();
                props.put("bootstrap.servers", listener.substring(at + 1));
                props.put("security.protocol", protocol);
                props.put("sasl.mechanism", mechanism);
                props.put("sasl.jaas.config", jaas(mechanism, user, password));
                if (protocol.endsWith("SSL")) {
                    props.put("ssl.truststore.type", "PEM");
                    props.put("ssl.truststore.location", caPem);
                }
                try {
                    String value = "java " + mechanism + " " + protocol;
                    long offset = produce(props, topic, value);
                    String got = readBack(props, topic, offset);
                    Json.result(Json.obj("type", "sasl", "protocol", protocol, "mechanism", mechanism, "ok",
                        value.equals(got), "offset", offset, "value", got));
                } catch (Exception e) {
                    e.printStackTrace();
                    Json.result(Json.obj("type", "sasl", "protocol", protocol, "mechanism", mechanism, "ok", false,
                        "error", String.valueOf(e)));
                }
            }
        }
    }

    private static String jaas(String mechanism, String user, String password) {
        String module = mechanism.equals("PLAIN")
            ? "org.apache.kafka.common.security.plain.PlainLoginModule"
            : "org.apache.kafka.common.security.scram.ScramLoginModule";
        return module + " required username=\"" + user + "\" password=\"" + password + "\";";
    }

    private static long produce(Properties base, String topic, String value) throws Exception {
        Properties props = new Properties();
        props.putAll(base);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Long.toString(WAIT.toMillis()));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            RecordMetadata md = producer.send(
                new ProducerRecord<>(topic, 0, null, value.getBytes(StandardCharsets.UTF_8))).get();
            return md.offset();
        }
    }

    /** The record at OFFSET of partition 0, read with assign + seek (null when none came within WAIT). */
    private static String readBack(Properties base, String topic, long offset) {
        Properties props = KafkaCompat.consumerProps(base.getProperty("bootstrap.servers"), null);
        props.putAll(base);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, offset);
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    return new String(r.value(), StandardCharsets.UTF_8);
                }
            }
        }
        return null;
    }
}
