import dataclasses
import json
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import CELEBA_SPEC, RAFD_SPEC, TensorFaces, tiny_config
from stargan.accel import Precision
from stargan.accel.kernels import WinogradConv2d
from stargan.checkpoint import CheckpointError
from stargan.config import ConfigError, SpeedConfig
from stargan.evaluation import EvaluationError
from stargan.inference import load
from stargan.training.runfolder import RunFolderError
from stargan.training.trainer import NonFiniteError, Trainer


def _weights(trainer):
    return {
        **{f"G.{k}": v for k, v in trainer.G.state_dict().items()},
        **{f"D.{k}": v for k, v in trainer.D.state_dict().items()},
    }


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _cut_and_resume(cfg, dataset, stop_at):
    """Train ``stop_at`` iterations, checkpoint, and resume in a brand-new Trainer (as a new
    process would: everything rebuilt from the config and the folder); not yet fitted."""
    first = Trainer(cfg, datasets=[dataset])
    for _ in range(stop_at):
        first.train_iteration()
        first.step += 1
    first.save_state()
    return Trainer(cfg, datasets=[dataset], resume="auto")


def test_fit_writes_model_metrics_and_checkpoints(tmp_path, celeba_like):
    trainer = Trainer(tiny_config(tmp_path), datasets=[celeba_like])
    assert trainer.fit() == "finished"
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert {"D/adv", "D/cls", "D/gp", "D/loss", "lr/g"} <= records[0].keys()
    assert {"G/adv", "G/cls", "G/rec", "G/loss"} <= records[1].keys()  # n_critic = 2
    assert all(math.isfinite(v) for r in records for v in r.values())
    assert records[-1]["lr/g"] == pytest.approx(1e-4 / 3)  # lr for the update after step 5
    assert [p.name for p in trainer.checkpoints()] == [
        "state-00000006.safetensors",
        "state-00000003.safetensors",
    ]
    model = load(tmp_path / "model.safetensors")
    assert model.step == 6 and model.label_names == list(CELEBA_SPEC.names)
    assert json.loads((tmp_path / "config.json").read_text())["model"]["c_dim"] == 5


def test_training_changes_the_weights_and_is_seeded(tmp_path, celeba_like):
    a = Trainer(tiny_config(tmp_path / "a"), datasets=[celeba_like])
    before = {k: v.clone() for k, v in _weights(a).items()}
    a.fit()
    b = Trainer(tiny_config(tmp_path / "b"), datasets=[celeba_like])
    b.fit()
    _assert_identical(_weights(a), _weights(b))
    assert any(not torch.equal(before[k], v) for k, v in _weights(a).items())


@pytest.mark.parametrize("stop_at", [2, 3, 4])
def test_resumed_run_equals_uninterrupted_bit_for_bit(tmp_path, celeba_like, stop_at):
    full = Trainer(tiny_config(tmp_path / "full", iters=8), datasets=[celeba_like])
    full.fit()

    second = _cut_and_resume(tiny_config(tmp_path / "cut", iters=8), celeba_like, stop_at)
    assert second.step == stop_at
    second.fit()
    _assert_identical(_weights(full), _weights(second))
    for name in ("opt_g", "opt_d"):
        sa, sb = getattr(full, name).state_dict(), getattr(second, name).state_dict()
        for idx in sa["state"]:
            for key in sa["state"][idx]:
                assert torch.equal(sa["state"][idx][key], sb["state"][idx][key])
    assert torch.equal(full.rng.get_state(), second.rng.get_state())


def test_stop_request_checkpoints_and_resume_finishes(tmp_path, celeba_like):
    cfg = tiny_config(tmp_path, iters=6)
    trainer = Trainer(cfg, datasets=[celeba_like])

    class StopAfterTwo:
        def on_start(self, step, total):
            pass

        def on_metrics(self, step, metrics):
            if step == 2:
                trainer.request_stop()

        def on_end(self, step):
            pass

    trainer.callbacks.append(StopAfterTwo())
    assert trainer.fit() == "stopped"
    assert trainer.checkpoints()[0].name == "state-00000002.safetensors"
    again = Trainer(cfg, datasets=[celeba_like], resume="auto")
    assert again.fit() == "finished" and again.step == 6
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_existing_run_folder_is_not_clobbered(tmp_path, celeba_like):
    Trainer(tiny_config(tmp_path), datasets=[celeba_like]).fit()
    with pytest.raises(RunFolderError, match="--resume"):
        Trainer(tiny_config(tmp_path), datasets=[celeba_like])
    fresh = Trainer(tiny_config(tmp_path), datasets=[celeba_like], overwrite=True)
    assert fresh.step == 0 and not fresh.checkpoints()


