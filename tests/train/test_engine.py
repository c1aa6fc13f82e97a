"""The fit/evaluate loop: accuracy and confusion on hand-made predictions, what `edge eval` derives from
them, checkpoints, and a resume that continues exactly where an interrupted run stopped."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from edge.bundle import ClipSpec
from edge.errors import EdgeError
from edge.preprocess import Preprocess
from train.data import ClipDataset, dataset_from_dir
from train.data.synth import generate
from train.engine import (
    Checkpoint,
    FitConfig,
    all_clips_accuracy,
    evaluate,
    fit,
    seed_everything,
    training_loss,
)
from train.models import build_model
from train.run import order_accuracy, per_class_accuracy

TWO = ClipSpec(num_segments=2, window_frames=2, stride_frames=1)  # 2 TSN segments


class Oracle(nn.Module):
    """Predicts the class written in each clip's first value: a model whose answers the test chooses."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x[:, 0].long(), self.num_classes).float()


def test_evaluate_counts_true_labels_in_rows_and_predictions_in_columns():
    truth, pred = [0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 1, 2, 1, 1, 2, 2, 0, 2]
    x = torch.tensor(pred, dtype=torch.float32)[:, None]
    y = torch.tensor(truth)
    loader = [(x[:4], y[:4]), (x[4:], y[4:])]  # two batches of unequal size
    r = evaluate(Oracle(3), loader, 3)
    assert r["confusion"] == [[1, 1, 1], [0, 2, 0], [1, 0, 3]]
    assert r["clips"] == 9 and r["accuracy"] == pytest.approx(6 / 9)


LABELS = ["move_left", "move_right", "move_up", "move_down", "appear"]
CONFUSION = np.array([
    [3, 1, 1, 0, 0],  # move_left: 3 right, 1 taken for its reverse, 1 for another pair
    [2, 2, 0, 0, 0],
    [0, 0, 4, 0, 0],
    [0, 0, 1, 1, 2],
    [0, 0, 0, 0, 5],  # "appear": its partner "disappear" is not in this label set
])


def test_per_class_accuracy_is_the_diagonal_over_each_row():
    acc = per_class_accuracy(CONFUSION, LABELS)
    assert acc == pytest.approx({"move_left": 3 / 5, "move_right": 2 / 4, "move_up": 1.0, "move_down": 1 / 4,
                                 "appear": 1.0})
    empty = per_class_accuracy(np.array([[1, 0], [0, 0]]), ["a", "b"])
    assert empty["a"] == 1.0 and np.isnan(empty["b"])


def test_order_accuracy_counts_only_predictions_within_a_time_reversal_pair():
    # right within pairs: 3 + 2 + 4 + 1 = 10 of (3+1) + (2+2) + (4+0) + (1+1) = 14; other-pair errors and
    # the partnerless class are left out
    assert order_accuracy(CONFUSION, LABELS) == pytest.approx(10 / 14)
    assert order_accuracy(CONFUSION[4:, 4:], ["appear"]) is None  # no pair at all
    assert order_accuracy(np.eye(2, dtype=int), ["walk", "run"]) is None  # not the synthetic set


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("engine") / "synth", classes=2, videos_per_class=4, seed=1,
                    frames=8, size=32, progress=False).out
    pre = Preprocess(16, 18)
    train_items, labels = dataset_from_dir(root, "train")
    test_items, _ = dataset_from_dir(root, "test")
    return (ClipDataset(train_items, TWO, pre, train=True), ClipDataset(test_items, TWO, pre, train=False), labels,
            pre)


def start_checkpoint(labels, pre) -> Checkpoint:
    return Checkpoint("tsm_resnet18", {"num_classes": len(labels), "num_segments": 2, "width": 4}, {}, labels,
                      {"preprocess": pre.to_dict(), "clip": {"num_segments": 2, "window_frames": 8,
                                                             "stride_frames": 2}})


class InterruptedAfter(Dataset):
    """The training set, with Ctrl-C arriving at the ``n``-th clip read: a run killed mid-epoch."""

    def __init__(self, ds: Dataset, n: int) -> None:
        self.ds, self.n, self.reads = ds, n, 0

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        self.reads += 1
        if self.reads == self.n:
            raise KeyboardInterrupt
        return self.ds[i]


