"""An adapter plug-in installed as docs/adapters.md says: the berth example, built by pip into
a wheel and installed into a fresh virtualenv, then used by `portgw` there: listed, parsing,
checked by the kit, passing `config check` and served, a berth document accepted. And a
broken plug-in beside it is named with its code and skipped, the other formats unharmed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.home.create import DEMO_CONTRACTS, ContractSpec, Home, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics

ROOT = Path(__file__).parents[2]
BERTH = ROOT / "docs" / "examples" / "berth"
SAMPLES = BERTH / "samples"
BERTH_CONTRACT = ContractSpec(
    id="berth-port-to-msa", provider="cn.port.sh", consumers=("cn.msa.sh",),
    document_types=("berth",), scope="cross-department",
    purpose="berth allocation and traffic control of arriving ships",
    legal_basis="中华人民共和国海上交通安全法",
)
BERTH_ROW = "berth-xml  berth  px.example.BerthApplication  application/xml"


def pip(python: Path, *args: str | Path) -> None:
    """pip as the throwaway environment runs it; never the network."""
    done = subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "--no-input",
                           *map(str, args)], capture_output=True, text=True, env=alone(),
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def alone(extra_path: Path | None = None) -> dict[str, str]:
    """The environment without PYTHONPATH: the virtualenv imports only what it has
    installed (and, for `extra_path`, one more installed folder)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return env


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the berth example installed from a wheel pip built of its
    folder. The gateway is there as in a deployment that runs it from its source folder: a
    .pth file names that folder and the test environment's packages (aiokafka, lxml, ...,
    setuptools and wheel for the build)."""
    work = tmp_path_factory.mktemp("plugin")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", work / "venv"], check=True,
                   timeout=120)
    python = work / "venv" / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True, env=alone()).stdout.strip()
    paths = dict.fromkeys([str(ROOT), *(p for p in sys.path if p and Path(p).is_dir())])
    (Path(site) / "port_exchange_gateway_source.pth").write_text("\n".join(paths) + "\n")
    source = work / "berth"  # pip builds in the folder: a copy keeps the repository clean
    shutil.copytree(BERTH, source, ignore=shutil.ignore_patterns("__pycache__", "samples"))
    pip(python, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--wheel-dir", work / "dist", source)
    [wheel] = (work / "dist").glob("*.whl")
    pip(python, "install", "--no-deps", "--no-index", wheel)
    return python


def portgw(python: Path, *args: str | Path, extra_path: Path | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "gateway.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, check=False, env=alone(extra_path),
                          cwd=python.parents[2])


def test_the_installed_plugin_is_listed_and_parses(python: Path) -> None:
    listed = portgw(python, "adapters", "list")
    assert listed.returncode == 0, listed.stderr
    assert BERTH_ROW in listed.stdout.splitlines()
    assert "fal1-xml  fal1" in listed.stdout

    parsed = portgw(python, "adapters", "parse", "berth-xml", SAMPLES / "application.xml")
    assert parsed.returncode == 0, parsed.stderr
    assert json.loads(parsed.stdout)["imo_number"] == "9074729"
    refused = portgw(python, "adapters", "parse", "berth-xml", SAMPLES / "no_berth.xml")
    assert (refused.returncode, refused.stderr.split(": ")[1]) == (1, "XSD_INVALID")

    checked = portgw(python, "adapters", "check", "berth-xml", SAMPLES)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_gateway_serves_the_plugin_format(python: Path, broker: LocalBroker,
                                              topics: Topics, tmp_path: Path) -> None:
    home = create_home(tmp_path / "home", contracts=(*DEMO_CONTRACTS, BERTH_CONTRACT),
                       topic_prefix=topics.prefix)
    checked = portgw(python, "config", "check", "--config", home.config_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 contract(s)" in checked.stdout

    receipt = serve_and_submit(python, home, broker.bootstrap_servers)
    assert receipt["status"] == "accepted", receipt
    assert receipt["recipients"] == ["cn.msa.sh"]


def serve_and_submit(python: Path, home: Home, bootstrap: str) -> dict[str, object]:
    common: list[str | Path] = ["--config", home.config_file, "--bootstrap-servers", bootstrap]
    server = subprocess.Popen([python, "-m", "gateway.cli.main", "serve", *map(str, common)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=alone(), cwd=home.path)
    try:
        sent = portgw(python, "submit", SAMPLES / "application.xml", "--format", "berth-xml",
                      "--sender", "cn.port.sh", "--key", home.path / "keys" / "cn.port.sh.key",
                      *common)
        assert sent.returncode == 0, sent.stdout + sent.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, server_err = server.communicate(timeout=60)
    assert server.returncode == 0, server_err
    return dict(json.loads(sent.stdout)["receipt"])


def test_a_broken_plugin_is_named_and_skipped(python: Path, tmp_path: Path) -> None:
    """A second installed distribution whose schema redefines the gateway's Header."""
    package = tmp_path / "site" / "px_broken_adapter"
    (package / "avro").mkdir(parents=True)
    (package / "__init__.py").write_text("from berth_adapter import BerthAdapter\n")
    (package / "avro" / "px.canonical.Header.avsc").write_text(json.dumps(
        {"type": "record", "name": "Header", "namespace": "px.canonical", "fields": []}))
    dist_info = tmp_path / "site" / "px_broken_adapter-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: px-broken-adapter\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[port_exchange_gateway.adapters]\nbroken = px_broken_adapter:BerthAdapter\n")

    listed = portgw(python, "adapters", "list", extra_path=tmp_path / "site")
    assert listed.returncode == 1
    assert ("portgw adapters: ADAPTER_PLUGIN_SCHEMA_REDEFINED: adapter plug-in broken "
            "(px_broken_adapter:BerthAdapter) skipped: ") in listed.stderr
    assert BERTH_ROW in listed.stdout.splitlines()
    assert "fal1-xml  fal1" in listed.stdout

    home = create_home(tmp_path / "home")
    checked = portgw(python, "config", "check", "--config", home.config_file,
                     extra_path=tmp_path / "site")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "warning: ADAPTER_PLUGIN_SCHEMA_REDEFINED: adapter plug-in broken" in checked.stdout
