"""Course tooling: running the notebooks, their pages, exercises, plots and widgets (the ``[course]`` extra).

Modules: ``runner`` (papermill, the non-interactive kernel, the watchdog, Colab), ``pages`` (docs/course),
``exercises``, ``plots``, ``widgets``, ``standin`` (a local OpenAI-style endpoint for notebook 10).
``piccolo_lib.course`` re-exports the public names of ``runner``, so `from piccolo_lib.course import ...`
keeps working as before the split.
"""

from .runner import (CELL_TIMEOUT_S, COLAB_BLOCK, COLAB_DIR, CourseError, IDLE_LIMIT_S, KERNEL,
                     KernelWatchdog, NONINTERACTIVE_STARTUP, NOTEBOOKS, PLACEHOLDER_OWNER, REPO_SLUG,
                     TOKENIZER_PACKAGE, check_parameters_cell, colab_block, colab_url, ensure_kernel,
                     execute, fill_slug, git_remote_slug, run_course, select, slug_from_remote, strip,
                     to_html, write_index)  # noqa: F401
