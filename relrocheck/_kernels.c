/* relrocheck._kernels: compiled versions of the per-relocation loops.
 *
 * Each function here has a pure-Python twin that defines what it returns (named in its
 * docstring); the Python modules use these when the extension was built and fall back to
 * the twins otherwise (relrocheck/native.py). Tests hold the two to the same results.
 *
 * A column is an array or memoryview of unsigned 1- to 8-byte words, or any sequence of
 * ints (a merged table is a list): read through `struct column`, never copied when it is a
 * buffer. Every index is checked; nothing trusts the file the columns came from.
 */

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

static int
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

static void
column_close(struct column *c)
{
    if (c->view.obj != NULL)
        PyBuffer_Release(&c->view);
    c->view.obj = NULL;
    PyMem_Free(c->owned);
    c->owned = NULL;
}

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
static Py_ssize_t
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

/* -- is_sorted, leading_run, gap_marks (twins in relrocheck/columns.py) ------------------ */

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

/* -- attribute (twin: relrocheck/attribution.py) --------------------------------------- */

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

/* -- target kinds (twin: relrocheck/targets.py) ---------------------------------------- */

PyDoc_STRVAR(classify_doc,
"classify(addresses, starts, kinds) -> bytes: per address, kinds[bisect_right(starts,\n"
"address)], starts being sorted (len(kinds) == len(starts) + 1). As the classifier of\n"
"targets.address_classifier.");

static PyObject *
classify(PyObject *self, PyObject *args)
{
    PyObject *addresses_obj, *starts_obj;
    Py_buffer kinds;
    if (!PyArg_ParseTuple(args, "OOy*:classify", &addresses_obj, &starts_obj, &kinds))
        return NULL;
    struct column addresses = {0}, starts = {0};
    PyObject *result = NULL;
    if (column_open(starts_obj, &starts) < 0)
        goto done;
    if (kinds.len != starts.n + 1) {
        PyErr_SetString(PyExc_ValueError, "classify: kinds must be one more than starts");
        goto done;
    }
    if (column_open(addresses_obj, &addresses) < 0)
        goto done;
    result = PyBytes_FromStringAndSize(NULL, addresses.n);
    if (result == NULL)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *kind = kinds.buf;
    /* The interval of the previous address first: neighbours mostly share a section. */
    Py_ssize_t at = 0; /* kinds index: starts[at - 1] <= address < starts[at] */
    for (Py_ssize_t i = 0; i < addresses.n; i++) {
        uint64_t a = column_get(&addresses, i);
        if (!((at == 0 || column_get(&starts, at - 1) <= a)
              && (at == starts.n || a < column_get(&starts, at))))
            at = upper_bound(&starts, 0, starts.n, a);
        out[i] = kind[at];
    }
done:
    column_close(&addresses);
    column_close(&starts);
    PyBuffer_Release(&kinds);
    return result;
}

/* -- string targets (twin: relrocheck/stringtargets.py) -------------------------------- */

PyDoc_STRVAR(target_span_doc,
"target_span(targets, start, end) -> (n, low, high): how many targets lie in\n"
"[start, end), and the least and the greatest of them (0, 0, 0 for none).");

static PyObject *
target_span(PyObject *self, PyObject *args)
{
    PyObject *obj;
    unsigned long long start, end;
    if (!PyArg_ParseTuple(args, "OKK:target_span", &obj, &start, &end))
        return NULL;
    struct column c;
    if (column_open(obj, &c) < 0)
        return NULL;
    Py_ssize_t n = 0;
    uint64_t low = 0, high = 0;
    for (Py_ssize_t i = 0; i < c.n; i++) {
        uint64_t t = column_get(&c, i);
        if (t < start || t >= end)
            continue;
        if (!n || t < low)
            low = t;
        if (!n || t > high)
            high = t;
        n++;
    }
    column_close(&c);
    return Py_BuildValue("(nKK)", n, (unsigned long long)low, (unsigned long long)high);
}

PyDoc_STRVAR(count_text_doc,
"count_text(targets, start, end, blob, bias, is_text, is_text_or_nul) -> int\n\n"
"Of the targets in [start, end), those where blob[f], blob[f + 1] and blob[f + 2] are\n"
"text-or-NUL, text and text-or-NUL (256-byte tables of 0 or 1), f being the target plus\n"
"bias, clamped to [0, len(blob) - 3]: the byte before the target and its first two.");

