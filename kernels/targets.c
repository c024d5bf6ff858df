/* What relocated words point to: target kinds and string targets (twins in
 * relrocheck/targets.py and stringtargets.py). */

#include "column.h"

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

PyMethodDef kernels_targets_methods[] = {
    {"classify", classify, METH_VARARGS, classify_doc},
    {"target_span", target_span, METH_VARARGS, target_span_doc},
    {"count_text", count_text, METH_VARARGS, count_text_doc},
    {NULL, NULL, 0, NULL},
};
