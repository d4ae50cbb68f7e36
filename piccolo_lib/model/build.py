"""The Piccolo2 model: backbone + pooling + a widening linear projection, in sentence-transformers form.

Report, section 'Matryoshka representation learning' ("dimension scaling up"): a learnable linear layer widens the backbone's
1024-dim output to 1792, and Matryoshka training makes every prefix of it usable. The model is a
plain :class:`sentence_transformers.SentenceTransformer` (Transformer -> Pooling -> Dense), so a
saved folder loads with ``SentenceTransformer(path)`` and no piccolo_lib import, and
``SentenceTransformer(path, truncate_dim=256)`` gives the 256-dim prefix.

Introduced in notebooks/04_projection_head.ipynb; last-token pooling for decoder LLMs and LoRA
(:func:`add_lora`, :func:`merge_lora`, the piccolo-gpt path) in notebooks/09_piccolo_gpt.ipynb.
"""

from __future__ import annotations

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

from .backbones import resolve_backbone
from ..errors import ConfigError, MissingPackage

REPORT_DIMS = (256, 512, 768, 1024, 1280, 1536, 1792)  # the dims the report evaluates (report, 'Matryoshka representation learning')
REPORT_WIDTH, REPORT_HIDDEN = 1792, 1024
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def default_projection_dim(hidden: int) -> int:
    """The report's ratio 1792 / 1024 = 1.75, applied to any hidden size (1024 -> 1792, 128 -> 224)."""
    return round(hidden * REPORT_WIDTH / REPORT_HIDDEN)


def default_mrl_dims(width: int) -> list[int]:
    """The report's nesting dims scaled to ``width`` (1792 -> the report's; 224 -> 32, 64, ..., 224)."""
    return sorted({max(1, round(width * d / REPORT_WIDTH)) for d in REPORT_DIMS})


def projection(hidden: int, width: int, *, seed: int = 0) -> Dense:
    """The widening head, initialised so training starts from the backbone's own embedding.

    Init: the first ``hidden`` outputs copy the pooled embedding (identity), the extra
    ``width - hidden`` outputs start small (normal, std 0.02, as BERT initialises its layers) and
    the bias at zero. So at step 0 every MRL prefix up to ``hidden`` is exactly the backbone's
    embedding prefix and the full vector's cosine is nearly the backbone's: a random head would
    instead scramble a pretrained backbone's geometry before the first step.
    """
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(width, hidden, generator=gen) * 0.02
    n = min(width, hidden)
    weight[:n, :n] = torch.eye(n)
    return Dense(hidden, width, bias=True, activation_function=torch.nn.Identity(),
                 init_weight=weight, init_bias=torch.zeros(width))


def ensure_eos(tokenizer) -> bool:
    """Make a decoder's tokenizer append EOS (piccolo-gpt pools the last token, which must be EOS).

    Many LLM tokenizers (Qwen2, LLaMA-3) add no EOS on their own; this sets the fast tokenizer's
    post-processor to ``$A <eos>``, which is saved in tokenizer.json, so a plain SentenceTransformer
    load encodes the same way. Returns True when it changed the tokenizer.
    """
    from tokenizers import processors

    eos = tokenizer.eos_token
    if eos is None or tokenizer("a")["input_ids"][-1:] == [tokenizer.eos_token_id]:
        return False
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tokenizer.eos_token_id)])
    return True


