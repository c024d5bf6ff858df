/* What every kernel shares: `struct column`, the read-only view of a column of unsigned
 * words (an array or memoryview of 1- to 8-byte words, or any sequence of ints, such as a
 * merged table's list), never copied when it is a buffer. Every index the kernels use is
 * checked against it: nothing trusts the file the columns came from. */

#ifndef RELROCHECK_KERNELS_COLUMN_H
#define RELROCHECK_KERNELS_COLUMN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct column {
    const unsigned char *data; /* the words, `width` bytes each, in host order */
    Py_ssize_t n;
    int width;
    Py_buffer view; /* held while data points into it (view.obj != NULL) */
    uint64_t *owned; /* a sequence's ints, converted */
};

/* Opens a column (0), or sets an exception (-1). */
int column_open(PyObject *obj, struct column *c);
/* Releases what column_open took; safe on a zeroed or closed column. */
void column_close(struct column *c);

static inline uint64_t
column_get(const struct column *c, Py_ssize_t i)
{
    if (c->width == 8) {
        uint64_t v;
        memcpy(&v, c->data + 8 * i, 8);
        return v;
    }
    if (c->width == 4) {
        uint32_t v;
        memcpy(&v, c->data + 4 * i, 4);
        return v;
    }
    if (c->width == 2) {
        uint16_t v;
        memcpy(&v, c->data + 2 * i, 2);
        return v;
    }
    return c->data[i];
}

/* The first index in [lo, hi) whose word is > value (the column sorted there). */
static inline Py_ssize_t
upper_bound(const struct column *c, Py_ssize_t lo, Py_ssize_t hi, uint64_t value)
{
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (column_get(c, mid) <= value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Each file's functions, added to the module by module.c. */
extern PyMethodDef kernels_columns_methods[];
extern PyMethodDef kernels_targets_methods[];
extern PyMethodDef kernels_attribution_methods[];
extern PyMethodDef kernels_symbols_methods[];
extern PyMethodDef kernels_json_methods[];

#endif
