"""Hostile inputs wherever a user hands us data: attribute files, label tables, config files,
label names on the command line. Each is either harmless and accepted (CRLF or CR line ends,
a UTF-8 byte-order mark, tabs, 0/1 values) or refused with a typed error that names the file,
the line and the problem, quickly and in a message of bounded size (a 10 MB line must not be
echoed back, a million columns must not take quadratic time).
"""

from __future__ import annotations

import json
import time

import pytest
import torch
from PIL import Image

from stargan.cli import EXIT_USER_ERROR, main
from stargan.config import ConfigError, DataConfig, TrainConfig
from stargan.data import build_dataset
from stargan.data.celeba import parse_attr_file
from stargan.data.registry import DatasetError
from stargan.data.table import parse_table
from tiny_models import tiny_model_file
from train_procs import tiny_config, write_tiny_celeba

FAST_S = 10.0  # generous: a shared CI core; the measured times are well under a second
MAX_MESSAGE = 2000


def _write(path, text: str):
    path.write_text(text, encoding="utf-8", newline="")
    return path


def _refused(fn, *args, match: str, error=DatasetError) -> str:
    t0 = time.perf_counter()
    with pytest.raises(error) as info:
        fn(*args)
    assert time.perf_counter() - t0 < FAST_S
    message = str(info.value)
    assert match in message, message
    assert len(message) < MAX_MESSAGE
    return message


# CelebA attribute files.

GOOD = "2\nMale Young\na.png  1 -1\nb.png -1  1\n"


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        GOOD.replace("\n", "\r\n"),
        GOOD.replace("\n", "\r"),
        "\ufeff" + GOOD,
        "\ufeff" + GOOD.replace("\n", "\r\n"),
        GOOD.replace(" ", "\t"),
        GOOD.replace("\n", "  \n") + "\n\n",
        GOOD.replace(" 1", " 1").replace("-1", " 0"),
    ],
    ids=["plain", "crlf", "cr", "bom", "bom-crlf", "tabs", "trailing-blanks", "zero-one"],
)
def test_harmless_attribute_file_variants_are_accepted(tmp_path, text):
    parsed = parse_attr_file(_write(tmp_path / "list_attr_celeba.txt", text))
    assert parsed.names == ("Male", "Young")
    assert parsed.filenames == ["a.png", "b.png"]
    assert parsed.values.tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2\nMale Young\na.png 1\nb.png -1 1\n", "line 3: a.png: 1 values for 2 attributes"),
        ("2\nMale Young\na.png 1 -1 1\nb.png -1 1\n", "line 3: a.png: 3 values for 2"),
        ("2\nMale Young\na.png 2 -1\nb.png -1 1\n", "non-binary value '2' for Male"),
        ("2\nMale Young\na.png yes -1\nb.png -1 1\n", "non-binary value 'yes' for Male"),
        ("2\nMale Young\na.png 1.0 -1\nb.png -1 1\n", "non-binary value '1.0'"),
        ("2\nMale Young\na.png 1 +1\nb.png -1 1\n", "non-binary value '+1' for Young"),
        ("2\nMale Young\na.png 1 -1\x00\nb.png -1 1\n", "non-binary value '-1\\x00'"),
        ("two\nMale Young\na.png 1 -1\n", "line 1: expected the image count, got 'two'"),
        ("5\nMale Young\na.png 1 -1\nb.png -1 1\n", "the count line says 5 images"),
        ("2\nMale Male\na.png 1 -1\nb.png -1 1\n", "duplicate attribute names ['Male']"),
        ("2\nMale Young\na.png 1 -1\na.png -1 1\n", "duplicate filename 'a.png'"),
        ("2\n   \na.png 1 -1\n", ":2: expected attribute names, the line is empty"),
        ("", "the file has 0 line(s)"),
        ("2\r\n", "the file has 1 line(s)"),
    ],
)
def test_broken_attribute_files_name_file_line_and_problem(tmp_path, text, message):
    path = _write(tmp_path / "list_attr_celeba.txt", text)
    assert str(path) in _refused(parse_attr_file, path, match=message)


def test_an_attribute_file_in_another_encoding_is_named(tmp_path):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes("1\nMale\nété.png 1\n".encode("latin-1"))
    _refused(parse_attr_file, path, match=f"{path}: cannot read the attribute file")


def test_a_10_mb_line_is_refused_fast_and_not_echoed(tmp_path):
    path = _write(tmp_path / "a.txt", "2\nMale Young\n" + "x" * 10_000_000 + "\nb.png -1 1\n")
    message = _refused(parse_attr_file, path, match="line 3: ")
    assert "0 values for 2 attributes" in message and "characters ...]" in message


