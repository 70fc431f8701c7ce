"""Builders for tiny, random diffusers pipelines, saved as a user's would be.

Sizes follow diffusers' own test suite. Each builder writes a directory with
``save_pretrained`` that gencli loads through ``--model DIR``; each takes well
under a second on a CPU. The CLIP tokenizer is made here from a small vocab
(the 256 byte characters, alone and ending a word) and a few merges.
"""

from __future__ import annotations

from pathlib import Path

_MERGE_PAIRS = [
    "t h",
    "th e</w>",
    "a n",
    "an d</w>",
    "o n",
    "o r",
    "e r",
    "i n",
    "in g</w>",
    "a t",
    "s t",
    "l i",
    "li g",
    "lig h",
    "ligh t",
    "h o",
    "ho u",
    "hou s",
    "hous e</w>",
    "d u",
    "du s",
    "dus k</w>",
    "a </w>",
    "s e",
    "se a</w>",
    "c a",
    "ca t</w>",
    "o f</w>",
    "i s</w>",
    "r e",
    "r e</w>",
    "e n",
]


def _byte_characters() -> list[str]:
    """GPT-2's printable stand-in for each byte, as byte-level BPE vocabularies use."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def build_clip_tokenizer(directory: Path | None = None, model_max_length: int = 77):
    """A real CLIP tokenizer with a ~560-token vocabulary (fits a 1000-token text model)."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for character in _byte_characters():
        vocab[character] = len(vocab)
    for character in _byte_characters():
        vocab[character + "</w>"] = len(vocab)
    merges = []
    for pair in _MERGE_PAIRS:
        left, right = pair.split(" ")
        if left in vocab and right in vocab and left + right not in vocab:
            merges.append((left, right))
            vocab[left + right] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    if directory is not None:
        tokenizer.save_pretrained(directory)
    return tokenizer


def _clip_config(tokenizer, **overrides):
    from transformers import CLIPTextConfig

    settings = dict(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=3,
        vocab_size=1000,
        max_position_embeddings=77,
    )
    settings.update(overrides)
    return CLIPTextConfig(**settings)


def build_tiny_sd(directory: Path, *, seed: int = 0) -> Path:
    """A Stable Diffusion 1.x-shaped pipeline: 64x64 by default, about 0.5 MB on disk."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    tokenizer = build_clip_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_config(tokenizer, num_attention_heads=8, intermediate_size=64))
    pipe = StableDiffusionPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    directory.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(directory)
    return directory


def build_tiny_sdxl(directory: Path, *, seed: int = 0) -> Path:
    """A Stable Diffusion XL-shaped pipeline (two text encoders): 64x64 by default."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(2, 4),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
        cross_attention_dim=64,
        norm_num_groups=1,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear", timestep_spacing="leading"
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
        sample_size=64,
    )
    tokenizer = build_clip_tokenizer()
    config = _clip_config(tokenizer, num_hidden_layers=5, hidden_act="gelu", projection_dim=32)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(config)
    text_encoder_2 = CLIPTextModelWithProjection(config)
    pipe = StableDiffusionXLPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer,
        force_zeros_for_empty_prompt=True,
    )
    directory.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(directory)
    return directory


def _tiny_upscaler_parts(seed: int, vae_blocks: int, scaling_factor: float = 0.18215):
    """The VAE, text encoder and tokenizer of the tiny upscalers (``vae_blocks``: 3 for x4, 4 for the latent x2)."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=[8, 8, 16, 16][:vae_blocks],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * vae_blocks,
        up_block_types=["UpDecoderBlock2D"] * vae_blocks,
        latent_channels=4,
        norm_num_groups=4,
        scaling_factor=scaling_factor,
    )
    tokenizer = build_clip_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_config(tokenizer, num_hidden_layers=2, hidden_act="gelu"))
    return vae, text_encoder, tokenizer


def build_tiny_x4_upscaler(directory: Path, *, seed: int = 0) -> Path:
    """A StableDiffusionUpscalePipeline (the x4 upscaler's shape): its VAE draws 4 pixels a latent side."""
    import torch
    from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline, UNet2DConditionModel

    vae, text_encoder, tokenizer = _tiny_upscaler_parts(seed, 3, scaling_factor=0.08333)  # the x4 upscaler's
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=32,
        in_channels=7,  # the noisy latents and the low-resolution image
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        use_linear_projection=True,
        num_class_embeds=100,
        norm_num_groups=4,
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=350,
    )
    directory.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(directory)
    return directory


def build_tiny_x2_latent_upscaler(directory: Path, *, seed: int = 0) -> Path:
    """A StableDiffusionLatentUpscalePipeline (the x2 latent upscaler's shape, K-diffusion UNet blocks)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionLatentUpscalePipeline, UNet2DConditionModel

    vae, text_encoder, tokenizer = _tiny_upscaler_parts(seed, 3)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        act_fn="gelu",
        attention_head_dim=8,
        norm_num_groups=None,
        block_out_channels=[32, 32, 64, 64],  # K blocks: groups of attention_head_dim channels
        time_cond_proj_dim=160,
        conv_in_kernel=1,
        conv_out_kernel=1,
        cross_attention_dim=32,
        down_block_types=("KDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D"),
        in_channels=8,
        mid_block_type=None,
        only_cross_attention=False,
        out_channels=5,
        resnet_time_scale_shift="scale_shift",
        time_embedding_type="fourier",
        timestep_post_act="gelu",
        up_block_types=("KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KUpBlock2D"),
    )
    pipe = StableDiffusionLatentUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(prediction_type="sample"),
    )
    directory.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(directory)
    return directory
