# The per-call path of pb.compile's training step and inference, in C.
#
# pybackprop.compile.CompiledStep and CompiledModel subclass these. A tiny
# network's whole native step takes under a microsecond, and the checks around
# it (has the model changed mode, was a parameter replaced, did a scheduler
# change a hyper-parameter), the argument checks of a pybind11 call and what
# an eager step leaves behind (p.grad, version counters, step counts) cost as
# much again as Python bytecode. Here they are compiled C: the arrays are
# checked with the numpy C API and the C++ plan (owned by the pybind11 object,
# _bindings/plan.cpp, which hands over a capsule) is called with the GIL
# released. Anything unusual (a first step, a change to re-read, inputs that
# need converting, an error to report) goes to the subclass's ``_call``, the
# Python version of the whole thing, which goes through pybind11.
from cpython.pycapsule cimport PyCapsule_GetPointer
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

cdef extern from "plan/mlp_plan.h" namespace "pb":
    cdef cppclass OptimSpec:
        pass
    cdef cppclass MlpPlan[T]:
        double train_step(const T* x, index_t batch, const void* targets, const OptimSpec& opt) except + nogil
        void forward(const T* x, index_t batch, T* out) except + nogil


cdef class _NativePlan:
    """The C++ plan behind a pybind11 ``MlpPlan`` (kept alive by ``owner``)."""
    cdef object owner
    cdef MlpPlan[float]* f32
    cdef MlpPlan[double]* f64
    cdef int typenum
    cdef index_t n_in, n_out

    def __cinit__(self, owner, dtype, index_t n_in, index_t n_out):
        self.owner = owner
        cap = owner._native()
        if dtype == np.float32:
            self.f32 = <MlpPlan[float]*>PyCapsule_GetPointer(cap, b"pybackprop.MlpPlan<float>")
            self.typenum = cnp.NPY_FLOAT32
        else:
            self.f64 = <MlpPlan[double]*>PyCapsule_GetPointer(cap, b"pybackprop.MlpPlan<double>")
            self.typenum = cnp.NPY_FLOAT64
        self.n_in, self.n_out = n_in, n_out

    cdef index_t batch_of(self, x):
        """Rows of x if the plan can take it as it is (else -1: the slow path converts or reports)."""
        if type(x) is not np.ndarray:
            return -1
        cdef cnp.ndarray a = <cnp.ndarray>x
        if (cnp.PyArray_TYPE(a) != self.typenum or cnp.PyArray_NDIM(a) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or not cnp.PyArray_ISALIGNED(a) or cnp.PyArray_DIM(a, 1) != self.n_in or cnp.PyArray_DIM(a, 0) < 1):
            return -1
        return cnp.PyArray_DIM(a, 0)


# ------------------------------------------------------------- tensor slots
# Tensor keeps ``data``, ``grad`` and ``_vc`` in __slots__: each is an object
# pointer at a fixed offset in the instance, recorded by its member descriptor.
# A step reads three of them per parameter; reading at the offset is a load
# where getattr is a type lookup and a descriptor call (~15 ns each, a tenth of
# a tiny network's step). It is used only when every parameter's class
# resolves the three names to Tensor's own descriptors (checked once per
# capture), so a subclass that redefines one still goes through getattr.
cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef class _TensorSlots:
    """Offsets of a parameter tuple's data, grad and _vc slots, if `direct` (else use getattr)."""
    cdef readonly object params
    cdef readonly bint direct
    cdef readonly Py_ssize_t data, grad, vc

    def __cinit__(self, tuple params):
        from pybackprop.tensor import Tensor
        self.params = params
        self.direct = False
        own = [Tensor.__dict__[name] for name in ("data", "grad", "_vc")]
        if not all(type(d) is types.MemberDescriptorType for d in own):
            return
        for p in params:
            if any(getattr(type(p), name, None) is not d for name, d in zip(("data", "grad", "_vc"), own)):
                return
        self.data, self.grad, self.vc = [(<PyMemberDescrObject*>d).d_member.offset for d in own]
        self.direct = True


cdef inline PyObject* _slot(object obj, Py_ssize_t offset):
    """The object in obj's slot at this offset (borrowed; NULL if never set)."""
    return (<PyObject**>((<char*><PyObject*>obj) + offset))[0]


cdef _TensorSlots _slots_of(_TensorSlots cached, tuple params):
    return cached if cached is not None and cached.params is params else _TensorSlots(params)