def build_model(
    backbone: str,
    *,
    pooling: str = "auto",
    projection_dim: int | None = None,
    max_seq_length: int = 512,
    normalize: bool = False,
    prompts: dict[str, str] | None = None,
    seed: int = 0,
    trust_remote_code: bool = False,
    device: str | None = None,
    dtype: str = "float32",
    attn_implementation: str | None = None,
) -> SentenceTransformer:
    """Build a Piccolo2-style SentenceTransformer from a backbone.

    Args:
        backbone: ``e5-small``, ``offline-bert``, ``offline-decoder``, ``minilm``, a local folder or a
            hub name. A sentence-transformers folder (``modules.json``) keeps its pooling, its
            projection head and its prompts (see :func:`_from_sentence_transformers`).
        pooling: ``mean``, ``cls``, ``lasttoken`` (decoder LLMs, piccolo-gpt) or ``auto``
            (the folder's own; else lasttoken for decoder-only configs, else mean).
        projection_dim: width of the linear head; None: 1.75 x hidden (the report's 1024 -> 1792);
            0: no head.
        max_seq_length: truncation length.
        normalize: append a Normalize module (the losses use cosine anyway).
        prompts: sentence-transformers prompts (e.g. {"query": "..."}) saved with the model.
        seed: seed for the head's initialisation.
        trust_remote_code: off unless the user asks; passed to transformers.
        device: where the model is put (None: sentence-transformers' pick, a GPU if there is one).
        dtype: ``float32`` (default: fp32 weights, as training wants its master weights, even from a
            checkpoint saved in bf16, which transformers 5 would otherwise load as bf16), ``bfloat16``,
            ``float16`` or ``auto`` (as saved). The head is cast too.
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``; None: transformers' pick (sdpa
            where the architecture supports it).
    """
    path = resolve_backbone(backbone, seed=seed)
    kwargs = {"trust_remote_code": trust_remote_code} if trust_remote_code else {}
    model_kwargs = {**kwargs, "dtype": DTYPES[dtype]}
    if attn_implementation:
        model_kwargs["attn_implementation"] = attn_implementation
    if is_sentence_transformers_folder(path):
        model = _from_sentence_transformers(path, pooling=pooling, projection_dim=projection_dim,
                                            max_seq_length=max_seq_length, normalize=normalize, prompts=prompts,
                                            seed=seed, kwargs=kwargs, model_kwargs=model_kwargs, device=device)
        return model if dtype == "auto" else model.to(DTYPES[dtype])
    transformer = Transformer(path, max_seq_length=max_seq_length, model_kwargs=model_kwargs,
                              config_kwargs=kwargs or None, processor_kwargs=kwargs or None)
    hidden = transformer.get_embedding_dimension()
    pooling = _auto_pooling(transformer.auto_model.config) if pooling == "auto" else pooling
    if pooling == "lasttoken":
        ensure_eos(transformer.tokenizer)
    modules: list[torch.nn.Module] = [transformer, Pooling(hidden, pooling_mode=pooling)]
    width = default_projection_dim(hidden) if projection_dim is None else projection_dim
    if width:
        modules.append(projection(hidden, width, seed=seed))
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, prompts=prompts, device=device)
    return model if dtype == "auto" else model.to(DTYPES[dtype])


# model types that are decoder-only LLMs (pooled at their last token, piccolo-gpt); the check also
# reads config.is_decoder and the architectures' names (…ForCausalLM, …LMHeadModel)
DECODER_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3",
    "gemma3_text", "phi", "phi3", "gpt2", "gpt_neo", "gpt_neox", "gptj", "falcon", "bloom", "opt", "olmo", "olmo2",
    "stablelm", "starcoder2", "internlm", "internlm2", "baichuan", "chatglm", "glm", "deepseek_v2", "deepseek_v3",
    "minicpm", "cohere", "granite", "smollm3",
})


def _auto_pooling(config) -> str:
    """``lasttoken`` for decoder-only LLMs (piccolo-gpt), ``mean`` for every encoder.

    Encoders without token types (DistilBERT, MPNet, ModernBERT) and T5-style encoder-decoders
    (their encoder is what embeds) are encoders: mean.
    """
    if getattr(config, "is_encoder_decoder", False):
        return "mean"
    archs = getattr(config, "architectures", None) or []
    decoder = (getattr(config, "is_decoder", False) or config.model_type in DECODER_TYPES
               or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs))
    return "lasttoken" if decoder else "mean"


def is_sentence_transformers_folder(path: str) -> bool:
    """True for a sentence-transformers model: a local folder with ``modules.json``, or a hub model with one.

    A hub name is checked with ``hf_hub_download`` (from the local cache when offline): a model
    published with its own pooling, head and prompts keeps them (see :func:`_from_sentence_transformers`).
    """
    from pathlib import Path

    if Path(path).exists():
        return (Path(path) / "modules.json").exists()
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        hf_hub_download(path, "modules.json")
    except (OSError, ValueError, HfHubHTTPError):  # no such file or repo, not cached offline, not a repo id
        return False
    return True


