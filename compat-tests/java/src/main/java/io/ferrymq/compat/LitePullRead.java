package io.ferrymq.compat;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.exception.RemotingConnectException;
import org.apache.rocketmq.remoting.exception.RemotingSendRequestException;

/**
 * Reads COUNT messages (or until the timeout) with DefaultLitePullConsumer and prints one line per message.
 *
 * <pre>
 * LitePullRead NAMESRV TOPIC GROUP COUNT [--mode subscribe|assign] [--filter "TagA || TagB"]
 *              [--seek begin|end|none|OFFSET|QID:OFFSET,...] [--from first|last] [--timeout-ms N]
 *              [--linger-ms N] [--poll-ms N] [--pull-batch N]
 * </pre>
 *
 * subscribe: group subscription with the filter expression, consuming from the first offset (--from), with
 * auto commit. assign: fetchMessageQueues + assign of every queue of TOPIC (setSubExpressionForAssign
 * with the filter), then a seek per --seek (default begin). COUNT &lt;= 0 reads until the timeout.
 * After COUNT messages, polling goes on for --linger-ms (default 0) so that extra messages show.
 *
 * <p>In assign mode the queues are assigned and paused before start() and resumed only after every seek, so
 * no pull task is in flight while a seek runs. rocketmq-client 5.3.x races a seek against a running pull task
 * (DefaultLitePullConsumerImpl checks isCancelled() outside the queue lock, and the cancelled task can consume
 * the seek offset or land its batch after the new task started), which loses or repeats messages whatever the
 * server; an application that seeks at start-up avoids it the same way. Every message is printed, so a repeat
 * or a gap is the server's.
 *
 * Lines: {@code RESULT {"type":"queue","topic","brokerName","queueId"}} per assigned queue (assign mode),
 * {@code {"type":"msg","topic","brokerName","queueId","queueOffset","commitLogOffset","msgId","offsetMsgId",
 * "tags","keys","properties":{user},"sysProperties":{...},"body":hex,...}} per message, and last
 * {@code {"type":"summary","mode","received","complete","elapsedMs","firstMessageMs"}}.
 * Exit code 0 when COUNT messages arrived, 2 when the timeout came first.
 */
public final class LitePullRead {
    static final String USAGE = "LitePullRead NAMESRV TOPIC GROUP COUNT [--mode subscribe|assign]"
        + " [--filter EXPR] [--seek begin|end|none|OFFSET|QID:OFFSET,...] [--from first|last] [--timeout-ms N]"
        + " [--linger-ms N] [--poll-ms N] [--pull-batch N]";

    private LitePullRead() {
    }

    public static void main(String[] args) {
        Common.initLogging();
        Cli cli;
        try {
            cli = new Cli(args, USAGE, 4);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(Common.EXIT_ERROR);
            return;
        }
        long timeoutMs = cli.optLong("timeout-ms", 30_000);
        long lingerMs = cli.optLong("linger-ms", 0);
        Common.startWatchdog(timeoutMs + lingerMs + 30_000);
        int code;
        try {
            code = run(cli, timeoutMs, lingerMs);
        } catch (Throwable t) {
            Common.error("LitePullRead failed", t);
            code = Common.EXIT_ERROR;
        }
        System.out.flush();
        System.exit(code);
    }

