"""Builders for tiny, random diffusers video pipelines, saved as a user's would be.

Sizes follow diffusers' own test suite; each builder writes a directory with
``save_pretrained`` that gencli loads through ``--model DIR``, in well under a
second on a CPU. The T5 tokenizer is the one MusicGen's tiny model uses
(``tests/tiny_audio.py``): a few SentencePiece pieces, no download. LTX's VAE
has its ``decoder_*`` keys shrunk too (left out, they default to a ~1 GB decoder).
"""

from __future__ import annotations

from pathlib import Path

T5_DIM = 32


def build_t5(seed: int = 0):
    """A tiny T5 encoder (d_model 32) and its tokenizer."""
    import torch
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(char, -1.0) for char in "▁abcdefghijklmnopqrstuvwxyz.,!?'-"]
    pieces += [("▁" + word, -0.5) for word in ("the", "a", "cat", "fox", "sea", "running", "lighthouse")]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(pieces),
        d_model=T5_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=1,
        num_heads=4,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5EncoderModel(config), tokenizer


def _save(pipe, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(directory)
    return directory


def build_tiny_wan(directory: Path, *, seed: int = 0) -> Path:
    """A Wan 2.1 text-to-video pipeline: 16x16, frames 4k+1."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=T5_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    text_encoder, tokenizer = build_t5(seed)
    pipe = WanPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )
    return _save(pipe, directory)


def _ltx_parts(seed: int):
    import torch
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel

    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=T5_DIM,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    text_encoder, tokenizer = build_t5(seed)
    return dict(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def build_tiny_ltx(directory: Path, *, seed: int = 0) -> Path:
    """An LTX-Video text-to-video pipeline: 32x32, frames 8k+1."""
    from diffusers import LTXPipeline

    return _save(LTXPipeline(**_ltx_parts(seed)), directory)


def build_tiny_ltx_i2v(directory: Path, *, seed: int = 0) -> Path:
    """The same LTX-Video parts as an image-to-video pipeline."""
    from diffusers import LTXImageToVideoPipeline

    return _save(LTXImageToVideoPipeline(**_ltx_parts(seed)), directory)


def build_tiny_text_to_video_sd(directory: Path, *, seed: int = 0) -> Path:
    """A ModelScope-shaped TextToVideoSDPipeline (3D UNet, CLIP): 32x32 by default."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextModel

    from tiny_diffusers import _clip_config, build_clip_tokenizer

    torch.manual_seed(seed)
    unet = UNet3DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=4,
        attention_head_dim=4,
        norm_num_groups=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(8,),
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=32,
        norm_num_groups=2,
    )
    tokenizer = build_clip_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        _clip_config(
            tokenizer,
            hidden_size=4,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=5,
            hidden_act="gelu",
            projection_dim=512,
        )
    )
    pipe = TextToVideoSDPipeline(
        unet=unet, scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer
    )
    return _save(pipe, directory)


def build_tiny_cogvideox(directory: Path, *, seed: int = 0) -> Path:
    """A CogVideoX text-to-video pipeline: 16x16."""
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(seed)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=T5_DIM,
        num_layers=1,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,  # the pipeline's max_sequence_length, as CogVideoX ships it
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    text_encoder, tokenizer = build_t5(seed)
    pipe = CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(),
    )
    return _save(pipe, directory)


def build_tiny_animatediff(directory: Path, *, seed: int = 0) -> Path:
    """An AnimateDiff pipeline (an SD 1.x UNet with a motion adapter): 32x32 by default."""
    import torch
    from diffusers import AnimateDiffPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
    from transformers import CLIPTextModel

    from tiny_diffusers import _clip_config, build_clip_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=2,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False)
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    tokenizer = build_clip_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_config(tokenizer, num_hidden_layers=5))
    torch.manual_seed(seed)
    adapter = MotionAdapter(
        block_out_channels=(8, 16), motion_layers_per_block=2, motion_norm_num_groups=2, motion_num_attention_heads=4
    )
    pipe = AnimateDiffPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        motion_adapter=adapter,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        feature_extractor=None,
        image_encoder=None,
    )
    return _save(pipe, directory)


def build_tiny_svd(directory: Path, *, seed: int = 0) -> Path:
    """A Stable Video Diffusion image-to-video pipeline: 32x32; its CLIP vision encoder takes 224 px, as
    the pipeline resizes the image to that before encoding it."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        latent_channels=4,
    )
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(
        hidden_size=32,
        projection_dim=32,
        num_hidden_layers=5,
        num_attention_heads=4,
        image_size=224,
        intermediate_size=37,
        patch_size=32,
    )
    pipe = StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=CLIPVisionModelWithProjection(vision),
        unet=unet,
        scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )
    return _save(pipe, directory)


def build_tiny_wan_i2v(directory: Path, *, seed: int = 0) -> Path:
    """A Wan 2.1 image-to-video pipeline (a CLIP vision encoder beside T5): 16x16, frames 4k+1."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=T5_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
    )
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(
        hidden_size=4,
        projection_dim=4,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        intermediate_size=16,
        patch_size=1,
    )
    text_encoder, tokenizer = build_t5(seed)
    pipe = WanImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        image_encoder=CLIPVisionModelWithProjection(vision),
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
    )
    return _save(pipe, directory)
