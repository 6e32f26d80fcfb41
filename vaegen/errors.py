"""The error types vaegen raises; the CLI turns each into a one-line message.

Domain code raises these and never prints or exits. A message names the
Python argument it is about (`provider="cuda"`), never a command-line flag:
the CLI puts its own option in place of `argument=value` where it maps the
error (see `argument`). Imports nothing but the standard library.
"""

from __future__ import annotations


class VaegenError(Exception):
    """A failure the user can act on; its message is shown as `Error: ...`.

    `argument`, when given, names the Python argument the message writes as
    `argument=value` (for example provider="cuda"), so that the CLI can name
    its option (--provider cuda) instead.
    """

    def __init__(self, message: str = "", *, argument: str | None = None):
        super().__init__(message)
        self.argument = argument


class ArgumentError(VaegenError):
    """An argument is out of range or inconsistent with the model (a wrong
    shape, an unknown class); the CLI reports it as a usage error, exit 2."""


class DataError(VaegenError):
    """A dataset is missing, corrupt, or could not be downloaded."""


class ImageError(VaegenError):
    """A user image cannot be read or is unsafe to decode.

    Raised for a batch (vaegen.api.Model.load_images), `refused` lists every
    file that cannot be used as (path, message), in the order given."""

    def __init__(self, message: str = "", *, refused: list | None = None, argument: str | None = None):
        super().__init__(message, argument=argument)
        self.refused = list(refused or [])


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
