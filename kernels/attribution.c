/* Attribution of relocated words to owners (twin: relrocheck/attribution.py). */

#include "column.h"

struct pair {
    uint64_t slot; /* owner + 1: slot 0 is "in no section" (owner -1) */
    uint64_t page;
};

static int
by_page_then_slot(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->page != y->page)
        return x->page < y->page ? -1 : 1;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

static int
by_slot_then_page(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return (x->page > y->page) - (x->page < y->page);
}

/* Builds {name: count} for the nonzero counts, in the names' order. */
static PyObject *
named_counts(PyObject *names, const int64_t *counts, Py_ssize_t stride)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++) {
        int64_t n = counts[k * stride];
        if (!n)
            continue;
        PyObject *v = PyLong_FromLongLong(n);
        if (v == NULL || PyDict_SetItem(d, PyTuple_GET_ITEM(names, k), v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

PyDoc_STRVAR(attribute_doc,
"attribute(tables, bounds, owner_of, shift, class_names, kind_names) -> (stats, pages)\n\n"
"tables: one (sorted offsets, kind codes) per class of class_names; bounds: the sorted\n"
"interval starts (bounds[0] == 0), owner_of: each interval's owner (-1: none). stats:\n"
"owner -> ({class: n}, {kind: n}, pages touched, of them pages no other owner touches,\n"
"the touched page numbers sorted), for owners with relocations; pages: the set of all\n"
"relocated page numbers. As attribution.attribute.");

static PyObject *
attribute(PyObject *self, PyObject *args)
{
    PyObject *tables, *bounds_obj, *owner_obj, *class_names, *kind_names;
    int shift;
    if (!PyArg_ParseTuple(args, "O!OOiO!O!:attribute", &PyList_Type, &tables, &bounds_obj,
                          &owner_obj, &shift, &PyTuple_Type, &class_names, &PyTuple_Type,
                          &kind_names))
        return NULL;
    Py_ssize_t ntables = PyList_GET_SIZE(tables), nkinds = PyTuple_GET_SIZE(kind_names);
    if (shift < 0 || shift > 63 || ntables != PyTuple_GET_SIZE(class_names)) {
        PyErr_SetString(PyExc_ValueError, "attribute: shift or class names out of range");
        return NULL;
    }
    PyObject *result = NULL, *stats = NULL, *page_set = NULL;
    struct column bounds = {0}, offsets = {0};
    struct pair *pairs = NULL;
    int64_t *class_counts = NULL, *kind_counts = NULL, *exclusive = NULL, *slot_of = NULL;
    Py_ssize_t npairs = 0, cap = 0, nslots;
    Py_buffer kinds = {0};

    if (column_open(bounds_obj, &bounds) < 0)
        return NULL;
    PyObject *owners = PySequence_Fast(owner_obj, "owner_of is a sequence of ints");
    if (owners == NULL)
        goto done;
    Py_ssize_t nbounds = bounds.n;
    if (PySequence_Fast_GET_SIZE(owners) != nbounds || nbounds == 0
        || column_get(&bounds, 0) != 0) {
        PyErr_SetString(PyExc_ValueError, "attribute: bounds and owner_of do not match");
        goto done;
    }
    slot_of = PyMem_Malloc(nbounds * sizeof *slot_of);
    if (slot_of == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    nslots = 1;
    for (Py_ssize_t j = 0; j < nbounds; j++) {
        long long owner = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(owners, j));
        if (owner == -1 && PyErr_Occurred())
            goto done;
        if (owner < -1 || owner >= PY_SSIZE_T_MAX / 16) {
            PyErr_SetString(PyExc_ValueError, "attribute: an owner index is out of range");
            goto done;
        }
        if (j && column_get(&bounds, j) <= column_get(&bounds, j - 1)) {
            PyErr_SetString(PyExc_ValueError, "attribute: bounds are not increasing");
            goto done;
        }
        slot_of[j] = owner + 1;
        if (owner + 2 > nslots)
            nslots = owner + 2;
    }
    class_counts = PyMem_Calloc((size_t)ntables * nslots, sizeof(int64_t));
    kind_counts = PyMem_Calloc((size_t)nslots * (nkinds ? nkinds : 1), sizeof(int64_t));
    if (class_counts == NULL || kind_counts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t t = 0; t < ntables; t++) {
        PyObject *entry = PyList_GET_ITEM(tables, t);
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
            PyErr_SetString(PyExc_TypeError, "attribute: a table is (offsets, kinds)");
            goto done;
        }
        if (column_open(PyTuple_GET_ITEM(entry, 0), &offsets) < 0)
            goto done;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(entry, 1), &kinds, PyBUF_SIMPLE) < 0)
            goto done;
        if (kinds.len != offsets.n) {
            PyErr_SetString(PyExc_ValueError, "attribute: kinds and offsets differ in length");
            goto done;
        }
        const unsigned char *kind = kinds.buf;
        Py_ssize_t j = 0;
        uint64_t last_slot = UINT64_MAX, last_page = 0;
        for (Py_ssize_t i = 0; i < offsets.n; i++) {
            uint64_t off = column_get(&offsets, i);
            /* The next interval, or (a jump, or offsets not sorted) a bisection: at most
             * log(bounds) steps per offset, whatever the order. */
            if (off < column_get(&bounds, j)
                || (j + 1 < nbounds && column_get(&bounds, j + 1) <= off)) {
                if (off >= column_get(&bounds, j) && (j + 2 >= nbounds
                                                      || column_get(&bounds, j + 2) > off))
                    j++;
                else
                    j = upper_bound(&bounds, 0, nbounds, off) - 1;
            }
            int64_t slot = slot_of[j];
            if (kind[i] >= nkinds) {
                PyErr_SetString(PyExc_ValueError, "attribute: a kind code is out of range");
                goto done;
            }
            class_counts[t * nslots + slot]++;
            kind_counts[slot * nkinds + kind[i]]++;
            uint64_t page = off >> shift;
            if ((uint64_t)slot != last_slot || page != last_page) {
                if (npairs == cap) {
                    Py_ssize_t grown = cap ? cap * 2 : 1024;
                    struct pair *p = PyMem_Realloc(pairs, grown * sizeof *pairs);
                    if (p == NULL) {
                        PyErr_NoMemory();
                        goto done;
                    }
                    pairs = p;
                    cap = grown;
                }
                pairs[npairs].slot = slot;
                pairs[npairs].page = page;
                npairs++;
                last_slot = slot;
                last_page = page;
            }
        }
        PyBuffer_Release(&kinds);
        kinds.obj = NULL;
        column_close(&offsets);
    }
    /* Distinct (owner, page) pairs; a page is exclusive to an owner no other one touches. */
    if (npairs)
        qsort(pairs, npairs, sizeof *pairs, by_page_then_slot);
    Py_ssize_t unique = 0;
    for (Py_ssize_t i = 0; i < npairs; i++)
        if (!unique || pairs[i].page != pairs[unique - 1].page
            || pairs[i].slot != pairs[unique - 1].slot)
            pairs[unique++] = pairs[i];
    npairs = unique;
    exclusive = PyMem_Calloc(nslots, sizeof(int64_t));
    page_set = PySet_New(NULL);
    if (exclusive == NULL || page_set == NULL) {
        if (exclusive == NULL)
            PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < npairs;) {
        Py_ssize_t end = i + 1;
        while (end < npairs && pairs[end].page == pairs[i].page)
            end++;
        if (end - i == 1)
            exclusive[pairs[i].slot]++;
        PyObject *page = PyLong_FromUnsignedLongLong(pairs[i].page);
        if (page == NULL || PySet_Add(page_set, page) < 0) {
            Py_XDECREF(page);
            goto done;
        }
        Py_DECREF(page);
        i = end;
    }
    if (npairs)
        qsort(pairs, npairs, sizeof *pairs, by_slot_then_page);
    stats = PyDict_New();
    if (stats == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < npairs;) {
        uint64_t slot = pairs[i].slot;
        Py_ssize_t end = i + 1;
        while (end < npairs && pairs[end].slot == slot)
            end++;
        PyObject *pages = PyTuple_New(end - i);
        PyObject *per_class = named_counts(class_names, class_counts + slot, nslots);
        PyObject *targets = named_counts(kind_names, kind_counts + slot * nkinds, 1);
        PyObject *key = PyLong_FromLongLong((long long)slot - 1);
        PyObject *value = NULL;
        if (pages != NULL) {
            for (Py_ssize_t k = i; k < end; k++) {
                PyObject *page = PyLong_FromUnsignedLongLong(pairs[k].page);
                if (page == NULL) {
                    Py_CLEAR(pages);
                    break;
                }
                PyTuple_SET_ITEM(pages, k - i, page);
            }
        }
        if (pages && per_class && targets && key)
            value = Py_BuildValue("(NNnLN)", per_class, targets, end - i,
                                  (long long)exclusive[slot], pages);
        else {
            Py_XDECREF(pages);
            Py_XDECREF(per_class);
            Py_XDECREF(targets);
        }
        if (value == NULL || PyDict_SetItem(stats, key, value) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(value);
            goto done;
        }
        Py_DECREF(key);
        Py_DECREF(value);
        i = end;
    }
    result = Py_BuildValue("(OO)", stats, page_set);
done:
    if (kinds.obj != NULL)
        PyBuffer_Release(&kinds);
    column_close(&offsets);
    column_close(&bounds);
    Py_XDECREF(owners);
    Py_XDECREF(stats);
    Py_XDECREF(page_set);
    PyMem_Free(pairs);
    PyMem_Free(class_counts);
    PyMem_Free(kind_counts);
    PyMem_Free(exclusive);
    PyMem_Free(slot_of);
    return result;
}

PyMethodDef kernels_attribution_methods[] = {
    {"attribute", attribute, METH_VARARGS, attribute_doc},
    {NULL, NULL, 0, NULL},
};
