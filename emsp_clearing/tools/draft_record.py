"""A not yet created record, for model methods that only read its fields."""

import inspect
import types


class Draft:
    """Attribute bag standing for a not yet created record of ``model`` (batch ingestion: a
    clearing.cdr in ``_find_for_cdr``, ``_prepare_pricing_vals`` and
    ``_prepare_empty_pricing_vals``, which only read fields). The model's methods are bound
    to the draft; reading a field the draft was not given fails loudly rather than
    reading an empty recordset's ``False``."""

    def __init__(self, model, **values):
        self.__dict__.update(values)
        self._model = model

    def ensure_one(self):
        return self

    _kinds = {}  # (model class, name) -> the plain function to bind, or None

    def __getattr__(self, name):
        model = self.__dict__["_model"]
        if name in model._fields:
            raise AttributeError("batch ingestion draft has no value for field %r" % name)
        key = (type(model), name)
        kind = Draft._kinds.get(key, Draft)
        if kind is Draft:
            static = inspect.getattr_static(type(model), name, None)
            if isinstance(static, (staticmethod, classmethod)) or not callable(static):
                kind = None
            else:
                kind = static
            Draft._kinds[key] = kind
        if kind is None:
            return getattr(model, name)
        return types.MethodType(kind, self)
