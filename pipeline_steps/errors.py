"""The failures a user can act on.

A step raises one of these with a message that names the file, column, setting
or service at fault; the CLI prints it as one line and exits non-zero, with no
traceback. Anything else escaping a step is a bug and keeps its traceback.
"""


class PipelineError(Exception):
    """A failure caused by input, configuration or a backing service, not by our code."""


class SettingsError(PipelineError):
    """A setting is missing or malformed."""


class DataValidationError(PipelineError):
    """The dataset cannot be used as it is."""


class ServiceUnreachableError(PipelineError):
    """S3 or MLflow did not answer."""


class NotFoundError(PipelineError):
    """A file, object or record that should be there is not."""