    private static int run(Cli cli, long timeoutMs, long lingerMs) throws Exception {
        String namesrv = cli.pos(0);
        String topic = cli.pos(1);
        String group = cli.pos(2);
        int count = cli.posInt(3);
        String mode = cli.opt("mode", "subscribe");
        String filter = cli.opt("filter", "*");
        long pollMs = cli.optLong("poll-ms", 500);

        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer(group);
        Common.configure(consumer, namesrv, "litepull");
        consumer.setAutoCommit(true);
        consumer.setPullBatchSize(cli.optInt("pull-batch", 32));
        consumer.setPollTimeoutMillis(pollMs);
        consumer.setConsumeFromWhere("last".equals(cli.opt("from", "first"))
            ? ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET : ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);

        long start = System.nanoTime();
        long firstMessageMs = -1;
        int received = 0;
        try {
            switch (mode) {
                case "subscribe" -> {
                    consumer.subscribe(topic, filter);
                    consumer.start();
                }
                case "assign" -> {
                    if (!"*".equals(filter)) {
                        consumer.setSubExpressionForAssign(topic, filter); // only allowed before start()
                    }
                    List<MessageQueue> mqs = queuesOf(namesrv, topic);
                    String seek = cli.opt("seek", "begin");
                    consumer.assign(mqs);
                    if (!"none".equals(seek)) {
                        consumer.pause(mqs); // pull tasks start paused: nothing in flight while we seek
                    }
                    consumer.start();
                    for (MessageQueue mq : mqs) {
                        Out.result(Common.fields("type", "queue", "topic", mq.getTopic(), "brokerName", mq.getBrokerName(),
                            "queueId", mq.getQueueId()));
                    }
                    seek(consumer, mqs, seek, cli);
                    consumer.resume(mqs);
                }
                default -> throw cli.fail("unknown --mode " + mode);
            }

            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
            while ((count <= 0 || received < count) && System.nanoTime() < deadline) {
                List<MessageExt> batch = consumer.poll(pollMs);
                for (MessageExt msg : batch) {
                    if (firstMessageMs < 0) {
                        firstMessageMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                    }
                    Out.result(Common.describeReceived(msg));
                    received++;
                }
            }
            long lingerEnd = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(lingerMs);
            while (lingerMs > 0 && System.nanoTime() < lingerEnd) {
                for (MessageExt msg : consumer.poll(Math.min(pollMs, lingerMs))) {
                    Out.result(Common.describeReceived(msg));
                    received++;
                }
            }
            try {
                consumer.commitSync();
            } catch (RuntimeException e) {
                Common.error("commitSync", e);
            }
        } finally {
            consumer.shutdown();
        }
        boolean complete = count <= 0 || received >= count;
        Out.result(Common.fields("type", "summary", "mode", mode, "received", received, "complete", complete,
            "elapsedMs", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), "firstMessageMs", firstMessageMs));
        if (!complete) {
            System.err.println("LitePullRead: only " + received + " of " + count + " messages within " + timeoutMs + " ms");
        }
        return complete ? 0 : Common.EXIT_INCOMPLETE;
    }

    /** begin | end | none | OFFSET (every queue) | QID:OFFSET,... (listed queues; the others from the beginning). */
    private static void seek(DefaultLitePullConsumer consumer, Collection<MessageQueue> mqs, String spec, Cli cli)
        throws Exception {
        if ("none".equals(spec)) {
            return;
        }
        Map<Integer, Long> perQueue = new HashMap<>();
        Long all = null;
        if (spec.contains(":")) {
            for (String part : Common.splitList(spec)) {
                String[] qo = part.split(":", 2);
                perQueue.put(Integer.parseInt(qo[0].trim()), Long.parseLong(qo[1].trim()));
            }
        } else if (!"begin".equals(spec) && !"end".equals(spec)) {
            try {
                all = Long.parseLong(spec);
            } catch (NumberFormatException e) {
                throw cli.fail("bad --seek " + spec);
            }
        }
        for (MessageQueue mq : mqs) {
            if ("end".equals(spec)) {
                retryingSeek(() -> consumer.seekToEnd(mq));
            } else if (all != null) {
                long to = all;
                retryingSeek(() -> consumer.seek(mq, to));
            } else if (perQueue.containsKey(mq.getQueueId())) {
                long to = perQueue.get(mq.getQueueId());
                retryingSeek(() -> consumer.seek(mq, to));
            } else {
                retryingSeek(() -> consumer.seekToBegin(mq));
            }
        }
    }

    private interface SeekCall {
        void run() throws MQClientException;
    }

    /**
     * Seeks, again if the client dropped its own connection under the seek.
     *
     * <p>A race inside rocketmq-client 5.3.x, whatever the server: seek() interrupts the pull thread of the queue
     * it seeks; if that thread is then inside another request, its interrupted semaphore wait surfaces as a
     * RemotingSendRequestException, on which NettyRemotingClient closes the broker channel, and the seek's own
     * minOffset/maxOffset request on that channel fails with "send request to ... failed" (seen in CI, and in
     * the client log as "invokeSync: send request exception, so close the channel"). The next call opens a new
     * channel, so a retry is what an application would do. With the queues paused no pull thread should be
     * inside a request when a seek runs; the retry stays for the interrupt that still reaches a busy thread.
     */
    private static void retryingSeek(SeekCall call) throws MQClientException, InterruptedException {
        for (int attempt = 1; ; attempt++) {
            try {
                call.run();
                return;
            } catch (MQClientException e) {
                if (attempt >= 3 || !droppedConnection(e)) {
                    throw e;
                }
                System.err.println("LitePullRead: seek retried after the client dropped its connection: " + e);
                Thread.sleep(100L * attempt);
            }
        }
    }

    private static boolean droppedConnection(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof RemotingSendRequestException || t instanceof RemotingConnectException) {
                return true;
            }
        }
        return false;
    }

    /** The topic's queues in (broker, id) order, from a short-lived consumer: assign() must come before start(). */
    private static List<MessageQueue> queuesOf(String namesrv, String topic) throws MQClientException {
        DefaultLitePullConsumer probe = new DefaultLitePullConsumer("ferrymq_compat_probe_" + ProcessHandle.current().pid());
        Common.configure(probe, namesrv, "litepull-probe");
        probe.start();
        try {
            List<MessageQueue> mqs = new ArrayList<>(probe.fetchMessageQueues(topic));
            mqs.sort(Comparator.comparing(MessageQueue::getBrokerName).thenComparingInt(MessageQueue::getQueueId));
            return mqs;
        } finally {
            probe.shutdown();
        }
    }
}
