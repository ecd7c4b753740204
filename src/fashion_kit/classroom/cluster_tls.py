"""Who may join the grading cluster: mutual TLS, with credentials only the instructor hands out.

A Dask scheduler runs whatever its clients send, on itself and on every worker, and a worker
receives the grading kit (the hidden tests) and the submissions. So the kit talks to a scheduler
only over ``tls://``, with Dask's :class:`~distributed.security.Security`: both ends of every
connection show a certificate signed by the cluster's own certificate authority, and a party
without one is refused during the handshake, before Dask reads a byte from it.

:func:`make` writes one folder of credentials (``fashion-kit cluster-credentials FOLDER``): the
authority's certificate, one certificate and key that the scheduler, the workers and the grading
command all use, and a cluster configuration file whose ``[tls]`` table points at them. The
authority's own key is thrown away once it has signed: nobody, the instructor included, can sign a
second certificate, and making a new folder is how the old one is retired. Batch systems
(``--cluster slurm``) do not need the folder: the kit makes throw-away credentials for each batch.
"""

from __future__ import annotations

import datetime
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

SCHEME = "tls://"
DEFAULT_PORT = 8786
CA_FILE, CERT_FILE, KEY_FILE, CONFIG_FILE = "ca.pem", "cert.pem", "key.pem", "cluster.toml"
# A certificate outlives a course term; making a new folder each term retires the old one.
CERT_DAYS = 400
COMMON_NAME = "fashion-kit grading cluster"

# The scheduler's web pages (worker lists, logs, call stacks, task names) are plain HTTP on port
# 8787, open to anyone who reaches it, TLS or not, and `--no-dashboard` leaves them on: no pages.
NO_WEB_PAGES = {"distributed.scheduler.http.routes": []}

SETUP = ("Make the cluster's credentials with `fashion-kit cluster-credentials FOLDER`, start the scheduler "
         "and the workers with the lines it prints, and grade with `--cluster tls://HOST:8786 --cluster-config "
         "FOLDER/cluster.toml` (see docs/grading-on-a-cluster.md).")


@dataclass(frozen=True)
class Credentials:
    """Paths of the authority's certificate, and of the certificate and key this party shows."""

    ca_file: Path
    cert: Path
    key: Path

    def security(self):
        """Dask's Security for the grading command, a client of the scheduler: encryption required."""
        from distributed.security import Security

        return Security(require_encryption=True, tls_ca_file=str(self.ca_file),
                        tls_client_cert=str(self.cert), tls_client_key=str(self.key))


class CredentialsError(ValueError):
    """The credentials cannot be made or used; the message says why."""


def make(folder: Path | str) -> Credentials:
    """A new authority, one certificate it signed and its key, and ``cluster.toml``, in ``folder``:
    a folder only its owner can open (0700), each file readable by its owner only (0600)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder).expanduser().absolute()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise CredentialsError(f"Cannot make the folder {folder}: {e.strerror or e}.") from None
    if any(folder.iterdir()):
        raise CredentialsError(f"{folder} is not empty; give a new folder (credentials are never overwritten: "
                               "the workers that hold the old ones would be locked out).")
    folder.chmod(0o700)  # mkdir's mode is cut by the umask, and an empty folder may have been made before

    now = datetime.datetime.now(datetime.timezone.utc)
    until = now + datetime.timedelta(days=CERT_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{COMMON_NAME} authority")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    # One certificate for every role: Dask checks the authority's signature, not host names, and a
    # holder of any of the cluster's certificates can run code on all of it anyway.
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    creds = Credentials(folder / CA_FILE, folder / CERT_FILE, folder / KEY_FILE)
    _write_private(creds.ca_file, ca.public_bytes(serialization.Encoding.PEM))
    _write_private(creds.cert, cert.public_bytes(serialization.Encoding.PEM))
    _write_private(creds.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    # Paths relative to the file: the folder can be copied to another place or machine as it is.
    _write_private(folder / CONFIG_FILE, (
        "# The TLS credentials of the grading cluster (fashion-kit cluster-credentials); paths are relative to\n"
        "# this file. Use it as: fashion-kit grade ... --cluster tls://HOST:8786 --cluster-config THIS_FILE\n"
        f'[tls]\nca_file = "{CA_FILE}"\ncert = "{CERT_FILE}"\nkey = "{KEY_FILE}"\n').encode())
    return creds


def temporary(folder: Path):
    """Dask's throw-away credentials for one batch (one certificate, its own authority), written into
    ``folder`` (0700, made by the caller) for the batch system's jobs to read: a job script carries
    paths, never keys. Encryption required."""
    from distributed.security import Security

    made = Security.temporary()
    files = {}
    for name, pem in (("ca.pem", made.tls_ca_file), ("cert.pem", made.tls_worker_cert), ("key.pem", made.tls_worker_key)):
        _write_private(folder / name, pem.encode())
        files[name] = str(folder / name)
    cert, key = files["cert.pem"], files["key.pem"]
    return Security(require_encryption=True, tls_ca_file=files["ca.pem"], tls_client_cert=cert, tls_client_key=key,
                    tls_scheduler_cert=cert, tls_scheduler_key=key, tls_worker_cert=cert, tls_worker_key=key)


def environment(config: dict) -> str:
    """Dask settings as the environment variables `dask` commands read, for a printed line."""
    return " ".join(f"DASK_{key.upper().replace('.', '__').replace('-', '_')}={shlex.quote(repr(value))}"
                    for key, value in config.items())


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start (O_EXCL: never through a file or link someone put there first).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def check_private(path: Path) -> None:
    """Refuse a key that others can read: whoever reads it can run code on the whole cluster."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise CredentialsError(f"{path} can be read by other accounts (mode {mode:o}); whoever reads it can run code "
                               f"on the cluster and read every submission. Run: chmod 600 {shlex.quote(str(path))}")


def commands(creds: Credentials, host: str, port: int = DEFAULT_PORT) -> list[tuple[str, str]]:
    """The lines that start the scheduler and the workers and grade with these credentials."""
    tls = (f"--tls-ca-file {shlex.quote(str(creds.ca_file))} --tls-cert {shlex.quote(str(creds.cert))} "
           f"--tls-key {shlex.quote(str(creds.key))}")
    address = f"{SCHEME}{host}:{port}"
    config = shlex.quote(str(creds.ca_file.parent / CONFIG_FILE))
    return [
        ("on the scheduler's machine",
         f"{environment(NO_WEB_PAGES)} dask scheduler --protocol tls --port {port} {tls} --no-dashboard"),
        ("on each worker machine", f"dask worker {address} {tls} --nthreads 1 --no-dashboard"),
        ("to grade", f"fashion-kit grade submissions/ -o graded/ --cluster {address} --cluster-config {config}"),
    ]
