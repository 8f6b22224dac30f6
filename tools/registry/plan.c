/* Catalog files, their subjects and references (plan.h). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../shared/jsonschema/internal.h"
#include "plan.h"

char *plan_subject(enum strategy strategy, const char *topic, const char *type)
{
	char *s = NULL;
	int rc = 0;
	switch (strategy) {
	case STRATEGY_RECORD:
		s = strdup(type);
		break;
	case STRATEGY_TOPIC:
		rc = asprintf(&s, "%s-value", topic);
		break;
	case STRATEGY_TOPIC_RECORD:
		rc = asprintf(&s, "%s-%s", topic, type);
		break;
	}
	return rc < 0 ? NULL : s;
}

/* A resource's subject: its catalog path, '/' made '.', without ".json"
 * (common/order-line.json: common.order-line), since some registries
 * refuse an encoded '/' in a URL path. */
static char *resource_subject(const char *path)
{
	char *s = strdup(path);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	if (n > 5 && !strcmp(s + n - 5, ".json"))
		s[n - 5] = '\0';
	for (char *c = s; *c; c++)
		if (*c == '/')
			*c = '.';
	return s;
}

/* A schema file's text, whole (getdelim up to a NUL: a JSON text has none). */
static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *data = NULL;
	size_t cap = 0;
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (getdelim(&data, &cap, '\0', f) < 0 && !feof(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(data);
		data = NULL;
	} else if (!data) {
		data = strdup("");
	}
	fclose(f);
	return data;
}

static int add_file(plan *p, const char *dir, const char *path, const char *type, char *err,
                    size_t errlen)
{
	char full[PATH_MAX], real[PATH_MAX];
	snprintf(full, sizeof full, "%s/%s", dir, path);
	for (size_t i = 0; i < p->nfiles; i++)
		if (!strcmp(p->files[i].path, path)) {
			if (type && !p->files[i].type)
				p->files[i].type = strdup(type);
			else if (type) {
				snprintf(
				    err, errlen,
				    "%s: the schema of two types (%s, %s): give each its own file",
				    path, p->files[i].type, type);
				return -1;
			}
			return 0;
		}
	plan_file *f = &p->files[p->nfiles];
	memset(f, 0, sizeof *f);
	f->path = strdup(path);
	f->type = type ? strdup(type) : NULL;
	p->nfiles++;
	if (!(f->text = read_file(full, err, errlen)))
		return -1;
	json_error_t je;
	json_t *doc = json_loads(f->text, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		snprintf(err, errlen, "%s: line %d: %s", full, je.line, je.text);
		return -1;
	}
	const char *id = json_string_value(json_object_get(doc, "$id"));
	if (id && tjs_uri_is_absolute(id)) {
		f->uri = tjs_uri_strip_fragment(id);
		f->has_id = true;
	} else {
		if (!realpath(full, real)) {
			snprintf(err, errlen, "%s: cannot resolve its path", full);
			json_decref(doc);
			return -1;
		}
		if (asprintf(&f->uri, "file://%s", real) < 0)
			f->uri = NULL;
	}
	json_decref(doc);
	return f->uri ? 0 : -1;
}

/* Every "$ref" string in the document, resolved against `base`. */
static void collect_refs(json_t *j, const char *base, json_t *out)
{
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_object(j)) {
		const char *id = json_string_value(json_object_get(j, "$id"));
		char *nbase = id ? tjs_uri_resolve(base, id) : NULL;
		json_object_foreach(j, k, v)
		{
			if (!strcmp(k, "$ref") && json_is_string(v)) {
				char *abs =
				    tjs_uri_resolve(nbase ? nbase : base, json_string_value(v));
				char *nofrag = abs ? tjs_uri_strip_fragment(abs) : NULL;
				if (nofrag)
					json_object_set_new(out, nofrag,
					                    json_string(json_string_value(v)));
				free(abs);
				free(nofrag);
			} else {
				collect_refs(v, nbase ? nbase : base, out);
			}
		}
		free(nbase);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) collect_refs(v, base, out);
	}
}

