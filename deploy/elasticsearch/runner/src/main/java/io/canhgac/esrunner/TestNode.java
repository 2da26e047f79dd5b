package io.canhgac.esrunner;

import org.elasticsearch.Build;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.ClasspathNodeFactory;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * One real Elasticsearch node in this JVM, for canhgac's tests.
 *
 * <p>Usage: {@code TestNode -Epath.home=DIR [-Ekey=value ...]}. Every {@code -E} setting is an
 * ordinary Elasticsearch node setting; the defaults below make a single-node cluster that listens
 * on 127.0.0.1 only and keeps everything under {@code path.home}.
 */
public final class TestNode {

    /** Modules of the Elasticsearch distribution that are on the classpath (published on Maven Central). */
    private static final List<Class<? extends Plugin>> MODULES = List.of(Netty4Plugin.class, TestNodeRestPlugin.class);

    private TestNode() {}

    public static void main(String[] args) throws Exception {
        Settings.Builder given = Settings.builder();
        for (String arg : args) {
            if (arg.equals("-h") || arg.equals("--help")) {
                System.out.println("usage: TestNode -Epath.home=DIR [-Ekey=value ...]");
                return;
            }
            if (arg.startsWith("-E") == false || arg.indexOf('=') < 3) {
                die("argument '" + arg + "' is not of the form -Ekey=value");
            }
            int eq = arg.indexOf('=');
            given.put(arg.substring(2, eq), arg.substring(eq + 1));
        }
        String home = given.get("path.home");
        if (home == null || home.isBlank()) {
            die("-Epath.home=DIR is required (the node keeps its data, logs and config there)");
        }
        Path homePath = Path.of(home).toAbsolutePath();

        Settings.Builder builder = Settings.builder()
            .put("cluster.name", "canhgac-test")
            .put("node.name", "canhgac-test-node")
            .put("discovery.type", "single-node")
            // loopback only: this node is never reachable from another machine
            .put("network.host", "127.0.0.1")
            .put("http.port", "9200")
            .put("path.data", homePath.resolve("data").toString())
            .put("path.logs", homePath.resolve("logs").toString())
            // a test machine's disk may be fuller than a production watermark; never go read-only
            .put("cluster.routing.allocation.disk.threshold_enabled", "false")
            .put(given.build())
            .put("path.home", homePath.toString());
        Settings settings = builder.build();

        for (String dir : List.of("config", "modules", "plugins", "data", "logs")) {
            Files.createDirectories(homePath.resolve(dir));
        }
        Files.createDirectories(Path.of(settings.get("path.data")));
        Files.createDirectories(Path.of(settings.get("path.logs")));

        LogConfigurator.configureWithoutConfig(settings);
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings,
            Map.of(),
            homePath.resolve("config"),
            () -> settings.get("node.name")
        );

        Node node;
        try {
            node = ClasspathNodeFactory.create(environment, MODULES);
        } catch (Exception e) {
            failedToStart(e);
            return;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (IOException | InterruptedException e) {
                System.err.println("canhgac-test-node: error while stopping: " + e);
            } finally {
                stopped.countDown();
            }
        }, "canhgac-test-node-shutdown"));

        try {
            node.start();
        } catch (Exception e) {
            failedToStart(e);
        }
        System.out.println(
            "canhgac-test-node: Elasticsearch "
                + Build.current().version()
                + " started, http on "
                + settings.get("network.host")
                + ":"
                + settings.get("http.port")
                + ", home "
                + homePath
        );
        stopped.await();
    }

    /** Stack trace first, then one line naming the cause: start.sh shows the end of the log. */
    private static void failedToStart(Exception e) {
        e.printStackTrace(System.err);
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        System.err.println("canhgac-test-node: failed to start: " + root.getMessage());
        System.exit(1);
    }

    private static void die(String message) {
        System.err.println("canhgac-test-node: " + message);
        System.exit(2);
    }
}
