/* The compiled step of the lookup fast path (geo.api.routes.lookup.fast_answer).
 *
 * One function, answer(), does in C what fast_answer's Python does for the common request: read
 * "lon=<x>&lat=<y>", scan the headers, find the caller in the principal cache by the raw credential
 * header, read the grid from the cell table and append the point to the cached answer prefix.
 * It decides nothing on its own: every rule (who may read, which view, which grid, which body) comes
 * from the Python objects it is given, filled by the Python code. Whenever anything is not the plain
 * case -- another query shape, a number float() would parse differently, an unknown or expired
 * credential, a caller who may not read, a cell more than one boundary segment touches or a point on
 * (or next to) the one that does, a point outside every grid,
 * an answer not cached yet, a CORS request -- it returns None and the Python code answers. So it
 * can only answer what the Python path would answer, with the same bytes (tests/api/test_fastlookup.py
 * checks both on the same requests).
 *
 * Why C: in the server (one uvicorn worker, cold caches between requests) the Python version of these
 * steps cost about half of what the bare ASGI app's whole request costs, four times its in-process time;
 * compiled they cost a few percent of it (benchmarks/RESULTS.md, "Lookup with the compiled step").
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <time.h>

#define MAX_NUM 40

/* A plain decimal number (digits, '.', sign, exponent) filling all of s[0:n], as float() reads it. */
static int parse_num(const char *s, Py_ssize_t n, double *out)
{
    char buf[MAX_NUM + 1];
    char *end = NULL;
    Py_ssize_t i;
    double v;

    if (n <= 0 || n > MAX_NUM)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
            return 0;
        buf[i] = c;
    }
    buf[n] = '\0';
    v = PyOS_string_to_double(buf, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (end != buf + n)
        return 0;
    *out = v;
    return 1;
}

/* Clinger's fast path: plain text ([-]digits[.digits], at most 15 digits after leading zeros, at most 22
 * after the dot) is an integer below 2^53 over an exact power of ten, and one IEEE division of two exact
 * doubles is the correctly rounded value -- what strtod (and so float()) gives. Else parse_num. */
static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int parse_coord(const char *s, Py_ssize_t n, double *out)
{
    Py_ssize_t i = 0, frac = -1, digits = 0, seen = 0;
    int64_t m = 0;
    int neg = 0;

    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    for (; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (frac >= 0)
                return parse_num(s, n, out);
            frac = 0;
        } else if (c >= '0' && c <= '9') {
            seen++;
            if (frac >= 0)
                frac++;
            if (m != 0 || c != '0')
                digits++;
            m = m * 10 + (c - '0');
            if (digits > 15 || frac > 22)
                return parse_num(s, n, out);
        } else
            return parse_num(s, n, out);
    }
    if (seen == 0)
        return 0;
    *out = (double)m / POW10[frac > 0 ? frac : 0];
    if (neg)
        *out = -*out;
    return 1;
}

static int name_is(PyObject *name, const char *lit, Py_ssize_t n)
{
    return PyBytes_GET_SIZE(name) == n && memcmp(PyBytes_AS_STRING(name), lit, (size_t)n) == 0;
}

/* The point's coordinate as repr(float) writes it, which is what orjson.dumps (the Python path) writes
 * for 0 and for 1e-4 <= |v| < 1e16: append_coord, the only caller, leaves smaller ones to Python. */
static int append_float(char **p, const char *limit, double v)
{
    char *s;
    size_t n;

    s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (s == NULL)
        return -1;
    n = strlen(s);
    if (*p + n > limit) {
        PyMem_Free(s);
        return 0;
    }
    memcpy(*p, s, n);
    *p += n;
    PyMem_Free(s);
    return 1;
}

/* The coordinate written from the text it was parsed from, when that text is plain ([-]digits[.digits])
 * with at most 15 significant digits: then the shortest repr of the parsed double has the same digits
 * (DBL_DIG: 15 digits survive a trip through a double), so this is repr's output without dtoa's cost.
 * Anything else goes through append_float. 0 (nothing written) for 0 < |v| < 1e-4, where orjson writes
 * 0.00001 for repr's 1e-05: the Python path answers those. */
