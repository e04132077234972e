"""No code runs from files: a pickle whose unpickling would write a marker file is handed to
every entry point that loads a file, under every name a user might give it; each refuses it
with an error naming the file, and the marker never appears. A static check (by syntax
tree, not by grep) keeps unsafe loaders out of the code.
"""

from __future__ import annotations

import ast
import io
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from test_official import OfficialG

from conftest import CELEBA_SPEC, TensorFaces, tiny_config
from stargan.checkpoint import CheckpointError
from stargan.cli import EXIT_USER_ERROR, main
from stargan.evaluation import load_judge
from stargan.inference import load
from stargan.official import import_official
from stargan.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
# torch warns about the protocol-5 payload before refusing it.
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")
NAMES = ["evil.safetensors", "evil.ckpt", "evil.pt", "evil.pth"]


class _Payload:
    """Unpickling this calls exec(), which writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _payloads(marker: Path) -> dict[str, bytes]:
    """The same exploit as a bare pickle, in a state dict, and in torch.save's zip format."""
    torch_zip = io.BytesIO()
    torch.save({"main.0.weight": _Payload(marker)}, torch_zip)
    return {
        "pickle": pickle.dumps(_Payload(marker), protocol=2),
        "state-dict": pickle.dumps({"main.0.weight": _Payload(marker)}, protocol=5),
        "torch-zip": torch_zip.getvalue(),
    }


@pytest.fixture(params=["pickle", "state-dict", "torch-zip"])
def evil(request, tmp_path):
    """(a function writing the exploit under a name, the marker it would create)."""
    marker = tmp_path / "PWNED"
    data = _payloads(marker)[request.param]

    def write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write, marker


def test_the_payload_is_live(tmp_path):
    # Control: an unsafe loader really would run it, so "no marker" below means something.
    marker = tmp_path / "PWNED"
    pickle.loads(_payloads(marker)["pickle"])
    assert marker.read_text() == "pwned"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished tiny run: checkpoints and a model file recording its training config."""
    out = tmp_path_factory.mktemp("run")
    Trainer(tiny_config(out, iters=3), datasets=[TensorFaces(CELEBA_SPEC)]).fit()
    return out


@pytest.mark.parametrize("name", NAMES)
def test_model_loading_translate_and_serve_refuse(evil, tmp_path, capsys, name):
    write, marker = evil
    path = write(tmp_path / name)
    with pytest.raises(CheckpointError, match=name):
        load(path)  # what translate, sample, evaluate and serve call
    argv = {
        "translate": ["translate", "--model", str(path), "--input", str(tmp_path), "--out",
                      str(tmp_path / "o")],
        "sample": ["sample", "--model", str(path), "--out", str(tmp_path / "s.png")],
        "serve": ["serve", "--model", str(path), "--port", "1"],
    }  # fmt: skip
    for command, args in argv.items():
        assert main(args) == EXIT_USER_ERROR, command
        assert name in capsys.readouterr().err, command
    assert not marker.exists()


@pytest.mark.parametrize("name", NAMES)
def test_judge_loading_and_evaluate_refuse(evil, tmp_path, run_dir, capsys, name):
    write, marker = evil
    path = write(tmp_path / name)
    with pytest.raises(CheckpointError, match=name):
        load_judge(path)
    assert main(["evaluate", "--run", str(run_dir), "--judge", str(path)]) == EXIT_USER_ERROR
    assert name in capsys.readouterr().err
    # A run folder whose model file was replaced.
    bad_run = tmp_path / "bad-run"
    write(bad_run / "model.safetensors")
    assert main(["evaluate", "--run", str(bad_run)]) == EXIT_USER_ERROR
    assert "model.safetensors" in capsys.readouterr().err
    # Periodic evaluation during training loads the judge before anything else.
    cfg = tiny_config(tmp_path / "train", eval_every=1, eval_judge=str(path))
    with pytest.raises(CheckpointError, match=name):
        Trainer(cfg, datasets=[TensorFaces(CELEBA_SPEC)])
    assert not marker.exists()


def test_resume_skips_a_pickle_among_checkpoints(evil, tmp_path, run_dir):
    write, marker = evil
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    planted = write(out / "checkpoints" / "state-99999999.safetensors")
    resumed = Trainer(tiny_config(out, iters=3), datasets=[TensorFaces(CELEBA_SPEC)], resume="auto")
    assert resumed.step == 3 and resumed.resumed_from.name == "state-00000003.safetensors"
    assert str(planted) in resumed.skipped_checkpoints[0]
    # With nothing valid left, resume is refused and names the file.
    for p in (out / "checkpoints").glob("state-0*.safetensors"):
        p.unlink()
    with pytest.raises(CheckpointError, match="state-99999999"):
        Trainer(tiny_config(out, iters=3), datasets=[TensorFaces(CELEBA_SPEC)], resume="auto")
    assert not marker.exists()


@pytest.mark.parametrize("name", NAMES)
def test_import_official_refuses(evil, tmp_path, capsys, name):
    write, marker = evil
    path = write(tmp_path / name)
    attrs = list(CELEBA_SPEC.names)
    with pytest.raises(CheckpointError, match=name):
        import_official(path, tmp_path / "m.safetensors", attrs=attrs, image_size=16)
    argv = ["import-official", str(path), "--out", str(tmp_path / "m.safetensors"),
            "--image-size", "16", "--attrs", *attrs]  # fmt: skip
    assert main(argv) == EXIT_USER_ERROR
    assert name in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()
    assert not marker.exists()


def test_import_official_refuses_an_evil_discriminator(evil, tmp_path):
    write, marker = evil
    torch.manual_seed(0)
    g = OfficialG()  # a genuine release-format generator next to the planted D
    torch.save(g.state_dict(), tmp_path / "G.ckpt", _use_new_zipfile_serialization=False)
    d_path = write(tmp_path / "D.ckpt")
    with pytest.raises(CheckpointError, match="D.ckpt"):
        import_official(
            tmp_path / "G.ckpt", tmp_path / "m.safetensors", attrs=list(CELEBA_SPEC.names),
            image_size=16, discriminator=d_path,
        )  # fmt: skip
    assert not (tmp_path / "m.safetensors").exists()
    assert not marker.exists()


# The static check.

UNSAFE_ALWAYS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads",
    "_pickle.Unpickler", "cPickle.load", "cPickle.loads", "dill.load", "dill.loads",
    "joblib.load", "marshal.load", "marshal.loads", "shelve.open", "yaml.unsafe_load",
    "torch.jit.load", "torch.package.PackageImporter", "pandas.read_pickle",
}  # fmt: skip


def _qualified_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> what it was imported as, from every import in the file."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                local = a.asname or a.name.split(".")[0]
                names[local] = a.name if a.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_loads(source: str, filename: str = "<string>") -> list[str]:
    """'file:line: what' for every call that can run code from a file's contents."""
    tree = ast.parse(source, filename)
    imported = _qualified_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (name := _dotted(node.func)) is None:
            continue
        head, _, rest = name.partition(".")
        qualified = ".".join(filter(None, [imported.get(head, head), rest]))
        where = f"{filename}:{node.lineno}"
        if qualified in UNSAFE_ALWAYS:
            found.append(f"{where}: {qualified}() can run code from the file")
        elif qualified == "torch.load":
            weights_only = _keyword(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"{where}: torch.load() without weights_only=True")
        elif qualified in ("numpy.load", "np.load"):
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(f"{where}: numpy.load() with allow_pickle")
        elif qualified == "yaml.load":
            loader = _dotted(_keyword(node, "Loader") or ast.Constant(None)) or ""
            if not loader.endswith(("SafeLoader", "CSafeLoader")):
                found.append(f"{where}: yaml.load() without a SafeLoader")
    return found


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(f)",
        "import torch\ntorch.load(f, weights_only=False)",
        "import torch\ntorch.load(f, weights_only=flag)",
        "from torch import load\nload(f)",
        "import torch as T\nT.load(f, map_location='cpu')",
        "import pickle\npickle.load(f)",
        "import pickle as p\np.loads(b)",
        "from pickle import Unpickler\nUnpickler(f).load()",
        "import numpy as np\nnp.load(f, allow_pickle=True)",
        "import numpy\nnumpy.load(f, allow_pickle=flag)",
        "import yaml\nyaml.load(s)",
        "import torch\ntorch.jit.load(f)",
    ],
)
def test_the_static_check_catches_unsafe_loads(source):
    assert unsafe_loads(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(f, map_location='cpu', weights_only=True)",
        "import numpy as np\nnp.load(f)\nnp.load(f, allow_pickle=False)",
        "import pickle\npickle.dumps(x)",
        "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)",
        "from safetensors.torch import load\nload(data)",
    ],
)
def test_the_static_check_passes_safe_loads(source):
    assert not unsafe_loads(source), source


