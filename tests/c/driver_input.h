// Reading stdin for the host test drivers (tests/c/*_driver.c): one line at a
// time, split into whitespace-separated tokens, with decimal and float32-bits
// parsing. A driver defines DRIVER_NAME and MAX_TOKENS before including this,
// and may point driver_cleanup at what it must free before fail() exits.
// Input that breaks a driver's format exits with status 2.
#ifndef DRIVER_INPUT_H
#define DRIVER_INPUT_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpyml_common.h"

static unsigned long lineno = 0;
static char *line_buf = NULL;
static size_t line_cap = 0;
static char *tokens[MAX_TOKENS];
static void (*driver_cleanup)(void) = NULL;

static void fail(const char *what) {
    fprintf(stderr, DRIVER_NAME ": line %lu: %s\n", lineno, what);
    if (driver_cleanup != NULL) {
        driver_cleanup();
    }
    free(line_buf);
    exit(2);
}

// Reads one line without its '\n' into line_buf; returns its length, or -1 at EOF.
static long read_line(FILE *in) {
    size_t len = 0;
    int c;
    while ((c = fgetc(in)) != EOF && c != '\n') {
        if (len + 2 > line_cap) {
            line_cap = line_cap ? line_cap * 2 : 256;
            char *grown = (char *)realloc(line_buf, line_cap);
            if (grown == NULL) {
                fail("out of memory");
            }
            line_buf = grown;
        }
        line_buf[len++] = (char)c;
    }
    if (c == EOF && len == 0) {
        return -1;
    }
    if (line_buf == NULL) {
        line_cap = 1;
        line_buf = (char *)malloc(line_cap);
        if (line_buf == NULL) {
            fail("out of memory");
        }
    }
    line_buf[len] = '\0';
    lineno++;
    return (long)len;
}

// Splits s in place into tokens[]; returns how many.
static size_t split(char *s) {
    size_t n = 0;
    for (char *tok = strtok(s, " \t\r"); tok != NULL; tok = strtok(NULL, " \t\r")) {
        if (n == MAX_TOKENS) {
            fail("too many tokens");
        }
        tokens[n++] = tok;
    }
    return n;
}

static long long parse_int(const char *tok, long long lo, long long hi) {
    char *end;
    errno = 0;
    long long v = strtoll(tok, &end, 10);
    if (errno != 0 || end == tok || *end != '\0' || v < lo || v > hi) {
        fail("bad decimal number");
    }
    return v;
}

// The IEEE-754 bits of a float32 written as 8 hex digits.
static uint32_t parse_bits(const char *tok) {
    uint32_t bits;
    if (mpyml_parse_hex32(tok, strlen(tok), &bits) != MPYML_OK) {
        fail("bad float32 bits");
    }
    return bits;
}

#endif // DRIVER_INPUT_H
