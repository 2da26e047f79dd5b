/*
 * canhgac test node: builds a Node whose plugins come from the classpath. NodeServiceProvider and
 * NodeConstruction are package-private, hence this class lives in org.elasticsearch.node (the same
 * technique the Elasticsearch test framework's MockNode uses).
 */
package org.elasticsearch.node;

import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

import java.util.List;

public final class ClasspathNodeFactory {

    private ClasspathNodeFactory() {}

    public static Node create(Environment environment, List<Class<? extends Plugin>> pluginClasses) {
        NodeServiceProvider provider = new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment env, PluginsLoader pluginsLoader) {
                return new ClasspathPluginsService(env.settings(), env, pluginClasses);
            }
        };
        PluginsLoader noBundles = ClasspathPluginsService.emptyLoader();
        return new Node(NodeConstruction.prepareConstruction(environment, noBundles, provider, true));
    }
}