def test_resume_after_an_interruption_ends_where_the_uninterrupted_run_ends(tiny_data, tmp_path):
    train_ds, val_ds, labels, pre = tiny_data
    cfg = FitConfig(epochs=3, batch_size=2, lr=1e-2, seed=4)
    whole = fit(start_checkpoint(labels, pre), train_ds, val_ds, tmp_path / "whole", cfg, progress=False)
    with pytest.raises(KeyboardInterrupt):  # dies in epoch 2, after epoch 1's last.pt was written
        fit(start_checkpoint(labels, pre), InterruptedAfter(train_ds, len(train_ds) + 3), val_ds,
            tmp_path / "cut", cfg, progress=False)
    assert Checkpoint.load(tmp_path / "cut" / "last.pt").train_state["epoch"] == 0
    resumed = fit(start_checkpoint(labels, pre), train_ds, val_ds, tmp_path / "cut", cfg, resume=True,
                  progress=False)
    a, b = (Checkpoint.load(p / "last.pt") for p in (tmp_path / "whole", tmp_path / "cut"))
    # weights, optimizer moments and the LR schedule all carried over: the same numbers, not just the
    # same history length
    for k, v in a.state_dict.items():
        assert torch.allclose(v.float(), b.state_dict[k].float(), atol=1e-6), k
    assert a.train_state["scheduler"]["last_epoch"] == b.train_state["scheduler"]["last_epoch"] == 3 * 3
    assert a.train_state["history"] == b.train_state["history"]
    assert whole.train_state["best"] == resumed.train_state["best"]
    seed_everything(cfg.seed)  # the initial weights fit starts from: training must have moved them
    init = build_model("tsm_resnet18", **start_checkpoint(labels, pre).config).state_dict()
    assert not torch.allclose(init["fc.weight"], a.state_dict["fc.weight"])


def test_best_checkpoint_is_the_best_validated_epoch_and_rebuilds_exactly(tiny_data, tmp_path):
    train_ds, val_ds, labels, pre = tiny_data
    best = fit(start_checkpoint(labels, pre), train_ds, val_ds, tmp_path, FitConfig(epochs=2, batch_size=2),
               progress=False)
    history = best.train_state["history"]
    assert best.train_state["best"] == max(h["val_accuracy"] for h in history)
    last = Checkpoint.load(tmp_path / "last.pt")
    start = start_checkpoint(labels, pre)
    for ck in (best, last):  # both rebuild the model that was trained, with its labels and input spec
        assert (ck.model, ck.config, ck.labels, ck.input) == (start.model, start.config, start.labels, start.input)
    accs = [h["val_accuracy"] for h in last.train_state["history"]]
    assert best.train_state["epoch"] == accs.index(max(accs))  # the first epoch that reached the best
    assert last.train_state["epoch"] == 1 and last.train_state["fit"]["epochs"] == 2
    assert (tmp_path / "history.json").read_text() == json.dumps(last.train_state["history"], indent=2) + "\n"
    net = best.build()
    assert not net.training
    clips = torch.stack([val_ds[i][0] for i in range(len(val_ds))])
    r = evaluate(net, [(clips, torch.tensor([val_ds[i][1] for i in range(len(val_ds))]))], len(labels))
    assert r["accuracy"] == pytest.approx(best.train_state["val"]["accuracy"])


def test_seed_everything_fixes_python_numpy_and_torch():
    import random

    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(3)
    a = draw()
    seed_everything(3)
    assert draw() == a
    seed_everything(4)
    assert all(x != y for x, y in zip(draw(), a, strict=True))


def test_checkpoints_round_trip_and_bad_files_are_one_line_errors(tmp_path):
    ckpt = Checkpoint("tsn_resnet18", {"num_classes": 2, "num_segments": 2, "width": 4},
                      {"w": torch.arange(3.0)}, ["a", "b"], {"preprocess": {"size": 16}}, {"epoch": 3})
    ckpt.save(tmp_path / "deep" / "c.pt")
    back = Checkpoint.load(tmp_path / "deep" / "c.pt")
    assert (back.model, back.config, back.labels, back.input, back.train_state) == \
        (ckpt.model, ckpt.config, ckpt.labels, ckpt.input, ckpt.train_state)
    assert torch.equal(back.state_dict["w"], ckpt.state_dict["w"])
    bare = {k: v for k, v in torch.load(tmp_path / "deep" / "c.pt").items() if k != "train_state"}
    torch.save(bare, tmp_path / "bare.pt")  # written by another tool: no training state
    assert Checkpoint.load(tmp_path / "bare.pt").train_state == {}
    with pytest.raises(EdgeError) as e:
        Checkpoint.load(tmp_path / "missing.pt")
    assert str(e.value) == f"checkpoint {tmp_path / 'missing.pt'}: no such file"
    (tmp_path / "text.pt").write_text("hello\n")
    with pytest.raises(EdgeError) as e:
        Checkpoint.load(tmp_path / "text.pt")
    assert str(e.value) == f"checkpoint {tmp_path / 'text.pt'}: not an edge checkpoint (KeyError: 101)"
    torch.save({"model": "x", "extra": np.float64(1.0)}, tmp_path / "pickled.pt")  # not weights-only safe
    with pytest.raises(EdgeError) as e:
        Checkpoint.load(tmp_path / "pickled.pt")
    message = str(e.value)  # torch explains over many lines; the user gets its first, on one line
    assert "\n" not in message and message.endswith(")")
    assert message.startswith(f"checkpoint {tmp_path / 'pickled.pt'}: not an edge checkpoint (UnpicklingError: "
                              "Weights only load failed")


