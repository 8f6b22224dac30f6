/*
 * ECMA-262 regular expressions (as JSON Schema requires) on PCRE2.
 *
 * The two dialects differ in ways that change results silently, so patterns
 * are rewritten before PCRE2 sees them: \d \w \s and `.` get their ECMA
 * meaning, long Unicode property names become the short ones PCRE2 10.42
 * knows, \uXXXX (and surrogate pairs) become \x{...}, and escapes ECMA does
 * not have are refused instead of taking PCRE2's meaning. `$` only matches
 * at the very end (PCRE2_DOLLAR_ENDONLY). UTF mode without UCP keeps \b ASCII.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ECMA_WS                                                                                    \
	"\\t\\n\\x{0B}\\f\\r "                                                                     \
	"\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{"     \
	"FEFF}"
#define ECMA_NOT_WS                                                                                \
	"\\x{0}-\\x{8}\\x{E}-\\x{1F}\\x{21}-\\x{9F}\\x{A1}-\\x{167F}\\x{1681}-\\x{1FFF}\\x{200B}-" \
	"\\x{2027}"                                                                                \
	"\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}\\x{3001}-\\x{FEFE}\\x{FF00}-"   \
	"\\x{10FFFF}"
#define ECMA_NOT_DIGIT "\\x{0}-\\x{2F}\\x{3A}-\\x{10FFFF}"
#define ECMA_NOT_WORD "\\x{0}-\\x{2F}\\x{3A}-\\x{40}\\x{5B}-\\x{5E}\\x{60}\\x{7B}-\\x{10FFFF}"

static const struct {
	const char *lng, *shrt;
} gc_names[] = {
    {"Letter", "L"},
    {"Cased_Letter", "L&"},
    {"Uppercase_Letter", "Lu"},
    {"Lowercase_Letter", "Ll"},
    {"Titlecase_Letter", "Lt"},
    {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"},
    {"Mark", "M"},
    {"Combining_Mark", "M"},
    {"Nonspacing_Mark", "Mn"},
    {"Spacing_Mark", "Mc"},
    {"Enclosing_Mark", "Me"},
    {"Number", "N"},
    {"Decimal_Number", "Nd"},
    {"digit", "Nd"},
    {"Letter_Number", "Nl"},
    {"Other_Number", "No"},
    {"Punctuation", "P"},
    {"punct", "P"},
    {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"},
    {"Open_Punctuation", "Ps"},
    {"Close_Punctuation", "Pe"},
    {"Initial_Punctuation", "Pi"},
    {"Final_Punctuation", "Pf"},
    {"Other_Punctuation", "Po"},
    {"Symbol", "S"},
    {"Math_Symbol", "Sm"},
    {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"},
    {"Other_Symbol", "So"},
    {"Separator", "Z"},
    {"Space_Separator", "Zs"},
    {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"},
    {"Other", "C"},
    {"Control", "Cc"},
    {"cntrl", "Cc"},
    {"Format", "Cf"},
    {"Surrogate", "Cs"},
    {"Private_Use", "Co"},
    {"Unassigned", "Cn"},
};

typedef struct rx {
	const char *s;
	size_t n, i;
	tjs_buf *out;
	char *err;
	size_t errlen;
	bool failed;
} rx;

static void rx_fail(rx *r, const char *msg)
{
	if (!r->failed && r->err && r->errlen)
		snprintf(r->err, r->errlen, "%s at offset %zu", msg, r->i);
	r->failed = true;
}

static const char *gc_short(const char *name, size_t n)
{
	for (size_t k = 0; k < sizeof(gc_names) / sizeof(gc_names[0]); k++)
		if (strlen(gc_names[k].lng) == n && memcmp(gc_names[k].lng, name, n) == 0)
			return gc_names[k].shrt;
	return NULL;
}

/* \p{...} / \P{...}; r->i is on the 'p'. */
static void rx_property(rx *r)
{
	char kind = r->s[r->i];
	if (r->i + 1 >= r->n || r->s[r->i + 1] != '{') {
		rx_fail(r, "\\p needs {name}");
		return;
	}
	size_t start = r->i + 2, end = start;
	while (end < r->n && r->s[end] != '}')
		end++;
	if (end >= r->n || end == start) {
		rx_fail(r, "unterminated \\p{");
		return;
	}
	const char *name = r->s + start;
	size_t len = end - start;
	const char *eq = memchr(name, '=', len);
	tjs_buf_putc(r->out, '\\');
	tjs_buf_putc(r->out, kind);
	tjs_buf_putc(r->out, '{');
	if (eq) {
		size_t kl = (size_t)(eq - name);
		const char *val = eq + 1;
		size_t vl = len - kl - 1;
		if ((kl == 16 && memcmp(name, "General_Category", 16) == 0) ||
		    (kl == 2 && memcmp(name, "gc", 2) == 0)) {
			const char *s = gc_short(val, vl);
			if (s)
				tjs_buf_puts(r->out, s);
			else
				tjs_buf_add(r->out, val, vl);
		} else if ((kl == 6 && memcmp(name, "Script", 6) == 0) ||
		           (kl == 2 && memcmp(name, "sc", 2) == 0)) {
			tjs_buf_puts(r->out, "sc:");
			tjs_buf_add(r->out, val, vl);
		} else if ((kl == 17 && memcmp(name, "Script_Extensions", 17) == 0) ||
		           (kl == 3 && memcmp(name, "scx", 3) == 0)) {
			tjs_buf_puts(r->out, "scx:");
			tjs_buf_add(r->out, val, vl);
		} else {
			rx_fail(r, "unknown Unicode property");
			return;
		}
	} else {
		const char *s = gc_short(name, len);
		if (s)
			tjs_buf_puts(r->out, s);
		else
			tjs_buf_add(r->out, name, len);
	}
	tjs_buf_putc(r->out, '}');
	r->i = end; /* on '}' */
}