def _from_sentence_transformers(path: str, *, pooling: str, projection_dim: int | None, max_seq_length: int,
                                normalize: bool, prompts: dict[str, str] | None, seed: int, kwargs: dict,
                                device: str | None, model_kwargs: dict | None = None) -> SentenceTransformer:
    """Start from a saved sentence-transformers model, keeping what it learned.

    Its Transformer, pooling, projection head (a saved Piccolo2 model's 1792-dim Dense) and prompts
    (e5's ``query: `` / ``passage: ``) are kept; a head is added only when it has none. ``pooling``
    other than ``auto`` replaces its pooling; a trailing ``Normalize`` stays last.
    """
    saved = SentenceTransformer(path, device=device, trust_remote_code=bool(kwargs), model_kwargs=model_kwargs)
    modules = list(saved)
    if not modules or not isinstance(modules[0], Transformer):
        raise ConfigError(f"{path}: a sentence-transformers folder whose first module is not a Transformer "
                         f"({type(modules[0]).__name__ if modules else 'no modules'}) cannot be a Piccolo2 backbone")
    norm = [m for m in modules if isinstance(m, Normalize)]
    modules = [m for m in modules if not isinstance(m, Normalize)]
    transformer = modules[0]
    transformer.max_seq_length = max_seq_length
    hidden = transformer.get_embedding_dimension()
    pools = [i for i, m in enumerate(modules) if isinstance(m, Pooling)]
    if pooling != "auto":
        new = Pooling(hidden, pooling_mode=pooling)
        if pools:
            modules[pools[0]] = new
        else:
            modules.insert(1, new)
    elif not pools:
        modules.insert(1, Pooling(hidden, pooling_mode=_auto_pooling(transformer.auto_model.config)))
    dense = [m for m in modules if isinstance(m, Dense)]
    if dense:
        have = dense[-1].linear.out_features
        if projection_dim not in (None, have):
            raise ConfigError(f"{path}: it has a {have}-dim projection head already; "
                             f"projection_dim={projection_dim} would need a new one (leave projection_dim null)")
    else:
        width = default_projection_dim(hidden) if projection_dim is None else projection_dim
        if width:
            modules.append(projection(hidden, width, seed=seed))
    if norm or normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, prompts={**saved.prompts, **(prompts or {})}, device=device)


def set_dropout(model: torch.nn.Module, p: float) -> int:
    """Set the probability of every ``torch.nn.Dropout`` in ``model`` to ``p``; returns how many were set.

    Covers hidden and attention dropout of transformers' encoders: their attention passes ``self.dropout.p``
    to the attention kernel. ``p = 0`` makes a training step a deterministic function of weights and batch.
    """
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {p}")
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    for m in layers:
        m.p = p
    return len(layers)


def add_lora(model: SentenceTransformer, r: int = 16, alpha: float = 32, dropout: float = 0.1,
             target_modules: list[str] | str = "all-linear") -> int:
    """Freeze the backbone and train low-rank adapters instead (LoRA, Hu et al. 2021): the 7B-LLM path.

    Each adapted weight W (out x in) stays frozen and learns an update (alpha / r) B A with A (r x in),
    B (out x r), B starting at zero: the model is unchanged at step 0 and trains r (in + out) numbers per
    layer instead of in x out. E5-mistral trained its 7B embedder with rank 16. The backbone's other
    weights (embeddings, norms) are frozen too; the projection head stays trainable (it is new and small).

    Written against peft directly: sentence-transformers 6.2's ``model.add_adapter`` goes through
    transformers 5's peft integration, which refuses peft < 0.22, and this project's package index
    serves peft 0.21. The adapter layers are peft's own either way. Call :func:`merge_lora` before saving.

    Args:
        r: LoRA rank (0 is refused: leave LoRA off instead).
        alpha: the update is scaled by alpha / r.
        dropout: dropout on the adapter's input.
        target_modules: ``all-linear`` or the Linear layers' names, e.g. ``["q_proj", "v_proj"]``.

    Returns:
        The number of trainable parameters of the whole model after the change.
    """
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise MissingPackage("LoRA needs the peft package: pip install peft (it is in the [dev] extras)") from None
    if r < 1:
        raise ConfigError(f"LoRA rank must be >= 1, got r={r}")
    targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    backbone = model[0].auto_model
    names = {n.rsplit(".", 1)[-1] for n, m in backbone.named_modules() if isinstance(m, torch.nn.Linear)}
    missing = sorted(set(targets) - names) if isinstance(targets, list) else []
    if missing or (isinstance(targets, str) and targets != "all-linear"):
        raise ConfigError(f"lora_target_modules {target_modules!r}: no such Linear layer in "
                         f"{type(backbone).__name__}; its Linear layers: {sorted(names)} (or 'all-linear')")
    inject_adapter_in_model(LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets), backbone)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora(model: SentenceTransformer) -> int:
    """Fold every LoRA adapter into its frozen weight (W <- W + (alpha / r) B A) and drop the adapter layers.

    The model is then an ordinary SentenceTransformer again: ``model.save`` writes a folder that plain
    ``SentenceTransformer(path)`` loads without peft, and encodes the same (to float rounding).
    Returns the number of merged layers (0 when the model has no adapters).
    """
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return 0
    backbone = model[0].auto_model
    layers = [(name, m) for name, m in backbone.named_modules() if isinstance(m, LoraLayer)]
    for name, layer in layers:
        layer.merge()
        parent, _, child = name.rpartition(".")
        setattr(backbone.get_submodule(parent), child, layer.get_base_layer())
    return len(layers)


