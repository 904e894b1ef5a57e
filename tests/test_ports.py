"""Who holds a port: the kernel's sock_diag answer and /proc/net/tcp agree, and held_by tells ours from not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tmt_ops.ports import _sock_diag_listening, held_by, listening_sockets, proc_net_listening


def test_sock_diag_and_proc_agree_on_listening_sockets():
    with socket.create_server(("127.0.0.1", 0)) as v4:
        port = v4.getsockname()[1]
        inode = os.fstat(v4.fileno()).st_ino
        diag, proc = _sock_diag_listening(), proc_net_listening()
        assert inode in diag[port] and diag[port] == proc[port]
        assert listening_sockets()[port] == {inode}


def test_held_by_tells_our_listener_from_another_process():
    with socket.create_server(("127.0.0.1", 0)) as ours:
        port = ours.getsockname()[1]
        listening = listening_sockets()
        assert held_by(port, [os.getpid()], listening) is True
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert held_by(port, [other.pid], listening) is False  # it runs, but the socket is not its
        finally:
            other.kill()
            other.wait()
    assert held_by(port, [os.getpid()], listening_sockets()) is None  # nothing listens any more
