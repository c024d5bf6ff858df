/* relrocheck._kernels: compiled versions of the per-relocation loops.
 *
 * Each function has a pure-Python twin that defines what it returns (named in its
 * docstring); the Python modules use these when the extension was built and fall back to
 * the twins otherwise (relrocheck/native.py). Tests hold the two to the same results.
 * One file per job: columns.c, targets.c, attribution.c, symbols.c, json.c; column.h is
 * what they share.
 */

#include "column.h"

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "relrocheck._kernels",
    "Compiled twins of relrocheck's per-relocation loops (see relrocheck/native.py).",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyMethodDef *tables[] = {kernels_columns_methods, kernels_targets_methods,
                             kernels_attribution_methods, kernels_symbols_methods,
                             kernels_json_methods};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (PyModule_AddFunctions(m, tables[i]) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    return m;
}
