package io.ferrymq.compat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.rocketmq.client.consumer.AllocateMessageQueueStrategy;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMachineRoomNearby;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragelyByCircle;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueByConfig;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueByMachineRoom;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueConsistentHash;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * Runs the Java client's allocation strategies on cases read from a file and prints what each
 * member of each case is given, so that compat-tests/test_allocation_conformance.py can compare
 * ferrymq.client.allocate with them.
 *
 * <pre>
 * AllocateConformance CASEFILE
 * </pre>
 *
 * One case per line, tab-separated: {@code id, strategy, param, queues, clients}. Queues are
 * {@code topic|brokerName|queueId} joined by commas, clients are joined by commas, both already in
 * the order RebalanceImpl sorts them. Strategies: AVG, AVG_BY_CIRCLE, CONSISTENT_HASH (param: virtual
 * node count), MACHINE_ROOM (param: consumer rooms, comma-separated), CONFIG (param: queues),
 * NEARBY (param: the delegate's name; a broker's room is its name before '@', a client's room is its
 * id before '-').
 *
 * Lines: {@code RESULT {"case":id,"cid":clientId,"mqs":["topic|broker|qid",...]}} per member, or
 * {@code {"case":id,"cid":clientId,"error":"IllegalArgumentException"}}.
 */
public final class AllocateConformance {
    private AllocateConformance() {
    }

    public static void main(String[] args) throws IOException {
        Common.initLogging();
        if (args.length != 1) {
            System.err.println("usage: AllocateConformance CASEFILE");
            System.exit(Common.EXIT_ERROR);
        }
        for (String line : Files.readAllLines(Path.of(args[0]), StandardCharsets.UTF_8)) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            List<MessageQueue> mqAll = queues(f[3]);
            List<String> cidAll = List.of(Common.splitList(f[4]));
            AllocateMessageQueueStrategy strategy = strategy(f[1], f[2]);
            for (String cid : cidAll) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("case", f[0]);
                out.put("cid", cid);
                try {
                    List<String> got = new ArrayList<>();
                    for (MessageQueue mq : strategy.allocate("conformance-group", cid, mqAll, cidAll)) {
                        got.add(mq.getTopic() + "|" + mq.getBrokerName() + "|" + mq.getQueueId());
                    }
                    out.put("mqs", got);
                } catch (IllegalArgumentException e) {
                    out.put("error", "IllegalArgumentException");
                }
                Out.result(out);
            }
        }
    }

    static List<MessageQueue> queues(String csv) {
        List<MessageQueue> out = new ArrayList<>();
        for (String item : Common.splitList(csv)) {
            String[] p = item.split("\\|");
            out.add(new MessageQueue(p[0], p[1], Integer.parseInt(p[2])));
        }
        return out;
    }

    static AllocateMessageQueueStrategy strategy(String name, String param) {
        switch (name) {
            case "AVG":
                return new AllocateMessageQueueAveragely();
            case "AVG_BY_CIRCLE":
                return new AllocateMessageQueueAveragelyByCircle();
            case "CONSISTENT_HASH":
                return new AllocateMessageQueueConsistentHash(Integer.parseInt(param));
            case "MACHINE_ROOM": {
                AllocateMessageQueueByMachineRoom s = new AllocateMessageQueueByMachineRoom();
                Set<String> rooms = new HashSet<>(List.of(Common.splitList(param)));
                s.setConsumeridcs(rooms);
                return s;
            }
            case "CONFIG": {
                AllocateMessageQueueByConfig s = new AllocateMessageQueueByConfig();
                s.setMessageQueueList(queues(param));
                return s;
            }
            case "NEARBY":
                return new AllocateMachineRoomNearby(strategy(param, "10"), new AllocateMachineRoomNearby.MachineRoomResolver() {
                    @Override
                    public String brokerDeployIn(MessageQueue mq) {
                        return mq.getBrokerName().split("@")[0];
                    }

                    @Override
                    public String consumerDeployIn(String clientId) {
                        return clientId.split("-")[0];
                    }
                });
            default:
                throw new IllegalArgumentException("unknown strategy " + name);
        }
    }
}
