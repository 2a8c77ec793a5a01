"""SSL loaders reproduce the layer outputs of the model objects they were saved from (tiny random models)."""

import re

import numpy as np
import pytest
import torch

from asr_gan.features.ssl import SslFrontend, load_fairseq

torch.set_num_threads(1)

transformers = pytest.importorskip("transformers")

TINY = dict(
    hidden_size=16,
    num_hidden_layers=3,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(8, 8),
    conv_kernel=(10, 3),
    conv_stride=(5, 2),
    num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=2,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    layerdrop=0.0,
)


def _wave(seconds=0.3, seed=0):
    return np.random.default_rng(seed).standard_normal(int(16000 * seconds)).astype(np.float32) * 0.1


@pytest.mark.parametrize(
    "config_class,model_class,extra",
    [
        ("Wav2Vec2Config", "Wav2Vec2Model", {"feat_extract_norm": "group"}),
        ("Wav2Vec2Config", "Wav2Vec2Model", {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),
        ("HubertConfig", "HubertModel", {}),
        ("WavLMConfig", "WavLMModel", {"num_buckets": 8, "max_bucket_distance": 20}),
    ],
)
def test_huggingface_loader_matches_hidden_states(tmp_path, config_class, model_class, extra):
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(**TINY, **extra)
    original = getattr(transformers, model_class)(config).eval()
    original.save_pretrained(tmp_path)
    wave = _wave()
    # Without a preprocessor_config.json the loader follows the released models: layer-norm conv encoders
    # (LARGE lv60) take zero-mean unit-variance input, so the reference gets the same input.
    normalize = extra.get("feat_extract_norm") == "layer"
    x = torch.from_numpy(wave)
    x = torch.nn.functional.layer_norm(x, x.shape) if normalize else x
    with torch.no_grad():
        hidden = original(x[None], output_hidden_states=True).hidden_states
    for layer in range(2):  # not the last block: with stable layer norm HF applies the final norm to it
        frontend = SslFrontend(tmp_path, layer=layer, device="cpu")
        ours = frontend(wave)
        expected = hidden[layer + 1][0].numpy()
        assert ours.shape == expected.shape
        np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=1e-4)
    assert frontend.loaded.normalize_waveform == normalize


# Inverse of torchaudio's fairseq key mapping (torchaudio name -> fairseq name), to write fairseq-layout checkpoints.
_TO_FAIRSEQ = [
    (r"feature_extractor\.conv_layers\.0\.layer_norm\.(\w+)", r"feature_extractor.conv_layers.0.2.\1", "group_norm"),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(\w+)", r"feature_extractor.conv_layers.\1.2.1.\2", None),
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(\w+)", r"feature_extractor.conv_layers.\1.0.\2", None),
    (r"encoder\.feature_projection\.projection\.(\w+)", r"post_extract_proj.\1", None),
    (r"encoder\.feature_projection\.layer_norm\.(\w+)", r"layer_norm.\1", None),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0",
     "encoder.pos_conv.0.weight_g", None),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1",
     "encoder.pos_conv.0.weight_v", None),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias", None),
    (r"encoder\.transformer\.layer_norm\.(\w+)", r"encoder.layer_norm.\1", None),
    (r"encoder\.transformer\.layers\.(\d+)\.attention\.(\w+_proj)\.(\w+)", r"encoder.layers.\1.self_attn.\2.\3", None),
    (r"encoder\.transformer\.layers\.(\d+)\.layer_norm\.(\w+)", r"encoder.layers.\1.self_attn_layer_norm.\2", None),
    (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(\w+)",
     r"encoder.layers.\1.fc1.\2", None),
    (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.output_dense\.(\w+)", r"encoder.layers.\1.fc2.\2", None),
    (r"encoder\.transformer\.layers\.(\d+)\.final_layer_norm\.(\w+)", r"encoder.layers.\1.final_layer_norm.\2", None),
]


def _to_fairseq_state(state, extractor_mode):
    from torchaudio.models.wav2vec2.utils.import_fairseq import _map_key

    out = {}
    for key, value in state.items():
        for pattern, replacement, mode in _TO_FAIRSEQ:
            if mode is not None and mode != extractor_mode:
                continue
            if re.fullmatch(pattern, key):
                fairseq_key = re.sub(pattern, replacement, key)
                break
        else:
            raise AssertionError(f"no fairseq name for {key}")
        if "pos_conv" not in fairseq_key:  # weight_g/v are mapped by torch's weight-norm compatibility hook
            assert _map_key(fairseq_key) == key
        out[fairseq_key] = value.clone()
    return out


