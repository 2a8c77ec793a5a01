"""Decipherment of segment cluster ids into phones (asr_gan.lab.decipher): the HMM's algorithms against brute
force, and the whole label-free labelling on the toy task."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from asr_gan.features.storage import FeatureSetWriter
from asr_gan.lab import decipher, label_start, phone_hmm
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc_data import read_phone_labels
from tests.fixtures.toy_phones import make_toy_task


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_task(tmp_path_factory.mktemp("toy"))


def tiny_hmm() -> phone_hmm.PhoneHmm:
    g = torch.Generator().manual_seed(3)
    start = torch.rand(3, generator=g, dtype=torch.float64)
    bigram = torch.rand(3, 3, generator=g, dtype=torch.float64)
    emissions = torch.rand(3, 4, generator=g, dtype=torch.float64)
    return phone_hmm.PhoneHmm(start / start.sum(), bigram / bigram.sum(1, keepdim=True),
                              torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64),
                              emissions / emissions.sum(1, keepdim=True))


def path_probability(hmm: phone_hmm.PhoneHmm, states: tuple[int, ...], symbols: list[int]) -> float:
    trans = hmm.transitions()
    p = hmm.start[states[0]] * hmm.emissions[states[0], symbols[0]]
    for t in range(1, len(symbols)):
        p = p * trans[states[t - 1], states[t]] * hmm.emissions[states[t], symbols[t]]
    return float(p)


def test_forward_backward_and_viterbi_agree_with_enumerating_every_path():
    hmm = tiny_hmm()
    sequences = [np.array([0, 3, 3, 1]), np.array([2, 1])]  # the second is padded in the batch
    obs, mask = phone_hmm._pad(sequences)
    counts, moves, log_likelihood = phone_hmm.expected_counts(hmm, obs, mask)
    viterbi = phone_hmm.viterbi(hmm, obs, mask)
    expected_ll = 0.0
    expected_counts = torch.zeros(3, 4, dtype=torch.float64)
    expected_stays = torch.zeros(3, dtype=torch.float64)
    for b, seq in enumerate(sequences):
        paths = {s: path_probability(hmm, s, seq.tolist()) for s in itertools.product(range(3), repeat=len(seq))}
        total = sum(paths.values())
        expected_ll += math.log(total)
        for states, p in paths.items():
            for t, state in enumerate(states):
                expected_counts[state, seq[t]] += p / total
            for t in range(1, len(states)):
                if states[t] == states[t - 1]:
                    # a stay is the self-loop's share of the transition, not every repeat of a state
                    trans = hmm.transitions()[states[t], states[t]]
                    expected_stays[states[t]] += p / total * float(hmm.stay[states[t]] / trans)
        best = max(paths, key=paths.get)
        assert viterbi[b, :len(seq)].tolist() == list(best)
    assert log_likelihood == pytest.approx(expected_ll, rel=1e-9)
    assert torch.allclose(counts, expected_counts, atol=1e-9)
    assert torch.allclose(moves[0], expected_stays, atol=1e-9)


def test_frequency_init_favours_clusters_of_the_phones_frequency_rank():
    emissions = phone_hmm.frequency_init(np.array([5.0, 50.0, 20.0]), np.array([10.0, 300.0, 90.0]), 0.05, None)
    assert emissions.argmax(1).tolist() == [0, 1, 2]
    assert torch.allclose(emissions.sum(1), torch.ones(3, dtype=torch.float64))


def test_decipher_labels_the_toy_audio_from_clusters_and_text_alone(toy, tmp_path):
    out = tmp_path / "decipher"
    report = decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), out, clusters=11, restarts=4,
                          iterations=50, labels=str(toy["train_labels"]), progress=False)
    # The fit never reads train.phn (only the report's PER does); the sweep calls a run converged under 40%.
    assert report["per"] < 0.1, report
    assert report["log_likelihoods"][report["selected_restart"]] == max(report["log_likelihoods"])
    assert json.loads((out / "report.json").read_text())["per"] == report["per"]
    segments = read_phone_labels(out / "train.segments")
    from asr_gan.features.storage import FeatureSet

    features = FeatureSet(toy["train"])
    assert [len(segments[u]) for u in features.utt_ids] == [int(n) for n in features.lengths]
    assert set(read_phone_labels(out / "train.phn")) == set(features.utt_ids)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("context", ["none", "next"])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_decipherment_reads_the_rows_alike_on_every_device(toy, tmp_path, context, device):
    """The E-steps and Viterbi run where `device` says, and the result comes back on the CPU; a CUDA run must
    match the CPU run to rounding."""
    common = dict(features=str(toy["train"]), text=str(toy["text"]), phones=str(toy["phones"]), clusters=11,
                  restarts=2, iterations=10, labels=str(toy["train_labels"]), progress=False, context=context)
    cpu = decipher.run(**common, out=tmp_path / "cpu", device="cpu")
    here = decipher.run(**common, out=tmp_path / device, device=device)
    assert cpu["device"] == "cpu" and here["device"].startswith(device)
    assert np.allclose(here["log_likelihoods"], cpu["log_likelihoods"], rtol=1e-9)
    assert (tmp_path / device / "train.segments").read_text() == (tmp_path / "cpu" / "train.segments").read_text()


def test_decipher_names_a_device_it_cannot_use(toy, tmp_path, capsys):
    args = ["--features", str(toy["train"]), "--text", str(toy["text"]), "--phones", str(toy["phones"]),
            "--out", str(tmp_path / "out"), "--no-progress"]
    assert decipher.main(args + ["--device", "tpu9"]) == 1
    assert "device 'tpu9'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert decipher.main(args + ["--device", "cuda"]) == 1
        assert "CUDA is not available" in capsys.readouterr().err


def test_decipher_reads_argmax_symbols_when_asked_for_no_clusters(toy, tmp_path):
    """Rows that already are class scores (here one-hot of a shuffled phone id, 10% of them wrong)."""
    rng = np.random.default_rng(0)
    inventory = PhoneInventory.load(toy["phones"])
    code = rng.permutation(len(inventory))
    refs = read_phone_labels(toy["train_labels"])
    with FeatureSetWriter(tmp_path / "onehot", dim=len(inventory)) as writer:
        for utt, phones in refs.items():
            ids = [inventory.index(p) for p in [inventory.silence, *phones, inventory.silence]]
            rows = np.repeat(code[ids], rng.integers(1, 3, size=len(ids)))
            noisy = np.where(rng.random(len(rows)) < 0.1, rng.integers(len(inventory), size=len(rows)), rows)
            writer.add(utt, np.eye(len(inventory), dtype=np.float32)[noisy])
    report = decipher.run(str(tmp_path / "onehot"), str(toy["text"]), str(toy["phones"]), tmp_path / "out",
                          clusters=0, restarts=2, iterations=40, labels=str(toy["train_labels"]), progress=False)
    assert report["symbols"] == "argmax" and report["clusters"] == len(inventory)
    assert report["per"] < 0.2, report


def test_decipher_cli_names_a_missing_feature_set(toy, tmp_path, capsys):
    code = decipher.main(["--features", str(tmp_path / "nowhere"), "--text", str(toy["text"]),
                          "--phones", str(toy["phones"]), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 1
    assert "nowhere" in capsys.readouterr().err


def test_units_are_the_clusters_the_decipherment_read(toy, tmp_path):
    """One-hot rows of the decipherment's own cluster ids: deciphering their argmax gives the very same labels."""
    from asr_gan.features.storage import FeatureSet
    from asr_gan.lab import units

    kwargs = dict(restarts=2, iterations=30, labels=str(toy["train_labels"]), progress=False)
    by_kmeans = decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), tmp_path / "kmeans",
                             clusters=11, **kwargs)
    summary = units.write_units(toy["train"], tmp_path / "kmeans" / "model.npz", tmp_path / "units")
    one_hot, source = FeatureSet(tmp_path / "units"), FeatureSet(toy["train"])
    assert one_hot.dim == 11 and one_hot.utt_ids == source.utt_ids and list(one_hot.lengths) == list(source.lengths)
    rows = np.asarray(one_hot.get(one_hot.utt_ids[0]))
    assert set(np.unique(rows)) == {0.0, 1.0} and (rows.sum(1) == 1).all()
    assert summary["rows"] == int(source.lengths.sum()) and 1 < summary["units_used"] <= 11

    by_argmax = decipher.run(str(tmp_path / "units"), str(toy["text"]), str(toy["phones"]), tmp_path / "argmax",
                             clusters=0, **kwargs)
    assert by_argmax["per"] == by_kmeans["per"]
    assert (tmp_path / "argmax" / "train.segments").read_text() == (tmp_path / "kmeans" / "train.segments").read_text()

    # A decipherment of argmax symbols has no centroids to assign with; rows of another size do not fit them.
    assert units.main(["--decipher-model", str(tmp_path / "argmax" / "model.npz"), "--features", str(toy["train"]),
                       "--out", str(tmp_path / "none")]) == 1
    with pytest.raises(ValueError, match=r"11-dim rows, but the centroids .* are 16-dim"):
        units.write_units(tmp_path / "units", tmp_path / "kmeans" / "model.npz", tmp_path / "again")