static PyObject *
count_text(PyObject *self, PyObject *args)
{
    PyObject *obj;
    unsigned long long start, end;
    long long bias;
    Py_buffer blob, text, text_or_nul;
    if (!PyArg_ParseTuple(args, "OKKy*Ly*y*:count_text", &obj, &start, &end, &blob, &bias,
                          &text, &text_or_nul))
        return NULL;
    PyObject *result = NULL;
    struct column c = {0};
    if (blob.len < 3 || text.len != 256 || text_or_nul.len != 256) {
        PyErr_SetString(PyExc_ValueError, "count_text: blob under 3 bytes or tables not 256");
        goto done;
    }
    if (column_open(obj, &c) < 0)
        goto done;
    const unsigned char *b = blob.buf, *is_text = text.buf, *is_text_or_nul = text_or_nul.buf;
    long long top = (long long)blob.len - 3;
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < c.n; i++) {
        uint64_t t = column_get(&c, i);
        if (t < start || t >= end)
            continue;
        /* The sum clamped without overflowing, whatever the file's addresses. */
        long long f;
        if (t > (uint64_t)INT64_MAX || (bias > 0 && (long long)t > INT64_MAX - bias))
            f = top;
        else
            f = (long long)t + bias;
        if (f < 0)
            f = 0;
        if (f > top)
            f = top;
        count += is_text_or_nul[b[f]] & is_text[b[f + 1]] & is_text_or_nul[b[f + 2]];
    }
    result = PyLong_FromSsize_t(count);
done:
    column_close(&c);
    PyBuffer_Release(&blob);
    PyBuffer_Release(&text);
    PyBuffer_Release(&text_or_nul);
    return result;
}

/* -- the symbols' JSON text (twin: serialize.symbol_encoder) ---------------------------- */

struct text {
    char *data;
    Py_ssize_t len, cap;
    int non_ascii; /* a str not all ASCII was added */
};

static int
text_add(struct text *t, const char *s, Py_ssize_t n)
{
    if (t->len + n > t->cap) {
        Py_ssize_t cap = t->cap ? t->cap : 1 << 16;
        while (cap < t->len + n)
            cap *= 2;
        char *grown = PyMem_Realloc(t->data, cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    return 0;
}

#define TEXT_LITERAL(t, s) text_add((t), (s), (Py_ssize_t)sizeof(s) - 1)

/* A str's UTF-8 bytes (the encoder's strings are ASCII), stolen reference. */
static int
text_add_str(struct text *t, PyObject *str)
{
    if (str == NULL)
        return -1;
    Py_ssize_t n;
    const char *s = PyUnicode_Check(str) ? PyUnicode_AsUTF8AndSize(str, &n) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "symbols_json: a text that is not a str");
        Py_DECREF(str);
        return -1;
    }
    if (!PyUnicode_IS_ASCII(str))
        t->non_ascii = 1;
    int rc = text_add(t, s, n);
    Py_DECREF(str);
    return rc;
}

/* format(value, ''), as the f-string template writes a number. */
static int
text_add_number(struct text *t, PyObject *value)
{
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow && !(v == -1 && PyErr_Occurred())) {
            char digits[24], *end = digits + sizeof digits, *p = end;
            unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            do
                *--p = (char)('0' + u % 10);
            while (u /= 10);
            if (v < 0)
                *--p = '-';
            return text_add(t, p, end - p);
        }
        PyErr_Clear();
    }
    return text_add_str(t, PyObject_Format(value, NULL));
}

static int
text_add_string(struct text *t, PyObject *string, PyObject *value)
{
    /* Printable ASCII without a quote or a backslash is its own JSON text, quoted; anything
     * else is escaped by `string` (json's encode_basestring_ascii). */
    if (PyUnicode_Check(value) && PyUnicode_IS_ASCII(value)) {
        const unsigned char *s = PyUnicode_1BYTE_DATA(value);
        Py_ssize_t n = PyUnicode_GET_LENGTH(value), i = 0;
        while (i < n && s[i] >= 0x20 && s[i] <= 0x7E && s[i] != '"' && s[i] != '\\')
            i++;
        if (i == n)
            return (TEXT_LITERAL(t, "\"") < 0 || text_add(t, (const char *)s, n) < 0
                    || TEXT_LITERAL(t, "\"") < 0) ? -1 : 0;
    }
    return text_add_str(t, PyObject_CallOneArg(string, value));
}

static int
text_add_string_or_null(struct text *t, PyObject *string, PyObject *value)
{
    if (value == Py_None)
        return TEXT_LITERAL(t, "null");
    return text_add_string(t, string, value);
}

