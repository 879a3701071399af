"""The project-managed ("embedded") PostgreSQL 15 + PostGIS cluster.

When ``DATABASE_URL`` is unset, ``geo db up`` runs ``initdb`` under the data
dir, starts the server on loopback only (TCP ``127.0.0.1:GEO_PG_PORT`` plus a
Unix socket inside the cluster dir), creates the ``geo`` database with
PostGIS, and stores a generated password in ``<data dir>/pg.password``
(mode 600).

PostgreSQL refuses to run as root. When this process is root, every server
command runs as the unprivileged ``postgres`` system user (created by the
Debian package) via ``runuser``, and the cluster directory is owned by that
user. If ``postgres`` cannot reach the data dir (for example a checkout under
``/root``, mode 700), the cluster lives in ``/var/lib/geo/clusters/<hash>``
instead and ``<data dir>/pg.location`` records where.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from geo.config import Settings, get_settings

PG_MAJOR = 15
DB_NAME = "geo"
DB_USER = "geo"
SERVICE_USER = "postgres"
APT_SERVER = f"postgresql-{PG_MAJOR}"
APT_POSTGIS = f"postgresql-{PG_MAJOR}-postgis-3"
APT_PARTMAN = f"postgresql-{PG_MAJOR}-partman"


class ClusterError(RuntimeError):
    """The embedded cluster cannot be created, started or reached."""


@dataclass
class ClusterStatus:
    running: bool
    pid: int | None
    port: int
    pgdata: Path
    initialised: bool

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        init = "" if self.initialised else " (not initialised: run `geo db up`)"
        return f"embedded PostgreSQL {PG_MAJOR}: {state}, port {self.port}, data {self.pgdata}{init}"


def bindir() -> Path:
    """Directory holding ``initdb``/``pg_ctl``/``postgres`` for PostgreSQL 15.

    Raises
    ------
    ClusterError
        Naming the Debian package to install when the binaries are absent.
    """
    candidates = [Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists() and (c / "postgres").exists():
            return c
    raise ClusterError(
        f"PostgreSQL {PG_MAJOR} server binaries not found (looked in "
        f"{', '.join(map(str, candidates))}). Install the Debian package: "
        f"`apt-get install {APT_SERVER}` (or set DATABASE_URL to an existing PostGIS database)."
    )


def postgis_available() -> bool:
    """True when the PostGIS extension files for PostgreSQL 15 are installed."""
    share = Path(f"/usr/share/postgresql/{PG_MAJOR}/extension/postgis.control")
    return share.exists()


def require_postgis() -> None:
    if not postgis_available():
        raise ClusterError(
            f"PostGIS for PostgreSQL {PG_MAJOR} is not installed. Install the Debian package: "
            f"`apt-get install {APT_POSTGIS}`."
        )


def partman_available() -> bool:
    """True when the pg_partman extension files for PostgreSQL 15 are installed (events partitions, 0009)."""
    return Path(f"/usr/share/postgresql/{PG_MAJOR}/extension/pg_partman.control").exists()


def require_partman() -> None:
    if not partman_available():
        raise ClusterError(
            f"pg_partman for PostgreSQL {PG_MAJOR} is not installed (it keeps the monthly partitions of the "
            f"events table). Install the Debian package: `apt-get install {APT_PARTMAN}`."
        )


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_service(cmd: list[str]) -> list[str]:
    """Prefix *cmd* so it runs as the ``postgres`` user when we are root."""
    if not _is_root():
        return cmd
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", SERVICE_USER, "--", *cmd]


def _service_ids() -> tuple[int, int]:
    import pwd

    try:
        pw = pwd.getpwnam(SERVICE_USER)
    except KeyError as exc:
        raise ClusterError(
            f"running as root needs the unprivileged '{SERVICE_USER}' system user, which the "
            f"Debian package creates: `apt-get install {APT_SERVER}`"
        ) from exc
    return pw.pw_uid, pw.pw_gid


def _service_can_reach(path: Path) -> bool:
    """Can the service user create/enter *path*? (its nearest existing ancestor chain must be traversable)"""
    probe = path
    while not probe.exists():
        probe = probe.parent
    r = subprocess.run(_as_service(["test", "-x", str(probe), "-a", "-w", str(probe)]), capture_output=True)
    if r.returncode == 0:
        return True
    # writable not needed if we create and chown the dir ourselves; traversal is.
    r = subprocess.run(_as_service(["test", "-x", str(probe)]), capture_output=True)
    return r.returncode == 0


class Cluster:
    """A project-local PostgreSQL cluster under ``settings.data_dir``.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`geo.config.get_settings`.
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.data_dir = self.settings.data_path
        self.port = self.settings.pg_port

    # ----------------------------------------------------------------- paths
    @property
    def password_file(self) -> Path:
        return self.data_dir / "pg.password"

    @property
    def location_file(self) -> Path:
        return self.data_dir / "pg.location"

    @property
    def pgdata(self) -> Path:
        if self.location_file.exists():
            return Path(self.location_file.read_text().strip())
        return self.data_dir / "pg"

    @property
    def logfile(self) -> Path:
        return self.pgdata.parent / (self.pgdata.name + ".log")

    def _choose_pgdata(self) -> Path:
        default = self.data_dir / "pg"
        if not _is_root() or _service_can_reach(self.data_dir):
            return default
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
        alt = Path("/var/lib/geo/clusters") / digest / "pg"
        self.location_file.write_text(str(alt))
        return alt

    # ----------------------------------------------------------------- state
    def password(self) -> str:
        if not self.password_file.exists():
            raise ClusterError(f"no embedded cluster under {self.data_dir}: run `geo db up` first")
        return self.password_file.read_text().strip()

    def url(self, driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of the embedded database."""
        return f"{driver}://{DB_USER}:{quote(self.password(), safe='')}@127.0.0.1:{self.port}/{DB_NAME}"

    def _pid(self) -> int | None:
        """PID from postmaster.pid if that process is really this cluster's postmaster."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        return pid if "postgres" in cmdline else None

    def status(self) -> ClusterStatus:
        pid = self._pid()
        return ClusterStatus(
            running=pid is not None,
            pid=pid,
            port=self._configured_port() or self.port,
            pgdata=self.pgdata,
            initialised=(self.pgdata / "PG_VERSION").exists(),
        )

    def _configured_port(self) -> int | None:
        conf = self.pgdata / "postgresql.auto.conf"
        try:
            for line in conf.read_text().splitlines():
                if line.strip().startswith("port"):
                    return int(line.split("=")[1].strip().strip("'"))
        except (OSError, ValueError):
            return None
        return None

    # ----------------------------------------------------------------- lifecycle
    def _run(self, cmd: list[str], what: str, timeout: float = 120) -> subprocess.CompletedProcess:
        r = subprocess.run(_as_service(cmd), capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
            log = ""
            if self.logfile.exists():
                try:
                    log = "\n--- server log (tail) ---\n" + "\n".join(self.logfile.read_text().splitlines()[-15:])
                except OSError:
                    pass
            raise ClusterError(f"{what} failed (exit {r.returncode}):\n{tail}{log}")
        return r

    def _chown(self, path: Path) -> None:
        if _is_root():
            uid, gid = _service_ids()
            os.chown(path, uid, gid)

    def init(self) -> bool:
        """Run initdb if the cluster does not exist yet. Returns True if it was created."""
        bins = bindir()
        require_postgis()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.pgdata if self.location_file.exists() else self._choose_pgdata()
        if (pgdata / "PG_VERSION").exists():
            return False
        if pgdata.exists() and any(pgdata.iterdir()):
            raise ClusterError(f"{pgdata} exists, is not empty and holds no cluster; move it away and retry")
        pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._chown(pgdata)
        if _is_root():
            _service_ids()
        password = secrets.token_urlsafe(24)
        old_umask = os.umask(0o077)
        try:
            self.password_file.write_text(password + "\n")
        finally:
            os.umask(old_umask)
        # initdb reads the password from a file the service user can read; remove it afterwards.
        pwfile = pgdata.parent / f".pw-{secrets.token_hex(4)}"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        try:
            self._run(
                [str(bins / "initdb"), "-D", str(pgdata), "-U", DB_USER, "--pwfile", str(pwfile),
                 "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        socket_dir = str(pgdata) if len(str(pgdata)) < 90 else ""
        conf = pgdata / "postgresql.auto.conf"
        with conf.open("a") as f:
            f.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{socket_dir}'\n"
                "max_connections = 200\nshared_buffers = '256MB'\nwork_mem = '32MB'\n"
                "maintenance_work_mem = '256MB'\nfsync = on\nsynchronous_commit = on\n"
                "log_min_messages = warning\n"
            )
        return True

    def start(self, wait: float = 60) -> bool:
        """Start the server if it is not running. Returns True if it was started."""
        bins = bindir()
        if self._pid() is not None:
            return False
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():  # left by a crash or a killed machine: the PID is not ours any more
            stale.unlink()
        self._check_port_free()
        if not self.logfile.exists():
            self.logfile.touch()
            self._chown(self.logfile)
        self._run(
            [str(bins / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.logfile), "-w", "-t", str(int(wait)),
             "start"],
            "pg_ctl start",
            timeout=wait + 30,
        )
        return True

    def _check_port_free(self) -> None:
        port = self._configured_port() or self.port
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise ClusterError(
                    f"port {port} on 127.0.0.1 is taken by another program; set GEO_PG_PORT to a free port "
                    f"(the cluster at {self.pgdata} will be reconfigured) or stop that program"
                ) from exc

    def _apply_port(self) -> None:
        """Keep postgresql.auto.conf's port in line with GEO_PG_PORT."""
        conf = self.pgdata / "postgresql.auto.conf"
        if self._configured_port() not in (None, self.port):
            text = "\n".join(
                f"port = {self.port}" if ln.strip().startswith("port") else ln
                for ln in conf.read_text().splitlines()
            )
            conf.write_text(text + "\n")

    def ensure_database(self) -> None:
        """Create the ``geo`` database and the PostGIS extension if missing; check pg_partman is installed."""
        import psycopg

        base = dict(host="127.0.0.1", port=self.port, user=DB_USER, password=self.password())
        with psycopg.connect(dbname="postgres", autocommit=True, **base) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        with psycopg.connect(dbname=DB_NAME, autocommit=True, **base) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        # pg_partman's files must be there; the extension itself (schema ``partman``) is created by migration 0009,
        # so that a backup restored into a fresh cluster brings its own (``CREATE SCHEMA partman`` would clash)
        require_partman()

    def up(self) -> dict:
        """Create (if needed) and start the cluster; idempotent.

        Returns
        -------
        dict with keys ``created`` and ``started`` (booleans) and ``url``.
        """
        created = self.init()
        if self._pid() is None:
            self._apply_port()
        started = self.start()
        self.ensure_database()
        return {"created": created, "started": started, "url": self.url()}

    def down(self, mode: str = "fast") -> bool:
        """Stop the server. Returns True if it was running."""
        if self._pid() is None:
            return False
        self._run([str(bindir() / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"], "pg_ctl stop")
        return True

    def restart(self) -> None:
        self.down()
        self.start()

    def destroy(self) -> None:
        """Stop and delete the cluster (tests only)."""
        self.down(mode="immediate")
        shutil.rmtree(self.pgdata, ignore_errors=True)
        self.logfile.unlink(missing_ok=True)
        self.password_file.unlink(missing_ok=True)
        self.location_file.unlink(missing_ok=True)


def database_url(settings: Settings | None = None) -> str:
    """The database URL in effect: ``DATABASE_URL`` if set, else the embedded cluster's."""
    s = settings or get_settings()
    if s.database_url:
        url = s.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    return Cluster(s).url()


def wait_for_port(host: str, port: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False
