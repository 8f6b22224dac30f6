/*
 * libFuzzer target: the ingest path's parsing of client input — CloudEvents
 * in structured mode (JSON payload) and binary mode (attributes as MQTT v5
 * user properties + payload), completion, the Kafka mappings, and schema
 * validation of the data against the catalog's example.order.placed.
 *
 * Input: byte 0 picks the mode; binary mode reads "name=value\n" lines up to
 * a NUL, then the payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/catalog.h"
#include "tributary/cloudevents.h"

static tb_catalog *catalog;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];
	(void)argc;
	(void)argv;
	catalog = tb_catalog_load("schemas/catalog.json", err, sizeof(err));
	if (!catalog)
		abort(); /* run from the project root (tools/fuzz.sh does) */
	return 0;
}

static int count_header(void *ctx, const char *name, const char *value, size_t len)
{
	(void)name;
	(void)value;
	*(size_t *)ctx += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tb_event ev;
	char err[512];
	tb_ce_status st;
	/* Binary mode's attributes are referenced: they live until the end. */
	char *names[16];
	size_t n = 0;
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		st =
		    tb_ce_parse_structured((const char *)data + 1, size - 1, &ev, err, sizeof(err));
	} else {
		tb_ce_attr attrs[16] = {{0}};
		const uint8_t *p = data + 1, *end = data + size;
		const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
		const uint8_t *attrs_end = nul ? nul : end;
		while (p < attrs_end && n < 16) {
			const uint8_t *nl = memchr(p, '\n', (size_t)(attrs_end - p));
			const uint8_t *line_end = nl ? nl : attrs_end;
			const uint8_t *eq = memchr(p, '=', (size_t)(line_end - p));
			if (eq) {
				names[n] = strndup((const char *)p, (size_t)(line_end - p));
				names[n][eq - p] = '\0';
				attrs[n].name = names[n];
				attrs[n].value = names[n] + (eq - p) + 1;
				n++;
			}
			p = line_end + 1;
		}
		const char *payload = nul ? (const char *)nul + 1 : "";
		size_t plen = nul ? (size_t)(end - nul - 1) : 0;
		st = tb_ce_parse_binary(attrs, n, (data[0] & 2) ? "text/plain" : NULL, payload,
		                        plen, &ev, err, sizeof(err));
	}
	if (st == TB_CE_OK && tb_ce_complete(&ev, err, sizeof(err)) == TB_CE_OK) {
		const tjs_schema *schema = tb_catalog_find(catalog, tb_ce_attr_string(&ev, "type"));
		if (!schema)
			schema = tb_catalog_find(catalog, "example.order.placed");
		if (ev.data) {
			tjs_result res = {0};
			tjs_validate_value(schema, ev.data, &res, 10);
			tjs_result_clear(&res);
		}
		tb_ce_set_authcontext(&ev, "user", "fuzz");
		size_t total = 0, len = 0;
		tb_ce_each_kafka_header(&ev, count_header, &total);
		free(tb_ce_to_json(&ev, &len));
	}
	if (st == TB_CE_OK)
		tb_event_clear(&ev);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return 0;
}
