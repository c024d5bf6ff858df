/* Whole-column kernels: sortedness, runs and gaps, selection, relocations per page
 * (twins in relrocheck/columns.py, reloctables.py and measure.py). */

#include "column.h"

PyDoc_STRVAR(is_sorted_doc, "is_sorted(column) -> bool: whether it never decreases "
             "(columns.is_sorted).");

static PyObject *
is_sorted(PyObject *self, PyObject *arg)
{
    struct column c;
    if (column_open(arg, &c) < 0)
        return NULL;
    int sorted = 1;
    for (Py_ssize_t i = 1; i < c.n && sorted; i++)
        sorted = column_get(&c, i - 1) <= column_get(&c, i);
    column_close(&c);
    return PyBool_FromLong(sorted);
}

PyDoc_STRVAR(leading_run_doc, "leading_run(column, value) -> int: length of the run of "
             "value that starts the column (reloctables.leading_run).");

static PyObject *
leading_run(PyObject *self, PyObject *args)
{
    PyObject *obj, *value_obj;
    if (!PyArg_ParseTuple(args, "OO:leading_run", &obj, &value_obj))
        return NULL;
    struct column c;
    if (column_open(obj, &c) < 0)
        return NULL;
    Py_ssize_t run = 0;
    int overflow = 0;
    long long signed_value = PyLong_AsLongLongAndOverflow(value_obj, &overflow);
    if (signed_value == -1 && PyErr_Occurred()) {
        column_close(&c);
        return NULL;
    }
    /* A negative value or one past the words' width matches no word. */
    if (!overflow && signed_value >= 0
        && (c.width == 8 || (unsigned long long)signed_value <= UINT32_MAX)) {
        uint64_t value = (uint64_t)signed_value;
        while (run < c.n && column_get(&c, run) == value)
            run++;
    }
    else if (overflow > 0 && c.width == 8) {
        unsigned long long value = PyLong_AsUnsignedLongLong(value_obj);
        if (PyErr_Occurred())
            PyErr_Clear(); /* beyond 64 bits: matches nothing */
        else
            while (run < c.n && column_get(&c, run) == value)
                run++;
    }
    column_close(&c);
    return PyLong_FromSsize_t(run);
}

PyDoc_STRVAR(gap_marks_doc, "gap_marks(column, limit) -> (marks, gaps): per pair of "
             "neighbours, 1 where the gap exceeds limit, and the gap's low byte "
             "(columns.gap_marks).");

static PyObject *
gap_marks(PyObject *self, PyObject *args)
{
    PyObject *obj;
    unsigned long long limit;
    if (!PyArg_ParseTuple(args, "OK:gap_marks", &obj, &limit))
        return NULL;
    struct column c;
    if (column_open(obj, &c) < 0)
        return NULL;
    if (limit >= (1ULL << (8 * c.width - 1))) {
        column_close(&c);
        return PyErr_Format(PyExc_ValueError, "limit %llu is out of range", limit);
    }
    Py_ssize_t pairs = c.n > 1 ? c.n - 1 : 0;
    PyObject *marks = PyBytes_FromStringAndSize(NULL, pairs);
    PyObject *gaps = PyBytes_FromStringAndSize(NULL, pairs);
    if (marks == NULL || gaps == NULL)
        goto fail;
    char *m = PyBytes_AS_STRING(marks), *g = PyBytes_AS_STRING(gaps);
    for (Py_ssize_t i = 0; i < pairs; i++) {
        uint64_t a = column_get(&c, i), b = column_get(&c, i + 1);
        if (b < a) {
            PyErr_SetString(PyExc_ValueError, "runs of an unsorted column");
            goto fail;
        }
        m[i] = (b - a) > limit;
        g[i] = (char)((b - a) & 0xFF);
    }
    column_close(&c);
    return Py_BuildValue("(NN)", marks, gaps);
fail:
    column_close(&c);
    Py_XDECREF(marks);
    Py_XDECREF(gaps);
    return NULL;
}

