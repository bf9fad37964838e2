"""The book (layer 6): what the chapters call, and the build.

- :mod:`~lottery.book.layout`      the project's layout (markers, folders, files)
- :mod:`~lottery.book.plots`       Altair charts, rendered offline (:mod:`~lottery.book.data_plots`: the data
  chapters'; :mod:`~lottery.book.federated_plots`: accuracy vs bytes)
- :mod:`~lottery.book.notebook`    set-up, stored results and glue for the chapters' cells
- :mod:`~lottery.book.tables`      data and divergence tables
- :mod:`~lottery.book.verdict_view` the compact verdict table and the claims' collapsible details
- :mod:`~lottery.book.provenance`  machine, data source, compute and timings behind a page
- :mod:`~lottery.book.pages`       page stamps, the pages-agree check, compute records, library source
- :mod:`~lottery.book.chapters`    the chapter registry and chapter parameters
- :mod:`~lottery.book.plan`        what a chapter or profile costs before it runs (the exercises' cost lines)
- :mod:`~lottery.book.stability`   the phase chapter's instability section: its parameters, the jobs it runs (the plan counts them), its chart
- :mod:`~lottery.book.progress`    progress lines while a chapter executes; the kernel's transport noise filtered
- :mod:`~lottery.book.build`       assets, papermill, jupyter-book
- :mod:`~lottery.book.launch`      outside the project: the pinned set-up install, the Binder / Colab buttons, the launch tree
"""