def freeze_for_speed(model: SentenceTransformer, *, word_embeddings: bool = False,
                     train_top_layers: int = 0) -> dict[str, int]:
    """Train less of a large backbone: the two options any user of a big model reaches for on a CPU.

    * ``word_embeddings``: freeze the input embedding matrix. In multilingual models it is most of the
      parameters (e5-small: 96M of 118M, a 250k-piece vocabulary x 384) while a short fine-tune touches
      only the rows of the pieces it sees; frozen, it gets no gradient and no AdamW state.
    * ``train_top_layers = k > 0``: train only the top k transformer layers (and what comes after them:
      the final norm of decoders, BERT's pooler, the projection head); the embeddings and lower layers are
      frozen. A parameter that gets no gradient (BERT's pooler under mean pooling) costs no optimizer work.

    The projection head is never frozen here. Returns ``{"trainable": n, "frozen": n}`` parameter counts.
    """
    backbone = model[0].auto_model
    if word_embeddings or train_top_layers:
        backbone.get_input_embeddings().weight.requires_grad_(False)
    if train_top_layers:
        n_layers = backbone.config.num_hidden_layers
        stacks = [m for m in backbone.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers]
        if not stacks:
            raise ValueError(f"train_top_layers: found no stack of {n_layers} layers in {type(backbone).__name__}")
        if not 0 < train_top_layers <= n_layers:
            raise ValueError(f"train_top_layers={train_top_layers}: the backbone has {n_layers} layers")
        top = {id(p) for layer in stacks[0][n_layers - train_top_layers:] for p in layer.parameters()}
        before = True  # parameters registered before the top layers (embeddings, lower layers) are frozen
        for p in backbone.parameters():
            if id(p) in top:
                before = False
            elif before:
                p.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "frozen": sum(p.numel() for p in model.parameters()) - trainable}


def freeze_position_embeddings(model: SentenceTransformer) -> list[str]:
    """Stop training the absolute position embeddings (the reference code freezes them).

    Returns:
        The names of the frozen parameters (empty for rotary-position models such as LLaMA).
    """
    frozen = []
    for name, param in model.named_parameters():
        if "position_embeddings" in name:
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def extend_position_embeddings(model: SentenceTransformer, new_max: int, alpha: float = 0.4) -> None:
    """Extend learned absolute position embeddings to ``new_max`` positions (the reference's ``extend_pe``).

    Hierarchical decomposition: with the n trained vectors E and u = (E - alpha E_0) / (1 - alpha),
    position i = q n + r gets alpha u_q + (1 - alpha) u_r. Positions below n keep exactly their
    trained vector (q = 0), and longer positions are built from trained pieces instead of noise.
    """
    backbone = model[0].auto_model
    emb = backbone.embeddings.position_embeddings  # (n, H)
    old = emb.weight.data
    n = old.shape[0]
    if new_max <= n:
        return
    if new_max > n * n:
        raise ConfigError(f"can extend {n} positions to at most {n * n}, asked for {new_max}")
    u = (old - alpha * old[:1]) / (1 - alpha)  # (n, H)
    idx = torch.arange(new_max)
    new = torch.nn.Embedding(new_max, old.shape[1]).to(old.device, old.dtype)
    new.weight.data = alpha * u[idx // n] + (1 - alpha) * u[idx % n]
    backbone.embeddings.position_embeddings = new
    if hasattr(backbone.embeddings, "position_ids"):
        backbone.embeddings.register_buffer("position_ids", idx.to(old.device)[None], persistent=False)
    if hasattr(backbone.embeddings, "token_type_ids"):
        backbone.embeddings.register_buffer("token_type_ids", torch.zeros(1, new_max, dtype=torch.long,
                                                                           device=old.device), persistent=False)
    backbone.config.max_position_embeddings = new_max
    model.tokenizer.model_max_length = new_max
    model.max_seq_length = new_max


def load_projection(model: SentenceTransformer, path: str) -> None:
    """Initialise the projection head from a previously saved model folder (its Dense module)."""
    previous = SentenceTransformer(path, device="cpu")
    dense = [m for m in previous if isinstance(m, Dense)]
    if not dense or not isinstance(model[2], Dense):
        raise ConfigError(f"{path}: no projection (Dense) module to load, or this model has no head")
    if dense[0].linear.weight.shape != model[2].linear.weight.shape:
        raise ConfigError(f"{path}: projection shape {tuple(dense[0].linear.weight.shape)} does not match "
                         f"{tuple(model[2].linear.weight.shape)}")
    model[2].load_state_dict(dense[0].state_dict())


def embedding_dim(model: SentenceTransformer) -> int:
    """Output width of the model (the projection's, when it has one)."""
    return model.get_embedding_dimension()
