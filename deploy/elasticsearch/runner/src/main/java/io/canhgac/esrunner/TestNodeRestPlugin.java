package io.canhgac.esrunner;

import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.ClusterStateUpdateTask;
import org.elasticsearch.cluster.health.ClusterHealthStatus;
import org.elasticsearch.cluster.health.ClusterIndexHealth;
import org.elasticsearch.cluster.metadata.DataStream;
import org.elasticsearch.cluster.metadata.IndexMetadata;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.metadata.Metadata;
import org.elasticsearch.cluster.metadata.MetadataDeleteIndexService;
import org.elasticsearch.cluster.metadata.MetadataIndexTemplateService;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.routing.IndexRoutingTable;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.Priority;
import org.elasticsearch.common.Strings;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.core.TimeValue;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.Index;
import org.elasticsearch.index.IndexNotFoundException;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.ToXContent;
import org.elasticsearch.xcontent.XContentBuilder;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * REST endpoints of the Elasticsearch distribution whose modules are not published on Maven
 * Central, written here against the server's own cluster-state API:
 *
 * <ul>
 *   <li>{@code GET /} and {@code HEAD /} (the distribution's rest-root module): node info / ping,
 *       used by clients' {@code info()} and {@code ping()};
 *   <li>{@code GET /_data_stream[/{name}]}, {@code GET /_data_stream/{name}/_lifecycle} and
 *       {@code DELETE /_data_stream/{name}} (part of the data-streams module): names may be
 *       comma-separated and may hold {@code *} wildcards.
 * </ul>
 *
 * <p>The data-streams module also runs the data stream lifecycle (retention, lifecycle-driven
 * rollover); that is not reproduced here: a {@code lifecycle} in a template is validated and stored
 * on the data stream by the server, and reported by these endpoints, but nothing deletes old data.
 *
 * Creating data streams needs no endpoint here: the server itself auto-creates one when a bulk
 * {@code create} targets a name that matches an index template with {@code data_stream: {}}.
 */
public final class TestNodeRestPlugin extends Plugin implements ActionPlugin {

    private volatile ClusterService clusterService;
    private volatile Settings nodeSettings;

    @Override
    public Collection<?> createComponents(PluginServices services) {
        this.clusterService = services.clusterService();
        this.nodeSettings = services.environment().settings();
        return List.of();
    }

    @Override
    public Collection<RestHandler> getRestHandlers(
        Settings settings,
        NamedWriteableRegistry namedWriteableRegistry,
        RestController restController,
        ClusterSettings clusterSettings,
        IndexScopedSettings indexScopedSettings,
        SettingsFilter settingsFilter,
        IndexNameExpressionResolver indexNameExpressionResolver,
        Supplier<DiscoveryNodes> nodesInCluster,
        Predicate<NodeFeature> clusterSupportsFeature
    ) {
        return List.of(new MainHandler(), new GetDataStreamHandler(), new GetLifecycleHandler(), new DeleteDataStreamHandler());
    }

    private final class MainHandler extends BaseRestHandler {
        @Override
        public String getName() {
            return "canhgac_test_node_main";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
            return channel -> {
                if (request.method() == RestRequest.Method.HEAD) {
                    channel.sendResponse(new RestResponse(RestStatus.OK, RestResponse.TEXT_CONTENT_TYPE, ""));
                    return;
                }
                ClusterState state = clusterService.state();
                Build build = Build.current();
                XContentBuilder b = channel.newBuilder();
                b.startObject();
                b.field("name", clusterService.localNode().getName());
                b.field("cluster_name", clusterService.getClusterName().value());
                b.field("cluster_uuid", state.metadata().clusterUUID());
                b.startObject("version")
                    .field("number", build.qualifiedVersion())
                    .field("build_flavor", build.flavor())
                    .field("build_type", build.type().displayName())
                    .field("build_hash", build.hash())
                    .field("build_date", build.date())
                    .field("build_snapshot", build.isSnapshot())
                    .field("lucene_version", org.apache.lucene.util.Version.LATEST.toString())
                    .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
                    .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
                    .endObject();
                b.field("tagline", "You Know, for Search");
                b.endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, b));
            };
        }
    }

    /** Names of the data streams that {@code expression} (comma-separated, wildcards allowed) selects. */
    private static List<String> resolve(Metadata metadata, String expression, boolean failIfMissing) {
        List<String> selected = new ArrayList<>();
        for (String part : Strings.splitStringByCommaToArray(expression == null ? "*" : expression)) {
            boolean matched = false;
            for (String name : metadata.dataStreams().keySet()) {
                if (Regex.simpleMatch(part, name) && selected.contains(name) == false) {
                    selected.add(name);
                    matched = true;
                } else if (Regex.simpleMatch(part, name)) {
                    matched = true;
                }
            }
            if (matched == false && failIfMissing && Regex.isSimpleMatchPattern(part) == false) {
                throw new IndexNotFoundException(part);
            }
        }
        selected.sort(String::compareTo);
        return selected;
    }

    private final class GetDataStreamHandler extends BaseRestHandler {
        @Override
        public String getName() {
            return "canhgac_test_node_get_data_stream";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/_data_stream"), new Route(RestRequest.Method.GET, "/_data_stream/{name}"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
            String expression = request.param("name");
            return channel -> {
                ClusterState state = clusterService.state();
                Metadata metadata = state.metadata();
                List<String> names = resolve(metadata, expression, true);
                XContentBuilder b = channel.newBuilder();
                b.startObject().startArray("data_streams");
                for (String name : names) {
                    writeDataStream(b, state, metadata.dataStreams().get(name));
                }
                b.endArray().endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, b));
            };
        }

        private void writeDataStream(XContentBuilder b, ClusterState state, DataStream ds) throws IOException {
            Metadata metadata = state.metadata();
            ClusterHealthStatus status = ClusterHealthStatus.GREEN;
            b.startObject();
            b.field("name", ds.getName());
            b.startObject("timestamp_field").field("name", "@timestamp").endObject();
            b.startArray("indices");
            for (Index index : ds.getIndices()) {
                b.startObject().field("index_name", index.getName()).field("index_uuid", index.getUUID()).endObject();
                IndexMetadata im = metadata.index(index);
                IndexRoutingTable routing = state.routingTable().index(index);
                if (im != null && routing != null) {
                    ClusterHealthStatus s = new ClusterIndexHealth(im, routing).getStatus();
                    if (s.value() > status.value()) {
                        status = s;
                    }
                } else {
                    status = ClusterHealthStatus.RED;
                }
            }
            b.endArray();
            b.field("generation", ds.getGeneration());
            b.field("status", status.name());
            String template = MetadataIndexTemplateService.findV2Template(metadata, ds.getName(), false);
            if (template != null) {
                b.field("template", template);
            }
            if (ds.getDataLifecycle() != null) {
                b.field("lifecycle");
                ds.getDataLifecycle().toXContent(b, ToXContent.EMPTY_PARAMS);
            }
            b.field("hidden", ds.isHidden());
            b.field("system", ds.isSystem());
            b.field("allow_custom_routing", ds.isAllowCustomRouting());
            b.field("replicated", ds.isReplicated());
            b.endObject();
        }
    }

    private final class GetLifecycleHandler extends BaseRestHandler {
        @Override
        public String getName() {
            return "canhgac_test_node_get_data_stream_lifecycle";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/_data_stream/{name}/_lifecycle"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
            String expression = request.param("name");
            return channel -> {
                Metadata metadata = clusterService.state().metadata();
                XContentBuilder b = channel.newBuilder();
                b.startObject().startObject("global_retention").endObject().startArray("data_streams");
                for (String name : resolve(metadata, expression, true)) {
                    DataStream ds = metadata.dataStreams().get(name);
                    b.startObject().field("name", name);
                    if (ds.getDataLifecycle() != null) {
                        b.field("lifecycle");
                        ds.getDataLifecycle().toXContent(b, ToXContent.EMPTY_PARAMS);
                    }
                    b.endObject();
                }
                b.endArray().endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, b));
            };
        }
    }

    private final class DeleteDataStreamHandler extends BaseRestHandler {
        @Override
        public String getName() {
            return "canhgac_test_node_delete_data_stream";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.DELETE, "/_data_stream/{name}"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
            String expression = request.param("name");
            TimeValue timeout = request.paramAsTime("master_timeout", TimeValue.timeValueSeconds(30));
            return channel -> {
                // fail fast with a 404 for a missing concrete name, as the real API does
                resolve(clusterService.state().metadata(), expression, true);
                clusterService.submitUnbatchedStateUpdateTask(
                    "delete-data-stream [" + expression + "]",
                    new ClusterStateUpdateTask(Priority.HIGH, timeout) {
                        @Override
                        public ClusterState execute(ClusterState current) {
                            Metadata metadata = current.metadata();
                            List<String> names = resolve(metadata, expression, false);
                            if (names.isEmpty()) {
                                return current;
                            }
                            Set<Index> backing = new HashSet<>();
                            Metadata.Builder builder = Metadata.builder(metadata);
                            for (String name : names) {
                                DataStream ds = metadata.dataStreams().get(name);
                                backing.addAll(ds.getIndices());
                                backing.addAll(ds.getFailureIndices());
                                builder.removeDataStream(name);
                            }
                            ClusterState withoutStreams = ClusterState.builder(current).metadata(builder).build();
                            return MetadataDeleteIndexService.deleteIndices(withoutStreams, backing, nodeSettings);
                        }

                        @Override
                        public void onFailure(Exception e) {
                            try {
                                channel.sendResponse(new RestResponse(channel, e));
                            } catch (IOException inner) {
                                e.addSuppressed(inner);
                            }
                        }

                        @Override
                        public void clusterStateProcessed(ClusterState before, ClusterState after) {
                            try {
                                XContentBuilder b = channel.newBuilder();
                                b.startObject().field("acknowledged", true).endObject();
                                channel.sendResponse(new RestResponse(RestStatus.OK, b));
                            } catch (IOException e) {
                                onFailure(e);
                            }
                        }
                    }
                );
            };
        }
    }
}
