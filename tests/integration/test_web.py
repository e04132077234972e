"""The web demo's API through FastAPI's TestClient: translations, and every limit it enforces."""

import base64
import io
import json
import tempfile
import threading
import time
import zlib

import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the web demo needs stargan[web]")
from fastapi.testclient import TestClient

from stargan.inference import load
from stargan.web import Limits, create_app
from tiny_models import tiny_model_file


def png_bytes(width: int = 40, height: int = 30, colour=(200, 120, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression bomb's calling card)."""
    data = bytearray(png_bytes(1, 1))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def decode_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    im.load()
    return im


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load(tiny_model_file(tmp_path_factory.mktemp("m") / "m.safetensors"))


def make_client(model, **limits) -> TestClient:
    app = create_app(model, limits=Limits(**limits), samples={"face": png_bytes(32, 32)})
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(model):
    with make_client(model) as c:
        yield c


def upload(client, data=None, content_type="image/png", **fields):
    files = {"image": ("photo.png", png_bytes() if data is None else data, content_type)}
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
    return client.post("/api/translate", files=files, data=form)


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and "StarGAN demo" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    info = client.get("/api/info").json()
    assert info["image_size"] == 16 and info["classifier"] is True
    assert [label["name"] for label in info["labels"]][:2] == ["Black_Hair", "Blond_Hair"]
    assert info["samples"] == [{"id": "face", "url": "/api/samples/face"}]
    assert client.get("/api/samples/face").headers["content-type"] == "image/png"


def test_upload_translates_and_reports_inferred_labels(client):
    r = upload(client, targets=[{"Blond_Hair": 1, "Male": 0.5}])
    assert r.status_code == 200, r.text
    body = r.json()
    titles = [t["title"] for t in body["translations"]]
    assert titles == ["Blond_Hair+Male=0.5", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male",
                      "Young"]  # fmt: skip
    for t in body["translations"]:
        assert decode_data_url(t["image"]).size == (16, 16)
    assert decode_data_url(body["grid"]).size == (7 * 18 + 2, 18 + 2)
    assert body["source"]["inferred"] is True
    assert set(body["source"]["labels"]) == {"Black_Hair", "Blond_Hair", "Brown_Hair", "Male",
                                             "Young"}  # fmt: skip


def test_sample_by_json_and_given_source(client):
    r = client.post(
        "/api/translate",
        json={"sample": "face", "targets": [{"Young": 1}], "source": {"Male": 1},
              "all_labels": False},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert [t["title"] for t in r.json()["translations"]] == ["Young"]
    assert r.json()["source"]["labels"]["Male"] == 1.0


@pytest.mark.parametrize(("fields", "message"), [
    ({"targets": [{"Blonde": 1}]}, "unknown label 'Blonde'"),
    ({"targets": [{"Male": "yes"}]}, "must be a number"),
    ({"targets": [{"Male": 1e9}]}, "within"),
    ({"targets": "not json"}, "targets must be JSON"),
    ({"targets": [{"Male": 1}] * 17}, "at most 16"),
])  # fmt: skip
def test_bad_targets_are_400_with_a_reason(client, fields, message):
    r = upload(client, **fields)
    assert r.status_code == 400 and message in r.json()["error"]


HUGE = "9" * 4000  # float() of it overflows
DEEP = "[" * 30_000 + "]" * 30_000  # json.loads raises RecursionError


def with_target(value: str, field: str = "targets") -> str:
    """A JSON body asking to translate the sample with Male set to ``value`` (JSON text)."""
    inner = '{"Male": ' + value + "}"
    return (
        '{"sample": "face", "'
        + field
        + '": '
        + (f"[{inner}]" if field == "targets" else inner)
        + "}"
    )


@pytest.mark.parametrize(("body", "message"), [
    (with_target(HUGE), "'Male' must be within +-10"),
    (with_target("-" + HUGE, "source"), "'Male' must be within +-10"),
    (with_target("9" * 5000), "numbers of fewer digits"),
    (with_target(DEEP), "nested less deeply"),
    ('{"sample": "face", "targets": ' + DEEP + "}", "nested less deeply"),
    (DEEP, "nested less deeply"),
    ('{"sample": "face", "targets": [{"Male": [[[1]]]}]}', "must be a number, got a list"),
    ('{"sample": ["face"]}', "sample must be a string, got a list"),
    ('{"sample": {"id": "face"}}', "sample must be a string, got an object"),
    ('{"sample": 5}', "sample must be a string, got 5"),
    ('{"sample": "face", "face_crop": [1]}', "face_crop must be true or false, got a list"),
    ('{"sample": "face", "all_labels": "maybe"}', "all_labels must be true or false, got 'maybe'"),
    ('{"sample": "face", "target": [{"Male": 1}]}', "unknown field(s) 'target'"),
    ('{"sample": "face", "image": "aGVsbG8="}', "as a multipart/form-data upload"),
    ('{"sample": "\xff"}', "the request body must be JSON in UTF-8"),  # sent as latin-1
])  # fmt: skip
def test_malformed_json_fields_are_400_never_500(client, body, message):
    r = client.post(
        "/api/translate",
        content=body.encode("latin-1"),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and message in r.json()["error"], r.text
    assert len(r.content) < 500  # the client's value is never echoed whole


@pytest.mark.parametrize(("fields", "message"), [
    ({"targets": '[{"Male": ' + HUGE + "}]"}, "'Male' must be within +-10"),
    ({"targets": DEEP}, "targets must be JSON nested less deeply"),
    ({"targets": b'[{"Male": 1, "\xff": 1}]'}, "targets must be JSON in UTF-8"),
    ({"face_crop": b"\xff"}, "face_crop must be UTF-8 text"),
    ({"face_crop": "perhaps"}, "face_crop must be true or false, got 'perhaps'"),
    ({"sample": b"\xff\xfe"}, "sample must be UTF-8 text"),
    ({"extra": "1"}, "unknown field(s) 'extra'"),
])  # fmt: skip
def test_malformed_form_fields_are_400_never_500(client, fields, message):
    files = {"image": ("photo.png", png_bytes(), "image/png")}
    r = client.post("/api/translate", files=files, data=fields)
    assert r.status_code == 400 and message in r.json()["error"], r.text


def test_long_values_are_cut_in_messages(client):
    r = client.post("/api/translate", json={"sample": "x" * 100_000})
    assert r.status_code == 404 and "(100002 characters)" in r.json()["error"]
    assert len(r.content) < 500


def test_oversized_body_is_413_declared_or_streamed(model):
    with make_client(model, max_body_bytes=50_000) as client:
        r = upload(client, data=b"\x89PNG" + b"\0" * 60_000)
        assert r.status_code == 413 and "larger than 50,000 bytes" in r.json()["error"]

        def chunks():  # no Content-Length: the limit must hold while streaming
            for _ in range(20):
                yield b"\0" * 5_000

        r = client.post(
            "/api/translate",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert r.status_code == 413


def test_wrong_types_are_415(client):
    r = upload(client, data=b"%PDF-1.4", content_type="application/pdf")
    assert r.status_code == 415 and "application/pdf" in r.json()["error"]
    r = upload(client, data=b"%PDF-1.4 pretending", content_type="image/png")
    assert r.status_code == 415 and "not an image in an allowed format" in r.json()["error"]
    r = client.post("/api/translate", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415


@pytest.mark.parametrize("side", [5_000, 40_000])  # over our limit; over Pillow's own too
def test_decompression_bomb_is_refused_from_its_header(model, side):
    with make_client(model, max_pixels=4_000_000) as client:
        r = upload(client, data=png_declaring(side, side))
    assert r.status_code == 413
    assert "pixels" in r.json()["error"] or "decompression" in r.json()["error"]


def test_full_queue_answers_503_with_retry_after(model):
    started, release, results = threading.Event(), threading.Event(), []
    with make_client(model, workers=1, queue=0, retry_after_s=7) as client:
        translator = client.app.state.translator()

        def blocking(job):
            started.set()
            release.wait(10)
            return {"ok": True}

        translator.run = blocking
        first = threading.Thread(target=lambda: results.append(upload(client)))
        first.start()
        assert started.wait(10)
        busy = upload(client)
        release.set()
        first.join(10)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "7"
    assert "busy" in busy.json()["error"]
    assert results[0].status_code == 200


def test_slow_translation_times_out_and_keeps_its_slot_until_done(model):
    with make_client(model, workers=1, queue=0, timeout_s=0.2) as client:
        translator = client.app.state.translator()
        translator.run = lambda job: time.sleep(1.0) or {"ok": True}
        r = upload(client)
        assert r.status_code == 504 and "longer than 0.2 s" in r.json()["error"]
        assert upload(client).status_code == 503  # the timed-out work still holds the core
        time.sleep(1.0)
        translator.run = lambda job: {"ok": True}
        assert upload(client).status_code == 200


def test_internal_errors_never_leak_a_stack_trace(model):
    with make_client(model) as client:

        def broken(job):
            raise RuntimeError("secret path /home/someone/model")

        client.app.state.translator().run = broken
        r = upload(client)
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text and "error" in r.json()


def test_uploads_never_touch_disk(client, monkeypatch):
    import starlette.formparsers

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was about to be written to a temporary file")

    for name in ("SpooledTemporaryFile", "NamedTemporaryFile", "TemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", refuse)
    big = io.BytesIO()  # over Starlette's 1 MB spooling threshold
    Image.effect_noise((700, 700), 80).convert("RGB").save(big, format="PNG")
    assert len(big.getvalue()) > 1 << 20
    r = upload(client, data=big.getvalue())
    assert r.status_code == 200, r.text


def test_face_crop_without_a_face_is_422(client):
    pytest.importorskip("cv2")
    r = upload(client, face_crop="true")
    assert r.status_code == 422 and "no face found" in r.json()["error"]


def test_serve_channels_last_serves_the_same_translations_from_nhwc_weights(
    tmp_path, monkeypatch, capsys
):
    """`stargan serve --channels-last`: the served G's weights in NHWC order, and the same
    translation as the plain server's (8-bit rounding of near-equal floats)."""
    import numpy as np

    from stargan.cli import main
    from stargan.web import server

    apps = []
    monkeypatch.setattr(server, "listen", lambda host, port: None)
    monkeypatch.setattr(server, "serve", lambda app, sock: apps.append(app))
    path = tiny_model_file(tmp_path / "m.safetensors")
    for flags in ([], ["--channels-last"]):
        assert main(["serve", "--model", str(path), *flags]) == 0
    capsys.readouterr()
    images = []
    for app, nhwc in zip(apps, (False, True), strict=True):
        convs = [p for p in app.state.translator().model.generator.parameters() if p.dim() == 4]
        assert all(p.is_contiguous(memory_format=torch.channels_last) == nhwc for p in convs)
        with TestClient(app) as c:
            r = upload(c, targets=[{"Male": 1}], all_labels=False)
        assert r.status_code == 200, r.text
        image = decode_data_url(r.json()["translations"][0]["image"])
        images.append(np.asarray(image, dtype=np.int16))
    assert np.abs(images[0] - images[1]).max() <= 1


def test_face_crop_errors_use_the_pages_wording(client):
    pytest.importorskip("cv2")
    error = upload(client, face_crop="true").json()["error"]
    assert 'untick "Crop to the face"' in error and "--face-crop" not in error


def test_favicon_is_served_not_a_404(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.startswith("<svg") and 'rel="icon"' in client.get("/").text


def test_only_the_packaged_model_carries_the_out_of_domain_note(client):
    from stargan.inference import PACKAGED_MODEL

    assert client.get("/api/info").json()["note"] is None  # the user's own model
    if not PACKAGED_MODEL.is_file():
        pytest.skip("no packaged model in this install")
    with make_client(load(None)) as packaged:
        note = packaged.get("/api/info").json()["note"]
        assert "32 px cartoon faces" in note and "SynthFaces" in note
        assert 'id="model-note"' in packaged.get("/").text  # where the page shows it


def test_serve_without_model_says_the_packaged_model_is_out_of_domain_on_photos(
    tmp_path, monkeypatch, capsys
):
    """`stargan serve` on the packaged model prints the out-of-domain note; a named model
    does not get it."""
    from stargan import inference
    from stargan.cli import main
    from stargan.web import server

    monkeypatch.setattr(server, "listen", lambda host, port: None)
    monkeypatch.setattr(server, "serve", lambda app, sock: None)
    path = tiny_model_file(tmp_path / "m.safetensors")
    monkeypatch.setattr(inference, "PACKAGED_MODEL", path)
    assert main(["serve"]) == 0
    assert "trained on 32 px cartoon faces" in capsys.readouterr().err
    assert main(["serve", "--model", str(path)]) == 0
    assert "cartoon" not in capsys.readouterr().err
