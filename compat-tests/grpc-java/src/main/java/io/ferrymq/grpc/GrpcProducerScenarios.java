package io.ferrymq.grpc;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.SendReceipt;
import org.apache.rocketmq.client.apis.producer.Transaction;
import org.apache.rocketmq.client.apis.producer.TransactionResolution;

/**
 * The RocketMQ 5.x Java producer against ferrymq's gRPC listener, every scenario in one JVM.
 *
 * <p>Args: endpoint normalTopic fifoTopic delayTopic txnTopic. Prints one {@code RESULT <json>} line
 * per send ({"type":"send","scenario":...,"body":...,"msgId":...}), one per transaction check
 * ({"type":"check","body":...}), then {"type":"done"}. The last transaction is never ended: the
 * broker's check reaches this JVM's checker, which commits it.
 */
public final class GrpcProducerScenarios {
    private static final ClientServiceProvider PROVIDER = ClientServiceProvider.loadService();

    private GrpcProducerScenarios() {
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    private static void sent(String scenario, String body, SendReceipt receipt) {
        System.out.println("RESULT {\"type\":\"send\",\"scenario\":" + quote(scenario) + ",\"body\":" + quote(body)
            + ",\"msgId\":" + quote(receipt.getMessageId().toString()) + "}");
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String endpoint = args[0];
        String normal = args[1];
        String fifo = args[2];
        String delay = args[3];
        String txn = args[4];
        CountDownLatch checked = new CountDownLatch(1);
        ClientConfiguration config = ClientConfiguration.newBuilder()
            .setEndpoints(endpoint)
            .enableSsl(false)
            .setRequestTimeout(Duration.ofSeconds(10))
            .build();
        try (Producer producer = PROVIDER.newProducerBuilder()
            .setClientConfiguration(config)
            .setTopics(normal, fifo, delay, txn)
            .setTransactionChecker(view -> {
                String body = StandardCharsets.UTF_8.decode(view.getBody()).toString();
                System.out.println("RESULT {\"type\":\"check\",\"body\":" + quote(body) + "}");
                System.out.flush();
                checked.countDown();
                return TransactionResolution.COMMIT;
            })
            .build()) {
            Message sync = PROVIDER.newMessageBuilder().setTopic(normal).setTag("TagA").setKeys("k1")
                .addProperty("color", "red").setBody("java-sync".getBytes(StandardCharsets.UTF_8)).build();
            sent("sync", "java-sync", producer.send(sync));
            Message async = PROVIDER.newMessageBuilder().setTopic(normal).setTag("TagB")
                .setBody("java-async".getBytes(StandardCharsets.UTF_8)).build();
            sent("async", "java-async", producer.sendAsync(async).get(15, TimeUnit.SECONDS));
            for (int i = 0; i < 3; i++) {
                Message m = PROVIDER.newMessageBuilder().setTopic(fifo).setMessageGroup("java-group")
                    .setBody(("fifo-" + i).getBytes(StandardCharsets.UTF_8)).build();
                sent("fifo", "fifo-" + i, producer.send(m));
            }
            Message later = PROVIDER.newMessageBuilder().setTopic(delay)
                .setDeliveryTimestamp(System.currentTimeMillis() + 2000)
                .setBody("java-later".getBytes(StandardCharsets.UTF_8)).build();
            sent("delay", "java-later", producer.send(later));
            Transaction committed = producer.beginTransaction();
            sent("txn", "java-committed", producer.send(PROVIDER.newMessageBuilder().setTopic(txn)
                .setBody("java-committed".getBytes(StandardCharsets.UTF_8)).build(), committed));
            committed.commit();
            Transaction rolledBack = producer.beginTransaction();
            sent("txn", "java-rolled-back", producer.send(PROVIDER.newMessageBuilder().setTopic(txn)
                .setBody("java-rolled-back".getBytes(StandardCharsets.UTF_8)).build(), rolledBack));
            rolledBack.rollback();
            Transaction open = producer.beginTransaction();
            sent("txn", "java-checked", producer.send(PROVIDER.newMessageBuilder().setTopic(txn)
                .setBody("java-checked".getBytes(StandardCharsets.UTF_8)).build(), open));
            if (!checked.await(30, TimeUnit.SECONDS)) {
                System.out.println("RESULT {\"type\":\"error\",\"reason\":\"no transaction check\"}");
            }
            Thread.sleep(500); // the checker's EndTransaction is sent after check() returns
        }
        System.out.println("RESULT {\"type\":\"done\"}");
        System.out.flush();
        System.exit(0);
    }
}
