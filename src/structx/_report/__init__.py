"""The report layer: a static HTML site that shows a run's articles, records and evidence, and the dataset.

It works from result lines alone (as ``structx extract`` writes them, or
answers in the gold format) and, when given one, a dataset from
``structx merge``; like the knowledge layer it never imports the engine, the
backends, the embedded server, the batch runner, the run store or the CLI
(an import-linter contract in pyproject.toml says so), so a report can be
made from results produced anywhere.

* ``_inputs``: lines read into articles, records and their evidence; the run's totals;
* ``_spans``: overlapping character spans laid out as nested elements;
* ``_dataset``: a dataset folder read back from its SQLite file;
* ``_charts``: the visit timeline and the meetings graph, drawn as SVG on the server;
* ``_site``: the pages (jinja2 templates in ``templates/``, CSS and script in
  ``static/``, both shipped as package data) and writing them.
"""