def test_merged_phones_merge_runs_before_dropping_silence_like_the_gan_output():
    inventory = PhoneInventory(["aa", "b", "<SIL>"])
    ids = np.array(inventory.encode(["<SIL>", "aa", "aa", "b", "<SIL>", "<SIL>", "b", "b", "aa", "<SIL>"]))
    assert decipher.merged_phones(ids, inventory) == ["aa", "b", "b", "aa"]


def test_per_speaker_decipherment_solves_voices_that_one_decipherment_of_all_cannot(tmp_path):
    """Two voices with unrelated phone vectors: each phone has two acoustic modes. Deciphered together the
    clusters mix both voices and EM's frequency start fails; each voice alone is the one-voice toy again."""
    task = make_toy_task(tmp_path / "toy", num_audio=1500, num_text=3000, voices=2)
    args = (str(task["train"]), str(task["text"]), str(task["phones"]))
    together = decipher.run(*args, tmp_path / "together", clusters=32, restarts=4, iterations=50,
                            labels=str(task["train_labels"]), progress=False)
    apart = decipher.run(*args, tmp_path / "apart", clusters=16, restarts=4, iterations=50,
                         labels=str(task["train_labels"]), progress=False, speakers=str(task["train_speakers"]))
    assert together["per"] > 0.6 and apart["per"] < 0.05, (together["per"], apart["per"])
    assert [(g["speaker"], g["utterances"]) for g in apart["speakers"]] == [("voice0", 750), ("voice1", 750)]
    assert sorted(p.name for p in (tmp_path / "apart").glob("*.npz")) == ["model_voice0.npz", "model_voice1.npz"]
    assert len(read_phone_labels(tmp_path / "apart" / "train.segments")) == 1500


