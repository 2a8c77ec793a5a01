"""FeatureSet round trips, interrupted writes, and the fairseq wav2vec-U layout both ways."""

import numpy as np
import pytest

from asr_gan.features.fairseq_io import export_fairseq, import_fairseq, read_fairseq_tsv
from asr_gan.features.storage import FeatureSet, FeatureSetError, FeatureSetWriter
from asr_gan.manifest import Utterance


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(5, 3)), "b": np.zeros((0, 3)), "c": rng.normal(size=(7, 3))}


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-7), ("float16", 2e-3)])
def test_feature_set_round_trip_is_memory_mapped(tmp_path, dtype, tol):
    arrays = _arrays()
    with FeatureSetWriter(tmp_path / "fs", dim=3, dtype=dtype, meta={"frontend": {"kind": "mfcc"}}) as writer:
        for utt_id, x in arrays.items():
            writer.add(utt_id, x)
    fs = FeatureSet(tmp_path / "fs")
    assert fs.utt_ids == ["a", "b", "c"] and len(fs) == 3 and fs.dim == 3
    assert fs.lengths.tolist() == [5, 0, 7] and fs.offsets.tolist() == [0, 5, 5]
    assert isinstance(fs.features, np.memmap) and fs.features.shape == (12, 3) and fs.dtype == np.dtype(dtype)
    for utt_id, x in arrays.items():
        np.testing.assert_allclose(fs.get(utt_id), x, atol=tol * 4, rtol=tol)
    assert fs.meta["frontend"] == {"kind": "mfcc"} and fs.meta["num_frames"] == 12
    # The file is an ordinary .npy that numpy reads without us.
    np.testing.assert_array_equal(np.load(tmp_path / "fs" / "features.npy"), fs.features)


def test_interrupted_write_is_not_a_feature_set(tmp_path):
    with pytest.raises(RuntimeError):
        with FeatureSetWriter(tmp_path / "fs", dim=2) as writer:
            writer.add("a", np.ones((3, 2)))
            raise RuntimeError("killed")
    with pytest.raises(FeatureSetError, match="interrupted"):
        FeatureSet(tmp_path / "fs")


def test_writer_rejects_wrong_dimension_naming_the_utterance(tmp_path):
    writer = FeatureSetWriter(tmp_path / "fs", dim=2)
    with pytest.raises(ValueError, match="utterance x has shape"):
        writer.add("x", np.ones((3, 4)))


def test_fairseq_export_import_round_trip(tmp_path):
    arrays = _arrays(1)
    writer = FeatureSetWriter(tmp_path / "fs", dim=3)
    for utt_id, x in arrays.items():
        writer.add(utt_id, x)
    fs = writer.close()
    manifest = [
        Utterance(utt_id=u, audio=str(tmp_path / "wav" / f"{u}.wav"), num_samples=1000 * (i + 1), sample_rate=16000,
                  speaker="s", phones="AA B" if u != "b" else "<SIL>", words="hello")
        for i, u in enumerate(["c", "a", "b", "z"])  # other order, plus one utterance without features
    ]
    count = export_fairseq(fs, manifest, tmp_path / "fairseq", "train")
    assert count == 3
    out = tmp_path / "fairseq"
    assert (out / "train.lengths").read_text().split() == ["5", "0", "7"]
    assert (out / "train.phn").read_text().splitlines() == ["AA B", "<SIL>", "AA B"]
    assert (out / "train.wrd").read_text().splitlines() == ["hello"] * 3
    assert (out / "dict.phn.txt").read_text().splitlines() == ["<SIL> 1", "AA 2", "B 2"]
    tsv = read_fairseq_tsv(out / "train.tsv")
    assert [n for _, n in tsv] == [2000, 3000, 1000]
    assert np.load(out / "train.npy").dtype == np.float32

    back = import_fairseq(out, "train")
    assert back.utt_ids == ["a", "b", "c"]
    for utt_id, x in arrays.items():
        np.testing.assert_allclose(back.get(utt_id), x, rtol=1e-6)


def test_fairseq_import_checks_lengths_against_rows(tmp_path):
    np.save(tmp_path / "valid.npy", np.zeros((4, 2), np.float32))
    (tmp_path / "valid.lengths").write_text("2\n3\n")
    with pytest.raises(ValueError, match="lengths sum to 5"):
        import_fairseq(tmp_path, "valid")
