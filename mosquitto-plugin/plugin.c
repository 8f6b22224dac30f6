/*
 * Tributary for Mosquitto 2.0 (plugin API v5).
 *
 *   plugin /usr/lib/tributary/mosquitto_tributary.so
 *   plugin_opt_config /etc/tributary/tributary.json
 */
#include <stdlib.h>
#include <string.h>

#include "tributary.h"

static struct tributary *tributary__instance;

__attribute__((visibility("default"))) int mosquitto_plugin_version(int supported_version_count,
                                                                    const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++)
		if (supported_versions[i] == 5)
			return 5;
	return -1;
}

/* SIGHUP, the one reload of everything reloadable: the schema catalog is
 * compiled again, and the "registries" (registry.c) and "auth" (keys,
 * rules) sections of the configuration file read again; whatever fails
 * keeps serving its previous version. */
static int plugin__on_reload(int event, void *event_data, void *userdata)
{
	struct tributary *tb = userdata;
	char err[1024];
	(void)event;
	(void)event_data;
	tb_catalog *cat = tb_catalog_load(tb->catalog_path, err, sizeof(err));
	if (!cat) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "reload: keeping the previous catalog: %s", err);
	} else {
		tb_catalog_free(tb->catalog);
		tb->catalog = cat;
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
		                     TB_LOG_PREFIX "reload: catalog %s, %zu event types",
		                     tb->catalog_path, tb_catalog_count(cat));
	}
	if (!tb->auth && !tb->nregistries)
		return MOSQ_ERR_SUCCESS; /* turning them on needs a restart */
	json_t *root = config__read(tb->config_path, err, sizeof(err));
	if (!root) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "reload: keeping the previous registries, keys "
		                                   "and rules: %s",
		                     err);
		return MOSQ_ERR_SUCCESS;
	}
	if (tb->nregistries)
		registry__reload(tb, json_object_get(root, "registries"));
	if (tb->auth)
		auth__reload(tb, json_object_get(root, "auth"));
	json_decref(root);
	return MOSQ_ERR_SUCCESS;
}

/* What the configuration describes, started: the producers, the journal
 * (then what it still holds, produced again) and the consumers. */
static int plugin__start(struct tributary *tb)
{
	int rc;
	for (size_t i = 0; i < tb->nclusters; i++)
		if ((rc = cluster__start(&tb->clusters[i])))
			return rc;
	if ((rc = registry__start(tb)) || (rc = journal__open(tb)) || (rc = topics__start(tb)) ||
	    (rc = auth__start(tb)) || (rc = resend__init(tb)) || (rc = journal__replay(tb)) ||
	    (rc = outbound__start(tb)))
		return rc;
	return MOSQ_ERR_SUCCESS;
}

static void plugin__free(struct tributary *tb)
{
	if (!tb)
		return;
	outbound__stop(tb);
	journal__stop_retry(tb); /* before the producers stop */
	resend__cleanup(tb);
	auth__cleanup(tb);
	registry__cleanup(tb);
	tb_avro_buf_free(&tb->avro_buf);
	config__free(tb);
	topics__cleanup(tb);
	cluster__log_failures(tb);
	pthread_mutex_destroy(&tb->failures.lock);
	free(tb);
}

__attribute__((visibility("default"))) int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier,
                                                                 void **userdata,
                                                                 struct mosquitto_opt *options,
                                                                 int option_count)
{
	const char *config = NULL;
	int rc;

	if (tributary__instance) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "loaded twice; use one plugin line "
		                                   "(per_listener_settings false)");
		return MOSQ_ERR_INVAL;
	}
	for (int i = 0; i < option_count; i++) {
		if (!strcmp(options[i].key, "config"))
			config = options[i].value;
		else {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			                     TB_LOG_PREFIX "unknown option plugin_opt_%s",
			                     options[i].key);
			return MOSQ_ERR_INVAL;
		}
	}
	if (!config) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX
		                     "plugin_opt_config (the JSON configuration file) "
		                     "is required");
		return MOSQ_ERR_INVAL;
	}

	struct tributary *tb = calloc(1, sizeof(*tb));
	if (!tb)
		return MOSQ_ERR_NOMEM;
	pthread_mutex_init(&tb->failures.lock, NULL);
	tb->pid = identifier;
	tb->config_path = strdup(config);
	if (!tb->config_path) {
		rc = MOSQ_ERR_NOMEM;
		goto error;
	}
	if ((rc = config__load(tb, config)) || (rc = plugin__start(tb)))
		goto error;

	if ((rc = mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, ingest__on_message,
	                                      NULL, tb)) ||
	    (rc = mosquitto_callback_register(identifier, MOSQ_EVT_TICK, stats__on_tick, NULL,
	                                      tb)) ||
	    (rc = mosquitto_callback_register(identifier, MOSQ_EVT_RELOAD, plugin__on_reload, NULL,
	                                      tb))) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "cannot register callbacks (%d)",
		                     rc);
		goto error;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
	                     TB_LOG_PREFIX "ready: %zu ingest routes, %zu event types, %zu Kafka "
	                                   "clusters (config %s)",
	                     tb->nroutes, tb_catalog_count(tb->catalog), tb->nclusters, config);
	*userdata = tb;
	tributary__instance = tb;
	return MOSQ_ERR_SUCCESS;
error:
	mosquitto_callback_unregister(identifier, MOSQ_EVT_MESSAGE, ingest__on_message, NULL);
	mosquitto_callback_unregister(identifier, MOSQ_EVT_TICK, stats__on_tick, NULL);
	mosquitto_callback_unregister(identifier, MOSQ_EVT_RELOAD, plugin__on_reload, NULL);
	plugin__free(tb);
	return rc ? rc : MOSQ_ERR_UNKNOWN;
}

__attribute__((visibility("default"))) int
mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct tributary *tb = userdata;
	(void)options;
	(void)option_count;
	if (!tb)
		return MOSQ_ERR_SUCCESS;
	mosquitto_callback_unregister(tb->pid, MOSQ_EVT_MESSAGE, ingest__on_message, NULL);
	mosquitto_callback_unregister(tb->pid, MOSQ_EVT_TICK, stats__on_tick, NULL);
	mosquitto_callback_unregister(tb->pid, MOSQ_EVT_RELOAD, plugin__on_reload, NULL);
	plugin__free(tb);
	tributary__instance = NULL;
	return MOSQ_ERR_SUCCESS;
}
