"""The error types vaegen raises; the CLI turns each into a one-line message.

Domain code raises these and never prints or exits. Imports nothing but the
standard library.
"""


class VaegenError(Exception):
    """A failure the user can act on; its message is shown as `Error: ...`."""


class ArgumentError(VaegenError):
    """An argument is out of range or inconsistent with the model (a wrong
    shape, an unknown class); the CLI reports it as a usage error, exit 2."""


class DataError(VaegenError):
    """A dataset is missing, corrupt, or could not be downloaded."""


class ImageError(VaegenError):
    """A user image cannot be read or is unsafe to decode."""


class BundleError(VaegenError):
    """A model bundle is missing, tampered with, or inconsistent."""


class ProviderError(VaegenError):
    """The requested ONNX Runtime execution provider cannot run."""


class LatentError(VaegenError):
    """A latent file is unreadable or has the wrong shape."""


class TrainingError(VaegenError):
    """Training diverged, or a checkpoint cannot be used."""


class ExportError(VaegenError):
    """An export failed its checks; no bundle was written."""


class OutputError(VaegenError):
    """An output file or folder cannot be written (missing folder, no
    permission, full disk, a special file system); nothing was left behind."""