/* {"key":n,...} of a dict of str -> int, as dumps writes it compactly. */
static int
text_add_counts(struct text *t, PyObject *string, PyObject *counts)
{
    if (!PyDict_Check(counts)) {
        PyErr_SetString(PyExc_TypeError, "symbols_json: counts that are not a dict");
        return -1;
    }
    if (TEXT_LITERAL(t, "{") < 0)
        return -1;
    Py_ssize_t pos = 0, k = 0;
    PyObject *key, *value;
    while (PyDict_Next(counts, &pos, &key, &value)) {
        if ((k++ && TEXT_LITERAL(t, ",") < 0) || text_add_string(t, string, key) < 0
            || TEXT_LITERAL(t, ":") < 0 || text_add_number(t, value) < 0)
            return -1;
    }
    return TEXT_LITERAL(t, "}");
}

enum { F_NAME, F_SECTION, F_ADDRESS, F_SIZE, F_TYPE, F_BINDING, F_VISIBILITY, F_RELOCATIONS,
       F_BY_CLASS, F_TARGETS, F_PAGES, F_SPAN_PAGES, F_ALIASES, F_UNATTRIBUTED, F_DEMANGLED,
       F_SOURCE, F_HINT, F_PAGES_EXCLUSIVE, F_PAGE_ADDRESSES, F_CLUSTERS, F_STRING_TARGETS,
       N_FIELDS };

PyDoc_STRVAR(symbols_json_doc,
"symbols_json(symbols, fields, string, hint_text, clusters_text) -> str\n\n"
"The symbols' compact JSON objects, comma-separated, as serialize.symbol_encoder writes\n"
"them: fields names the record's fields in order (serialize._SYMBOL_FIELDS), string is\n"
"json's encode_basestring_ascii, hint_text(hint) and clusters_text(clusters) the texts of\n"
"a hint and of a non-empty clusters tuple.");

