# The per-call bookkeeping of pb.compile's training step, in C.
#
# pybackprop.compile.CompiledStep subclasses this. A tiny network's whole
# native step takes about a microsecond, and the checks around it (has the
# model changed mode, was a parameter replaced, did a scheduler change a
# hyper-parameter) plus what an eager step leaves behind (p.grad, version
# counters, step counts) cost as much again as Python bytecode. Here they are
# the same checks as compiled C; anything unusual (a first step, a change to
# re-read, inputs that need converting) goes to CompiledStep._call, the
# Python version of the whole thing.
cdef class CompiledStepBase:
    """Base of ``pybackprop.compile.CompiledStep``: its ``__call__`` fast path."""
    # Set by CompiledStep._capture and its slow path; read here every step.
    cdef public object model, optimizer, _plan, _spec, _group, _read_hp, _hp, _steps_seen, _pending_state
    cdef public object _training
    cdef public bint _counts_steps
    cdef public tuple _params, _values, _grad_tensors

    def __call__(self, x, y):
        cdef Py_ssize_t i, n
        plan = self._plan
        if (plan is None or self._pending_state or self.model.training != self._training
                or type(x) is not np.ndarray or type(y) is not np.ndarray):
            return self._call(x, y)
        params, values, grads = self._params, self._values, self._grad_tensors
        n = len(params)
        for i in range(n):
            if params[i].data is not values[i]:        # replaced from Python: capture again
                return self._call(x, y)
        if self._read_hp(self._group) != self._hp:     # a scheduler or the user changed a setting
            return self._call(x, y)
        state = self.optimizer.state
        if self._counts_steps:
            st = state.get(params[0])
            if st is None or st.get("step") != self._steps_seen:   # stepped eagerly in between
                return self._call(x, y)
        try:
            loss = plan.train_step(x, y, self._spec)
        except TypeError:                              # dtype or layout: the slow path converts
            return self._call(x, y)
        # What an eager step leaves behind: gradients, new parameter versions, step counts.
        for i in range(n):
            p = params[i]
            g = grads[i]
            if p.grad is not g:
                p.grad = g
            p._vc[0] += 1
        if self._counts_steps:
            for i in range(n):
                st = state.setdefault(params[i], {})
                st["step"] = st.get("step", 0) + 1
            self._steps_seen = state[params[0]]["step"]
        return loss

    def _call(self, x, y):
        raise NotImplementedError