def test_decipher_names_a_speaker_map_that_misses_utterances(toy, tmp_path, capsys):
    speakers = tmp_path / "utt2spk"
    speakers.write_text("train0000 a\ntrain0001 b\n")
    code = decipher.main(["--features", str(toy["train"]), "--text", str(toy["text"]), "--phones", str(toy["phones"]),
                          "--out", str(tmp_path / "out"), "--speakers", str(speakers), "--no-progress"])
    assert code == 1
    assert "utt2spk: no speaker for 298 utterances, e.g. train0002" in capsys.readouterr().err


def test_decipher_reads_speakers_from_a_manifest_as_from_utt2spk(tmp_path):
    from asr_gan.manifest import Utterance, write_manifest

    utt_ids = ["u1", "u2", "u3", "u4"]
    speaker = {"u1": "kal", "u2": "slt", "u3": "kal", "u4": "awb"}
    (tmp_path / "utt2spk").write_text("".join(f"{u} {speaker[u]}\n" for u in utt_ids))
    write_manifest(tmp_path / "train.jsonl", [Utterance(u, f"{u}.wav", 16000, 16000, speaker[u]) for u in utt_ids])
    groups = decipher.read_speakers(tmp_path / "train.jsonl", utt_ids)
    assert groups == decipher.read_speakers(tmp_path / "utt2spk", utt_ids) == {"kal": [0, 2], "slt": [1], "awb": [3]}
    with pytest.raises(ValueError, match="train.jsonl: no speaker for 1 utterances, e.g. u5"):
        decipher.read_speakers(tmp_path / "train.jsonl", utt_ids + ["u5"])
    with pytest.raises(FileNotFoundError, match="dev.jsonl: speaker map"):
        decipher.read_speakers(tmp_path / "dev.jsonl", utt_ids)


