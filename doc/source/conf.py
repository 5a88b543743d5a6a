"""Sphinx configuration of the multimodal-virt documentation."""

project = 'multimodal-virt'
copyright = 'multimodal-virt developers'
author = 'multimodal-virt developers'

extensions = [
    # Renders the option reference from the registered options
    # (the ``oslo.config.opts`` entry point ``multimodal_virt``).
    'oslo_config.sphinxext',
]

templates_path = []
exclude_patterns = []
source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
language = 'en'
pygments_style = 'sphinx'

html_theme = 'alabaster'
html_static_path = []
html_title = 'multimodal-virt'
