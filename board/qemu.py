"""Boot an image under ``qemu-system-aarch64 -M virt`` and talk to it over its serial console.

The guest's only network is user-mode networking with ``restrict=on`` and one forwarded port
on 127.0.0.1: it reaches nothing, and only that port reaches it. A power cut is ``kill -9`` of
qemu: whatever the guest had not written to its virtual disk is gone, as on a board.
"""

from __future__ import annotations

import codecs
import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from board.host import BuildError, require

log = logging.getLogger(__name__)

PROMPT = re.compile(r"root@[\w-]+:[^\n]*# ")


class Bootable(Protocol):
    def command(self) -> list[str]: ...


@dataclass(frozen=True)
class Machine:
    image: Path
    kernel: Path
    initrd: Path
    port: int  # forwarded from 127.0.0.1 on the host to the same port in the guest
    cpus: int = 2
    memory_mib: int = 1024

    def command(self) -> list[str]:
        return [*board_machine(self.cpus, self.memory_mib),
                "-kernel", str(self.kernel), "-initrd", str(self.initrd),
                "-append", "root=/dev/vda1 ro console=ttyAMA0 panic=5",
                "-drive", f"file={self.image},format=raw,if=virtio", *loopback_port(self.port), "-no-reboot"]


def board_machine(cpus: int, memory_mib: int) -> list[str]:
    """qemu for an arm64 board (a Pi 5's and an Orin's core), its serial console on stdio, no screen."""
    return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a76", "-smp", str(cpus), "-m", str(memory_mib),
            "-display", "none", "-monitor", "none", "-serial", "stdio"]


def loopback_port(port: int) -> list[str]:
    """The guest's only network: ``port`` forwarded from 127.0.0.1, nothing else reachable."""
    return ["-nic", f"user,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:{port}"]


class Console:
    """A running guest: everything it printed on the serial console, and a root shell there."""

    def __init__(self, machine: Bootable, transcript: Path, clock: Callable[[], float] = time.monotonic) -> None:
        require("qemu-system-aarch64")
        self._clock = clock
        self._text = ""
        self._changed = threading.Condition()
        self._transcript = transcript.open("a", encoding="utf-8", errors="replace")
        self._count = 0
        self.started_s = clock()
        self._process = subprocess.Popen(machine.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, name="qemu-console", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two reads
        while chunk := self._process.stdout.read1(4096):  # type: ignore[attr-defined]
            text = decoder.decode(chunk).replace("\r", "")
            self._transcript.write(text)
            self._transcript.flush()
            with self._changed:
                self._text += text
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return self._text

    def wait_for(self, pattern: re.Pattern[str], timeout_s: float, since: int = 0) -> re.Match[str]:
        """First match of ``pattern`` in the console output after offset ``since``."""
        deadline = self._clock() + timeout_s
        with self._changed:
            while True:
                match = pattern.search(self._text, since)
                if match:
                    return match
                left = deadline - self._clock()
                if left <= 0 or self._process.poll() is not None:
                    tail = self._text[-1500:]
                    raise BuildError(f"the guest did not print {pattern.pattern!r} within {timeout_s:.0f} s "
                                     f"(qemu {'exited' if self._process.poll() is not None else 'running'}); "
                                     f"console ends with: {tail}")
                self._changed.wait(min(left, 1.0))

    def login(self, timeout_s: float, since: int = 0) -> float:
        """Wait for the root shell on the console (after offset ``since``: a reboot's); set it up for scripted
        use; return seconds since start."""
        self.wait_for(PROMPT, timeout_s, since)
        seconds = self._clock() - self.started_s
        # No echo, no prompt, no kernel messages: the output between two markers is the command's own.
        self.shell("stty -echo; dmesg -n 1; export PS1= TERM=dumb SYSTEMD_COLORS=0 SYSTEMD_PAGER= PAGER=cat", 60)
        return seconds

    def shell(self, command: str, timeout_s: float) -> tuple[int, str]:
        """Run ``command`` in the guest's root shell; its exit status and output."""
        self._count += 1
        marker = f"__EW{self._count}__"
        # The marker is split in the typed line, so only the echo's output matches it.
        typed = f'{command}; echo "{marker[:4]}""{marker[4:]}" $?\n'
        since = len(self.text)
        assert self._process.stdin is not None
        self._process.stdin.write(typed.encode())
        self._process.stdin.flush()
        match = self.wait_for(re.compile(re.escape(marker) + r" (\d+)\n"), timeout_s, since)
        output = self.text[since:match.start()]
        if output.startswith(typed.replace("\n", "")):  # the echo of the typed line, before stty -echo
            output = output[len(typed) - 1:]
        return int(match[1]), output.strip("\n")

    def power_cut(self) -> None:
        """Pull the plug: qemu dies at once, the guest gets no chance to flush or unmount."""
        self._process.kill()
        self._process.wait()
        self._reader.join(timeout=5)
        self._transcript.close()

    def poweroff(self, timeout_s: float) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(b"systemctl poweroff\n")
        self._process.stdin.flush()
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("the guest did not power off within %.0f s: cutting power", timeout_s)
        self.power_cut()
