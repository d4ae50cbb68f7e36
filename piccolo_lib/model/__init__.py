"""The model: backbones (offline and hub), the Piccolo2 model (pooling, widening head, LoRA), encoding, merging.

Modules: ``backbones`` and ``e5_small`` (where weights come from), ``build`` (the model), ``packing`` and
``gradcache`` (how a batch's texts are encoded), ``merging`` (two saved models into one), ``card`` (its README
section). ``piccolo_lib.model`` re-exports the public names of ``build``, so `from piccolo_lib.model import
...` keeps working as before the split.
"""

from .build import (DECODER_TYPES, DTYPES, REPORT_DIMS, REPORT_HIDDEN, REPORT_WIDTH, add_lora, build_model,
                    default_mrl_dims, default_projection_dim, embedding_dim, ensure_eos,
                    extend_position_embeddings, freeze_for_speed, freeze_position_embeddings,
                    is_sentence_transformers_folder, load_projection, merge_lora, projection,
                    resolve_backbone, set_dropout)  # noqa: F401
