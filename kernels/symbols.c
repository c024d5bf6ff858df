/* Symbols: their names from a string table, and their folding into owners (twins in
 * relrocheck/elf.py and measure.py). */

#include "column.h"

/* -- names (twin: elf.ElfFile.names_at) ----------------------------------------------- */

PyDoc_STRVAR(ascii_names_doc,
"ascii_names(blob, offsets, max_bytes) -> list[str] | None: the NUL-terminated names at\n"
"the offsets of a string table, when every one of them is printable ASCII of at most\n"
"max_bytes bytes and ends inside the blob; else None (the caller's general path).");

static PyObject *
ascii_names(PyObject *self, PyObject *args)
{
    Py_buffer blob;
    PyObject *offsets_obj;
    Py_ssize_t max_bytes;
    if (!PyArg_ParseTuple(args, "y*On:ascii_names", &blob, &offsets_obj, &max_bytes))
        return NULL;
    struct column offsets = {0};
    PyObject *result = NULL;
    if (column_open(offsets_obj, &offsets) < 0)
        goto done;
    result = PyList_New(offsets.n);
    if (result == NULL)
        goto done;
    const char *b = blob.buf;
    for (Py_ssize_t i = 0; i < offsets.n; i++) {
        uint64_t at = column_get(&offsets, i);
        if (at >= (uint64_t)blob.len)
            goto general;
        Py_ssize_t room = blob.len - (Py_ssize_t)at;
        if (room > max_bytes + 1)
            room = max_bytes + 1;
        const char *name = b + at, *end = memchr(name, 0, room);
        if (end == NULL)
            goto general;
        for (const char *p = name; p < end; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
                goto general;
        PyObject *text = PyUnicode_DecodeASCII(name, end - name, NULL);
        if (text == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, text);
    }
    goto done;
general:
    Py_CLEAR(result);
    Py_INCREF(Py_None);
    result = Py_None;
done:
    column_close(&offsets);
    PyBuffer_Release(&blob);
    return result;
}

/* -- symbols folded into owners (twin: measure._Measurement._fold_python) ---------------- */

struct candidate {
    uint64_t address, size;
    uint64_t section; /* the section the symbol's bytes are in, as one number per section */
    uint64_t shndx;
    unsigned char rank, info, other;
    Py_ssize_t index;
    PyObject *name; /* borrowed from the names list */
};

static int
by_candidate_key(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    if (x->address != y->address)
        return x->address < y->address ? -1 : 1;
    if (x->size != y->size) /* the largest first */
        return x->size > y->size ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    int names = PyUnicode_Compare(x->name, y->name); /* str against str: cannot fail */
    if (names)
        return names;
    if (x->info != y->info)
        return x->info < y->info ? -1 : 1;
    if (x->other != y->other)
        return x->other < y->other ? -1 : 1;
    if (x->shndx != y->shndx)
        return x->shndx < y->shndx ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index); /* as a stable sort keeps them */
}

PyDoc_STRVAR(fold_symbols_doc,
"fold_symbols(values, sizes, infos, others, shndxs, sections, names, tls_base, ranks)\n"
"-> [(index, address, aliases)]\n\n"
"The owners among symbols with bytes in writable data, by address: sorted as the tuples\n"
"(address, -size, ranks[info >> 4], name, info, other, shndx) sort, address being the value\n"
"plus tls_base for a TLS symbol; a symbol whose bytes lie within the owner before it in\n"
"the same section (sections: one number per section) is an alias of it, named in its\n"
"aliases tuple. OverflowError where an address does not fit 64 bits.");

