package io.ferrymq.grpc;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientConfigurationBuilder;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.StaticSessionCredentialsProvider;
import org.apache.rocketmq.client.apis.producer.Producer;

/**
 * The RocketMQ 5.x Java producer against ferrymq's gRPC listener with TLS and ACL, every scenario
 * in one JVM.
 *
 * <p>Args: permissiveEndpoint enforcingEndpoint allowedTopic deniedTopic accessKey secretKey
 * enforcingTopic. The permissive broker has ACL on: the key may publish to allowedTopic, not to
 * deniedTopic. Prints one {@code RESULT <json>} line per scenario:
 * {"type":"scenario","name":...,"ok":bool,"error":"Class: message <- its cause ...","ms":...}, then
 * {"type":"done"}.
 */
public final class GrpcSecurityScenarios {
    private static final ClientServiceProvider PROVIDER = ClientServiceProvider.loadService();
    private static long started = System.currentTimeMillis();

    private GrpcSecurityScenarios() {
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
    }

    private static void report(String name, Throwable error) {
        String json = "{\"type\":\"scenario\",\"name\":" + quote(name) + ",\"ok\":" + (error == null);
        if (error != null) {
            StringBuilder causes = new StringBuilder();
            for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
                causes.append(causes.length() == 0 ? "" : " <- ").append(t.getClass().getSimpleName())
                    .append(": ").append(t.getMessage());
            }
            json += ",\"error\":" + quote(causes.toString());
        }
        json += ",\"ms\":" + (System.currentTimeMillis() - started);
        started = System.currentTimeMillis();
        System.out.println("RESULT " + json + "}");
        System.out.flush();
    }

    private static ClientConfiguration config(String endpoint, boolean ssl, String ak, String sk) {
        ClientConfigurationBuilder builder = ClientConfiguration.newBuilder()
            .setEndpoints(endpoint)
            .enableSsl(ssl)
            .setRequestTimeout(Duration.ofSeconds(3));
        if (ak != null) {
            builder.setCredentialProvider(new StaticSessionCredentialsProvider(ak, sk));
        }
        return builder.build();
    }

    /** Start a producer publishing to {@code startTopic}, then send one message to {@code sendTopic}. */
    private static void send(String name, ClientConfiguration config, String startTopic, String sendTopic) {
        try (Producer producer = PROVIDER.newProducerBuilder()
            .setClientConfiguration(config)
            .setTopics(startTopic)
            .build()) {
            producer.send(PROVIDER.newMessageBuilder().setTopic(sendTopic)
                .setBody((name + "-body").getBytes(StandardCharsets.UTF_8)).build());
            report(name, null);
        } catch (Throwable e) {
            report(name, e);
        }
    }

    public static void main(String[] args) {
        String permissive = args[0];
        String enforcing = args[1];
        String allowed = args[2];
        String denied = args[3];
        String ak = args[4];
        String sk = args[5];
        String enforcingTopic = args[6];
        send("tls-allowed", config(permissive, true, ak, sk), allowed, allowed);
        send("tls-denied", config(permissive, true, ak, sk), allowed, denied);
        send("plaintext-allowed", config(permissive, false, ak, sk), allowed, allowed);
        send("tls-wrong-secret", config(permissive, true, ak, sk + "-wrong"), allowed, allowed);
        send("tls-no-credentials", config(permissive, true, null, null), allowed, allowed);
        send("enforcing-tls", config(enforcing, true, null, null), enforcingTopic, enforcingTopic);
        send("enforcing-plaintext", config(enforcing, false, null, null), enforcingTopic, enforcingTopic);
        System.out.println("RESULT {\"type\":\"done\"}");
        System.out.flush();
        System.exit(0);
    }
}