static int append_coord(char **p, const char *limit, const char *t, Py_ssize_t n, double v)
{
    Py_ssize_t i = 0, dot = -1, first = -1, last = -1, int_start, int_end, frac_end, k;
    int neg = 0;

    if (v != 0.0 && fabs(v) < 1e-4)
        return 0;
    if (i < n && t[i] == '-') {
        neg = 1;
        i++;
    }
    for (k = i; k < n; k++) {
        if (t[k] == '.') {
            if (dot >= 0)
                return append_float(p, limit, v);
            dot = k;
        } else if (t[k] >= '0' && t[k] <= '9') {
            if (t[k] != '0') {
                if (first < 0)
                    first = k;
                last = k;
            }
        } else
            return append_float(p, limit, v);
    }
    if (first >= 0) {  /* significant digits from the first to the last non-zero, the dot not counted */
        Py_ssize_t sig = last - first + 1 - (dot > first && dot < last ? 1 : 0);
        if (sig > 15)
            return append_float(p, limit, v);
    }
    if (dot < 0)
        dot = n;
    int_start = i;
    while (int_start < dot - 1 && t[int_start] == '0')
        int_start++;
    int_end = dot;
    frac_end = n;
    while (frac_end > dot + 1 && t[frac_end - 1] == '0')
        frac_end--;
    if (*p + (int_end - int_start) + (frac_end - dot) + 4 > limit)
        return 0;
    if (neg)
        *(*p)++ = '-';
    if (int_end == int_start)
        *(*p)++ = '0';
    else {
        memcpy(*p, t + int_start, (size_t)(int_end - int_start));
        *p += int_end - int_start;
    }
    *(*p)++ = '.';
    if (frac_end <= dot + 1)
        *(*p)++ = '0';
    else {
        memcpy(*p, t + dot + 1, (size_t)(frac_end - dot - 1));
        *p += frac_end - dot - 1;
    }
    return 1;
}

static const char LAT[] = ",\"lat\":";
static const char END[] = ",\"crs\":\"wgs84\"}}";

/* geo.api.services.lookup_index.side: 1 clearly left of a->b, -1 clearly right, 0 on or next to the line */
#define NOT_SINGLE (-3)

static int side(double ax, double ay, double bx, double by, double px, double py)
{
    double t1 = (bx - ax) * (py - ay), t2 = (by - ay) * (px - ax), c = t1 - t2;
    double bound = 1e-12 * (fabs(t1) + fabs(t2));
    return (c > bound) - (c < -bound);
}

/* X-Request-ID of an answer without one: 8 random hex digits per process, then a counter (16 in all). */
static char rid_prefix[9];
static uint32_t rid_counter;

static PyObject *new_request_id(void)
{
    static const char hex[] = "0123456789abcdef";
    char buf[16];
    uint32_t c = ++rid_counter;
    int i;

    memcpy(buf, rid_prefix, 8);
    for (i = 15; i >= 8; i--, c >>= 4)
        buf[i] = hex[c & 0xF];
    return PyBytes_FromStringAndSize(buf, 16);
}

PyDoc_STRVAR(request_id_doc,
"request_id()\n"
"--\n\n"
"A new request id (bytes): 8 random hex digits of this process, then a 32-bit counter in hex.");

static PyObject *request_id(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return new_request_id();
}

static PyObject *s_query_string, *s_headers, *s_raw_keys, *s_raw_tokens, *s_cells, *s_snap, *s_pending;
static PyObject *s_type, *s_http, *s_path, *s_lookup_path, *s_method, *s_get;
static PyObject *h_length, *h_type, *h_rid;

/* (headers, body): prefix + x + ,"lat": + y + ,"crs":"wgs84"}}, its length, JSON type and request id.
 * NULL with no error set if a coordinate does not fit (never for finite floats). */
