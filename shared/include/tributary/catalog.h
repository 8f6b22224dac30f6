/*
 * The schema catalog: which JSON Schema validates the data of each event
 * type. A catalog file maps types to schema files (relative to it):
 *
 *   { "format_assert": true, "default_draft": "2020-12",
 *     "types": { "example.order.placed": "events/example.order.placed.json" },
 *     "resources": [ "common/money.json" ] }
 *
 * Every listed file is registered under its $id (or its file:// URI) so
 * that schemas can $ref each other; nothing is fetched from the network.
 */
#ifndef TRIBUTARY_CATALOG_H
#define TRIBUTARY_CATALOG_H

#include <stddef.h>

#include "tributary/jsonschema.h"

typedef struct tb_catalog tb_catalog;

/* Loads and compiles every schema. NULL with `err` naming the file and the
 * problem when any of them is unreadable or invalid. */
tb_catalog *tb_catalog_load(const char *path, char *err, size_t errlen);
void tb_catalog_free(tb_catalog *cat);

const tjs_schema *tb_catalog_find(const tb_catalog *cat, const char *type);
size_t tb_catalog_count(const tb_catalog *cat);

#endif
