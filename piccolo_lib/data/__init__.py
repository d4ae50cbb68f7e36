"""Training data: the record files, their checks, conversions and the task-homogeneous batch sampler.

Modules: ``files`` (reading JSONL / CSV / Parquet / save_to_disk folders and meta lists; C-MTEB conversions),
``validation`` (every problem named by file, row and field), ``sampling`` (task-homogeneous, rank-aligned
batches). ``piccolo_lib.data`` re-exports the public names of ``files``, so `from piccolo_lib.data import ...`
keeps working as before the split.
"""

from .files import (DataError, LOSS_NAMES, RECORD_COLUMNS, Records, Rows, TrainSet, as_retrieval, columns,
                    from_classification, from_pairs, load_train_sets, read_jsonl, read_meta_list, read_table,
                    summary, to_dataset, validate)  # noqa: F401
