package io.ferrymq.tools;

import org.apache.kafka.common.utils.Exit;

/** Kafka's tools end through Exit.exit; make that throw so the driver's JVM outlives them. */
final class KafkaExit {
    private KafkaExit() {
    }

    static void install() {
        Exit.setExitProcedure((status, message) -> {
            throw new ToolDriver.ExitRequested(status);
        });
        Exit.setHaltProcedure((status, message) -> {
            throw new ToolDriver.ExitRequested(status);
        });
    }
}
