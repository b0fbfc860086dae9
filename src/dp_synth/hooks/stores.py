"""Where MLflow keeps a run: whether its tracking store and artifact location are on this
machine, which decides whether diagnostics computed from private or held-out data may go there
(``dp.tracking_diagnostics``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

import mlflow

from dp_synth.pe.settings import PrivateJobSettings


def tracking_active() -> bool:
    """Whether an MLflow run is active (kedro-mlflow opened one for this command)."""
    return mlflow.active_run() is not None


_HOSTED_STORES = {"databricks", "databricks-uc", "uc", "dbfs"}
"""MLflow URI schemes that name a hosted service or its file system, not a path on this machine."""
_HOST_SCHEMES = {"http", "https", "postgresql", "mysql", "mssql"}
"""Schemes whose location is the host they name (a driver may follow ``+``): local on loopback."""


def _is_loopback(host: str | None) -> bool:
    """Whether a URI's host is this machine's loopback interface (no host: not one)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_local_path(path: str) -> bool:
    """Whether a file system path is on this machine: not a UNC path (``//server/share``,
    ``\\\\server\\share``), which names a network share."""
    return not path.startswith(("//", "\\\\", "/\\", "\\/"))


def location_is_local(uri: str, tracking_uri: str | None = None) -> bool:
    """Whether an MLflow tracking URI or artifact location keeps its contents on this machine.

    Local: a path or ``file:`` URI that is not a network share (UNC), a SQLite file that is not on
    one, an HTTP server or a database on the loopback address, and (for an artifact location)
    ``mlflow-artifacts:`` without a host when ``tracking_uri``, the server that proxies it, is
    local. Anything else is not: object stores (``s3:``, ``gs:``, ``wasbs:``, ``abfss:``,
    ``hdfs:`` ...), Databricks (``databricks``, ``dbfs:``), any other host, an unknown scheme.
    """
    if uri.partition(":")[0].lower() in _HOSTED_STORES or not _is_local_path(uri):
        return False
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "" or len(scheme) == 1:  # a path, or a Windows drive letter
        return True
    if scheme == "file":
        return parsed.netloc in ("", "localhost") and _is_local_path(parsed.path)
    if scheme == "sqlite":  # sqlite:///relative.db, sqlite:////absolute.db
        return parsed.netloc in ("", "localhost") and _is_local_path(parsed.path.removeprefix("/"))
    if scheme == "mlflow-artifacts":  # proxied by a tracking server: that one, or the named host
        if parsed.netloc:
            return _is_loopback(parsed.hostname)
        return tracking_uri is not None and location_is_local(tracking_uri)
    return scheme.partition("+")[0] in _HOST_SCHEMES and _is_loopback(parsed.hostname)


def tracking_is_local(uri: str) -> bool:
    """Whether an MLflow tracking URI keeps runs (parameters, metrics) on this machine."""
    return location_is_local(uri)


def stores_are_local(tracking_uri: str, artifact_uri: str) -> bool:
    """Whether both the tracking store (metrics) and the run's artifact location (reports,
    figures) are on this machine: a local tracking store may keep artifacts elsewhere."""
    return location_is_local(tracking_uri) and location_is_local(artifact_uri, tracking_uri)


def diagnostics_to_tracking(settings: PrivateJobSettings, tracking_uri: str, artifact_uri: str) -> bool:
    """Whether diagnostics computed from private or held-out data may go to MLflow
    (``dp.tracking_diagnostics``: ``local``, the default, only when the tracking store at
    ``tracking_uri`` and the run's artifact location ``artifact_uri`` are both on this machine)."""
    policy = settings.dp.tracking_diagnostics
    return policy == "always" or (policy == "local" and stores_are_local(tracking_uri, artifact_uri))


def stores() -> tuple[str, str]:
    """The tracking URI and the active run's artifact location, as MLflow resolved it (from the
    experiment's ``artifact_location``, itself from the server's default artifact root)."""
    return mlflow.get_tracking_uri(), mlflow.get_artifact_uri()