static PyObject *build(PyObject *prefix, const char *xt, Py_ssize_t xn, double x, const char *yt, Py_ssize_t yn,
                       double y, PyObject *rid)
{
    Py_ssize_t np_ = PyBytes_GET_SIZE(prefix);
    Py_ssize_t cap = np_ + 2 * 32 + (Py_ssize_t)sizeof(LAT) + (Py_ssize_t)sizeof(END);
    PyObject *body = PyBytes_FromStringAndSize(NULL, cap), *rid_out, *len, *hl, *hr, *hs;
    char *p, *limit, num[24];
    int ok;

    if (body == NULL)
        return NULL;
    p = PyBytes_AS_STRING(body);
    limit = p + cap;
    memcpy(p, PyBytes_AS_STRING(prefix), (size_t)np_);
    p += np_;
    ok = append_coord(&p, limit, xt, xn, x);
    if (ok == 1) {
        memcpy(p, LAT, sizeof(LAT) - 1);
        p += sizeof(LAT) - 1;
        ok = append_coord(&p, limit, yt, yn, y);
    }
    if (ok != 1) {
        Py_DECREF(body);
        return NULL;
    }
    memcpy(p, END, sizeof(END) - 1);
    p += sizeof(END) - 1;
    if (_PyBytes_Resize(&body, p - PyBytes_AS_STRING(body)) < 0)
        return NULL;
    if (rid == NULL || PyBytes_GET_SIZE(rid) == 0)  /* as the Python path: `rid or a new id` */
        rid_out = new_request_id();
    else if (PyBytes_GET_SIZE(rid) > 64)
        rid_out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(rid), 64);
    else {
        rid_out = rid;
        Py_INCREF(rid_out);
    }
    {
        size_t b = (size_t)PyBytes_GET_SIZE(body);
        char *d = num + sizeof(num);
        do {
            *--d = (char)('0' + b % 10);
            b /= 10;
        } while (b);
        len = PyBytes_FromStringAndSize(d, num + sizeof(num) - d);
    }
    hl = len ? PyTuple_Pack(2, h_length, len) : NULL;
    hr = rid_out ? PyTuple_Pack(2, h_rid, rid_out) : NULL;
    hs = (hl && hr) ? PyList_New(3) : NULL;
    Py_XDECREF(len);
    Py_XDECREF(rid_out);
    if (hs == NULL) {
        Py_XDECREF(hl);
        Py_XDECREF(hr);
        Py_DECREF(body);
        return NULL;
    }
    PyList_SET_ITEM(hs, 0, hl);
    Py_INCREF(h_type);
    PyList_SET_ITEM(hs, 1, h_type);
    PyList_SET_ITEM(hs, 2, hr);
    return Py_BuildValue("(NN)", hs, body);
}

PyDoc_STRVAR(answer_doc,
"answer(scope, cors, principals, holder)\n"
"--\n\n"
"(response headers, body) of a plain GET /v1/lookup, or None to let the Python path answer\n"
"(any other request, too).\n\n"
"scope: the ASGI scope; cors: is CORS on (a request with an Origin header is left to it);\n"
"principals: the PrincipalCache, whose raw_keys / raw_tokens map the raw X-API-Key / Authorization\n"
"header value to (principal, expiry, view or None); holder: the IndexHolder, whose _snap is the\n"
"Snapshot (index, staff, bodies) in force unless _pending (instant, index) is due; index.cells is the\n"
"cell table (x0, y0, 1/size, nx, ny, int32 table, its bytes, near cells' segments, their owners) or\n"
"None; bodies are the answer prefixes\n"
"keyed by (grid, view).");

