package io.ferrymq.compat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Positional arguments followed by {@code --name value} options. */
final class Cli {
    private final List<String> positional = new ArrayList<>();
    private final Map<String, String> options = new HashMap<>();
    private final String usage;

    Cli(String[] args, String usage, int positionalCount) {
        this.usage = usage;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("--")) {
                String name = a.substring(2);
                String value;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                } else {
                    if (i + 1 >= args.length) {
                        throw fail("option --" + name + " needs a value");
                    }
                    value = args[++i];
                }
                options.put(name, value);
            } else {
                positional.add(a);
            }
        }
        if (positional.size() != positionalCount) {
            throw fail("expected " + positionalCount + " positional arguments, got " + positional);
        }
    }

    IllegalArgumentException fail(String why) {
        return new IllegalArgumentException(why + "\nusage: " + usage);
    }

    String pos(int i) {
        return positional.get(i);
    }

    int posInt(int i) {
        return Integer.parseInt(positional.get(i));
    }

    String opt(String name, String dflt) {
        return options.getOrDefault(name, dflt);
    }

    int optInt(String name, int dflt) {
        String v = options.get(name);
        return v == null ? dflt : Integer.parseInt(v);
    }

    long optLong(String name, long dflt) {
        String v = options.get(name);
        return v == null ? dflt : Long.parseLong(v);
    }
}
