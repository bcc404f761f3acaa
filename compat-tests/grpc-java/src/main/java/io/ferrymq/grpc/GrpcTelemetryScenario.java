package io.ferrymq.grpc;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;

/**
 * A RocketMQ 5.x Java PushConsumer that stays up while the test asks the broker about it: its thread
 * stack (GET_CONSUMER_RUNNING_INFO with jstack) and a message consumed directly
 * (CONSUME_MESSAGE_DIRECTLY), both of which reach it as commands on its Telemetry stream.
 *
 * <p>Args: endpoint topic group. Prints {@code RESULT <json>} lines: "ready" once the consumer is
 * built, "recv" (body) for every message its listener gets (a body starting with "fail" is answered
 * FAILURE), then {"type":"done"} once standard input ends.
 */
public final class GrpcTelemetryScenario {
    private GrpcTelemetryScenario() {
    }

    private static synchronized void result(String json) {
        System.out.println("RESULT " + json);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        ClientServiceProvider provider = ClientServiceProvider.loadService();
        ClientConfiguration config = ClientConfiguration.newBuilder().setEndpoints(args[0]).enableSsl(false)
            .setRequestTimeout(Duration.ofSeconds(10)).build();
        try (PushConsumer consumer = provider.newPushConsumerBuilder().setClientConfiguration(config)
            .setConsumerGroup(args[2]).setSubscriptionExpressions(Collections.singletonMap(args[1],
                FilterExpression.SUB_ALL))
            .setMessageListener(view -> {
                String body = StandardCharsets.UTF_8.decode(view.getBody().duplicate()).toString();
                result("{\"type\":\"recv\",\"body\":\"" + body + "\"}");
                return body.startsWith("fail") ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS;
            }).build()) {
            result("{\"type\":\"ready\"}");
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            while (in.readLine() != null) {
                continue;
            }
        }
        result("{\"type\":\"done\"}");
        System.exit(0);
    }
}
