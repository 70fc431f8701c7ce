"""Builders for tiny, real, randomly initialised text-to-audio models, saved as a user's would be.

Each writes a directory with ``save_pretrained`` that gencli loads through
``--model DIR``: a VITS (the MMS-TTS architecture) with a character
vocabulary and no phonemizer, a MusicGen with a tiny T5 tokenizer, and a Bark
with one voice preset. Each builds in about a second and generates in well
under one.
"""

from __future__ import annotations

import json
from pathlib import Path

VITS_SAMPLE_RATE = 8000  # not 16000, so a test can tell the model's rate from a default
MUSICGEN_SAMPLE_RATE = 8000
MUSICGEN_FRAME_RATE = 25  # 8000 Hz / hop 320 (8 * 5 * 4 * 2)
MUSICGEN_CODEBOOKS = 4

VITS_CHARACTERS = ["_", " "] + list("abcdefghijklmnopqrstuvwxyz") + list("'.,!?-")


def build_tiny_vits(directory: Path, *, seed: int = 0) -> Path:
    """A 1-layer VITS whose tokenizer spells lower-cased characters (phonemizer off), as MMS-TTS does."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {char: index for index, char in enumerate(VITS_CHARACTERS)}
    vocab_file = directory / "vocab.json"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = VitsTokenizer(
        vocab_file=str(vocab_file),
        pad_token="_",
        unk_token=None,
        add_blank=True,
        normalize=True,
        phonemize=False,
        is_uroman=False,
        language="eng",
    )

    torch.manual_seed(seed)
    config = VitsConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=16,
        flow_size=8,
        spectrogram_bins=9,
        upsample_initial_channel=16,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1]],
        duration_predictor_filter_channels=8,
        duration_predictor_num_flows=1,
        prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1,
        depth_separable_num_layers=1,
        sampling_rate=VITS_SAMPLE_RATE,
        pad_token_id=0,
    )
    VitsModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_tiny_musicgen(directory: Path, *, seed: int = 0) -> Path:
    """A 1-layer MusicGen: a tiny T5 text encoder and tokenizer, a tiny EnCodec (4 codebooks of 64)."""
    import torch
    from transformers import (
        EncodecConfig,
        GenerationConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
        T5Tokenizer,
    )

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(char, -1.0) for char in "▁abcdefghijklmnopqrstuvwxyz.,!?'-"]
    pieces += [("▁" + word, -0.5) for word in ("the", "a", "calm", "piano", "drum", "music", "beat", "lo-fi")]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)

    torch.manual_seed(seed)
    text = T5Config(
        vocab_size=len(pieces),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    # 4 quantizers at 25 Hz need 4 * 25 * 10 bits per second: target_bandwidths 1.0 (kbps)
    codec = EncodecConfig(
        hidden_size=16,
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 2],
        codebook_size=64,
        codebook_dim=16,
        num_lstm_layers=1,
        sampling_rate=MUSICGEN_SAMPLE_RATE,
        target_bandwidths=[1.0],
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=64,
        max_position_embeddings=256,
        num_hidden_layers=1,
        ffn_dim=32,
        num_attention_heads=2,
        hidden_size=16,
        num_codebooks=MUSICGEN_CODEBOOKS,
        pad_token_id=64,
        bos_token_id=64,
    )
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=codec.to_dict(), decoder=decoder.to_dict())
    model = MusicgenForConditionalGeneration(config)
    randomize_codebooks(model.audio_encoder)
    # As facebook/musicgen-small ships it: sampling with classifier-free guidance.
    model.generation_config = GenerationConfig(
        decoder_start_token_id=64, pad_token_id=64, do_sample=True, guidance_scale=3.0, max_length=100
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


BARK_SAMPLE_RATE = 24000
BARK_VOICE = "v2/en_speaker_0"
_BARK_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz.,!?'")
_BARK_WORDS += ["hello", "there", "how", "are", "you", "today", "fine"]


def build_tiny_bark(directory: Path, *, seed: int = 0) -> Path:
    """A 1-layer Bark (semantic, coarse and fine models, EnCodec at 24 kHz), a BERT tokenizer and one voice.

    Bark's token layout is fixed in its generation config (text ids are offset by
    10048, its special tokens sit near 129600), so the vocabularies keep their real
    sizes; the models are tiny. The semantic model stops after 12 tokens (about
    0.25 s of audio). In transformers 5.24 ``BarkGenerationConfig`` cannot be saved
    and loaded back, so generation_config.json is written by hand; the voice
    ``v2/en_speaker_0`` is also saved as ``voice.npz`` for ``--voice FILE``.
    """
    import numpy as np
    import torch
    from transformers import (
        BarkCoarseConfig,
        BarkConfig,
        BarkFineConfig,
        BarkModel,
        BarkProcessor,
        BarkSemanticConfig,
        BertTokenizer,
        EncodecConfig,
    )
    from transformers.models.bark.generation_configuration_bark import (
        BarkCoarseGenerationConfig,
        BarkFineGenerationConfig,
        BarkSemanticGenerationConfig,
    )

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab={word: index for index, word in enumerate(_BARK_WORDS)}, do_lower_case=True)

    torch.manual_seed(seed)
    common = dict(block_size=1024, num_layers=1, num_heads=2, hidden_size=8, dropout=0.0, bias=False)
    codec = EncodecConfig(
        hidden_size=16,
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 2],
        codebook_size=1024,
        codebook_dim=16,
        num_lstm_layers=1,
        sampling_rate=BARK_SAMPLE_RATE,
        target_bandwidths=[6.0],
    )  # 8 codebooks at 75 Hz
    config = BarkConfig(
        semantic_config=BarkSemanticConfig(input_vocab_size=129600, output_vocab_size=10048, **common).to_dict(),
        coarse_acoustics_config=BarkCoarseConfig(input_vocab_size=12096, output_vocab_size=12096, **common).to_dict(),
        fine_acoustics_config=BarkFineConfig(
            input_vocab_size=1056, output_vocab_size=1056, n_codes_total=8, n_codes_given=1, **common
        ).to_dict(),
        codec_config=codec.to_dict(),
    )
    model = BarkModel(config)
    randomize_codebooks(model.codec_model)
    model.save_pretrained(directory)
    generation = {
        "semantic_config": BarkSemanticGenerationConfig(max_new_tokens=12, do_sample=True).to_dict(),
        "coarse_acoustics_config": BarkCoarseGenerationConfig(do_sample=True).to_dict(),
        "fine_acoustics_config": BarkFineGenerationConfig().to_dict(),
        "sample_rate": BARK_SAMPLE_RATE,
        "codebook_size": 1024,
    }
    (directory / "generation_config.json").write_text(json.dumps(generation, indent=1), encoding="utf-8")
    BarkProcessor(tokenizer=tokenizer).save_pretrained(directory)

    # One voice preset, laid out as suno/bark-small lays out its speaker_embeddings.
    rng = np.random.default_rng(seed)
    preset = {
        "semantic_prompt": rng.integers(0, 10000, 20),
        "coarse_prompt": rng.integers(0, 1024, (2, 30)),
        "fine_prompt": rng.integers(0, 1024, (8, 30)),
    }
    (directory / "speaker_embeddings" / "v2").mkdir(parents=True, exist_ok=True)
    entry = {}
    for key, value in preset.items():
        relative = f"speaker_embeddings/{BARK_VOICE}_{key}.npy"
        np.save(directory / relative, value)
        entry[key] = relative
    (directory / "speaker_embeddings_path.json").write_text(
        json.dumps({"repo_or_path": str(directory), BARK_VOICE: entry}), encoding="utf-8"
    )
    np.savez(directory / "voice.npz", **preset)
    return directory


def randomize_codebooks(codec) -> None:
    """EnCodec starts with all-zero codebooks, which decode every token to the same sound: fill them."""
    import torch

    with torch.no_grad():
        for layer in codec.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