@pytest.mark.parametrize("context_share", [0.0, 0.3])
def test_start_labels_tell_a_search_failure_from_a_truth_the_model_does_not_prefer(tmp_path, context_share):
    """Started at the true rows, EM keeps them on the plain toy; once a phone's vector depends on its neighbours
    (coarticulation) the phone HMM moves off them to a reading it finds more likely."""
    toy = make_toy_task(tmp_path / "toy", noise=0.3, context_share=context_share)
    report = decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), tmp_path / "out", clusters=40,
                          iterations=60, labels=str(toy["train_labels"]), progress=False,
                          start_labels=str(toy["train_segments"]))
    assert report["restarts"] == 1 and report["start_labels"] == str(toy["train_segments"])
    assert report["purity"] > 0.95 and report["per_lookup"] < 0.05 and report["per_at_start"] < 0.05, report
    assert report["log_likelihoods"][0] >= report["start_log_likelihoods"][0]  # EM never loses likelihood
    if context_share == 0.0:
        assert report["per"] < 0.05, report
    else:
        assert report["per"] > report["per_at_start"] + 0.2, report


def test_reassigned_clusters_keep_their_rows_and_give_them_to_one_drawn_phone():
    counts = np.array([[5.0, 0.0, 1.0, 2.0], [1.0, 4.0, 0.0, 0.0], [0.0, 1.0, 3.0, 0.0]])
    pairs = np.random.default_rng(1).random((3, 4, 4))
    shares = np.array([0.0, 0.0, 1.0])  # every moved cluster goes to phone 2
    same, untouched = label_start.reassign_clusters(counts, 0.0, shares, np.random.default_rng(0))
    assert np.array_equal(same, counts) and (untouched == -1).all()
    moved, targets = label_start.reassign_clusters(counts, 1.0, shares, np.random.default_rng(0))
    assert (targets == 2).all() and np.array_equal(moved[2], counts.sum(0)) and not moved[:2].any()
    moved_pairs, _ = label_start.reassign_clusters(pairs, 1.0, shares, np.random.default_rng(0))
    assert np.allclose(moved_pairs[2], pairs.sum(0)) and not moved_pairs[:2].any()  # next-phone counts kept


@pytest.mark.parametrize("context", ["none", "next"])
def test_a_noisy_truth_start_is_as_far_from_the_labels_as_asked(toy, tmp_path, context):
    """--start-noise hands clusters to wrong phones before EM: the start reads worse, the report says which share
    of the rows kept their phone, and the labels' own purity and lookup are what they were."""
    common = dict(features=str(toy["train"]), text=str(toy["text"]), phones=str(toy["phones"]), clusters=40,
                  iterations=2, labels=str(toy["train_labels"]), progress=False,
                  start_labels=str(toy["train_segments"]), context=context)
    clean = decipher.run(**common, out=tmp_path / "clean")
    noisy = decipher.run(**common, out=tmp_path / "noisy", start_noise=0.6)
    assert "start_kept" not in clean and "start_noise" not in clean
    assert noisy["start_noise"] == 0.6 and 0.2 < noisy["start_kept"] < 0.7, noisy
    assert noisy["purity"] == clean["purity"] and noisy["per_lookup"] == clean["per_lookup"]
    assert noisy["per_at_start"] > clean["per_at_start"] + 0.2, (noisy, clean)


def test_decipher_refuses_start_noise_without_start_labels_or_outside_zero_to_one(toy, tmp_path, capsys):
    args = ["--features", str(toy["train"]), "--text", str(toy["text"]), "--phones", str(toy["phones"]),
            "--out", str(tmp_path / "out"), "--no-progress"]
    assert decipher.main(args + ["--start-noise", "0.5"]) == 1
    assert "give start_labels" in capsys.readouterr().err
    assert decipher.main(args + ["--start-labels", str(toy["train_segments"]), "--start-noise", "1.5"]) == 1
    assert "start_noise 1.5" in capsys.readouterr().err