static PyObject *
fold_symbols(PyObject *self, PyObject *args)
{
    PyObject *objs[6], *names_obj;
    unsigned long long tls_base;
    Py_buffer ranks;
    if (!PyArg_ParseTuple(args, "OOOOOOOKy*:fold_symbols", &objs[0], &objs[1], &objs[2],
                          &objs[3], &objs[4], &objs[5], &names_obj, &tls_base, &ranks))
        return NULL;
    struct column cols[6];
    memset(cols, 0, sizeof cols);
    struct candidate *c = NULL;
    PyObject *result = NULL, *names = NULL, *aliases = NULL;
    int opened = 0;
    for (; opened < 6; opened++)
        if (column_open(objs[opened], &cols[opened]) < 0)
            goto done;
    names = PySequence_Fast(names_obj, "names is a sequence of str");
    if (names == NULL)
        goto done;
    Py_ssize_t n = cols[0].n;
    if (ranks.len != 16 || PySequence_Fast_GET_SIZE(names) != n) {
        PyErr_SetString(PyExc_ValueError, "fold_symbols: columns or ranks do not match");
        goto done;
    }
    for (int k = 1; k < 6; k++)
        if (cols[k].n != n) {
            PyErr_SetString(PyExc_ValueError, "fold_symbols: columns differ in length");
            goto done;
        }
    c = PyMem_Malloc((n ? n : 1) * sizeof *c);
    if (c == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const unsigned char *rank = ranks.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t value = column_get(&cols[0], i), info = column_get(&cols[2], i);
        PyObject *name = PySequence_Fast_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "fold_symbols: a name is not a str");
            goto done;
        }
        if (info > 0xFF || column_get(&cols[3], i) > 0xFF) {
            PyErr_SetString(PyExc_ValueError, "fold_symbols: st_info or st_other past a byte");
            goto done;
        }
        uint64_t base = (info & 0xF) == 6 ? tls_base : 0; /* STT_TLS: from the TLS segment */
        if (value > UINT64_MAX - base) {
            PyErr_SetString(PyExc_OverflowError, "fold_symbols: an address past 64 bits");
            goto done;
        }
        c[i].address = value + base;
        c[i].size = column_get(&cols[1], i);
        c[i].info = (unsigned char)info;
        c[i].other = (unsigned char)column_get(&cols[3], i);
        c[i].shndx = column_get(&cols[4], i);
        c[i].section = column_get(&cols[5], i);
        c[i].rank = rank[info >> 4];
        c[i].index = i;
        c[i].name = name;
    }
    if (n)
        qsort(c, n, sizeof *c, by_candidate_key);
    result = PyList_New(0);
    if (result == NULL)
        goto done;
    Py_ssize_t owner = -1; /* the candidate owning the bytes now */
    aliases = PyList_New(0);
    if (aliases == NULL)
        goto done;
    for (Py_ssize_t i = 0; i <= n; i++) {
        if (i < n && owner >= 0) {
            const struct candidate *last = &c[owner], *here = &c[i];
            uint64_t into = here->address - last->address; /* sorted: not negative */
            if (here->section == last->section && into <= last->size
                && here->size <= last->size - into) {
                if (PyList_Append(aliases, here->name) < 0)
                    goto done;
                continue;
            }
        }
        if (owner >= 0) { /* the previous owner is complete */
            PyObject *names_tuple = PyList_AsTuple(aliases);
            PyObject *entry = names_tuple == NULL ? NULL : Py_BuildValue(
                "(nKN)", c[owner].index, (unsigned long long)c[owner].address, names_tuple);
            if (entry == NULL || PyList_Append(result, entry) < 0) {
                Py_XDECREF(entry);
                goto done;
            }
            Py_DECREF(entry);
            if (PyList_SetSlice(aliases, 0, PyList_GET_SIZE(aliases), NULL) < 0)
                goto done;
        }
        owner = i;
    }
    Py_DECREF(aliases);
    aliases = NULL;
    PyMem_Free(c);
    for (int k = 0; k < 6; k++)
        column_close(&cols[k]);
    Py_DECREF(names);
    PyBuffer_Release(&ranks);
    return result;
done:
    Py_CLEAR(result);
    Py_XDECREF(aliases);
    PyMem_Free(c);
    for (int k = 0; k < opened && k < 6; k++)
        column_close(&cols[k]);
    Py_XDECREF(names);
    PyBuffer_Release(&ranks);
    return NULL;
}

PyMethodDef kernels_symbols_methods[] = {
    {"ascii_names", ascii_names, METH_VARARGS, ascii_names_doc},
    {"fold_symbols", fold_symbols, METH_VARARGS, fold_symbols_doc},
    {NULL, NULL, 0, NULL},
};