static void put_cp(rx *r, uint32_t cp)
{
	tjs_buf_printf(r->out, "\\x{%X}", (unsigned)cp);
}

/* \u escapes; r->i on 'u'. Returns the code point or -1. */
static long rx_unicode(rx *r)
{
	const char *s = r->s;
	size_t i = r->i + 1;
	if (i < r->n && s[i] == '{') {
		long v = 0;
		size_t j = i + 1;
		while (j < r->n && s[j] != '}') {
			int h = tjs_hexval(s[j]);
			if (h < 0 || v > 0x10FFFF)
				return -1;
			v = v * 16 + h;
			j++;
		}
		if (j >= r->n || j == i + 1 || v > 0x10FFFF)
			return -1;
		r->i = j;
		return v;
	}
	if (i + 4 > r->n)
		return -1;
	long v = 0;
	for (size_t k = 0; k < 4; k++) {
		int h = tjs_hexval(s[i + k]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	r->i = i + 3;
	/* a surrogate pair written as two escapes is one code point */
	if (v >= 0xD800 && v <= 0xDBFF && r->i + 6 < r->n && s[r->i + 1] == '\\' &&
	    s[r->i + 2] == 'u') {
		long lo = 0;
		bool ok = true;
		for (size_t k = 0; k < 4; k++) {
			int h = tjs_hexval(s[r->i + 3 + k]);
			if (h < 0) {
				ok = false;
				break;
			}
			lo = lo * 16 + h;
		}
		if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
			r->i += 6;
			return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
		}
	}
	return v;
}

/* One escape; r->i on the char after '\\'. */
static void rx_escape(rx *r, bool in_class)
{
	if (r->i >= r->n) {
		rx_fail(r, "trailing backslash");
		return;
	}
	char c = r->s[r->i];
	switch (c) {
	case 'd':
		tjs_buf_puts(r->out, in_class ? "0-9" : "[0-9]");
		return;
	case 'D':
		tjs_buf_puts(r->out, in_class ? ECMA_NOT_DIGIT : "[^0-9]");
		return;
	case 'w':
		tjs_buf_puts(r->out, in_class ? "A-Za-z0-9_" : "[A-Za-z0-9_]");
		return;
	case 'W':
		tjs_buf_puts(r->out, in_class ? ECMA_NOT_WORD : "[^A-Za-z0-9_]");
		return;
	case 's':
		tjs_buf_puts(r->out, in_class ? ECMA_WS : "[" ECMA_WS "]");
		return;
	case 'S':
		tjs_buf_puts(r->out, in_class ? ECMA_NOT_WS : "[^" ECMA_WS "]");
		return;
	case 'b':
		tjs_buf_puts(r->out, in_class ? "\\x{8}" : "\\b");
		return;
	case 'B':
		if (in_class)
			rx_fail(r, "\\B in a class");
		else
			tjs_buf_puts(r->out, "\\B");
		return;
	case 'p':
	case 'P':
		rx_property(r);
		return;
	case 'u': {
		long cp = rx_unicode(r);
		if (cp < 0)
			rx_fail(r, "bad \\u escape");
		else
			put_cp(r, (uint32_t)cp);
		return;
	}
	case 'x':
		if (r->i + 2 < r->n && tjs_hexval(r->s[r->i + 1]) >= 0 &&
		    tjs_hexval(r->s[r->i + 2]) >= 0) {
			put_cp(r, (uint32_t)(tjs_hexval(r->s[r->i + 1]) * 16 +
			                     tjs_hexval(r->s[r->i + 2])));
			r->i += 2;
		} else {
			rx_fail(r, "bad \\x escape");
		}
		return;
	case 'c':
		if (r->i + 1 < r->n && ((r->s[r->i + 1] >= 'a' && r->s[r->i + 1] <= 'z') ||
		                        (r->s[r->i + 1] >= 'A' && r->s[r->i + 1] <= 'Z'))) {
			r->i++;
			put_cp(r, (uint32_t)(r->s[r->i] % 32));
		} else {
			rx_fail(r, "bad \\c escape");
		}
		return;
	case '0':
		if (r->i + 1 < r->n && r->s[r->i + 1] >= '0' && r->s[r->i + 1] <= '9')
			rx_fail(r, "octal escapes are not allowed");
		else
			tjs_buf_puts(r->out, "\\x{0}");
		return;
	case 't':
	case 'n':
	case 'r':
	case 'f':
		tjs_buf_putc(r->out, '\\');
		tjs_buf_putc(r->out, c);
		return;
	case 'v':
		tjs_buf_puts(r->out, "\\x{B}");
		return;
	case 'k':
		if (in_class || r->i + 1 >= r->n || r->s[r->i + 1] != '<') {
			rx_fail(r, "bad \\k escape");
			return;
		}
		tjs_buf_putc(r->out, '\\');
		tjs_buf_putc(r->out, 'k');
		return;
	default:
		break;
	}
	if (c >= '1' && c <= '9') {
		if (in_class) {
			rx_fail(r, "backreference in a class");
			return;
		}
		size_t j = r->i;
		unsigned v = 0;
		while (j < r->n && r->s[j] >= '0' && r->s[j] <= '9' && v < 100000)
			v = v * 10 + (unsigned)(r->s[j++] - '0');
		tjs_buf_printf(r->out, "\\g{%u}", v);
		r->i = j - 1;
		return;
	}
	if (strchr("^$\\.*+?()[]{}|/", c) || (in_class && c == '-')) {
		tjs_buf_putc(r->out, '\\');
		tjs_buf_putc(r->out, c);
		return;
	}
	rx_fail(r, "escape not allowed in ECMA-262 unicode mode");
}

static void rx_class(rx *r)
{
	/* r->i on '[' */
	r->i++;
	bool neg = r->i < r->n && r->s[r->i] == '^';
	if (neg)
		r->i++;
	if (r->i < r->n && r->s[r->i] == ']') {
		/* ECMA: [] never matches, [^] matches anything */
		tjs_buf_puts(r->out, neg ? "[\\s\\S]" : "(?!)");
		return;
	}
	tjs_buf_puts(r->out, neg ? "[^" : "[");
	while (r->i < r->n && !r->failed) {
		char c = r->s[r->i];
		if (c == ']') {
			tjs_buf_putc(r->out, ']');
			return;
		}
		if (c == '\\') {
			r->i++;
			rx_escape(r, true);
		} else if (c == '[') {
			tjs_buf_puts(r->out, "\\[");
		} else {
			tjs_buf_putc(r->out, c);
		}
		r->i++;
	}
	rx_fail(r, "unterminated character class");
}

int tjs_regex_translate(const char *src, size_t n, tjs_buf *out, char *err, size_t errlen)
{
	rx r = {src, n, 0, out, err, errlen, false};
	while (r.i < n && !r.failed) {
		char c = src[r.i];
		switch (c) {
		case '\\':
			r.i++;
			rx_escape(&r, false);
			break;
		case '[':
			rx_class(&r);
			break;
		case '.':
			tjs_buf_puts(out, "[^\\n\\r\\x{2028}\\x{2029}]");
			break;
		case '(':
			if (r.i + 1 < n && src[r.i + 1] == '?') {
				char d = r.i + 2 < n ? src[r.i + 2] : '\0';
				char e = r.i + 3 < n ? src[r.i + 3] : '\0';
				bool ok =
				    d == ':' || d == '=' || d == '!' ||
				    (d == '<' && (e == '=' || e == '!' || (e >= 'A' && e <= 'Z') ||
				                  (e >= 'a' && e <= 'z') || e == '_' || e == '$'));
				if (!ok) {
					rx_fail(&r, "group syntax not in ECMA-262");
					break;
				}
			}
			tjs_buf_putc(out, c);
			break;
		default:
			tjs_buf_putc(out, c);
			break;
		}
		r.i++;
	}
	if (out->oom)
		rx_fail(&r, "out of memory");
	return r.failed ? -1 : 0;
}

pcre2_code *tjs_regex_compile(const char *src, size_t n, char *err, size_t errlen)
{
	tjs_buf b = {0};
	if (tjs_regex_translate(src, n, &b, err, errlen) < 0) {
		tjs_buf_free(&b);
		return NULL;
	}
	int code;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)(b.s ? b.s : ""), b.len,
	                               PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C,
	                               &code, &off, NULL);
	tjs_buf_free(&b);
	if (!re) {
		if (err && errlen) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(code, msg, sizeof(msg));
			snprintf(err, errlen, "%s", (const char *)msg);
		}
		return NULL;
	}
	/* JIT is an optimisation: without it (unsupported CPU, no memory) the
	 * interpreter runs the same pattern under the same limits. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

pcre2_match_context *tjs_regex_match_context(void)
{
	pcre2_match_context *mc = pcre2_match_context_create(NULL);
	if (!mc)
		return NULL;
	pcre2_set_match_limit(mc, TJS_PCRE2_MATCH_LIMIT);
	pcre2_set_depth_limit(mc, TJS_PCRE2_DEPTH_LIMIT);
	return mc;
}

int tjs_regex_search(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md,
                     pcre2_match_context *mc)
{
	int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, mc);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	return -1;
}

int tjs_regex_search_utf8(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md,
                          pcre2_match_context *mc)
{
	/* the JIT entry skips pcre2_match's option and UTF checks; it honours
	 * the match limit as pcre2_match does when it runs JIT code */
	int rc = pcre2_jit_match(re, (PCRE2_SPTR)s, n, 0, 0, md, mc);
	if (rc == PCRE2_ERROR_JIT_BADOPTION)
		rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, md, mc);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	return -1;
}
