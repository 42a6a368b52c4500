"""The package's exceptions (importable without torch)."""

__all__ = ["VvdError", "VvdConnectionError", "ExportError", "UnsupportedModuleError"]


class VvdError(Exception):
    """An error answered by vvd (an application/problem+json body), or a run
    that did not finish.

    status: the HTTP status (None when no HTTP answer is involved);
    code: vvd's error_code ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", ..., or the
    run's state "FAILED" / "STOPPED" / "CRASHED"); field: the JSON pointer of
    the offending field ("/lambda_ratio", "/query/page_size"; "" when none);
    detail: the human-readable explanation; problem: the whole body (a dict);
    run: the run object when a run ended without finishing."""

    def __init__(self, status, code, field="", detail="", problem=None, run=None):
        self.status = status
        self.code = code
        self.field = field or ""
        self.detail = detail or ""
        self.problem = problem or {}
        self.run = run
        super().__init__(self._text())

    def _text(self):
        head = ("%s %s" % (self.status, self.code)) if self.status else str(self.code)
        if self.field:
            head += " at " + self.field
        return "%s: %s" % (head, self.detail) if self.detail else head


class VvdConnectionError(VvdError, ConnectionError):
    """vvd could not be reached (refused, reset, timed out); code UNREACHABLE."""

    def __init__(self, url, reason):
        self.url = url
        self.reason = reason
        super().__init__(None, "UNREACHABLE", "", "cannot reach vvd at %s: %s" % (url, reason))


class ExportError(ValueError):
    """A module that vvd.export cannot turn into a vvd model spec."""


class UnsupportedModuleError(ExportError):
    """A module of a type (or with settings) the vvd runtime does not have.
    path: its state_dict path ("features.3"); module_type: "nn.GELU"."""

    def __init__(self, path, module_type, reason=None):
        from ._supported import SUPPORTED

        self.path = path
        self.module_type = module_type
        self.reason = reason
        if reason:
            msg = "%s (%s) is not supported: %s" % (path, module_type, reason)
        else:
            msg = "%s (%s) is not supported: supported are %s" % (path, module_type, SUPPORTED)
        super().__init__(msg)