def test_resume_without_a_previous_run_names_the_missing_file(tiny_data, tmp_path):
    train_ds, val_ds, labels, pre = tiny_data
    with pytest.raises(EdgeError) as e:
        fit(start_checkpoint(labels, pre), train_ds, val_ds, tmp_path / "new", FitConfig(epochs=1), resume=True)
    assert str(e.value) == f"--resume: {tmp_path / 'new' / 'last.pt'} does not exist"


class Recorded(Dataset):
    """The training set, remembering which items each epoch read, in order."""

    def __init__(self, ds: Dataset) -> None:
        self.ds, self.reads = ds, []

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        self.reads.append(i)
        return self.ds[i]


@pytest.mark.parametrize("batch_size", [1, 6])
def test_an_epoch_reports_the_mean_loss_of_its_clips(tiny_data, tmp_path, capsys, batch_size):
    # lr 0 leaves the weights where they started. One clip per batch makes each clip's train-mode loss
    # independent of the others, so the epoch's loss is the plain mean over the clips; one batch of all six
    # makes it that batch's loss (BatchNorm statistics over the whole set), in any order
    train_ds, val_ds, labels, pre = tiny_data
    recorded = Recorded(train_ds)
    cfg = FitConfig(epochs=2, batch_size=batch_size, lr=0.0, seed=2)
    fit(start_checkpoint(labels, pre), recorded, val_ds, tmp_path / "a" / "b", cfg)
    last = Checkpoint.load(tmp_path / "a" / "b" / "last.pt")
    seed_everything(cfg.seed)
    net = build_model("tsm_resnet18", **start_checkpoint(labels, pre).config).train()
    torch.manual_seed(cfg.seed)  # epoch 0's seed: the clips' frame offsets and jitter
    clips = [train_ds[i] for i in range(len(train_ds))]
    with torch.no_grad():
        if batch_size == 1:
            expected = np.mean([nn.functional.cross_entropy(net(x[None]), torch.tensor([y])).item() for x, y in clips])
        else:
            expected = nn.functional.cross_entropy(net(torch.stack([x for x, _ in clips])),
                                                   torch.tensor([y for _, y in clips])).item()
    history = last.train_state["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[0]["train_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert torch.equal(last.state_dict["fc.weight"], net.state_dict()["fc.weight"])  # lr 0: unchanged
    n = len(train_ds)
    epochs = [recorded.reads[:n], recorded.reads[n:]]
    assert [sorted(e) for e in epochs] == [list(range(n))] * 2  # every clip once per epoch
    assert epochs[0] != epochs[1]  # reshuffled every epoch (720 orders of six clips)
    shown = capsys.readouterr()
    assert "tsm_resnet18 epoch 1/2: " in shown.err and "tsm_resnet18 epoch 2/2: " in shown.err  # the bars
    assert shown.out.splitlines() == [f"tsm_resnet18 epoch {h['epoch']}/2: loss {h['train_loss']:.3f}  "
                                      f"val clip acc {h['val_accuracy']:.3f}" for h in history]


def test_quiet_fit_prints_nothing(tiny_data, tmp_path, capsys):
    train_ds, val_ds, labels, pre = tiny_data
    fit(start_checkpoint(labels, pre), train_ds, val_ds, tmp_path, FitConfig(epochs=1, batch_size=4),
        progress=False)
    assert capsys.readouterr() == ("", "")


def test_weight_decay_reaches_the_optimizer_and_the_schedule_peaks_at_a_fifth(tiny_data, tmp_path):
    train_ds, val_ds, labels, pre = tiny_data
    runs = {wd: fit(start_checkpoint(labels, pre), train_ds, val_ds, tmp_path / str(wd),
                    FitConfig(epochs=5, batch_size=2, lr=1e-2, weight_decay=wd), progress=False)
            for wd in (0.0, 0.5)}
    last = {wd: Checkpoint.load(tmp_path / str(wd) / "last.pt") for wd in runs}
    assert not torch.allclose(last[0.0].state_dict["fc.weight"], last[0.5].state_dict["fc.weight"])
    groups = last[0.5].train_state["optimizer"]["param_groups"][0]
    assert groups["weight_decay"] == 0.5 and groups["max_lr"] == 1e-2
    sched = last[0.5].train_state["scheduler"]
    steps = 5 * (len(train_ds) // 2)  # drop_last: whole batches only
    assert sched["total_steps"] == steps == sched["last_epoch"]
    assert sched["_schedule_phases"][0]["end_step"] == pytest.approx(0.2 * steps - 1)


def test_a_model_with_its_own_loss_trains_on_it():
    # TFDEM (Eq. 4): CE(main) + CE(tfdem); a plain model: cross-entropy of its output
    torch.manual_seed(0)
    x, y = torch.randn(4, 2, 3, 32, 32), torch.tensor([0, 1, 1, 0])
    m = build_model("mstsm_tfdem_resnet18", num_classes=2, num_segments=2, width=4).train()
    out = m(x)
    main, tfdem = m._stash  # what the forward kept for its loss
    expected = nn.functional.cross_entropy(main, y) + nn.functional.cross_entropy(tfdem, y)
    assert training_loss(m, out, y).item() == pytest.approx(expected.item(), rel=1e-6)
    plain = build_model("tsm_resnet18", num_classes=2, num_segments=2, width=4).train()
    out = plain(x)
    assert training_loss(plain, out, y).item() == pytest.approx(nn.functional.cross_entropy(out, y).item())


def test_fit_trains_tfdem_on_the_sum_of_both_cross_entropies(tiny_data, tmp_path):
    train_ds, val_ds, labels, pre = tiny_data
    start = Checkpoint("mstsm_tfdem_resnet18", {"num_classes": 2, "num_segments": 2, "width": 4}, {}, labels,
                       start_checkpoint(labels, pre).input)
    fit(start, train_ds, val_ds, tmp_path, FitConfig(epochs=1, batch_size=2, lr=1e-9), progress=False)
    loss = json.loads((tmp_path / "history.json").read_text())[0]["train_loss"]
    # two untrained 2-class heads: about 2 ln 2 = 1.39 (one cross-entropy alone would be about 0.69)
    assert 1.1 < loss < 1.7


class ClipVoter(nn.Module):
    """``score_clips`` gives fixed per-clip scores: the first clip votes class 0 strongly, the others class 1
    weakly, so the mean says 1 while the first clip (or a max over clips) says 0."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def score_clips(self, clips: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(clips.shape))
        scores = torch.tensor([[0.0, 1.0]]).repeat(len(clips), 1)
        scores[0] = torch.tensor([2.0, 0.0])
        return scores


def test_all_clips_accuracy_averages_every_clip_of_each_video(tmp_path):
    root = generate(tmp_path / "synth", classes=2, videos_per_class=2, seed=2, frames=20, size=32,
                    progress=False).out
    items, _ = dataset_from_dir(root, "test")
    spec = ClipSpec(num_segments=4, window_frames=20, stride_frames=1, sampling="clips", num_clips=2, clip_step=2)
    ds = ClipDataset(items, spec, Preprocess(16, 18), train=False)
    model = ClipVoter()
    acc = all_clips_accuracy(model, ds)
    labels = [it.label for it in ds.items]
    # 20 frames, parts of 10 fit 2 frames 2 apart: every clip spans 4 frames, 5 of them per video
    assert model.shapes == [(5, 2, 3, 16, 16)] * len(ds)
    assert acc == pytest.approx(labels.count(1) / len(labels)) and 0 < acc < 1


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 7, 8, 100])
def test_the_one_cycle_schedule_runs_at_any_number_of_steps(steps):
    """One epoch of 5 batches crashed PyTorch's OneCycleLR at a 20% warm-up (a division by zero)."""
    from train.engine import warmup_fraction

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps, pct_start=warmup_fraction(steps))
    for _ in range(steps):
        opt.step()
        sched.step()
    assert warmup_fraction(100) == 0.2 and 0 < warmup_fraction(steps) <= 0.75