static PyObject *answer(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *scope, *qs, *headers, *raw_keys = NULL, *raw_tokens = NULL, *cells = NULL, *bodies, *snap = NULL;
    PyObject *pending, *o;
    PyObject *auth = NULL, *key = NULL, *rid = NULL, *entry, *view, *key_t, *prefix, *tbl, *result = NULL;
    const char *q, *lat;
    Py_ssize_t nq, j, nh, h;
    double x, y, x0, y0, inv, fi, fj, expiry;
    Py_ssize_t nx, ny;
    long v;
    int cors;
    int32_t cell;
    struct timespec ts;

    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "answer() takes 4 arguments");
        return NULL;
    }
    scope = args[0];
    cors = PyObject_IsTrue(args[1]);
    if (cors < 0)
        return NULL;
    if (!PyDict_Check(scope))
        Py_RETURN_NONE;
    /* GET /v1/lookup over HTTP */
    o = PyDict_GetItemWithError(scope, s_type);
    if (o == NULL || !PyUnicode_Check(o) || PyUnicode_Compare(o, s_http) != 0)
        goto not_mine;
    o = PyDict_GetItemWithError(scope, s_path);
    if (o == NULL || !PyUnicode_Check(o) || PyUnicode_Compare(o, s_lookup_path) != 0)
        goto not_mine;
    o = PyDict_GetItemWithError(scope, s_method);
    if (o == NULL || !PyUnicode_Check(o) || PyUnicode_Compare(o, s_get) != 0)
        goto not_mine;
    qs = PyDict_GetItemWithError(scope, s_query_string);
    headers = PyDict_GetItemWithError(scope, s_headers);
    if (qs == NULL || headers == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (!PyBytes_Check(qs) || !PyList_Check(headers))
        Py_RETURN_NONE;

    /* lon=<x>&lat=<y> */
    q = PyBytes_AS_STRING(qs);
    nq = PyBytes_GET_SIZE(qs);
    if (nq < 4 || memcmp(q, "lon=", 4) != 0)
        Py_RETURN_NONE;
    lat = NULL;
    for (j = 4; j + 5 <= nq; j++) {
        if (q[j] == '&' && memcmp(q + j, "&lat=", 5) == 0) {
            lat = q + j;
            break;
        }
    }
    if (lat == NULL || !parse_coord(q + 4, j - 4, &x) || !parse_coord(lat + 5, nq - j - 5, &y))
        Py_RETURN_NONE;
    if (!(x >= -180.0 && x <= 180.0 && y >= -90.0 && y <= 90.0))
        Py_RETURN_NONE;

    /* headers: the last of each wins, as in the Python loop */
    nh = PyList_GET_SIZE(headers);
    for (h = 0; h < nh; h++) {
        PyObject *pair = PyList_GET_ITEM(headers, h), *name, *value;
        if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2) {  /* uvicorn */
            name = PyTuple_GET_ITEM(pair, 0);
            value = PyTuple_GET_ITEM(pair, 1);
        } else if (PyList_Check(pair) && PyList_GET_SIZE(pair) == 2) {  /* Starlette's test client */
            name = PyList_GET_ITEM(pair, 0);
            value = PyList_GET_ITEM(pair, 1);
        } else
            Py_RETURN_NONE;
        if (!PyBytes_Check(name) || !PyBytes_Check(value))
            Py_RETURN_NONE;
        if (name_is(name, "authorization", 13))
            auth = value;
        else if (name_is(name, "x-api-key", 9))
            key = value;
        else if (name_is(name, "x-request-id", 12))
            rid = value;
        else if (cors && name_is(name, "origin", 6))
            Py_RETURN_NONE;
    }

    /* the caller, by raw header; an API key wins over a token. The map is taken before its entry is read
     * (PrincipalCache.invalidate replaces the maps, so an entry read here was valid when the map was). */
    if (key != NULL && PyBytes_GET_SIZE(key) > 0) {
        raw_keys = PyObject_GetAttr(args[2], s_raw_keys);
        if (raw_keys == NULL)
            return NULL;
        entry = PyDict_Check(raw_keys) ? PyDict_GetItemWithError(raw_keys, key) : NULL;
    } else if (auth != NULL) {
        raw_tokens = PyObject_GetAttr(args[2], s_raw_tokens);
        if (raw_tokens == NULL)
            return NULL;
        entry = PyDict_Check(raw_tokens) ? PyDict_GetItemWithError(raw_tokens, auth) : NULL;
    } else
        Py_RETURN_NONE;
    if (entry == NULL || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3)
        goto done;
    Py_INCREF(entry);  /* the map may be replaced by the listener thread while we hold it */
    expiry = PyFloat_AsDouble(PyTuple_GET_ITEM(entry, 1));
    view = PyTuple_GET_ITEM(entry, 2);
    Py_INCREF(view);
    Py_DECREF(entry);
    if (expiry == -1.0 && PyErr_Occurred())
        goto fail_view;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (view == Py_None || !(expiry > (double)ts.tv_sec + ts.tv_nsec * 1e-9))
        goto done_view;

    /* the snapshot in force (a pending plan that is due: the Python path switches to it) */
    pending = PyObject_GetAttr(args[3], s_pending);
    if (pending == NULL)
        goto fail_view;
    if (pending != Py_None) {
        double at = PyTuple_Check(pending) && PyTuple_GET_SIZE(pending) >= 1
                    ? PyFloat_AsDouble(PyTuple_GET_ITEM(pending, 0)) : 0.0;
        Py_DECREF(pending);
        if (at == -1.0 && PyErr_Occurred())
            goto fail_view;
        if (!(at > (double)ts.tv_sec + ts.tv_nsec * 1e-9))
            goto done_view;
    } else
        Py_DECREF(pending);
    snap = PyObject_GetAttr(args[3], s_snap);
    if (snap == NULL)
        goto fail_view;
    if (!PyTuple_Check(snap) || PyTuple_GET_SIZE(snap) != 3)
        goto done_view;

    /* the cell: a grid's own (>= 0), else the Python path (-1 outside, <= -2 near a boundary) */
    cells = PyObject_GetAttr(PyTuple_GET_ITEM(snap, 0), s_cells);
    if (cells == NULL)
        goto fail_view;
    if (!PyTuple_Check(cells) || PyTuple_GET_SIZE(cells) != 9 || !PyBytes_Check(PyTuple_GET_ITEM(cells, 6))
            || !PyBytes_Check(PyTuple_GET_ITEM(cells, 7)) || !PyBytes_Check(PyTuple_GET_ITEM(cells, 8)))
        goto done_view;
    x0 = PyFloat_AsDouble(PyTuple_GET_ITEM(cells, 0));
    y0 = PyFloat_AsDouble(PyTuple_GET_ITEM(cells, 1));
    inv = PyFloat_AsDouble(PyTuple_GET_ITEM(cells, 2));
    nx = PyLong_AsSsize_t(PyTuple_GET_ITEM(cells, 3));
    ny = PyLong_AsSsize_t(PyTuple_GET_ITEM(cells, 4));
    if (PyErr_Occurred())
        goto fail_view;
    fi = floor((x - x0) * inv);
    fj = floor((y - y0) * inv);
    if (!(fi >= 0 && fi < (double)nx && fj >= 0 && fj < (double)ny))
        goto done_view;
    tbl = PyTuple_GET_ITEM(cells, 6);
    if (PyBytes_GET_SIZE(tbl) != (Py_ssize_t)(nx * ny * 4))
        goto done_view;
    memcpy(&cell, PyBytes_AS_STRING(tbl) + 4 * ((Py_ssize_t)fj * nx + (Py_ssize_t)fi), 4);
    v = cell;
    if (v <= -2) {  /* near a boundary: the side of the one segment crossing the cell, if there is one */
        Py_ssize_t k = -(Py_ssize_t)v - 2;
        PyObject *segb = PyTuple_GET_ITEM(cells, 7), *ownb = PyTuple_GET_ITEM(cells, 8);
        double sg[4];
        int32_t own[2];
        int sd;

        if (PyBytes_GET_SIZE(ownb) < 8 * (k + 1) || PyBytes_GET_SIZE(segb) < 32 * (k + 1))
            goto done_view;
        memcpy(own, PyBytes_AS_STRING(ownb) + 8 * k, 8);
        if (own[0] == NOT_SINGLE)
            goto done_view;
        memcpy(sg, PyBytes_AS_STRING(segb) + 32 * k, 32);
        sd = side(sg[0], sg[1], sg[2], sg[3], x, y);
        if (sd == 0)
            goto done_view;
        v = sd > 0 ? own[0] : own[1];
    }
    if (v < 0)
        goto done_view;

    /* the cached prefix of (grid, view) */
    bodies = PyTuple_GET_ITEM(snap, 2);
    if (!PyDict_Check(bodies))
        goto done_view;
    key_t = PyTuple_New(2);
    if (key_t == NULL)
        goto fail_view;
    PyTuple_SET_ITEM(key_t, 1, view);  /* steals our reference */
    view = NULL;
    PyTuple_SET_ITEM(key_t, 0, PyLong_FromLong(v));
    if (PyTuple_GET_ITEM(key_t, 0) == NULL) {
        Py_DECREF(key_t);
        goto fail;
    }
    prefix = PyDict_GetItemWithError(bodies, key_t);
    Py_XINCREF(prefix);
    Py_DECREF(key_t);
    if (prefix == NULL) {
        if (PyErr_Occurred())
            goto fail;
        goto done;
    }
    if (PyBytes_Check(prefix))
        result = build(prefix, q + 4, j - 4, x, lat + 5, nq - j - 5, y, rid);
    Py_DECREF(prefix);
    if (result == NULL && PyErr_Occurred())
        goto fail;
    goto done;