@pytest.mark.parametrize("extractor_mode,layer_norm_first,name", [
    ("group_norm", False, "wav2vec2"),
    ("layer_norm", True, "wav2vec2"),
    ("group_norm", False, "hubert"),
])
def test_fairseq_checkpoint_loader_matches_source_model(tmp_path, extractor_mode, layer_norm_first, name):
    from torchaudio.models import wav2vec2_model

    torch.manual_seed(1)
    conv = [(8, 10, 5), (8, 3, 2)]
    source = wav2vec2_model(
        extractor_mode=extractor_mode, extractor_conv_layer_config=conv, extractor_conv_bias=layer_norm_first,
        encoder_embed_dim=16, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=8, encoder_pos_conv_groups=2,
        encoder_num_layers=3, encoder_num_heads=2, encoder_attention_dropout=0.0, encoder_ff_interm_features=32,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=layer_norm_first,
        encoder_layer_drop=0.0, aux_num_out=None,
    ).eval()
    # Randomise the norms too, so a wrongly mapped norm cannot pass as an identity.
    with torch.no_grad():
        for key, param in source.named_parameters():
            if "norm" in key:
                param.add_(torch.randn_like(param) * 0.1)
    state = _to_fairseq_state(source.state_dict(), extractor_mode)
    if name == "hubert":
        state["label_embs_concat"] = torch.zeros(5, 4)
        state["final_proj.weight"] = torch.zeros(4, 16)
    model_cfg = {
        "_name": name,
        "extractor_mode": "layer_norm" if extractor_mode == "layer_norm" else "default",
        "conv_feature_layers": "[(8, 10, 5)] + [(8, 3, 2)] * 1",
        "conv_bias": layer_norm_first,
        "encoder_embed_dim": 16, "encoder_layers": 3, "encoder_attention_heads": 2, "encoder_ffn_embed_dim": 32,
        "conv_pos": 8, "conv_pos_groups": 2, "layer_norm_first": layer_norm_first,
    }
    path = tmp_path / "model.pt"
    torch.save({"cfg": {"model": model_cfg, "task": {"normalize": layer_norm_first}}, "model": state}, path)

    loaded = load_fairseq(path)
    assert loaded.normalize_waveform == layer_norm_first
    wave = torch.from_numpy(_wave(seed=3))[None]
    with torch.no_grad():
        expected, _ = source.extract_features(wave)
        ours, _ = loaded.model.extract_features(wave)
    for e, o in zip(expected, ours):
        torch.testing.assert_close(o, e, atol=1e-5, rtol=1e-5)
    frontend = SslFrontend(path, layer=1, device="cpu")
    x = wave[0]
    x = torch.nn.functional.layer_norm(x, x.shape) if layer_norm_first else x
    with torch.no_grad():
        reference = source.extract_features(x[None])[0][1][0].numpy()
    np.testing.assert_allclose(frontend(wave[0].numpy()), reference, atol=1e-5)


def test_fairseq_finetuned_checkpoint_reads_w2v_encoder_prefix(tmp_path):
    from torchaudio.models import wav2vec2_model

    torch.manual_seed(2)
    source = wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_layer_config=[(8, 10, 5), (8, 3, 2)], extractor_conv_bias=False,
        encoder_embed_dim=16, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=8, encoder_pos_conv_groups=2,
        encoder_num_layers=2, encoder_num_heads=2, encoder_attention_dropout=0.0, encoder_ff_interm_features=32,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0,
        aux_num_out=None,
    ).eval()
    state = {f"w2v_encoder.w2v_model.{k}": v for k, v in _to_fairseq_state(source.state_dict(), "group_norm").items()}
    state["w2v_encoder.proj.weight"] = torch.zeros(10, 16)
    inner = {"model": {"_name": "wav2vec2", "conv_feature_layers": "[(8, 10, 5), (8, 3, 2)]", "encoder_embed_dim": 16,
                       "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_embed_dim": 32, "conv_pos": 8,
                       "conv_pos_groups": 2}, "task": {"normalize": False}}
    path = tmp_path / "finetuned.pt"
    torch.save({"cfg": {"model": {"_name": "wav2vec_ctc", "w2v_args": inner}}, "model": state}, path)
    frontend = SslFrontend(path, layer=1, device="cpu")
    wave = _wave(seed=4)
    with torch.no_grad():
        reference = source.extract_features(torch.from_numpy(wave)[None])[0][1][0].numpy()
    np.testing.assert_allclose(frontend(wave), reference, atol=1e-5)