def test_no_unsafe_loader_in_the_code():
    files = [p for d in ("src", "benchmarks", "scripts") for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 30
    found = [
        hit
        for p in files
        for hit in unsafe_loads(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))
    ]
    assert not found, "\n".join(found)


# The dependency audit's report reading (scripts/audit.py; the audit itself needs network).


def _audit_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_audit_reads_vulnerabilities_and_unaudited_packages():
    audit = _audit_module()
    report = {
        "dependencies": [
            {"name": "numpy", "version": "2.4.6", "vulns": []},
            {"name": "pillow", "version": "10.3.0", "vulns": [
                {"id": "GHSA-whj4-6x5x-4v2j", "aliases": ["CVE-2026-40192"],
                 "fix_versions": ["12.2.0"], "description": "FITS GZIP decompression bomb"}]},
            {"name": "torch", "skip_reason": "Dependency not found on PyPI and could not be "
                                             "audited: torch (2.13.0+cpu)"},
        ]
    }  # fmt: skip
    audited, skipped, vulnerable = audit.summarise(report)
    assert audited == ["numpy", "pillow"]
    assert vulnerable == ["pillow 10.3.0: GHSA-whj4-6x5x-4v2j / CVE-2026-40192 (fixed in 12.2.0)"]
    assert audit._public_versions(skipped) == ["torch==2.13.0"]


def test_dependency_floors_are_past_the_fixes_we_rely_on():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {
        d.split(">=")[0].strip(): tuple(int(x) for x in d.split(">=")[1].split(",")[0].split("."))
        for d in project["dependencies"]
        if ">=" in d
    }
    assert floors["torch"] >= (2, 10)  # weights_only unpickler fixes (CVE-2026-24747)
    assert floors["pillow"] >= (12, 3)  # Image.crop/paste heap writes (CVE-2026-59199)
    assert any(d.startswith("pip-audit") for d in project["optional-dependencies"]["dev"])