def test_resume_skips_a_corrupt_newest_checkpoint(tmp_path, celeba_like):
    Trainer(tiny_config(tmp_path), datasets=[celeba_like]).fit()
    newest = tmp_path / "checkpoints" / "state-00000006.safetensors"
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF
    newest.write_bytes(bytes(data))
    resumed = Trainer(tiny_config(tmp_path), datasets=[celeba_like], resume="auto")
    assert resumed.step == 3
    assert "checksum" in resumed.skipped_checkpoints[0]


def test_resume_refuses_other_labels(tmp_path, celeba_like, rafd_like):
    Trainer(tiny_config(tmp_path), datasets=[celeba_like]).fit()
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        Trainer(tiny_config(tmp_path), datasets=[TensorFaces(RAFD_SPEC)], resume="auto")


def test_non_finite_loss_stops_before_the_update(tmp_path, celeba_like):
    celeba_like.images[:] = float("nan")
    trainer = Trainer(tiny_config(tmp_path), datasets=[celeba_like])
    before = {k: v.clone() for k, v in _weights(trainer).items()}
    with pytest.raises(NonFiniteError, match="step 0"):
        trainer.fit()
    _assert_identical(before, _weights(trainer))


def test_joint_training_runs_with_mask(tmp_path, celeba_like, rafd_like):
    trainer = Trainer(tiny_config(tmp_path, n_data=2), datasets=[celeba_like, rafd_like])
    assert (trainer.cfg.model.c_dim, trainer.cfg.model.n_classes) == (10, 8)
    trainer.fit()
    rec = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][1]
    assert {"0:D/cls", "1:D/cls", "0:G/rec", "1:G/rec"} <= rec.keys()


@pytest.mark.parametrize("k", [0, 1])
def test_joint_classification_ignores_the_other_datasets_logits(
    tmp_path, celeba_like, rafd_like, k
):
    """On dataset k's batch, D's and G's classification losses see only k's slice of the
    logits: the gradient reaching every other dataset's logits is exactly zero."""
    trainer = Trainer(tiny_config(tmp_path, n_data=2), datasets=[celeba_like, rafd_like])
    forward, grads = trainer.D.forward, []

    def spying_forward(x):
        src, cls = forward(x)
        if cls.requires_grad:
            cls.register_hook(lambda g: grads.append(g.detach().clone()))
        return src, cls

    trainer.D.forward = spying_forward
    x, label = (celeba_like, rafd_like)[k].images[:4], (celeba_like, rafd_like)[k].labels[:4]
    trainer.train_step(k, x, label, update_g=True)
    own = torch.zeros(trainer.cfg.model.n_classes, dtype=torch.bool)
    own[trainer.layout.slice(k)] = True
    assert len(grads) == 2  # the D step's real/fake forward and the G step's
    for g in grads:
        assert torch.count_nonzero(g[:, ~own]) == 0
        assert torch.count_nonzero(g[:, own]) > 0


def test_non_finite_gradient_is_caught(tmp_path, celeba_like, monkeypatch):
    trainer = Trainer(tiny_config(tmp_path), datasets=[celeba_like])
    before = {k: v.clone() for k, v in _weights(trainer).items()}
    # A finite loss whose gradient overflows: scale the critic's output by a huge factor.
    original = trainer.D.forward
    monkeypatch.setattr(
        trainer.D, "forward", lambda x: tuple(t * 1e38 if t.dim() == 4 else t for t in original(x))
    )
    trainer.cfg = dataclasses.replace(
        trainer.cfg, loss=dataclasses.replace(trainer.cfg.loss, adversarial="lsgan")
    )
    with pytest.raises(NonFiniteError, match="D/|gradient norm of D"):
        trainer.fit()
    _assert_identical(before, _weights(trainer))