def test_a_million_columns_take_linear_time(tmp_path):
    names = " ".join(f"a{i}" for i in range(1_000_000))
    path = _write(tmp_path / "a.txt", f"1\n{names}\nx.png 1 1\n")
    _refused(parse_attr_file, path, match="2 values for 1000000 attributes")
    path = _write(tmp_path / "b.txt", "1\n" + "a " * 500_000 + "b b\nx.png 1\n")
    _refused(parse_attr_file, path, match="duplicate attribute names ['a', 'b']")


def test_unknown_selected_attributes_list_the_available_ones(tmp_path):
    root = write_tiny_celeba(tmp_path / "celeba", n=6)
    cfg = DataConfig(name="celeba", root=str(root), image_size=16, selected_attrs=("Blonde",))
    _refused(build_dataset, cfg, "train", match="unknown attribute(s) Blonde; available: Black")
    # A file with a million attributes is summarised, not listed.
    names = " ".join(f"a{i}" for i in range(1_000_000))
    _write(root / "list_attr_celeba.txt", f"1\n{names}\n000000.png " + "1 " * 1_000_000)
    _refused(build_dataset, cfg, "train", match="(1000000 in all)")


# Label tables (CSV/TSV).


@pytest.mark.parametrize(
    "text",
    [
        "filename,smile\na.png,1\nb.png,0\n",
        "\ufefffilename,smile\r\na.png,yes\r\nb.png,no\r\n",
        'filename;smile\n"a.png";TRUE\n"b.png";-1\n',
    ],
    ids=["plain", "bom-crlf", "semicolons-quoted"],
)
def test_harmless_table_variants_are_accepted(tmp_path, text):
    table = parse_table(_write(tmp_path / "labels.csv", text))
    assert table.names == ("smile",) and table.filenames == ["a.png", "b.png"]
    assert table.values.tolist() == [[1.0], [0.0]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("filename,smile,hat\na.png,1\n", "line 2: 2 cells for 3 columns", id="short"),
        pytest.param(
            "filename,smile\na.png,maybe\n",
            "non-binary value 'maybe' for smile",
            id="maybe",
        ),
        pytest.param("filename,smile\na.png,\n", "non-binary value an empty cell", id="empty-cell"),
        pytest.param(
            "filename,smile,smile\na.png,1,1\n", "duplicate column names ['smile']", id="dupes"
        ),
        pytest.param(
            "filename,smile\n" + "x" * 10_000_000 + "\n",
            ":2: cannot read the table (field larger",
            id="10MB-line",
        ),
        pytest.param(
            'filename,smile\n"' + "x" * 200_000,
            ":2: cannot read the table (field larger",
            id="unclosed-quote",
        ),
        pytest.param(
            "filename," + ",".join(f"a{i}" for i in range(1_000_000)) + "\nx.png,1\n",
            "2 cells for 1000001 columns",
            id="million-columns",
        ),
        pytest.param("", "empty table", id="empty"),
    ],
)
def test_broken_tables_name_file_line_and_problem(tmp_path, text, message):
    path = _write(tmp_path / "labels.csv", text)
    assert str(path) in _refused(parse_table, path, match=message)


# Config files.


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("optim", "batch_size", "16", "config.optim.batch_size: expected int, got '16'"),
        ("optim", "batch_size", True, "config.optim.batch_size: expected int, got True"),
        ("optim", "batch_size", 16.5, "expected int, got 16.5"),
        ("optim", "batch_size", None, "expected int, got None"),
        ("optim", "g_lr", "1e-4", "config.optim.g_lr: expected a number, got '1e-4'"),
        ("optim", "g_lr", float("inf"), "config.optim.g_lr: expected a finite number"),
        ("optim", "g_lr", float("nan"), "config.optim.g_lr: expected a finite number"),
        ("loss", "lambda_rec", 10**400, "config.loss.lambda_rec: expected a finite number"),
        ("loss", "adversarial", "hinge", "'hinge' not in ('wgan-gp', 'bce', 'lsgan')"),
        ("loss", "adversarial", ["bce"], "not in ('wgan-gp'"),
        ("run", "tensorboard", "yes", "config.run.tensorboard: expected bool, got 'yes'"),
        ("run", "out_dir", 7, "config.run.out_dir: expected str, got 7"),
        ("optim", "learning_rate", 1, "config.optim: unknown field(s) ['learning_rate']"),
        ("optim", "n_critic", 0, "optim.n_critic must be >= 1"),
    ],
    ids=lambda v: "10**400" if isinstance(v, int) and v > 2**64 else None,
)
def test_wrong_config_values_name_the_field(section, field, value, message):
    d = TrainConfig().to_dict()
    d[section][field] = value
    _refused(TrainConfig.from_dict, d, match=message, error=ConfigError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"data": "celeba"}, "config.data: expected a list, got 'celeba'"),
        ({"data": [{"selected_attrs": "Male"}]}, "selected_attrs: expected a list, got 'Male'"),
        ({"data": [{"selected_attrs": [1]}]}, "selected_attrs[0]: expected str, got 1"),
        ({"data": []}, "a run needs at least one dataset"),
        ({"optim": [1]}, "config.optim: expected an object, got list"),
        ([], "config: expected an object, got list"),
    ],
)
def test_wrong_config_shapes_name_the_place(data, message):
    _refused(TrainConfig.from_dict, data, match=message, error=ConfigError)


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    return write_tiny_celeba(tmp_path_factory.mktemp("celeba"), n=10)


