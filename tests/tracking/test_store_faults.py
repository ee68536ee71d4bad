"""Tracking stores that misbehave: an API that fails behind a healthy /health, and two first
commands on a new sqlite store at once."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time

import pytest

from ganinf_mlops.errors import TrackingError
from ganinf_mlops.tracking.run_log import check_tracking_uri


class _BrokenApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/health" else 500)
        self.end_headers()
        self.wfile.write(b"OK" if self.path == "/health" else b"boom")

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_server_whose_api_fails_is_refused_quickly():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BrokenApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    start = time.monotonic()
    try:
        with pytest.raises(TrackingError, match=f"cannot use MLflow tracking URI {uri}"):
            check_tracking_uri(uri)
    finally:
        server.shutdown()
    assert time.monotonic() - start < 60  # MLflow's own retries took about 250 s


@pytest.mark.integration
def test_two_first_commands_on_a_new_sqlite_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    code = (
        "import sys; from ganinf_mlops.tracking.run_log import check_tracking_uri; "
        "check_tracking_uri(sys.argv[1])"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, uri], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert not list(tmp_path.glob("*.lock"))  # no lock file beside the user's store