done_view:
    Py_DECREF(view);
done:
    Py_XDECREF(raw_keys);
    Py_XDECREF(raw_tokens);
    Py_XDECREF(cells);
    Py_XDECREF(snap);
    if (result != NULL)
        return result;
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
fail_view:
    Py_XDECREF(view);
fail:
    Py_XDECREF(raw_keys);
    Py_XDECREF(raw_tokens);
    Py_XDECREF(cells);
    Py_XDECREF(snap);
    return NULL;
not_mine:
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"answer", (PyCFunction)(void (*)(void))answer, METH_FASTCALL, answer_doc},
    {"request_id", request_id, METH_NOARGS, request_id_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "geo.api._fastlookup",
    "The compiled step of the lookup fast path (see geo.api.routes.lookup.fast_answer).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastlookup(void)
{
    PyObject *os, *rnd;
    const unsigned char *r;
    int i;

    os = PyImport_ImportModule("os");
    if (os == NULL)
        return NULL;
    rnd = PyObject_CallMethod(os, "urandom", "i", 4);
    Py_DECREF(os);
    if (rnd == NULL)
        return NULL;
    r = (const unsigned char *)PyBytes_AS_STRING(rnd);
    for (i = 0; i < 4; i++)
        snprintf(rid_prefix + 2 * i, 3, "%02x", r[i]);
    Py_DECREF(rnd);
    s_query_string = PyUnicode_InternFromString("query_string");
    s_headers = PyUnicode_InternFromString("headers");
    s_raw_keys = PyUnicode_InternFromString("raw_keys");
    s_raw_tokens = PyUnicode_InternFromString("raw_tokens");
    s_cells = PyUnicode_InternFromString("cells");
    s_snap = PyUnicode_InternFromString("_snap");
    s_pending = PyUnicode_InternFromString("_pending");
    s_type = PyUnicode_InternFromString("type");
    s_http = PyUnicode_InternFromString("http");
    s_path = PyUnicode_InternFromString("path");
    s_lookup_path = PyUnicode_InternFromString("/v1/lookup");
    s_method = PyUnicode_InternFromString("method");
    s_get = PyUnicode_InternFromString("GET");
    h_length = PyBytes_FromString("content-length");
    h_rid = PyBytes_FromString("x-request-id");
    h_type = Py_BuildValue("(y y)", "content-type", "application/json");
    if (!s_query_string || !s_headers || !s_raw_keys || !s_raw_tokens || !s_cells || !s_snap || !s_pending
            || !s_type || !s_http || !s_path || !s_lookup_path || !s_method || !s_get || !h_length || !h_rid || !h_type)
        return NULL;
    return PyModule_Create(&module);
}
