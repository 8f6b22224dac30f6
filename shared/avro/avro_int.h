/* Private to shared/avro: what a parsed schema holds. */
#ifndef TRIBUTARY_AVRO_INT_H
#define TRIBUTARY_AVRO_INT_H

#include <avro.h>

#include "tributary/avro.h"

struct tb_avro_schema {
	/* defaults (below) as a document, as encoding walks them */
	tjs_doc *defaults_doc;
	avro_schema_t schema;
	avro_value_iface_t *iface; /* generic class: avro_generic_value_new */
	json_t *defaults;          /* record full name -> {field: default}: libavro keeps none */
};

/* encode.c: the records' field defaults, from the schema's JSON. */
json_t *tb_avro__defaults(const char *text, size_t len);

#endif