def test_ssl_layer_out_of_range_names_checkpoint(tmp_path):
    config = transformers.Wav2Vec2Config(**TINY)
    transformers.Wav2Vec2Model(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="--layer 3 out of range"):
        SslFrontend(tmp_path, layer=3, device="cpu")


def test_padded_batch_equals_one_at_a_time_for_layer_norm_encoders(tmp_path):
    torch.manual_seed(5)
    config = transformers.Wav2Vec2Config(**TINY, feat_extract_norm="layer", do_stable_layer_norm=True)
    transformers.Wav2Vec2Model(config).save_pretrained(tmp_path)
    frontend = SslFrontend(tmp_path, layer=1, device="cpu")
    waves = [_wave(0.5, 1), _wave(0.2, 2), np.zeros(15, np.float32), _wave(0.35, 3)]  # 15 < receptive field 20
    batched = frontend.batch(waves)
    assert batched[2].shape == (0, 16)
    for wave, out in zip(waves, batched):
        np.testing.assert_allclose(out, frontend(wave), atol=1e-4, rtol=1e-4)


def test_extract_cli_with_ssl_checkpoint(tmp_path):
    import soundfile

    from asr_gan.features.__main__ import main
    from asr_gan.features.storage import FeatureSet
    from asr_gan.manifest import Utterance, write_manifest

    config = transformers.HubertConfig(**TINY)
    transformers.HubertModel(config).save_pretrained(tmp_path / "hubert")
    utts = []
    for i, seconds in enumerate([0.4, 0.6]):
        path = tmp_path / f"u{i}.wav"
        soundfile.write(path, _wave(seconds, i), 16000)
        utts.append(Utterance(utt_id=f"u{i}", audio=str(path), num_samples=int(16000 * seconds), sample_rate=16000,
                              speaker="s"))
    write_manifest(tmp_path / "m.jsonl", utts)
    assert main(["extract", "--manifest", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "f"),
                 "--ssl-checkpoint", str(tmp_path / "hubert"), "--layer", "2", "--cmvn", "none",
                 "--device", "cpu", "--dtype", "float16"]) == 0
    fs = FeatureSet(tmp_path / "f")
    # The tiny conv stack has a total stride of 10 samples: 1600 frames per second.
    assert fs.dim == 16 and fs.meta["frame_rate"] == 1600.0 and fs.dtype == np.float16
    from asr_gan.audio import load_audio

    expected = SslFrontend(tmp_path / "hubert", layer=2, device="cpu")(load_audio(tmp_path / "u1.wav"))
    np.testing.assert_allclose(fs.get("u1").astype(np.float32), expected, atol=5e-3, rtol=5e-3)  # float16 storage


def test_gpu_batching_path_gives_the_unbatched_features_and_names_bad_files(tmp_path):
    import soundfile

    from asr_gan.features.extract import ExtractConfig, _results_batched
    from asr_gan.features.frontends import FrontendConfig
    from asr_gan.manifest import Utterance

    torch.manual_seed(6)
    config = transformers.Wav2Vec2Config(**TINY, feat_extract_norm="layer", do_stable_layer_norm=True)
    transformers.Wav2Vec2Model(config).save_pretrained(tmp_path / "m")
    frontend = SslFrontend(tmp_path / "m", layer=0, device="cpu")  # the same code runs on cuda
    utts = []
    for i, seconds in enumerate([0.3, 0.5, 0.2]):
        path = tmp_path / f"u{i}.wav"
        soundfile.write(path, _wave(seconds, 10 + i), 16000)
        utts.append(Utterance(f"u{i}", str(path), int(16000 * seconds), 16000, "s"))
    utts.insert(1, Utterance("missing", str(tmp_path / "missing.wav"), 16000, 16000, "s"))
    extract_config = ExtractConfig(manifest="", out="", frontend=FrontendConfig(kind="ssl"), cmvn="none",
                                   batch_seconds=0.6)  # two batches
    results = list(_results_batched(utts, extract_config, frontend))
    assert [r.utt_id for r in results] == ["u0", "missing", "u1", "u2"]
    assert results[1].frames is None and "missing.wav" in results[1].error
    from asr_gan.audio import load_audio

    for r, i in zip([results[0], results[2], results[3]], [0, 1, 2]):
        np.testing.assert_allclose(r.frames, frontend(load_audio(tmp_path / f"u{i}.wav")), atol=1e-4, rtol=1e-4)
