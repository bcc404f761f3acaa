package io.ferrymq.compat;

import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;
import org.apache.rocketmq.acl.common.AclClientRPCHook;
import org.apache.rocketmq.acl.common.SessionCredentials;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.remoting.RPCHook;

/**
 * RocketMQ ACL 1.0 signing with the unmodified Java client's AclClientRPCHook, four scenarios in one JVM.
 *
 * <pre>
 * AclClients NAMESRV TOPIC DENIED_TOPIC ACCESS_KEY SECRET_KEY [--timeout-ms N]
 * </pre>
 *
 * allowed: a signed DefaultMQProducer sends "acl-ok" to TOPIC. read: a signed DefaultLitePullConsumer (group
 * acl-java-reader) reads TOPIC from the first offset until "acl-ok" arrives. denied: the producer sends to
 * DENIED_TOPIC. wrongSignature: a producer signing with SECRET_KEY + "x" sends to TOPIC.
 *
 * Lines: {@code RESULT {"type":"send","scenario","status"}} or {@code {"type":"sendFailed","scenario","code",
 * "remark"}} per send, {@code {"type":"read","scenario":"read","found"}}.
 */
public final class AclClients {
    static final String USAGE = "AclClients NAMESRV TOPIC DENIED_TOPIC ACCESS_KEY SECRET_KEY [--timeout-ms N]";

    private AclClients() {
    }

    public static void main(String[] args) {
        Common.main(args, USAGE, 5, 30_000, (cli, timeoutMs) -> {
            String namesrv = cli.pos(0);
            RPCHook good = new AclClientRPCHook(new SessionCredentials(cli.pos(3), cli.pos(4)));
            RPCHook bad = new AclClientRPCHook(new SessionCredentials(cli.pos(3), cli.pos(4) + "x"));
            send("allowed", namesrv, good, cli.pos(1));
            boolean found = read(namesrv, good, cli.pos(1), timeoutMs);
            Out.result(Common.fields("type", "read", "scenario", "read", "found", found));
            send("denied", namesrv, good, cli.pos(2));
            send("wrongSignature", namesrv, bad, cli.pos(1));
            return 0;
        });
    }

    private static void send(String scenario, String namesrv, RPCHook hook, String topic) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer("acl-java-" + scenario, hook);
        Common.configure(producer, namesrv, "acl-" + scenario);
        producer.setRetryTimesWhenSendFailed(0);
        producer.start();
        try {
            SendResult r = producer.send(new Message(topic, "acl-ok".getBytes(StandardCharsets.UTF_8)));
            Out.result(Common.fields("type", "send", "scenario", scenario, "status", r.getSendStatus().name()));
        } catch (MQClientException e) {
            // a retryable broker code (NO_PERMISSION is one) comes wrapped once the retries are spent
            if (!(e.getCause() instanceof MQBrokerException)) {
                throw e;
            }
            MQBrokerException b = (MQBrokerException) e.getCause();
            Out.result(Common.fields("type", "sendFailed", "scenario", scenario, "code", b.getResponseCode(),
                "remark", String.valueOf(b.getErrorMessage())));
        } finally {
            producer.shutdown();
        }
    }

    private static boolean read(String namesrv, RPCHook hook, String topic, long timeoutMs) throws Exception {
        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer("acl-java-reader", hook);
        Common.configure(consumer, namesrv, "acl-read");
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.start();
        try {
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (System.currentTimeMillis() < deadline) {
                List<MessageExt> got = consumer.poll(1000);
                for (MessageExt m : got == null ? Collections.<MessageExt>emptyList() : got) {
                    if ("acl-ok".equals(new String(m.getBody(), StandardCharsets.UTF_8))) {
                        return true;
                    }
                }
            }
            return false;
        } finally {
            consumer.shutdown();
        }
    }
}