def test_skip_policy_goes_on_without_the_bad_update(tmp_path, celeba_like):
    celeba_like.images[:4] = float("nan")
    cfg = tiny_config(tmp_path, on_nonfinite="skip")
    trainer = Trainer(cfg, datasets=[celeba_like])
    assert trainer.fit() == "finished"
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("D/skipped") == 1.0 for r in records)
    assert all(torch.isfinite(v).all() for v in _weights(trainer).values())


def test_identity_loss_option_is_logged(tmp_path, celeba_like):
    cfg = tiny_config(tmp_path)
    cfg = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, lambda_id=5.0))
    Trainer(cfg, datasets=[celeba_like]).fit()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert "G/id" in records[1]


def test_mask_penalty_pushes_the_mask_shut(tmp_path, celeba_like):
    """Same seed and batch with and without the penalty: G's gradient on the attention logit's
    bias differs by lambda_mask * mean(A (1 - A)) > 0 (descent lowers the mask everywhere)."""

    def attention_bias_grad(lambda_mask: float) -> tuple[float, dict]:
        cfg = tiny_config(tmp_path / str(lambda_mask))
        cfg = dataclasses.replace(
            cfg,
            model=dataclasses.replace(cfg.model, g_output="mask"),
            loss=dataclasses.replace(cfg.loss, lambda_mask=lambda_mask),
        )
        trainer = Trainer(cfg, datasets=[celeba_like])
        seen = []  # gradients are freed after the step: read it just before
        trainer.opt_g.register_step_pre_hook(
            lambda *_: seen.append(float(trainer.G.main[-1].bias.grad[3]))
        )
        metrics = trainer.train_step(0, celeba_like.images[:4], celeba_like.labels[:4], True)
        return seen[0], metrics

    penalised, metrics = attention_bias_grad(100.0)
    free, free_metrics = attention_bias_grad(0.0)
    assert "G/mask" in metrics and "G/mask" not in free_metrics
    a = metrics["G/mask"]  # the mask starts nearly uniform (sigmoid(-4) ~ 0.018)
    assert penalised - free == pytest.approx(100.0 * a * (1 - a), rel=0.2)


def test_tensorboard_mirrors_the_metrics(tmp_path, celeba_like):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = Trainer(tiny_config(tmp_path, tensorboard=True), datasets=[celeba_like])
    trainer.fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"D/loss", "G/rec", "lr/g"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("D/loss")] == [1, 2, 3, 4, 5, 6]


def test_periodic_evaluation_with_the_shipped_judge(tmp_path, celeba_like):
    cfg = tiny_config(tmp_path / "synth", size=32, iters=2, eval_every=2, eval_judge="shipped")
    cfg = dataclasses.replace(
        cfg,
        data=(dataclasses.replace(cfg.data[0], num_images=16, test_size=8),),
        run=dataclasses.replace(cfg.run, eval_num=8),
    )
    Trainer(cfg).fit()
    log = (tmp_path / "synth" / "metrics.jsonl").read_text().splitlines()
    last = json.loads(log[-1])
    assert {"eval/accuracy", "eval/psnr", "eval/do_nothing_psnr"} <= last.keys()

    # Labels no shipped judge knows: the error says what to do instead.
    other = tiny_config(tmp_path / "other", iters=2, eval_every=1, eval_judge="shipped")
    with pytest.raises(EvaluationError, match="train-classifier"):
        Trainer(other, datasets=[celeba_like]).fit()


def test_d_classifier_warmup_trains_only_the_classifier_then_the_game_starts(tmp_path, celeba_like):
    cfg = tiny_config(tmp_path, iters=8)
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, d_cls_warmup=3))
    trainer = Trainer(cfg, datasets=[celeba_like])
    g0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    src0 = {k: v.clone() for k, v in trainer.D.state_dict().items() if k.startswith("src.")}
    assert src0, "D's source head is expected under the name src"
    for _ in range(3):
        metrics = trainer.train_iteration()
        trainer.step += 1
        assert set(metrics) == {"lr/g", "lr/d", "D/cls"}
    _assert_identical(trainer.G.state_dict(), g0)
    # The source head gets a zero gradient (it is in the graph only for DDP), so Adam leaves it.
    _assert_identical({k: v for k, v in trainer.D.state_dict().items() if k in src0}, src0)
    metrics = trainer.train_iteration()  # step 3: the adversarial game, G updated (n_critic 2)
    assert {"D/adv", "D/gp", "G/adv", "G/cls"} <= metrics.keys()
    assert any(not torch.equal(g0[k], v) for k, v in trainer.G.state_dict().items())


