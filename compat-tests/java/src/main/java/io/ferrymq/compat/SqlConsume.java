package io.ferrymq.compat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.MessageSelector;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * SQL92 subscriptions (MessageSelector.bySql) with the unmodified Java consumers, three scenarios in one JVM.
 *
 * <pre>
 * SqlConsume NAMESRV PUSH_TOPIC LITE_TOPIC BAD_TOPIC SQL [--timeout-ms N]
 * </pre>
 *
 * push: a DefaultMQPushConsumer (group sql-java-push, from the first offset) subscribed to PUSH_TOPIC by SQL
 * reads until a message with body "last" arrives. lite: the same with a DefaultLitePullConsumer (group
 * sql-java-lite) on LITE_TOPIC. bad: a push consumer subscribed to BAD_TOPIC with the malformed "a &gt;", whose
 * start() must fail (CHECK_CLIENT_CONFIG).
 *
 * Lines: {@code RESULT {"type":"msg","scenario":...,...}} per message (Common.describeReceived), then
 * {@code {"type":"done","scenario","complete"}} per reading scenario, and {@code {"type":"startFailed",
 * "scenario":"bad","code","error"}} or {@code {"type":"started","scenario":"bad"}}.
 */
public final class SqlConsume {
    static final String USAGE = "SqlConsume NAMESRV PUSH_TOPIC LITE_TOPIC BAD_TOPIC SQL [--timeout-ms N]";
    static final String LAST = "last";

    private SqlConsume() {
    }

    public static void main(String[] args) {
        Common.initLogging();
        Cli cli;
        try {
            cli = new Cli(args, USAGE, 5);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(Common.EXIT_ERROR);
            return;
        }
        long timeoutMs = cli.optLong("timeout-ms", 30_000);
        Common.startWatchdog(3 * timeoutMs + 30_000);
        int code = 0;
        try {
            code |= push(cli.pos(0), cli.pos(1), cli.pos(4), timeoutMs) ? 0 : 2;
            code |= lite(cli.pos(0), cli.pos(2), cli.pos(4), timeoutMs) ? 0 : 2;
            bad(cli.pos(0), cli.pos(3));
        } catch (Throwable t) {
            Common.error("SqlConsume failed", t);
            code = Common.EXIT_ERROR;
        }
        System.out.flush();
        System.exit(code);
    }

    private static void emit(String scenario, MessageExt msg) {
        var m = Common.describeReceived(msg);
        m.put("scenario", scenario);
        Out.result(m);
    }

    private static boolean push(String namesrv, String topic, String sql, long timeoutMs) throws Exception {
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer("sql-java-push");
        Common.configure(consumer, namesrv, "sql-push");
        consumer.setHeartbeatBrokerInterval(1000);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, MessageSelector.bySql(sql));
        List<MessageExt> got = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch last = new CountDownLatch(1);
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt msg : msgs) {
                got.add(msg);
                if (LAST.equals(new String(msg.getBody()))) {
                    last.countDown();
                }
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        boolean complete;
        try {
            complete = last.await(timeoutMs, TimeUnit.MILLISECONDS);
        } finally {
            consumer.shutdown();
        }
        synchronized (got) {
            got.sort((a, b) -> Long.compare(a.getQueueOffset(), b.getQueueOffset()));
            for (MessageExt msg : got) {
                emit("push", msg);
            }
        }
        Out.result(Common.fields("type", "done", "scenario", "push", "complete", complete));
        return complete;
    }

    private static boolean lite(String namesrv, String topic, String sql, long timeoutMs) throws Exception {
        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer("sql-java-lite");
        Common.configure(consumer, namesrv, "sql-lite");
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, MessageSelector.bySql(sql));
        consumer.start();
        boolean complete = false;
        long deadline = System.currentTimeMillis() + timeoutMs;
        try {
            while (!complete && System.currentTimeMillis() < deadline) {
                for (MessageExt msg : consumer.poll(500)) {
                    emit("lite", msg);
                    complete |= LAST.equals(new String(msg.getBody()));
                }
            }
        } finally {
            consumer.shutdown();
        }
        Out.result(Common.fields("type", "done", "scenario", "lite", "complete", complete));
        return complete;
    }

    private static void bad(String namesrv, String topic) throws Exception {
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer("sql-java-bad");
        Common.configure(consumer, namesrv, "sql-bad");
        consumer.subscribe(topic, MessageSelector.bySql("a >"));
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) ->
            ConsumeConcurrentlyStatus.CONSUME_SUCCESS);
        try {
            consumer.start();
            Out.result(Common.fields("type", "started", "scenario", "bad"));
        } catch (MQClientException e) {
            Out.result(Common.fields("type", "startFailed", "scenario", "bad", "code", e.getResponseCode(),
                "error", String.valueOf(e.getErrorMessage())));
        } finally {
            consumer.shutdown();
        }
    }
}