def test_decipher_cli_names_start_labels_that_do_not_fit_the_rows(toy, tmp_path, capsys):
    bad = tmp_path / "short.segments"
    lines = (toy["train_segments"]).read_text().splitlines()
    bad.write_text("\n".join(line.rsplit(" ", 1)[0] for line in lines) + "\n")  # one label short everywhere
    code = decipher.main(["--features", str(toy["train"]), "--text", str(toy["text"]), "--phones", str(toy["phones"]),
                          "--out", str(tmp_path / "out"), "--start-labels", str(bad), "--no-progress"])
    assert code == 1
    assert "short.segments" in capsys.readouterr().err


def test_the_next_phone_context_keeps_a_coarticulated_truth_and_prefers_it(tmp_path):
    """The toy whose phone vectors depend on their neighbours, where the plain HMM leaves the truth (above: from
    0.07% to 31% PER): with emissions that depend on the next phone too, EM started at the true rows stays near
    them, and ends more likely than where the label-free start of the same model ends."""
    toy = make_toy_task(tmp_path / "toy", noise=0.3, context_share=0.3)
    common = dict(features=str(toy["train"]), text=str(toy["text"]), phones=str(toy["phones"]), clusters=40,
                  iterations=30, labels=str(toy["train_labels"]), progress=False, context="next")
    truth = decipher.run(**common, out=tmp_path / "truth", start_labels=str(toy["train_segments"]))
    search = decipher.run(**common, out=tmp_path / "search", restarts=1)
    assert truth["context"] == "next" and truth["per_at_start"] < 0.01, truth
    assert truth["per"] < 0.2, truth
    assert truth["log_likelihoods"][0] > search["log_likelihoods"][0], (truth, search)
    model = np.load(tmp_path / "truth" / "model.npz")
    assert str(model["context"]) == "next" and model["emissions"].shape == (11, 12, 40)


def test_decipher_refuses_an_unknown_context_or_init(toy, tmp_path):
    with pytest.raises(ValueError, match="context"):
        decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), tmp_path / "out", context="left")
    with pytest.raises(ValueError, match="init"):
        decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), tmp_path / "out", init="random")


def test_lookup_init_gives_every_cluster_one_phone_drawn_by_the_text_frequencies():
    rng = np.random.default_rng(0)
    emissions = phone_hmm.lookup_init(np.array([700.0, 200.0, 100.0]), 2000, rng)
    assert torch.allclose(emissions.sum(1), torch.ones(3, dtype=torch.float64))
    owner = emissions.argmax(0).numpy()  # the phone that emits each cluster most
    top2 = emissions.topk(2, dim=0).values
    assert (top2[0] > 10 * top2[1]).all()  # one phone per cluster
    share = np.bincount(owner, minlength=3) / 2000
    assert np.allclose(share, [0.7, 0.2, 0.1], atol=0.04), share


def test_screening_runs_every_restart_briefly_and_only_the_most_likely_on(toy, monkeypatch):
    """4 restarts x 2 screening iterations, then the 1 most likely for the other 4 of its 6: 12 E-steps."""
    steps = []
    original = phone_hmm.expected_counts

    def counting(hmm, obs, mask):
        steps.append(1)
        return original(hmm, obs, mask)

    monkeypatch.setattr(phone_hmm, "expected_counts", counting)
    rng = np.random.default_rng(0)
    sequences = [rng.integers(6, size=rng.integers(3, 9)) for _ in range(20)]  # one chunk
    text = [rng.integers(3, size=rng.integers(3, 9)) for _ in range(20)]
    result = phone_hmm.fit(sequences, 6, text, 3, restarts=4, iterations=6, init="lookup", screen=2, keep=1,
                           progress=False)
    assert len(steps) == 4 * 2 + 1 * 4
    assert len(result.log_likelihoods) == 4 and result.selected == int(np.argmax(result.log_likelihoods))
    with pytest.raises(ValueError, match="init"):
        phone_hmm.fit(sequences, 6, text, 3, init="random", progress=False)


def test_stay_from_lengths_gives_the_geometric_self_loop_of_the_row_to_phone_ratio():
    rows = [np.zeros(6), np.zeros(10)]  # 8 rows per utterance
    sentences = [np.zeros(4), np.zeros(4)]  # 4 phones per sentence: 2 rows per phone
    assert decipher.stay_from_lengths(rows, sentences) == pytest.approx(0.5)
    assert decipher.stay_from_lengths([np.zeros(3)], [np.zeros(4)]) == 0.02  # fewer rows than phones