PyDoc_STRVAR(compress_doc,
"compress(column, selector) -> bytes: the bytes of the column's items whose selector byte\n"
"is not 0, as far as the shorter of the two goes (itertools.compress); the column is any\n"
"contiguous buffer of 1-, 2-, 4- or 8-byte items. As columns.compressed.");

static PyObject *
compress(PyObject *self, PyObject *args)
{
    Py_buffer column, selector;
    if (!PyArg_ParseTuple(args, "y*y*:compress", &column, &selector))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t size = column.itemsize;
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        PyErr_SetString(PyExc_TypeError, "compress: items of 1, 2, 4 or 8 bytes");
        goto done;
    }
    Py_ssize_t n = column.len / size, kept = 0;
    if (selector.len < n)
        n = selector.len;
    const char *keep = selector.buf, *from = column.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        kept += keep[i] != 0;
    result = PyBytes_FromStringAndSize(NULL, kept * size);
    if (result == NULL)
        goto done;
    char *to = PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++)
        if (keep[i]) {
            memcpy(to, from + i * size, size);
            to += size;
        }
done:
    PyBuffer_Release(&column);
    PyBuffer_Release(&selector);
    return result;
}

PyDoc_STRVAR(page_counts_doc,
"page_counts(columns, pages, shift) -> tuple: per page number of the sorted `pages`, how\n"
"many offsets of the columns lie on it (page = offset >> shift). As\n"
"measure.counts_per_page_python.");

static PyObject *
page_counts(PyObject *self, PyObject *args)
{
    PyObject *columns, *pages_obj;
    int shift;
    if (!PyArg_ParseTuple(args, "O!Oi:page_counts", &PyList_Type, &columns, &pages_obj,
                          &shift))
        return NULL;
    if (shift < 0 || shift > 63) {
        PyErr_SetString(PyExc_ValueError, "page_counts: shift out of range");
        return NULL;
    }
    struct column pages, offsets = {0};
    if (column_open(pages_obj, &pages) < 0)
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t *counts = PyMem_Calloc(pages.n ? pages.n : 1, sizeof *counts);
    if (counts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t t = 0; t < PyList_GET_SIZE(columns); t++) {
        if (column_open(PyList_GET_ITEM(columns, t), &offsets) < 0)
            goto done;
        Py_ssize_t j = 0;
        for (Py_ssize_t i = 0; i < offsets.n && pages.n; i++) {
            uint64_t page = column_get(&offsets, i) >> shift;
            /* The same page or the next one; else (a jump) a bisection. */
            if (column_get(&pages, j) != page) {
                if (j + 1 < pages.n && column_get(&pages, j + 1) == page)
                    j++;
                else {
                    Py_ssize_t k = upper_bound(&pages, 0, pages.n, page) - 1;
                    if (k < 0 || column_get(&pages, k) != page)
                        continue; /* not one of the pages: not counted */
                    j = k;
                }
            }
            counts[j]++;
        }
        column_close(&offsets);
    }
    result = PyTuple_New(pages.n);
    for (Py_ssize_t j = 0; result != NULL && j < pages.n; j++) {
        PyObject *n = PyLong_FromSsize_t(counts[j]);
        if (n == NULL)
            Py_CLEAR(result);
        else
            PyTuple_SET_ITEM(result, j, n);
    }
done:
    column_close(&offsets);
    column_close(&pages);
    PyMem_Free(counts);
    return result;
}

PyMethodDef kernels_columns_methods[] = {
    {"is_sorted", is_sorted, METH_O, is_sorted_doc},
    {"leading_run", leading_run, METH_VARARGS, leading_run_doc},
    {"gap_marks", gap_marks, METH_VARARGS, gap_marks_doc},
    {"compress", compress, METH_VARARGS, compress_doc},
    {"page_counts", page_counts, METH_VARARGS, page_counts_doc},
    {NULL, NULL, 0, NULL},
};
