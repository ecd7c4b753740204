"""The cluster configuration file: what a batch system's jobs ask for, one TOML table per system.

::

    [slurm]
    cores = 2            # cores of one batch job
    memory = "6GB"       # its memory
    walltime = "02:00:00"
    queue = "teaching"   # optional: Slurm's partition, PBS's or SGE's queue
    account = "cs101"    # optional: Slurm's or PBS's account, SGE's project
    jobs = 4             # optional, default 1: batch jobs to start

    [tls]                # the credentials for a scheduler started by hand (tls://host:8786)
    ca_file = "ca.pem"   # paths relative to this file, as `fashion-kit cluster-credentials` writes them
    cert = "cert.pem"
    key = "key.pem"

The format is checked against ``schemas/cluster_config.schema.json``; a file that breaks it is
refused with one message naming the file, the key, what was expected and what was found.
"""

from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path

import jsonschema

from . import cluster_tls

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "cluster_config.schema.json"
SYSTEMS = ("slurm", "pbs", "sge")


class ConfigError(ValueError):
    """The cluster configuration cannot be used; the message says why."""


@lru_cache(1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def load(path: Path | str, system: str) -> dict:
    """The knobs of ``system`` in the file at ``path``, with defaults filled in."""
    path = Path(path)
    if system not in SYSTEMS:
        raise ConfigError(f"--cluster takes a scheduler address (tls://host:8786) or one of {', '.join(SYSTEMS)}; "
                          f"found {system!r}.")
    config = _read(path, f"a [{system}] table of cores, memory and walltime")
    if system not in config:
        raise ConfigError(f"{path} has no [{system}] table; found {', '.join(f'[{k}]' for k in config) or 'none'}. "
                          f"Add one with cores, memory and walltime (see docs/grading-on-a-cluster.md).")
    knobs = dict(config[system])
    knobs.setdefault("jobs", 1)
    knobs.setdefault("processes", 1)
    if knobs["processes"] > knobs["cores"]:
        raise ConfigError(f"{path}: {system}.processes: at most cores ({knobs['cores']}) workers per job; "
                          f"found {knobs['processes']}.")
    return knobs


def load_tls(path: Path | str) -> cluster_tls.Credentials:
    """The credentials of the file's ``[tls]`` table, as paths; each file there, the key private."""
    path = Path(path)
    config = _read(path, "a [tls] table (made by `fashion-kit cluster-credentials FOLDER`)")
    if "tls" not in config:
        raise ConfigError(f"{path} has no [tls] table of credentials; found "
                          f"{', '.join(f'[{k}]' for k in config) or 'none'}. {cluster_tls.SETUP}")
    found = {k: (path.parent / Path(v).expanduser()).absolute() for k, v in config["tls"].items()}
    for name, file in found.items():
        if not file.is_file():
            raise ConfigError(f"{path}: tls.{name}: no file at {file}. {cluster_tls.SETUP}")
    creds = cluster_tls.Credentials(**found)
    try:
        cluster_tls.check_private(creds.key)
    except cluster_tls.CredentialsError as e:
        raise ConfigError(f"{path}: tls.key: {e}") from None
    return creds


def _read(path: Path, wanted: str) -> dict:
    """The file's tables, checked against the schema; ``wanted`` says what it should hold."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"Cannot read the cluster configuration {path}: {e.strerror or e}. "
                          f"Expected a TOML file with {wanted} (see docs/grading-on-a-cluster.md).") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path} is not a valid TOML file ({e}); expected {wanted} "
                          "(see docs/grading-on-a-cluster.md).") from None
    error = jsonschema.exceptions.best_match(_validator().iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "the top level"
        raise ConfigError(f"{path}: {where}: {_expected(error)}.")
    return config


def _expected(error: jsonschema.ValidationError) -> str:
    """What the schema wanted and what the file has, in words, for the one message."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        return f"unknown key ({error.message}); the keys are {', '.join(sorted(schema.get('properties', {})))}"
    if error.validator == "required":
        return f"a required key is missing ({error.message})"
    described = schema.get("description")
    return f"expected {described or 'another value'}; found {error.instance!r} ({error.message})"
