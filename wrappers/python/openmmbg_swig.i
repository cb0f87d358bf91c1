// SWIG interface of the LibTorch-free OpenMMBG::FlowModel, the low-level half of the `openmmbg`
// Python package. Users call the `openmmbg.Flow` class (openmmbg/_flow.py), which converts numpy
// arrays and reshapes the results; this module only moves flat float64 data:
//
//   - `const std::vector<double>&` arguments take any C-contiguous float64 buffer (numpy arrays
//     made with np.ascontiguousarray(..., dtype=np.float64)), read through the buffer protocol;
//   - `std::vector<double>` results come back as `bytes` of native float64 values (np.frombuffer);
//   - toPyBytes() (for toBytes()) returns Python `bytes`; fromBytes() takes any bytes-like object;
//   - C++ exceptions become one Python exception, by type (openmmbg/Errors.h):
//     std::invalid_argument -> ValueError, FileAccessError -> OSError, std::bad_alloc -> MemoryError,
//     anything else -> RuntimeError.
%module(package="openmmbg") openmmbg_swig

%{
#define SWIG_FILE_WITH_INIT
#include "openmmbg/Errors.h"
#include "openmmbg/FlowModel.h"
#include "openmmbg/Threads.h"

#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// True if a buffer format string describes one native float64 ("d", "@d", "=d", or "<d" on a
// little-endian host).
bool isFloat64Format(const char* format) {
    if (format == nullptr)
        return false;  // unsigned bytes: not a float64 array
    if (format[0] == '@' || format[0] == '=')
        format++;
    else if (format[0] == '<') {
        const uint16_t probe = 1;
        if (*reinterpret_cast<const unsigned char*>(&probe) != 1)
            return false;
        format++;
    }
    return std::strcmp(format, "d") == 0;
}

// Copy a C-contiguous float64 buffer into out; on failure set a Python TypeError and return false.
bool readFloat64Buffer(PyObject* obj, std::vector<double>& out, const char* argName) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "%s: expected a C-contiguous float64 buffer (np.ascontiguousarray(..., dtype=np.float64)), got %s",
                     argName, Py_TYPE(obj)->tp_name);
        return false;
    }
    if (view.itemsize != sizeof(double) || !isFloat64Format(view.format)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a float64 buffer, got format '%s' with %zd-byte items", argName,
                     view.format ? view.format : "B", view.itemsize);
        PyBuffer_Release(&view);
        return false;
    }
    const double* data = static_cast<const double*>(view.buf);
    out.assign(data, data + view.len / Py_ssize_t(sizeof(double)));
    PyBuffer_Release(&view);
    return true;
}

// Copy any bytes-like object (bytes, bytearray, memoryview, ...) into a std::string.
bool readBytes(PyObject* obj, std::string& out, const char* argName) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a bytes-like object, got %s", argName, Py_TYPE(obj)->tp_name);
        return false;
    }
    out.assign(static_cast<const char*>(view.buf), size_t(view.len));
    PyBuffer_Release(&view);
    return true;
}

}  // namespace
%}

%include <std_string.i>

// ---- Exceptions: one clean Python exception per C++ exception, never a crash. ----
%exception {
    try {
        try {
            $action
        } catch (...) {
            OpenMMBG::rethrowAsLibraryError();  // LibTorch's out-of-memory error as std::bad_alloc
        }
    } catch (const std::invalid_argument& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
        SWIG_fail;
    } catch (const OpenMMBG::FileAccessError& e) {
        PyErr_SetString(PyExc_OSError, e.what());
        SWIG_fail;
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
        SWIG_fail;
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        SWIG_fail;
    } catch (...) {
        PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception in openmmbg");
        SWIG_fail;
    }
}

// ---- float64 arrays in: the buffer protocol, C-contiguous float64 only. ----
%typemap(in) const std::vector<double>& (std::vector<double> temp) {
    if (!readFloat64Buffer($input, temp, "$1_name"))
        SWIG_fail;
    $1 = &temp;
}
%typemap(typecheck, precedence=SWIG_TYPECHECK_DOUBLE_ARRAY) const std::vector<double>& {
    $1 = PyObject_CheckBuffer($input) ? 1 : 0;
}

// ---- float64 arrays out: bytes of native float64 values. ----
%typemap(out) std::vector<double> {
    const std::vector<double>& values = $1;
    $result = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(values.data()),
                                        Py_ssize_t(values.size() * sizeof(double)));
    if (!$result)
        SWIG_fail;
}

// ---- Model bytes: Python bytes, not str. ----
%typemap(in) const std::string& bytes (std::string temp) {
    if (!readBytes($input, temp, "bytes"))
        SWIG_fail;
    $1 = &temp;
}
%typemap(freearg) const std::string& bytes "";  // std_string.i's would delete a SWIG-owned copy
%typemap(typecheck, precedence=SWIG_TYPECHECK_STRING) const std::string& bytes {
    $1 = PyObject_CheckBuffer($input) ? 1 : 0;
}

// ---- Shapes out: a tuple of ints. ----
%typemap(out) std::vector<long long> {
    const std::vector<long long>& values = $1;
    $result = PyTuple_New(Py_ssize_t(values.size()));
    if (!$result)
        SWIG_fail;
    for (size_t i = 0; i < values.size(); i++)
        PyTuple_SET_ITEM($result, Py_ssize_t(i), PyLong_FromLongLong(values[i]));
}

// The Model behind FlowModel holds LibTorch types: not for Python.
%ignore OpenMMBG::FlowModel::model;
// toBytes() would return str: Python uses toPyBytes() below, which returns bytes.
%ignore OpenMMBG::FlowModel::toBytes;

%extend OpenMMBG::FlowModel {
    /** The bytes of the .bgm file, as Python bytes. */
    PyObject* toPyBytes() const {
        std::string bytes = $self->toBytes();
        return PyBytes_FromStringAndSize(bytes.data(), Py_ssize_t(bytes.size()));
    }
}

%include "openmmbg/FlowModel.h"
%include "openmmbg/Threads.h"

%{
#include "openmmbg/io/DcdReader.h"
%}

%inline %{
namespace OpenMMBG {
/**
 * DCD positions in nm, flat [frames * n * 3] (private helper of openmmbg.read_dcd). `particles`
 * holds integer indices as float64 (empty: all); end < 0 reads to the last frame.
 */
std::vector<double> readDcdFlat(const std::string& path, const std::vector<double>& particles, long long begin,
                                long long end, long long stride, bool allowTruncated) {
    DcdReadOptions options;
    for (double p : particles)
        options.particles.push_back(int64_t(p));
    options.begin = begin;
    options.end = end;
    options.stride = stride;
    options.allowTruncated = allowTruncated;
    return readDcd(path, options).values;
}
/** Number of particles stored in a DCD file. */
long long dcdNumParticles(const std::string& path) { return readDcdHeader(path).numParticles; }
}
%}