static int link_refs(plan *p, plan_file *f)
{
	json_t *doc = json_loads(f->text, 0, NULL);
	json_t *refs = json_object();
	collect_refs(doc, f->uri, refs);
	const char *uri;
	json_t *as_written;
	f->refs = calloc(json_object_size(refs) + 1, sizeof *f->refs);
	json_object_foreach(refs, uri, as_written)
	{
		for (size_t i = 0; i < p->nfiles; i++) {
			plan_file *g = &p->files[i];
			if (g == f || strcmp(g->uri, uri))
				continue;
			plan_ref *r = &f->refs[f->nrefs++];
			r->file = i;
			if (g->has_id) {
				r->name = strdup(g->uri);
			} else {
				char *w = tjs_uri_strip_fragment(json_string_value(as_written));
				r->name = w;
			}
			break; /* one file per URI */
		}
	}
	json_decref(refs);
	json_decref(doc);
	return 0;
}

static int visit(plan *p, size_t i, char *err, size_t errlen)
{
	plan_file *f = &p->files[i];
	if (f->done)
		return 0;
	if (f->visiting) {
		snprintf(err, errlen,
		         "%s: a $ref cycle between catalog files (the registry cannot hold it)",
		         f->path);
		return -1;
	}
	f->visiting = true;
	for (size_t r = 0; r < f->nrefs; r++)
		if (visit(p, f->refs[r].file, err, errlen))
			return -1;
	f->visiting = false;
	f->done = true;
	p->order[p->norder++] = i;
	return 0;
}

int plan_load(plan *p, const char *catalog, enum strategy strategy, const char *topic, char *err,
              size_t errlen)
{
	memset(p, 0, sizeof *p);
	json_error_t je;
	json_t *root = json_load_file(catalog, JSON_REJECT_DUPLICATES, &je);
	int rc = -1;
	if (!root) {
		snprintf(err, errlen, "%s: line %d: %s", catalog, je.line, je.text);
		return -1;
	}
	json_t *types = json_object_get(root, "types");
	json_t *resources = json_object_get(root, "resources");
	if (!json_is_object(types) || (resources && !json_is_array(resources))) {
		snprintf(err, errlen, "%s: \"types\" must be an object, \"resources\" an array",
		         catalog);
		goto out;
	}
	char *copy = strdup(catalog);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", dirname(copy));
	free(copy);
	p->files =
	    calloc(json_object_size(types) + json_array_size(resources) + 1, sizeof *p->files);
	p->order =
	    calloc(json_object_size(types) + json_array_size(resources) + 1, sizeof *p->order);
	const char *type;
	json_t *v;
	size_t i;
	json_object_foreach(types, type, v)
	{
		if (!json_is_string(v)) {
			snprintf(err, errlen, "%s: types[\"%s\"] must be a file name", catalog,
			         type);
			goto out;
		}
		if (add_file(p, dir, json_string_value(v), type, err, errlen))
			goto out;
	}
	json_array_foreach(resources, i, v)
	{
		if (!json_is_string(v)) {
			snprintf(err, errlen, "%s: resources[%zu] must be a file name", catalog, i);
			goto out;
		}
		if (add_file(p, dir, json_string_value(v), NULL, err, errlen))
			goto out;
	}
	for (i = 0; i < p->nfiles; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(p->files[i].uri, p->files[j].uri)) {
				snprintf(err, errlen,
				         "%s and %s have the same $id %s: a $ref to it would be "
				         "ambiguous",
				         p->files[j].path, p->files[i].path, p->files[i].uri);
				goto out;
			}
	for (i = 0; i < p->nfiles; i++) {
		plan_file *f = &p->files[i];
		f->subject =
		    f->type ? plan_subject(strategy, topic, f->type) : resource_subject(f->path);
		link_refs(p, f);
	}
	for (i = 0; i < p->nfiles; i++)
		if (visit(p, i, err, errlen))
			goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void plan_free(plan *p)
{
	for (size_t i = 0; i < p->nfiles; i++) {
		plan_file *f = &p->files[i];
		free(f->path);
		free(f->type);
		free(f->uri);
		free(f->text);
		free(f->subject);
		for (size_t r = 0; r < f->nrefs; r++)
			free(f->refs[r].name);
		free(f->refs);
	}
	free(p->files);
	free(p->order);
	memset(p, 0, sizeof *p);
}