cdef bint _same_arrays(tuple params, tuple values, _TensorSlots slots):
    """Every Parameter still holds the array captured for it (p.data = ... re-captures)."""
    cdef Py_ssize_t i
    if slots.direct:
        for i in range(len(params)):
            if _slot(params[i], slots.data) != <PyObject*>values[i]:
                return False
        return True
    for i in range(len(params)):
        if params[i].data is not values[i]:
            return False
    return True


cdef class CompiledStepBase:
    """Base of ``pybackprop.compile.CompiledStep``: its ``__call__`` fast path."""
    # Set by CompiledStep._capture and its slow path; read here every step.
    cdef public object model, optimizer, _plan, _spec, _group, _read_hp, _hp, _steps_seen, _pending_state
    cdef public object _training, _loss, dtype
    cdef public bint _counts_steps
    cdef public tuple _params, _values, _grad_tensors, _hp_keys
    cdef public index_t _n_in, _n_out
    # The C++ objects behind _plan and _spec, fetched once per capture.
    cdef _NativePlan _native
    cdef _TensorSlots _slots
    cdef object _native_spec_owner
    cdef OptimSpec* _native_spec

    cdef bint _targets_ok(self, y, index_t batch):
        if type(y) is not np.ndarray:
            return False
        cdef cnp.ndarray t = <cnp.ndarray>y
        if not cnp.PyArray_IS_C_CONTIGUOUS(t) or not cnp.PyArray_ISALIGNED(t):
            return False
        if self._loss == "cross_entropy":
            return cnp.PyArray_TYPE(t) == cnp.NPY_INT64 and cnp.PyArray_NDIM(t) == 1 and cnp.PyArray_DIM(t, 0) == batch
        return (cnp.PyArray_TYPE(t) == self._native.typenum and cnp.PyArray_NDIM(t) == 2
                and cnp.PyArray_DIM(t, 0) == batch and cnp.PyArray_DIM(t, 1) == self._n_out)

    cdef bint _hp_unchanged(self):
        """The optimiser group still holds the hyper-parameters last written to the spec
        (itemgetter and tuple compare without building a tuple: identity first)."""
        cdef Py_ssize_t i
        cdef PyObject* v
        hp, keys, group = self._hp, self._hp_keys, self._group
        if hp is None or keys is None or type(group) is not dict:
            return self._read_hp(group) == hp
        for i in range(len(keys)):
            v = PyDict_GetItem(group, keys[i])
            if v == NULL:
                return False
            if <object>v is not hp[i] and not (<object>v == hp[i]):
                return False
        return True

    def __call__(self, x, y):
        cdef index_t batch
        cdef double loss
        plan = self._plan
        if plan is None or self._pending_state or self.model.training != self._training:
            return self._call(x, y)
        self._slots = _slots_of(self._slots, self._params)
        if not _same_arrays(self._params, self._values, self._slots):   # replaced from Python: capture again
            return self._call(x, y)
        if not self._hp_unchanged():                   # a scheduler or the user changed a setting
            return self._call(x, y)
        if self._counts_steps:
            st = self.optimizer.state.get(self._params[0])
            if st is None or st.get("step") != self._steps_seen:   # stepped eagerly in between
                return self._call(x, y)
        if self._native is None or self._native.owner is not plan:
            self._native = _NativePlan(plan, self.dtype, self._n_in, self._n_out)
        if self._native_spec_owner is not self._spec:
            self._native_spec = <OptimSpec*>PyCapsule_GetPointer(self._spec._native(), b"pybackprop.OptimSpec")
            self._native_spec_owner = self._spec
        batch = self._native.batch_of(x)
        if batch < 0 or not self._targets_ok(y, batch):
            return self._call(x, y)                    # convert, or report what is wrong

        cdef const void* xp = cnp.PyArray_DATA(<cnp.ndarray>x)
        cdef const void* yp = cnp.PyArray_DATA(<cnp.ndarray>y)
        cdef MlpPlan[float]* p32 = self._native.f32
        cdef MlpPlan[double]* p64 = self._native.f64
        cdef OptimSpec* spec = self._native_spec
        with nogil:
            if p32 != NULL:
                loss = <float>p32.train_step(<const float*>xp, batch, yp, spec[0])
            else:
                loss = p64.train_step(<const double*>xp, batch, yp, spec[0])

        self._publish()
        return loss

    def _publish_step(self):
        """What an eager step leaves behind, after a compiled one (run by the slow path)."""
        self._slots = _slots_of(self._slots, self._params)
        self._publish()

    cdef _publish(self):
        """Each parameter's .grad is its gradient view, a new version of each
        parameter (its version cell directly), and the optimiser's step counts."""
        cdef Py_ssize_t i, n
        cdef list vc
        cdef PyObject* v
        cdef _TensorSlots slots = self._slots
        params, grads = self._params, self._grad_tensors
        n = len(params)
        for i in range(n):
            p = params[i]
            g = grads[i]
            if slots.direct:
                if _slot(p, slots.grad) != <PyObject*>g:
                    p.grad = g
                v = _slot(p, slots.vc)
                vc = <list?>(<object>v) if v != NULL else p._vc
            else:
                if p.grad is not g:
                    p.grad = g
                vc = p._vc
            vc[0] = vc[0] + 1
        if self._counts_steps:
            state = self.optimizer.state
            for i in range(n):
                st = state.setdefault(params[i], {})
                st["step"] = st.get("step", 0) + 1
            self._steps_seen = state[params[0]]["step"]

    def _call(self, x, y):
        raise NotImplementedError