@pytest.mark.parametrize("lambda_mask", [0.0, 1.0])
def test_recomputing_g_changes_no_gradient(tmp_path, celeba_like, lambda_mask):
    """speed.g_recompute redoes G's activations in backward: the same updates, bit for bit."""

    def trained(recompute):
        cfg = tiny_config(tmp_path / recompute, iters=4)
        cfg = dataclasses.replace(
            cfg,
            model=dataclasses.replace(cfg.model, g_output="mask"),
            loss=dataclasses.replace(cfg.loss, lambda_mask=lambda_mask, lambda_id=1.0),
            speed=dataclasses.replace(cfg.speed, g_recompute=recompute),
        )
        trainer = Trainer(cfg, datasets=[celeba_like])
        trainer.fit()
        return _weights(trainer)

    plain = trained("none")
    _assert_identical(plain, trained("norms"))
    _assert_identical(plain, trained("all"))


def test_gradients_are_freed_after_each_update(tmp_path, celeba_like):
    """No gradient outlives its update: D's would otherwise sit through G's update (the memory
    peak), 179 MB at 128 px."""
    trainer = Trainer(tiny_config(tmp_path), datasets=[celeba_like])
    trainer.train_step(0, celeba_like.images[:4], celeba_like.labels[:4], update_g=True)
    kept = [
        n for net in (trainer.G, trainer.D) for n, p in net.named_parameters() if p.grad is not None
    ]
    assert kept == []