static PyObject *
symbols_json(PyObject *self, PyObject *args)
{
    PyObject *symbols_obj, *fields, *string, *hint_text, *clusters_text;
    if (!PyArg_ParseTuple(args, "OO!OOO:symbols_json", &symbols_obj, &PyTuple_Type, &fields,
                          &string, &hint_text, &clusters_text))
        return NULL;
    if (PyTuple_GET_SIZE(fields) != N_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "symbols_json: not the symbol's fields");
        return NULL;
    }
    PyObject *symbols = PySequence_Fast(symbols_obj, "symbols is a sequence");
    if (symbols == NULL)
        return NULL;
    struct text t = {0};
    PyObject *result = NULL, *dict = NULL;
    PyObject *v[N_FIELDS];
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(symbols); i++) {
        PyObject *symbol = PySequence_Fast_GET_ITEM(symbols, i);
        dict = PyObject_GenericGetDict(symbol, NULL);
        if (dict == NULL)
            goto done;
        /* The record's dict holds its fields in order, under the very key objects of
         * `fields` (its class's): walked, not looked up; by key where it differs. */
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        for (int f = 0; f < N_FIELDS; f++) {
            PyObject *wanted = PyTuple_GET_ITEM(fields, f);
            if (PyDict_Next(dict, &pos, &key, &value) && key == wanted) {
                v[f] = value;
                continue;
            }
            pos = PY_SSIZE_T_MAX; /* out of order: looked up from here on */
            v[f] = PyDict_GetItemWithError(dict, wanted);
            if (v[f] == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetObject(PyExc_KeyError, wanted);
                goto done;
            }
        }
        if ((i && TEXT_LITERAL(&t, ",") < 0)
            || TEXT_LITERAL(&t, "{\"name\":") < 0 || text_add_string(&t, string, v[F_NAME]) < 0
            || TEXT_LITERAL(&t, ",\"section\":") < 0
            || text_add_string(&t, string, v[F_SECTION]) < 0
            || TEXT_LITERAL(&t, ",\"address\":") < 0 || text_add_number(&t, v[F_ADDRESS]) < 0
            || TEXT_LITERAL(&t, ",\"size\":") < 0 || text_add_number(&t, v[F_SIZE]) < 0
            || TEXT_LITERAL(&t, ",\"type\":") < 0 || text_add_string(&t, string, v[F_TYPE]) < 0
            || TEXT_LITERAL(&t, ",\"binding\":") < 0
            || text_add_string(&t, string, v[F_BINDING]) < 0
            || TEXT_LITERAL(&t, ",\"visibility\":") < 0
            || text_add_string(&t, string, v[F_VISIBILITY]) < 0
            || TEXT_LITERAL(&t, ",\"relocations\":") < 0
            || text_add_number(&t, v[F_RELOCATIONS]) < 0
            || TEXT_LITERAL(&t, ",\"by_class\":") < 0
            || text_add_counts(&t, string, v[F_BY_CLASS]) < 0
            || TEXT_LITERAL(&t, ",\"targets\":") < 0
            || text_add_counts(&t, string, v[F_TARGETS]) < 0
            || TEXT_LITERAL(&t, ",\"pages\":") < 0 || text_add_number(&t, v[F_PAGES]) < 0
            || TEXT_LITERAL(&t, ",\"span_pages\":") < 0
            || text_add_number(&t, v[F_SPAN_PAGES]) < 0
            || TEXT_LITERAL(&t, ",\"aliases\":[") < 0)
            goto done;
        PyObject *aliases = PySequence_Fast(v[F_ALIASES], "symbols_json: aliases");
        if (aliases == NULL)
            goto done;
        for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(aliases); k++)
            if ((k && TEXT_LITERAL(&t, ",") < 0)
                || text_add_string(&t, string, PySequence_Fast_GET_ITEM(aliases, k)) < 0) {
                Py_DECREF(aliases);
                goto done;
            }
        Py_DECREF(aliases);
        int unattributed = PyObject_IsTrue(v[F_UNATTRIBUTED]);
        if (unattributed < 0)
            goto done;
        if (TEXT_LITERAL(&t, "],\"unattributed\":") < 0
            || (unattributed ? TEXT_LITERAL(&t, "true") : TEXT_LITERAL(&t, "false")) < 0
            || TEXT_LITERAL(&t, ",\"demangled\":") < 0
            || text_add_string_or_null(&t, string, v[F_DEMANGLED]) < 0
            || TEXT_LITERAL(&t, ",\"source\":") < 0
            || text_add_string_or_null(&t, string, v[F_SOURCE]) < 0
            || TEXT_LITERAL(&t, ",\"hint\":") < 0
            || (v[F_HINT] == Py_None ? TEXT_LITERAL(&t, "null")
                : text_add_str(&t, PyObject_CallOneArg(hint_text, v[F_HINT]))) < 0
            || TEXT_LITERAL(&t, ",\"pages_exclusive\":") < 0
            || text_add_number(&t, v[F_PAGES_EXCLUSIVE]) < 0
            || TEXT_LITERAL(&t, ",\"clusters\":") < 0)
            goto done;
        int clusters = PyObject_IsTrue(v[F_CLUSTERS]);
        if (clusters < 0
            || (clusters ? text_add_str(&t, PyObject_CallOneArg(clusters_text, v[F_CLUSTERS]))
                : TEXT_LITERAL(&t, "[]")) < 0
            || TEXT_LITERAL(&t, ",\"string_targets\":") < 0
            || (v[F_STRING_TARGETS] == Py_None ? TEXT_LITERAL(&t, "null")
                : text_add_number(&t, v[F_STRING_TARGETS])) < 0
            || TEXT_LITERAL(&t, "}") < 0)
            goto done;
        Py_CLEAR(dict);
    }
    if (t.non_ascii)
        result = PyUnicode_DecodeUTF8(t.data ? t.data : "", t.len, NULL);
    else if ((result = PyUnicode_New(t.len, 127)) != NULL && t.len)
        memcpy(PyUnicode_1BYTE_DATA(result), t.data, t.len); /* ASCII: copied as it is */
done:
    Py_XDECREF(dict);
    Py_DECREF(symbols);
    PyMem_Free(t.data);
    return result;
}

static PyMethodDef methods[] = {
    {"is_sorted", is_sorted, METH_O, is_sorted_doc},
    {"leading_run", leading_run, METH_VARARGS, leading_run_doc},
    {"gap_marks", gap_marks, METH_VARARGS, gap_marks_doc},
    {"symbols_json", symbols_json, METH_VARARGS, symbols_json_doc},
    {"ascii_names", ascii_names, METH_VARARGS, ascii_names_doc},
    {"fold_symbols", fold_symbols, METH_VARARGS, fold_symbols_doc},
    {"compress", compress, METH_VARARGS, compress_doc},
    {"attribute", attribute, METH_VARARGS, attribute_doc},
    {"page_counts", page_counts, METH_VARARGS, page_counts_doc},
    {"classify", classify, METH_VARARGS, classify_doc},
    {"target_span", target_span, METH_VARARGS, target_span_doc},
    {"count_text", count_text, METH_VARARGS, count_text_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "relrocheck._kernels",
    "Compiled twins of relrocheck's per-relocation loops (see relrocheck/native.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
