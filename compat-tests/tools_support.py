"""Run the operator tools of compat-tests/tools-java (RocketMQ's mqadmin, Kafka's CLI tools,
unmodified from Maven Central) from Python, all in ONE JVM per test module.

The JVM runs ``io.ferrymq.tools.ToolDriver``, which calls a tool's ``main`` once per request and
returns what it printed; ``System.exit`` and Kafka's ``Exit.exit`` become an exit status instead
of ending the JVM::

    with ToolSession(cwd=tmp) as tools:
        out = tools.mqadmin("topicList", "-n", namesrv)
        assert "TopicA" in out.text
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import java_support as js

TOOLS_DIR = js.REPO_ROOT / "compat-tests" / "tools-java"
TARGET = TOOLS_DIR / "target"
CLASSPATH_FILE = TARGET / "classpath.txt"
CLASSES = TARGET / "classes"
# `make java` runs exactly this (from the repository root)
MVN_ARGS = [
    "-q",
    "-B",
    "-f",
    "compat-tests/tools-java/pom.xml",
    "-DskipTests",
    "package",
    "dependency:build-classpath",
    "-Dmdep.outputFile=target/classpath.txt",
]
MQADMIN = "org.apache.rocketmq.tools.command.MQAdminStartup"
DRIVER = "io.ferrymq.tools.ToolDriver"


@dataclass(frozen=True, slots=True)
class ToolRun:
    status: int
    text: str

    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]


def build() -> None:
    """Build the module unless its classes and classpath are newer than its sources."""
    sources = [TOOLS_DIR / "pom.xml", *TOOLS_DIR.joinpath("src").rglob("*.java")]
    classes = list(CLASSES.rglob("*.class")) if CLASSES.is_dir() else []
    if CLASSPATH_FILE.exists() and classes:
        built = min(p.stat().st_mtime for p in classes)
        if all(p.stat().st_mtime <= built for p in sources):
            return
    mvn = js.find_mvn()
    if mvn is None:
        raise js.JavaToolsMissing(js.skip_reason() or "mvn missing")
    proc = subprocess.run(
        [mvn, *MVN_ARGS],
        cwd=js.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0 or not CLASSPATH_FILE.exists():
        raise RuntimeError(
            f"mvn build of compat-tests/tools-java failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )


class ToolSession:
    """One driver JVM; ``run(main_class, *args)`` returns what that tool printed."""

    def __init__(self, cwd: Path, jvm_args: list[str] | None = None) -> None:
        """``jvm_args``: more -D options, e.g. ``-Drocketmq.home.dir`` for mqadmin's conf/tools.yml."""
        build()
        self.cwd = cwd
        self._inputs = 0
        java = js.find_java()
        if java is None:
            raise js.JavaToolsMissing(js.skip_reason() or "java missing")
        cp = os.pathsep.join([str(CLASSES), CLASSPATH_FILE.read_text().strip()])
        cmd = [
            java,
            *js.DEFAULT_JVM_ARGS,
            "-Djava.security.manager=allow",
            f"-Drocketmq.log.root={cwd / 'logs'}",
            "-Drocketmq.log.level=warn",
            "-Dlog4j2.level=warn",
            "-Duser.home=" + str(cwd),
            *(jvm_args or []),
            "-cp",
            cp,
            DRIVER,
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._expect("@@READY", 60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"tool driver silent for {timeout}s") from None
        if line is None:
            raise AssertionError(f"tool driver exited (status {self.proc.wait()})")
        return line

    def _expect(self, marker: str, timeout: float) -> None:
        while self._next(timeout) != marker:
            pass

    def run(self, main_class: str, *args: str, stdin: str | None = None, timeout: float = 60) -> ToolRun:
        """Run one tool; ``stdin`` is what it reads from standard input (none: the driver's)."""
        if any("\t" in a or "\n" in a for a in args):
            raise ValueError("tool arguments may not hold tabs or newlines")
        fields = [main_class, *args]
        if stdin is not None:
            self._inputs += 1
            path = self.cwd / f"stdin-{self._inputs}.txt"
            path.write_text(stdin, encoding="utf-8")
            fields.insert(0, f"<{path}")
        assert self.proc.stdin is not None
        self.proc.stdin.write("\t".join(fields) + "\n")
        self.proc.stdin.flush()
        self._expect("@@BEGIN", timeout)
        out: list[str] = []
        while not (line := self._next(timeout)).startswith("@@END "):
            out.append(line)
        return ToolRun(int(line.split()[1]), "\n".join(out))

    def mqadmin(self, command: str, *args: str, timeout: float = 60) -> ToolRun:
        return self.run(MQADMIN, command, *args, timeout=timeout)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ToolSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