class _ConvDtypes(TorchDispatchMode):
    """The dtypes of the inputs of every convolution and matrix product run while active."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func._overloadpacket
        if packet in (torch.ops.aten.convolution, torch.ops.aten.mm, torch.ops.aten.bmm):
            self.seen.add(args[0].dtype)
        return func(*args, **(kwargs or {}))


def _bf16_config(path, **run):
    return tiny_config(path, iters=4, precision="bf16", **run)


def test_bf16_precision_multiplies_in_bf16_and_keeps_fp32_state(tmp_path, celeba_like):
    """speed.precision 'bf16': every conv and matrix product of a training step (forwards,
    backwards, the penalty's double backward) in bf16; weights, gradients' targets, Adam
    state and losses in fp32."""
    fp32 = Trainer(tiny_config(tmp_path / "fp32", iters=4), datasets=[celeba_like])
    trainer = Trainer(_bf16_config(tmp_path / "bf16"), datasets=[celeba_like])
    assert isinstance(trainer.G_train, Precision) and isinstance(trainer.D_fwd, Precision)
    x, label = celeba_like.images[:4], celeba_like.labels[:4]
    with _ConvDtypes() as watch:
        metrics = trainer.train_step(0, x, label, update_g=True)
    assert watch.seen == {torch.bfloat16}
    with _ConvDtypes() as watch:
        fp32_metrics = fp32.train_step(0, x, label, update_g=True)
    assert watch.seen == {torch.float32}
    assert {"D/gp", "G/rec"} <= metrics.keys() and all(map(math.isfinite, metrics.values()))
    for opt in (trainer.opt_g, trainer.opt_d):
        for state in opt.state.values():
            assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
    assert {v.dtype for v in _weights(trainer).values()} <= {torch.float32, torch.int64}
    # The same seed and draws: close to the fp32 step's losses, but not its arithmetic.
    assert metrics != fp32_metrics
    assert metrics["G/rec"] == pytest.approx(fp32_metrics["G/rec"], rel=0.05)


def test_forward_in_fp32_is_the_net_itself(tmp_path, celeba_like):
    """The fp32 path computes exactly what the net computes (the paper presets' arithmetic):
    the training passes call G and D themselves, no wrapper."""
    trainer = Trainer(tiny_config(tmp_path), datasets=[celeba_like])
    assert trainer.G_train is trainer.G
    assert trainer.D_train is trainer.D_fwd is trainer.D


def test_bf16_training_resumes_and_recomputes_bit_for_bit(tmp_path, celeba_like):
    """Recomputing G in backward replays the forward under the same autocast, so bf16 runs
    give the same weights with every speed.g_recompute; they are seeded, and resume exactly."""

    def trained(name, **run):
        trainer = Trainer(_bf16_config(tmp_path / name, **run), datasets=[celeba_like])
        trainer.fit()
        return _weights(trainer)

    plain = trained("none")
    _assert_identical(plain, trained("norms", g_recompute="norms"))
    _assert_identical(plain, trained("all", g_recompute="all"))
    _assert_identical(plain, trained("again"))
    second = _cut_and_resume(_bf16_config(tmp_path / "cut"), celeba_like, 3)
    second.fit()
    _assert_identical(plain, _weights(second))


def test_bf16_on_a_gpu_without_it_is_refused(tmp_path, celeba_like, monkeypatch):
    from stargan.training import distributed

    monkeypatch.setattr(distributed, "device_for", lambda *_: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda _: "Tesla V100")
    with pytest.raises(ConfigError, match="Tesla V100 has no bf16 arithmetic"):
        Trainer(_bf16_config(tmp_path), datasets=[celeba_like])


def _assert_same_losses(run_a, run_b, rel_tol=1e-4, abs_tol=1e-6):
    """Two runs logged the same metrics, every loss within float tolerance (other kernels,
    other rounding); timings aside."""
    logs = [
        [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for run in (run_a, run_b)
    ]
    for a, b in zip(*logs, strict=True):
        assert a.keys() == b.keys()
        for k in (k for k in a if not k.startswith("time/")):
            assert b[k] == pytest.approx(a[k], rel=rel_tol, abs=abs_tol), k


def _nhwc(t):
    return t.dim() != 4 or t.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_trains_alike_and_resumes_bit_for_bit(tmp_path, celeba_like):
    """speed.channels_last: weights, activations and Adam's moments in NHWC order; the same
    losses as the contiguous run to float tolerance (other kernels, other rounding); a resumed
    run equals the uninterrupted one bit for bit, although checkpoints hold contiguous
    tensors (fused Adam would pair a mis-ordered moment with the wrong weights)."""
    plain = Trainer(tiny_config(tmp_path / "plain", iters=8), datasets=[celeba_like])
    nhwc = Trainer(
        tiny_config(tmp_path / "nhwc", iters=8, channels_last=True), datasets=[celeba_like]
    )
    x, label = celeba_like.images[:4], celeba_like.labels[:4]
    assert nhwc.G(x, label).is_contiguous(memory_format=torch.channels_last)
    plain.fit()
    nhwc.fit()
    _assert_same_losses(tmp_path / "plain", tmp_path / "nhwc")

    cfg = tiny_config(tmp_path / "cut", iters=8, channels_last=True)
    second = _cut_and_resume(cfg, celeba_like, 3)
    for opt in (second.opt_g, second.opt_d):
        assert all(_nhwc(v) for st in opt.state.values() for v in st.values() if v.dim())
    second.fit()
    assert all(_nhwc(p) for p in [*second.G.parameters(), *second.D.parameters()])
    _assert_identical(_weights(nhwc), _weights(second))


@pytest.mark.slow  # a speed knob; compiling takes most of the time
def test_compiled_g_trains_alike_and_resumes_bit_for_bit(tmp_path, celeba_like):
    """speed.compile_g: G's training passes run as compiled graphs (with and without autograd),
    with the eager run's losses to float tolerance (inductor's fused kernels round
    differently); checkpoints hold the bare G's names, and a run resumed from one equals the
    uninterrupted compiled run bit for bit."""
    eager = Trainer(tiny_config(tmp_path / "eager", iters=6), datasets=[celeba_like])
    compiled = Trainer(
        tiny_config(tmp_path / "compiled", iters=6, compile_g=True), datasets=[celeba_like]
    )
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    eager.fit()
    assert not counters["stats"]["unique_graphs"]
    compiled.fit()
    # G's forward without autograd (D-only iterations), with it on real images (the
    # translation a G update reuses) and on the translation (the reconstruction, whose input
    # needs its gradient too): three graphs, compiled once each.
    assert counters["stats"]["unique_graphs"] == 3
    _assert_same_losses(tmp_path / "eager", tmp_path / "compiled")
    assert load(tmp_path / "compiled" / "model.safetensors").step == 6

    second = _cut_and_resume(tiny_config(tmp_path / "cut", iters=6, compile_g=True), celeba_like, 3)
    second.fit()
    _assert_identical(_weights(compiled), _weights(second))


@pytest.mark.slow  # a speed knob; compiling takes most of the time
def test_compiled_g_trains_in_bf16(tmp_path, celeba_like):
    """speed.compile_g with speed.precision 'bf16': what is compiled is G under the trainer's
    autocast (stargan.accel.Precision: G's convs in bf16, its output cast to fp32 for the
    losses), and it trains with the eager bf16 run's losses to bf16 tolerance."""
    eager = Trainer(_bf16_config(tmp_path / "eager"), datasets=[celeba_like])
    compiled = Trainer(_bf16_config(tmp_path / "compiled", compile_g=True), datasets=[celeba_like])
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    eager.fit()
    compiled.fit()
    assert counters["stats"]["unique_graphs"] == 3
    _assert_same_losses(tmp_path / "eager", tmp_path / "compiled", rel_tol=0.05, abs_tol=0.01)
    x, label = celeba_like.images[:4], celeba_like.labels[:4]
    c = compiled.layout.embed(0, label)
    assert isinstance(compiled.G_train._orig_mod, Precision)  # autocast inside the graphs
    with torch.no_grad():
        want, got = Precision(compiled.G)(x, c), compiled.G_train(x, c)  # the bare G is eager
    assert want.dtype == got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0.05)
    assert counters["stats"]["unique_graphs"] == 3  # the D-only iterations' graph, reused


