package io.ferrymq.compat;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageRequestMode;

/**
 * POP consumption with the unmodified Java push consumer, in one JVM.
 *
 * <pre>
 * PopConsume NAMESRV BROKER_ADDR TOPIC GROUP [--timeout-ms N]
 * </pre>
 *
 * A producer sets the group's mode for TOPIC to POP with SET_MESSAGE_REQUEST_MODE (the client API
 * mqadmin setConsumeMode calls) and sends "ok-0", "ok-1" and "fail". A DefaultMQPushConsumer with
 * clientRebalance=false (so it asks the broker with QUERY_ASSIGNMENT and pops) consumes: "fail"
 * returns RECONSUME_LATER the first time (the client changes its invisible time, 10 s), and
 * success when it comes back. Lines: {@code {"type":"msg","body","reconsumeTimes","queueOffset",
 * "popCk"}} per delivery, then {@code {"type":"done","complete"}}.
 */
public final class PopConsume {
    static final String USAGE = "PopConsume NAMESRV BROKER_ADDR TOPIC GROUP [--timeout-ms N]";

    private PopConsume() {
    }

    public static void main(String[] args) {
        System.setProperty("rocketmq.client.rebalance.waitInterval", "1000");
        Common.main(args, USAGE, 4, 40_000, PopConsume::run);
    }

    private static int run(Cli cli, long timeoutMs) throws Exception {
        String namesrv = cli.pos(0);
        String brokerAddr = cli.pos(1);
        String topic = cli.pos(2);
        String group = cli.pos(3);
        DefaultMQProducer producer = new DefaultMQProducer("pop-java-producer");
        Common.configure(producer, namesrv, "pop-producer");
        producer.start();
        try {
            producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl()
                .setMessageRequestMode(brokerAddr, topic, group, MessageRequestMode.POP, 0, 5000);
            for (String body : new String[] {"ok-0", "ok-1", "fail"}) {
                SendResult r = producer.send(new Message(topic, "t", body.getBytes(StandardCharsets.UTF_8)));
                if (r.getSendStatus() != SendStatus.SEND_OK) {
                    throw new IllegalStateException("send failed: " + r);
                }
            }
        } finally {
            producer.shutdown();
        }
        CountDownLatch done = new CountDownLatch(3);
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        Common.configure(consumer, namesrv, "pop-consumer");
        consumer.setClientRebalance(false);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.setPopInvisibleTime(5000);
        consumer.setHeartbeatBrokerInterval(1000);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            ConsumeConcurrentlyStatus status = ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            for (MessageExt msg : msgs) {
                String body = new String(msg.getBody(), StandardCharsets.UTF_8);
                Out.result(Common.fields("type", "msg", "body", body, "reconsumeTimes", msg.getReconsumeTimes(),
                    "queueOffset", msg.getQueueOffset(), "popCk", msg.getProperty(MessageConst.PROPERTY_POP_CK)));
                if ("fail".equals(body) && msg.getReconsumeTimes() == 0) {
                    status = ConsumeConcurrentlyStatus.RECONSUME_LATER;
                } else {
                    done.countDown();
                }
            }
            return status;
        });
        consumer.start();
        boolean complete;
        try {
            complete = done.await(timeoutMs, TimeUnit.MILLISECONDS);
            Thread.sleep(500); // the last ack leaves the client
        } finally {
            consumer.shutdown();
        }
        Out.result(Common.fields("type", "done", "complete", complete));
        return complete ? 0 : 2;
    }
}