def _config_file(path, celeba, **run):
    d = tiny_config(celeba, iters=2, save_every=1)
    d["run"].update(num_threads=0, **run)  # in-process: leave torch's thread count alone
    path.write_text(json.dumps(d))
    return path


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (b'{"optim": {', [], "cannot read config file"),
        (b"\xff\xfe{}", [], "cannot read config file"),
        (b"[" * 100_000 + b"]" * 100_000, [], "cannot read config file"),
        (b'{"optim": {"batch_size": "4"}}', [], "config.optim.batch_size: expected int"),
        (b'{"optim": {"g_lr": Infinity}}', [], "config.optim.g_lr: expected a finite number"),
        (None, ["--set", "optim.g_lr=NaN"], "config.optim.g_lr: expected a finite number"),
        (None, ["--g-lr", "inf"], "config.optim.g_lr: expected a finite number"),
        (None, ["--set", "optim.lr=1"], "unknown field 'lr'"),
        (None, ["--selected-attrs", "Blonde_Hair"], "unknown attribute(s) Blonde_Hair"),
        (None, ["--batch-size", "1000"], "fewer than one batch of 1000"),
    ],
    ids=[
        "bad-json",
        "utf16",
        "nested-100k",
        "str-for-int",
        "Infinity",
        "set-NaN",
        "flag-inf",
        "unknown-field",
        "unknown-attr",
        "batch-too-big",
    ],
)
def test_cli_config_errors_exit_2_with_the_problem(
    tmp_path, celeba, capsys, content, extra, message
):
    config = _config_file(tmp_path / "config.json", celeba)
    if content is not None:
        config.write_bytes(content)
    argv = ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--dry-run"]
    assert main([*argv, *extra]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err) < MAX_MESSAGE


def test_a_config_file_with_a_bom_is_read(tmp_path, celeba, capsys):
    config = _config_file(tmp_path / "config.json", celeba)
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["c_dim"] == 5


# Label names on the command line.


@pytest.fixture(scope="module")
def model_and_image(tmp_path_factory):
    root = tmp_path_factory.mktemp("translate")
    Image.fromarray(torch.zeros(16, 16, 3, dtype=torch.uint8).numpy()).save(root / "x.png")
    return tiny_model_file(root / "m.safetensors", joint=True), root / "x.png"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "Blonde_Hair=1"], "unknown label 'Blonde_Hair'; valid labels: Black_Hair"),
        (["--target", "Blonde_Hair=1"], "unknown label 'Blonde_Hair'"),
        (["--strip", "Blonde_Hair"], "unknown label 'Blonde_Hair'"),
        (["--source", "Blonde_Hair=1", "--target", "Male=1"], "unknown label 'Blonde_Hair'"),
        (["--set", "=1"], "unknown label ''"),
        (["--set", "Male=yes"], "'yes' is neither a number nor a class name"),
        (["--set", "Male=inf"], "the value must be a finite number"),
        (["--set", "expression=furious"], "'furious' is neither a number nor a class name"),
        (["--source", "Male=nan", "--target", "Male=1"], "value must be a finite number"),
        (["--source", "Male=maybe", "--target", "Male=1"], "value must be a number"),
        (["--target", ","], "no target given; choose among"),
    ],
)
def test_unknown_labels_and_values_exit_2_naming_them(
    tmp_path, model_and_image, capsys, extra, message
):
    model, image = model_and_image
    argv = ["translate", "--model", str(model), "--input", str(image), "--out", str(tmp_path)]
    assert main([*argv, *extra]) == EXIT_USER_ERROR
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written