# ------------------------------------------------------- inference outputs
# A batch-1 forward of a small network takes a few microseconds, of which a
# new numpy array and, later, freeing it take about 0.15 us.
# The inference path keeps the last two arrays it returned and writes into
# one again only when nothing else refers to it: its reference count is 1
# (ours), no weak reference watches it, and it still has the shape, dtype and
# flags it was made with (a caller may change .shape or .flags in place before
# dropping it). Two, so that `y = predict(x)` in a loop, which still holds the
# previous result during the call, reuses too. A result the caller keeps, or
# any view of it, is never written again. Only small results are kept (up to
# _KEEP_BYTES): a large batch's allocation is a small part of its forward, and
# a model should not hold on to large arrays its caller has let go of.
cdef extern from "Python.h":
    Py_ssize_t Py_REFCNT(PyObject* o)

cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyArrayObject_fields:
        PyObject* weakreflist

cdef int _OUT_FLAGS = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_WRITEABLE | cnp.NPY_ARRAY_OWNDATA
cdef Py_ssize_t _KEEP_BYTES = 64 * 1024

cdef inline bint _reusable(PyObject* cached, index_t rows, index_t cols, int typenum):
    """`cached`: borrowed from the attribute that holds it (so its only reference is 1)."""
    if cached == <PyObject*>None or Py_REFCNT(cached) != 1:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>cached  # (a new reference: counted above)
    return ((<PyArrayObject_fields*>cached).weakreflist == NULL
            and cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_DIM(a, 0) == rows and cnp.PyArray_DIM(a, 1) == cols
            and cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_CHKFLAGS(a, _OUT_FLAGS))


cdef class CompiledModelBase:
    """Base of ``pybackprop.compile.CompiledModel``: its ``__call__`` fast path."""
    cdef public object _plan, dtype
    cdef public tuple _params, _values
    cdef public index_t _n_in, _n_out
    cdef _NativePlan _native
    cdef _TensorSlots _slots
    cdef object _out0, _out1  # the last two results (see _reusable)

    cdef object _output(self, index_t rows):
        """An array for this call's result: a free earlier one, else a new one."""
        cdef cnp.npy_intp dims[2]
        cdef int typenum = self._native.typenum
        if _reusable(<PyObject*>self._out0, rows, self._n_out, typenum):
            self._out0, self._out1 = self._out1, self._out0
            return self._out1
        if _reusable(<PyObject*>self._out1, rows, self._n_out, typenum):
            return self._out1
        dims[0] = rows
        dims[1] = self._n_out
        out = cnp.PyArray_EMPTY(2, dims, typenum, 0)
        if cnp.PyArray_NBYTES(<cnp.ndarray>out) <= _KEEP_BYTES:
            self._out0, self._out1 = self._out1, out
        return out

    def __call__(self, x):
        cdef index_t batch
        plan = self._plan
        if plan is None:
            return self._call(x)
        self._slots = _slots_of(self._slots, self._params)
        if not _same_arrays(self._params, self._values, self._slots):
            return self._call(x)
        if self._native is None or self._native.owner is not plan:
            self._native = _NativePlan(plan, self.dtype, self._n_in, self._n_out)
        batch = self._native.batch_of(x)
        if batch < 0:
            return self._call(x)
        out = self._output(batch)
        cdef const void* xp = cnp.PyArray_DATA(<cnp.ndarray>x)
        cdef void* op = cnp.PyArray_DATA(<cnp.ndarray>out)
        cdef MlpPlan[float]* p32 = self._native.f32
        cdef MlpPlan[double]* p64 = self._native.f64
        with nogil:
            if p32 != NULL:
                p32.forward(<const float*>xp, batch, <float*>op)
            else:
                p64.forward(<const double*>xp, batch, <double*>op)
        return out

    def _call(self, x):
        raise NotImplementedError