@pytest.mark.parametrize("context", [False, True])
def test_a_fixed_stay_is_kept_through_em_while_a_learnt_one_moves(context):
    rng = np.random.default_rng(0)
    sequences = [np.repeat(rng.integers(6, size=rng.integers(3, 6)), 2) for _ in range(20)]  # every symbol twice
    text = [rng.integers(3, size=rng.integers(3, 6)) for _ in range(20)]
    fixed = phone_hmm.fit(sequences, 6, text, 3, restarts=1, iterations=3, progress=False, context=context, stay=0.3)
    learnt = phone_hmm.fit(sequences, 6, text, 3, restarts=1, iterations=3, progress=False, context=context)
    assert torch.allclose(fixed.hmm.stay, torch.full((3,), 0.3, dtype=torch.float64))
    assert not torch.allclose(learnt.hmm.stay, torch.full((3,), 0.5, dtype=torch.float64))


def test_decipher_fixes_the_stay_from_the_lengths_and_refuses_a_bad_one(toy, tmp_path, capsys):
    args = ["--features", str(toy["train"]), "--text", str(toy["text"]), "--phones", str(toy["phones"]),
            "--clusters", "11", "--restarts", "1", "--iterations", "2", "--no-progress"]
    assert decipher.main([*args, "--out", str(tmp_path / "text"), "--stay", "text"]) == 0
    report = json.loads((tmp_path / "text" / "report.json").read_text())
    assert report["stay"] == "text" and 0.02 <= report["stay_mean"] < 0.98
    assert decipher.main([*args, "--out", str(tmp_path / "bad"), "--stay", "1.5"]) == 1
    assert "stay '1.5'" in capsys.readouterr().err


def test_a_model_refined_onto_its_own_clusters_starts_where_it_ended(toy, tmp_path):
    decipher.run(str(toy["train"]), str(toy["text"]), str(toy["phones"]), tmp_path / "coarse", clusters=11,
                 restarts=2, iterations=20, progress=False)
    with np.load(tmp_path / "coarse" / "model.npz") as stored:
        model = {k: stored[k] for k in stored.files}
    from asr_gan.train.data import load_feature_sequences

    sequences, _ = load_feature_sequences(str(toy["train"]))
    same = decipher.cluster_sequences(sequences, model["centroids"], model["mean"], model["std"])
    start = decipher.refine_start(model, sequences, same, 11)
    assert torch.allclose(start, torch.from_numpy(model["emissions"]), atol=1e-4)


@pytest.mark.parametrize("context", ["none", "next"])
def test_a_coarse_decipherment_starts_one_run_with_more_clusters(toy, tmp_path, context):
    """The coarse model here starts at the true rows (a search is not what is tested); the finer run reads no
    label and keeps its reading."""
    common = dict(features=str(toy["train"]), text=str(toy["text"]), phones=str(toy["phones"]),
                  labels=str(toy["train_labels"]), progress=False, context=context, iterations=30)
    coarse = decipher.run(**common, out=tmp_path / "coarse", clusters=11, start_labels=str(toy["train_segments"]))
    fine = decipher.run(**common, out=tmp_path / "fine", clusters=30, init_model=str(tmp_path / "coarse" / "model.npz"))
    assert fine["init"] == "model" and fine["restarts"] == 1 and len(fine["log_likelihoods"]) == 1
    assert "start_labels" not in fine and fine["init_model"].endswith("model.npz")
    assert coarse["per"] < 0.15 and fine["per"] < coarse["per"] + 0.05, (coarse, fine)


def test_decipher_refuses_an_init_model_of_another_context_or_a_missing_one(toy, tmp_path):
    args = dict(features=str(toy["train"]), text=str(toy["text"]), phones=str(toy["phones"]), progress=False,
                iterations=2, restarts=1)
    decipher.run(**args, out=tmp_path / "plain", clusters=11)
    with pytest.raises(ValueError, match="context 'none'"):
        decipher.run(**args, out=tmp_path / "pair", clusters=20, context="next",
                     init_model=str(tmp_path / "plain" / "model.npz"))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        decipher.run(**args, out=tmp_path / "x", init_model=str(tmp_path / "missing.npz"))