def test_winograd_trains_alike_and_resumes_bit_for_bit(tmp_path, celeba_like):
    """speed.winograd: G's residual convs by F(4x4, 3x3), with the direct run's losses to float
    tolerance; a run resumed from a checkpoint equals the uninterrupted one bit for bit, and
    so does one that recomputes G's norms in backward."""
    direct = Trainer(tiny_config(tmp_path / "direct"), datasets=[celeba_like])
    winograd = Trainer(tiny_config(tmp_path / "winograd", winograd=True), datasets=[celeba_like])
    # Both of G's residual convs (one block), nothing else of G and nothing of D.
    assert sum(isinstance(m, WinogradConv2d) for m in winograd.G.modules()) == 2
    assert not any(isinstance(m, WinogradConv2d) for m in winograd.D.modules())
    assert not any(isinstance(m, WinogradConv2d) for m in direct.G.modules())
    assert winograd.G.state_dict().keys() == direct.G.state_dict().keys()
    direct.fit()
    winograd.fit()
    # F(4x4, 3x3) rounds to about 1e-5 of a conv's output scale (the direct kernel to 2e-6),
    # and D/adv, a difference of two means near zero, carries that in absolute terms.
    _assert_same_losses(tmp_path / "direct", tmp_path / "winograd", abs_tol=1e-5)
    assert not torch.equal(
        _weights(direct)["G.main.9.main.0.weight"], _weights(winograd)["G.main.9.main.0.weight"]
    )
    norms = Trainer(
        tiny_config(tmp_path / "norms", winograd=True, g_recompute="norms"), datasets=[celeba_like]
    )
    norms.fit()
    _assert_identical(_weights(winograd), _weights(norms))
    second = _cut_and_resume(tiny_config(tmp_path / "cut", winograd=True), celeba_like, 3)
    second.fit()
    _assert_identical(_weights(winograd), _weights(second))


def test_winograd_on_a_gpu_is_refused_before_anything_is_written(
    tmp_path, celeba_like, monkeypatch
):
    from stargan.training import distributed

    monkeypatch.setattr(distributed, "device_for", lambda *_: torch.device("cuda"))
    with pytest.raises(ConfigError, match=r"speed.winograd is a CPU kernel.*cuda.*--no-winograd"):
        Trainer(tiny_config(tmp_path / "run", winograd=True), datasets=[celeba_like])
    assert not (tmp_path / "run").exists()


def test_winograd_with_bf16_is_refused():
    with pytest.raises(ConfigError, match=r"speed.winograd computes fp32.*--no-winograd"):
        SpeedConfig(winograd=True, precision="bf16")


def test_compiled_g_without_a_cpp_compiler_is_refused_before_anything_is_written(
    tmp_path, celeba_like, monkeypatch
):
    monkeypatch.setenv("CXX", "no-such-c++-compiler")
    with pytest.raises(
        ConfigError, match=r"speed.compile_g.*'no-such-c\+\+-compiler'.*not on PATH"
    ):
        Trainer(tiny_config(tmp_path / "run", compile_g=True), datasets=[celeba_like])
    assert not (tmp_path / "run").exists()
