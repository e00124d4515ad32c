"""The local stack: Apache Kafka (KRaft), OpenSearch and an Elasticsearch-wire server, on loopback.

    python devstack/stack.py up [kafka opensearch elasticsearch]   start (idempotent), write .devstack/env
    python devstack/stack.py up --wipe [servers]                   stop, delete their data, start empty
    python devstack/stack.py down                                  stop every server by its PID
    python devstack/stack.py status

Servers come from the package registries this project may reach: Kafka and OpenSearch jars from Maven
Central (resolved by `mvn dependency:copy-dependencies` into a cache; plugin zips such as OpenSearch's
k-NN are unpacked onto the classpath), the ES-wire emulator from PyPI (`noida-db`, installed into the
project's virtualenv). Data, logs and PID files live in `.devstack/`; each server keeps its data
across `down`/`up` (so "the engine restarted" can be tested) until `up --wipe`.
Standard library only, so it also runs outside the virtualenv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "devstack"
STATE = Path(os.environ.get("SIDECAR_DEVSTACK_DIR", ROOT / ".devstack"))
# Downloaded jars; a second stack (a test's own servers on other ports) can share the first one's.
CACHE = Path(os.environ.get("SIDECAR_DEVSTACK_CACHE", STATE / "cache"))
LOGS = STATE / "logs"
ENV_FILE = STATE / "env"
HOST = "127.0.0.1"

KAFKA_PORT = int(os.environ.get("SIDECAR_DEVSTACK_KAFKA_PORT", "19092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("SIDECAR_DEVSTACK_KAFKA_CONTROLLER_PORT", "19093"))
OPENSEARCH_PORT = int(os.environ.get("SIDECAR_DEVSTACK_OPENSEARCH_PORT", "19200"))
OPENSEARCH_TRANSPORT_PORT = int(os.environ.get("SIDECAR_DEVSTACK_OPENSEARCH_TRANSPORT_PORT", "19300"))
ES_PORT = int(os.environ.get("SIDECAR_DEVSTACK_ES_PORT", "19201"))
JAVA = os.environ.get("SIDECAR_DEVSTACK_JAVA", shutil.which("java") or "java")

READY_TIMEOUT_S = float(os.environ.get("SIDECAR_DEVSTACK_READY_TIMEOUT", "180"))
PORT_RELEASE_S = 30.0  # how long a killed server of ours may take to free its port
# Opt-in CPU pinning of every server (a CPU list as `taskset -c` reads it: "1", "2-3"). The benchmarks
# keep the servers off the sidecar's cores so that a ratio measures the sidecar, not the contention.
CPUS = os.environ.get("SIDECAR_DEVSTACK_CPUS", "").strip()


class StackError(RuntimeError):
    """A server could not be fetched or started; the message names its log."""


def log(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


# --------------------------------------------------------------------------- helpers


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL we built
            return bool(200 <= resp.status < 300)
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent has not collected it yet
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def maven_fetch(pom_dir: Path, name: str) -> Path:
    """Copy the runtime jars of `pom_dir/pom.xml` into a cache folder keyed by the pom's content."""
    pom = pom_dir / "pom.xml"
    key = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    target = CACHE / f"{name}-{key}"
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is needed to fetch the Kafka and OpenSearch jars and was not found")
    log(f"fetching {name} jars from Maven Central (cached in {target})")
    target.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    mvn_log = LOGS / f"mvn-{name}.log"
    with mvn_log.open("w") as out:
        rc = subprocess.call(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={target}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if rc != 0:
        raise StackError(f"mvn could not fetch {name} (exit {rc}); see {mvn_log}:\n{tail(mvn_log)}")
    for bundle in sorted(target.glob("*.zip")):
        unpack_jars(bundle, target)
    marker.write_text("ok\n")
    return target


def unpack_jars(bundle: Path, target: Path) -> None:
    """A plugin's distribution zip: its jars (the plugin and its own dependencies) join `target`,
    the classpath folder; a jar of the same file name already there is the same artifact."""
    with zipfile.ZipFile(bundle) as archive:
        for member in archive.namelist():
            name = Path(member).name
            if name.endswith(".jar") and not (target / name).exists():
                (target / name).write_bytes(archive.read(member))
    bundle.unlink()


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    port: int
    url: str
    env_var: str
    start: Callable[[Path], list[str]]
    ready: Callable[[], bool]
    # The environment the process runs with (None = inherit).
    env: dict[str, str] | None = None

    @property
    def data_dir(self) -> Path:
        return STATE / self.name

    @property
    def pid_file(self) -> Path:
        return STATE / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return LOGS / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def up(self) -> None:
        running = self.pid()
        if running is not None:
            # Ours and alive: it may be starting or busy; wait for it rather than start a second copy.
            if self.wait_ready(running):
                log(f"{self.name} already running on {self.url} (pid {running})")
                return
            raise StackError(
                f"{self.name} (pid {running}) is running but not answering on {self.url}; "
                f"`make stack-down` then `make stack-up`; log {self.log_file}:\n{tail(self.log_file)}"
            )
        if self.pid_file.exists():
            # Ours, just killed: a dying JVM's threads may hold its sockets for a moment after its
            # main thread has exited.
            deadline = time.monotonic() + PORT_RELEASE_S
            while port_open(self.port) and time.monotonic() < deadline:
                time.sleep(0.2)
        if port_open(self.port):
            raise StackError(
                f"port {self.port} for {self.name} is taken by another process; stop it or set "
                f"SIDECAR_DEVSTACK_{self.name.upper()}_PORT"
            )
        LOGS.mkdir(parents=True, exist_ok=True)
        cmd = pinned(self.start(self.data_dir))
        started = time.monotonic()
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=STATE,
                start_new_session=True,
                env=self.env,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        while time.monotonic() - started < READY_TIMEOUT_S:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise StackError(
                    f"{self.name} exited with code {proc.returncode} while starting; log {self.log_file}:\n"
                    f"{tail(self.log_file)}"
                )
            if self.ready():
                log(f"{self.name} ready on {self.url} in {time.monotonic() - started:.1f}s (pid {proc.pid})")
                return
            time.sleep(0.5)
        stop_pid(proc.pid)
        self.pid_file.unlink(missing_ok=True)
        raise StackError(
            f"{self.name} not ready after {READY_TIMEOUT_S:.0f}s (if its kept data is the cause, "
            f"`up --wipe {self.name}` starts it empty); log {self.log_file}:\n{tail(self.log_file)}"
        )

    def wait_ready(self, pid: int, timeout_s: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(pid):
            if self.ready():
                return True
            time.sleep(0.5)
        return False

    def down(self) -> None:
        pid = self.pid()
        if pid is not None:
            stop_pid(pid)
            log(f"{self.name} stopped (pid {pid})")
        self.pid_file.unlink(missing_ok=True)

    def wipe(self) -> None:
        """Stop the server and delete its data: the next `up` starts it empty."""
        self.down()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
            log(f"{self.name} data deleted ({self.data_dir})")


def pinned(cmd: list[str]) -> list[str]:
    """`cmd` run on the CPUs of SIDECAR_DEVSTACK_CPUS, when set (taskset execs it: the PID is the server's)."""
    if not CPUS:
        return cmd
    taskset = shutil.which("taskset")
    if taskset is None:
        raise StackError("SIDECAR_DEVSTACK_CPUS needs `taskset` (util-linux), which was not found")
    return [taskset, "-c", CPUS, *cmd]


def stop_pid(pid: int, grace_s: float = 30.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after the grace period; returns
    once the group is gone (or PORT_RELEASE_S after the SIGKILL)."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, PORT_RELEASE_S)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            try:  # reap it if it is our child (stack started from a test fixture)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.2)


def kafka_command(data: Path) -> list[str]:
    libs = maven_fetch(HERE / "kafka", "kafka")
    classpath = f"{libs}/*"
    config = data / "server.properties"
    logs_dir = data / "kraft-logs"
    if not (logs_dir / "meta.properties").exists():
        data.mkdir(parents=True, exist_ok=True)
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={HOST}:{KAFKA_CONTROLLER_PORT}",
                    f"listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
                    f"advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={logs_dir}",
                    "num.partitions=1",
                    "auto.create.topics.enable=true",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=8",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # Tests join and leave groups constantly: do not wait 3 s for more members.
                    "group.initial.rebalance.delay.ms=0",
                    "",
                ]
            )
        )
        cluster_id = (
            subprocess.check_output(
                [JAVA, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
                text=True,
                stderr=subprocess.DEVNULL,
            )
            .strip()
            .splitlines()[-1]
        )
        LOGS.mkdir(parents=True, exist_ok=True)
        with (LOGS / "kafka-format.log").open("w") as out:
            rc = subprocess.call(
                [
                    JAVA,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(config),
                    "--standalone",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if rc != 0:
            raise StackError(f"kafka storage format failed; see {LOGS / 'kafka-format.log'}")
    return [
        JAVA,
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(config),
    ]


def kafka_ready() -> bool:
    if not port_open(KAFKA_PORT):
        return False
    log_text = (LOGS / "kafka.log").read_text(errors="replace") if (LOGS / "kafka.log").exists() else ""
    return "Kafka Server started" in log_text


# Classpath plugins the node loads: k-NN gives `knn_vector` fields and the `knn` query (its Lucene
# engine; the faiss and nmslib engines would need JNI libraries that Maven Central does not ship).
# An empty SIDECAR_DEVSTACK_OPENSEARCH_PLUGINS starts a plain node (a test of the no-k-NN fallback).
OPENSEARCH_PLUGINS = tuple(
    p.strip()
    for p in os.environ.get("SIDECAR_DEVSTACK_OPENSEARCH_PLUGINS", "org.opensearch.knn.plugin.KNNPlugin").split(",")
    if p.strip()
)


def opensearch_command(data: Path) -> list[str]:
    libs = maven_fetch(HERE / "opensearch", "opensearch")
    return [
        JAVA,
        "-Xms512m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        "-cp",
        f"{libs}/*",
        str(HERE / "opensearch" / "DevstackOpenSearch.java"),
        str(data),
        str(OPENSEARCH_PORT),
        str(OPENSEARCH_TRANSPORT_PORT),
        ",".join(OPENSEARCH_PLUGINS),
    ]


def opensearch_ready() -> bool:
    return http_ok(f"http://{HOST}:{OPENSEARCH_PORT}/_cluster/health?wait_for_status=yellow&timeout=1s")


def noida_binary() -> str:
    candidates = [Path(sys.executable).parent / "noida-db", ROOT / ".venv" / "bin" / "noida-db"]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("noida-db")
    if found:
        return found
    raise StackError("noida-db (the ES-wire server) is not installed: run `make install` first")


def es_command(data: Path) -> list[str]:
    data.mkdir(parents=True, exist_ok=True)
    return [
        noida_binary(),
        "start",
        "--data-dir",
        str(data),
        "--host",
        HOST,
        "--only",
        "elasticsearch",
        "--elasticsearch-port",
        str(ES_PORT),
    ]


def es_ready() -> bool:
    return http_ok(f"http://{HOST}:{ES_PORT}/")


SERVERS: dict[str, Server] = {
    "kafka": Server(
        "kafka", KAFKA_PORT, f"{HOST}:{KAFKA_PORT}", "SIDECAR_KAFKA_BOOTSTRAP", kafka_command, kafka_ready
    ),
    "opensearch": Server(
        "opensearch",
        OPENSEARCH_PORT,
        f"http://{HOST}:{OPENSEARCH_PORT}",
        "SIDECAR_OPENSEARCH_URL",
        opensearch_command,
        opensearch_ready,
    ),
    "elasticsearch": Server(
        "elasticsearch", ES_PORT, f"http://{HOST}:{ES_PORT}", "SIDECAR_ES_URL", es_command, es_ready
    ),
}


def write_env() -> None:
    lines = [f"export {s.env_var}={s.url}" for s in SERVERS.values()]
    ENV_FILE.write_text(
        "# written by `make stack-up`; source it to reach the local stack\n" + "\n".join(lines) + "\n"
    )


def up(names: list[str], *, wipe: bool = False) -> dict[str, float]:
    STATE.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    for name in names:
        if wipe:
            SERVERS[name].wipe()
        started = time.monotonic()
        SERVERS[name].up()
        timings[name] = round(time.monotonic() - started, 1)
    write_env()
    (STATE / "timings.json").write_text(json.dumps(timings) + "\n")
    log(f"environment written to {ENV_FILE}")
    return timings


def down(names: list[str]) -> None:
    for name in names:
        SERVERS[name].down()
    if all(SERVERS[n].pid() is None for n in SERVERS):
        ENV_FILE.unlink(missing_ok=True)


def status() -> int:
    missing = 0
    for server in SERVERS.values():
        pid = server.pid()
        ready = pid is not None and server.ready()
        missing += not ready
        print(
            f"{server.name:14} {'up' if ready else 'down':5} {server.url:28} pid={pid} log={server.log_file}"
        )
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("servers", nargs="*", help="any of: " + ", ".join(SERVERS) + " (default: all)")
    parser.add_argument(
        "--wipe", action="store_true", help="with up: stop the servers and delete their data first"
    )
    args = parser.parse_intermixed_args(argv)  # `up --wipe opensearch` as well as `up opensearch --wipe`
    names = args.servers or list(SERVERS)
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s): {unknown}")
    if args.wipe and args.action != "up":
        parser.error("--wipe goes with up")
    try:
        if args.action == "up":
            up(names, wipe=args.wipe)
        elif args.action == "down":
            down(names)
        else:
            return status()
    except StackError as exc:
        log(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
