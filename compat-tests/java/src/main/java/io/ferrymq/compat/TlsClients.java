package io.ferrymq.compat;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * TLS with the unmodified client: ClientConfig.setUseTLS(true) and the tls.client.* system properties
 * (-Dtls.client.trustCertPath=..., -Dtls.test.mode.enable=false so the server certificate is checked).
 *
 * <pre>
 * TlsClients NAMESRV TOPIC COUNT [--timeout-ms N]
 * </pre>
 *
 * Sends COUNT messages over TLS ({"type":"send","status"} each), reads them back over TLS with a
 * lite-pull consumer ({"type":"read","body"} each), then tries one plaintext send to the same broker
 * ({"type":"plaintext","ok":false,"error":...} when it is refused).
 */
public final class TlsClients {
    static final String USAGE = "TlsClients NAMESRV TOPIC COUNT [--timeout-ms N]";

    private TlsClients() {
    }

    public static void main(String[] args) {
        Common.main(args, USAGE, 3, 60_000, TlsClients::run);
    }

    static int run(Cli cli, long timeoutMs) throws Exception {
        String namesrv = cli.pos(0);
        String topic = cli.pos(1);
        int count = Integer.parseInt(cli.pos(2));
        DefaultMQProducer producer = new DefaultMQProducer("pg-tls-java");
        Common.configure(producer, namesrv, "tls-producer");
        producer.setUseTLS(true);
        producer.setSendMsgTimeout(15_000);
        producer.start();
        try {
            for (int i = 0; i < count; i++) {
                SendResult r = producer.send(new Message(topic, ("tls-" + i).getBytes(StandardCharsets.UTF_8)));
                Out.result(Map.of("type", "send", "status", r.getSendStatus().name()));
            }
        } finally {
            producer.shutdown();
        }
        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer("cg-tls-java");
        Common.configure(consumer, namesrv, "tls-consumer");
        consumer.setUseTLS(true);
        consumer.setConsumeFromWhere(org.apache.rocketmq.common.consumer.ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.start();
        int got = 0;
        long deadline = System.currentTimeMillis() + timeoutMs;
        try {
            while (got < count && System.currentTimeMillis() < deadline) {
                List<MessageExt> batch = consumer.poll(1000);
                for (MessageExt m : batch) {
                    Out.result(Map.of("type", "read", "body", new String(m.getBody(), StandardCharsets.UTF_8)));
                    got++;
                }
            }
        } finally {
            consumer.shutdown();
        }
        DefaultMQProducer plain = new DefaultMQProducer("pg-plain-java");
        Common.configure(plain, namesrv, "plain-producer");
        plain.setSendMsgTimeout(5_000);
        plain.setRetryTimesWhenSendFailed(0);
        plain.start();
        try {
            plain.send(new Message(topic, "plaintext".getBytes(StandardCharsets.UTF_8)));
            Out.result(Map.of("type", "plaintext", "ok", true));
        } catch (Exception e) {
            Out.result(Map.of("type", "plaintext", "ok", false, "error", String.valueOf(e.getMessage())));
        } finally {
            plain.shutdown();
        }
        return got == count ? 0 : Common.EXIT_INCOMPLETE;
    }
}
