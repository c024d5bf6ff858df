/* Opening and closing a `struct column` (column.h). */

#include "column.h"

int
column_open(PyObject *obj, struct column *c)
{
    memset(c, 0, sizeof *c);
    if (PyObject_CheckBuffer(obj)) {
        if (PyObject_GetBuffer(obj, &c->view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            return -1;
        const char *f = c->view.format ? c->view.format : "B";
        if (*f == '@' || *f == '=')
            f++;
        Py_ssize_t size = c->view.itemsize;
        if ((size != 1 && size != 2 && size != 4 && size != 8) || f[1] != '\0'
            || strchr("BHILQK", f[0]) == NULL) {
            PyBuffer_Release(&c->view);
            c->view.obj = NULL;
            PyErr_SetString(PyExc_TypeError, "a column is of unsigned 1- to 8-byte words");
            return -1;
        }
        c->data = c->view.buf;
        c->width = (int)c->view.itemsize;
        c->n = c->view.len / c->view.itemsize;
        return 0;
    }
    PyObject *seq = PySequence_Fast(obj, "a column is a buffer or a sequence of ints");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    c->owned = PyMem_Malloc((n ? n : 1) * sizeof(uint64_t));
    if (c->owned == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long v = PyLong_AsUnsignedLongLong(items[i]);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            PyMem_Free(c->owned);
            c->owned = NULL;
            return -1;
        }
        c->owned[i] = v;
    }
    Py_DECREF(seq);
    c->data = (const unsigned char *)c->owned;
    c->width = 8;
    c->n = n;
    return 0;
}

void
column_close(struct column *c)
{
    if (c->view.obj != NULL)
        PyBuffer_Release(&c->view);
    c->view.obj = NULL;
    PyMem_Free(c->owned);
    c->owned = NULL;
}
