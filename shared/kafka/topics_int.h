/* Internal to shared/kafka/topics*.c. */
#ifndef TRIBUTARY_TOPICS_INT_H
#define TRIBUTARY_TOPICS_INT_H

#include <stddef.h>

/* Formats into `err` and returns -1. */
int tb_topics__fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
