/* The symbols' JSON text (twin: serialize.symbol_encoder). */

#include "column.h"

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

PyMethodDef kernels_json_methods[] = {
    {"symbols_json", symbols_json, METH_VARARGS, symbols_json_doc},
    {NULL, NULL, 0, NULL},
};
