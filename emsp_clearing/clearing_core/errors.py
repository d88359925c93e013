"""Errors raised by the clearing core."""


class OcpiValidationError(ValueError):
    """An OCPI document (or a pricing request) is invalid.

    ``path`` is the JSON path of the offending field (``$.charging_periods[2].dimensions[0].volume``),
    ``message`` a human sentence; ``str(error) == f"{path}: {message}"``.
    """

    def __init__(self, path, message):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):
        return (type(self), (self.path, self.message))
