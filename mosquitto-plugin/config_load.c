/*
 * config__load: the configuration file, read once (config.c), each area
 * handed its section to check; nothing is started here (plugin.c starts the
 * producers, the journal and the consumers). config__free undoes it.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary.h"

static char *config__path(const char *base_dir, const char *p)
{
	char buf[PATH_MAX];
	if (p[0] == '/')
		return strdup(p);
	snprintf(buf, sizeof(buf), "%s/%s", base_dir, p);
	return strdup(buf);
}

static int config__clusters(struct tributary *tb, const json_t *clusters, bool journaled)
{
	const char *name;
	json_t *props;
	int rc;
	if (!json_is_object(clusters) || json_object_size(clusters) == 0)
		return config__fail("clusters: must name at least one Kafka cluster, e.g. "
		                    "{\"main\": {\"bootstrap.servers\": \"host:9092\"}}");
	tb->clusters = calloc(json_object_size(clusters), sizeof(*tb->clusters));
	if (!tb->clusters)
		return MOSQ_ERR_NOMEM;
	json_object_foreach((json_t *)clusters, name, props)
	{
		struct tbp_cluster *c = &tb->clusters[tb->nclusters];
		c->tb = tb;
		c->name = strdup(name);
		if (!c->name)
			return MOSQ_ERR_NOMEM;
		tb->nclusters++;
		if (!json_is_object(props))
			return config__fail(
			    "clusters.%s: must be an object of librdkafka properties", name);
		if ((rc = cluster__config(c, props, journaled)))
			return rc;
	}
	return MOSQ_ERR_SUCCESS;
}

/* Every section, checked; nothing started (plugin.c starts the producers,
 * the journal and the consumers). */
int config__load(struct tributary *tb, const char *path)
{
	static const char *const top[] = {
	    "broker_id", "clusters", "catalog", "ingest", "outbound",   "journal", "auth",
	    "stats",     "shutdown", "comment", "topics", "registries", NULL};
	char err[512], dirbuf[PATH_MAX];
	int rc = MOSQ_ERR_INVAL;

	json_t *root = config__read(path, err, sizeof(err));
	if (!root)
		return config__fail("%s", err);
	if ((rc = config__only(root, "config", top)))
		goto cleanup;
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	const char *dir = dirname(dirbuf);
	if (!(tb->config_dir = strdup(dir))) {
		rc = MOSQ_ERR_NOMEM;
		goto cleanup;
	}

	const char *bid = json_string_value(json_object_get(root, "broker_id"));
	tb->broker_id = strdup(bid ? bid : "tributary");
	if (!tb->broker_id) {
		rc = MOSQ_ERR_NOMEM;
		goto cleanup;
	}

	json_t *catalog = json_object_get(root, "catalog");
	if (!json_is_string(catalog)) {
		rc = config__fail("catalog: must be the path of the schema catalog (catalog.json)");
		goto cleanup;
	}
	tb->catalog_path = config__path(dir, json_string_value(catalog));
	tb->catalog = tb->catalog_path ? tb_catalog_load(tb->catalog_path, err, sizeof(err)) : NULL;
	if (!tb->catalog) {
		rc = config__fail("catalog: %s", err);
		goto cleanup;
	}

	long long n;
	if ((rc = config__int(json_object_get(root, "stats"), "sys_interval", 0, 86400, 10, &n,
	                      "stats.sys_interval: must be 0 (off) to 86400 seconds")))
		goto cleanup;
	tb->sys_interval_s = (int)n;
	if ((rc = config__int(json_object_get(root, "shutdown"), "flush_timeout_ms", 0, 600000,
	                      10000, &n, "shutdown.flush_timeout_ms: must be 0 to 600000")))
		goto cleanup;
	tb->flush_timeout_ms = (int)n;

	if ((rc = config__clusters(tb, json_object_get(root, "clusters"),
	                           json_object_get(root, "journal") != NULL)))
		goto cleanup;
	if ((rc = journal__config(tb, json_object_get(root, "journal"), dir)))
		goto cleanup;

	/* Schema Registries (registry.c), before the routes that name them */
	if ((rc = registry__config(tb, json_object_get(root, "registries"), dir)))
		goto cleanup;
	if ((rc = config__ingest(tb, json_object_get(root, "ingest"))))
		goto cleanup;

	/* Kafka -> MQTT (outbound_config.c) */
	if ((rc = outbound__config(tb, json_object_get(root, "outbound"),
	                           json_object_get(root, "clusters"))))
		goto cleanup;
	/* Kafka topics as wanted (topics.c) */
	if ((rc = topics__config(tb, root)))
		goto cleanup;
	/* JWT authentication and ACLs (auth.c) */
	if ((rc = auth__config(tb, json_object_get(root, "auth"))))
		goto cleanup;
	rc = MOSQ_ERR_SUCCESS;
cleanup:
	json_decref(root);
	return rc;
}

void config__free(struct tributary *tb)
{
	config__ingest_free(tb);
	for (size_t i = 0; i < tb->nclusters; i++) {
		cluster__stop(&tb->clusters[i], tb->flush_timeout_ms);
		free(tb->clusters[i].name);
	}
	/* After the producers: their last delivery reports release entries. */
	journal__close(tb);
	free(tb->clusters);
	tb->clusters = NULL;
	tb->nclusters = 0;
	tb_catalog_free(tb->catalog);
	tb->catalog = NULL;
	free(tb->catalog_path);
	free(tb->broker_id);
	free(tb->config_dir);
	free(tb->config_path);
}
