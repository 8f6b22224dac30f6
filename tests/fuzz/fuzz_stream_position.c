/*
 * libFuzzer target for the tributary_stream position parser (Last-Event-ID
 * and ?from= come straight from clients). Besides memory safety it checks
 * that whatever parses formats back to a position that parses to the same
 * entries. Standalone: the parser has no nginx dependency.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       tests/fuzz/fuzz_stream_position.c -o fuzz_stream_position
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../nginx-module/ngx_tributary_stream_position.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ngx_tributary_pos_entry_t  e[NGX_TRIBUTARY_POS_MAX_PARTITIONS];
    static ngx_tributary_pos_entry_t  e2[NGX_TRIBUTARY_POS_MAX_PARTITIONS];
    static int64_t                    next[NGX_TRIBUTARY_POS_MAX_PARTITIONS];
    static char                       text[NGX_TRIBUTARY_POS_MAX_PARTITIONS
                                           * NGX_TRIBUTARY_POS_ENTRY_LEN];
    static char                       text2[sizeof(text)];
    const char                       *err = NULL;
    size_t                            n, n2, i, len;
    ngx_tributary_pos_kind_e          kind;

    kind = ngx_tributary_stream_position_parse((const char *) data, size, e,
                                               NGX_TRIBUTARY_POS_MAX_PARTITIONS,
                                               &n, &err);

    if (kind == NGX_TRIBUTARY_POS_ERROR) {
        if (err == NULL || *err == '\0') {
            abort();
        }
        return 0;
    }

    if (kind != NGX_TRIBUTARY_POS_OFFSETS) {
        return 0;
    }

    if (n == 0 || n > NGX_TRIBUTARY_POS_MAX_PARTITIONS) {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (e[i].partition < 0 || e[i].offset < 0
            || (i && e[i].partition <= e[i - 1].partition))
        {
            abort();
        }
    }

    /*
     * Round trip through the writer, which lists partitions 0 .. count-1;
     * only dense positions of that shape can come back identical.
     */
    if ((size_t) e[n - 1].partition != n - 1) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        next[i] = e[i].offset;
    }

    len = ngx_tributary_stream_position_format(text, sizeof(text), next, n);
    if (len == 0) {
        abort();
    }

    if (ngx_tributary_stream_position_parse(text, len, e2,
                                            NGX_TRIBUTARY_POS_MAX_PARTITIONS,
                                            &n2, &err)
        != NGX_TRIBUTARY_POS_OFFSETS
        || n2 != n || memcmp(e, e2, n * sizeof(e[0])) != 0)
    {
        abort();
    }

    /* The written form is canonical: writing it again gives the same. */
    for (i = 0; i < n2; i++) {
        next[i] = e2[i].offset;
    }

    if (ngx_tributary_stream_position_format(text2, sizeof(text2), next, n2)
        != len || memcmp(text, text2, len) != 0)
    {
        abort();
    }

    return 0;
}
